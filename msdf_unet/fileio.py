"""Writing output files safely: atomic replacement, checked output folders.

Every file the project writes (programs, weights, logs, plots, Verilog, reports) goes
through :func:`write_bytes`, :func:`write_text` or :func:`write_with`. Each writes a
temporary file in the destination's folder (``.<name>.<random>.tmp<suffix>``, same file
system), flushes and fsyncs it, and :func:`os.replace` s it over the destination. On any
exception -- ``KeyboardInterrupt`` and a full disk included -- the temporary file is
removed and the exception re-raised, so the destination holds either its old content or
the complete new one, never a truncated file.

Output folders given on the command line (``--out``) are checked up front with
:func:`prepare_out_dir` / :func:`prepare_out_file`, which raise :class:`OutputError` (a
ValueError) with a one-line message instead of failing with a traceback after minutes of
work. :func:`claim_out_dir` guards folders that a command fills with many generated files
(``verilog``, ``bitstream``): it refuses a folder holding files we did not write, unless
forced, and recognises our own earlier output by :data:`MARKER`.

Plain Python (no numpy, no Amaranth): ``golden/``, ``hdl/`` and ``host/`` all use it.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["MARKER", "OutputError", "write_bytes", "write_text", "write_with",
           "prepare_out_dir", "prepare_out_file", "claim_out_dir"]

#: Written into folders filled by ``msdf-unet verilog`` / ``bitstream``; a folder holding
#: it is our own earlier output and may be overwritten without ``--force``.
MARKER = ".msdf-unet-output"


class OutputError(ValueError):
    """An output path cannot be used (not a folder, not writable, holds foreign files)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on folders; the rename still happened
        pass
    finally:
        os.close(fd)


def write_with(path, writer: Callable[[Path], object], *, parents: bool = True) -> Path:
    """Atomically create or replace ``path`` with what ``writer(tmp)`` writes to ``tmp``.

    ``tmp`` is a fresh file in the same folder whose name ends with ``path``'s suffix
    (so ``np.save``, ``np.savez``, ``fig.savefig``, ``Image.save`` and ``torch.save`` see
    the right extension and do not append another). The writer may reopen and truncate
    it. The new file gets the permissions of a normally created file (0666 minus umask).

    Parameters
    ----------
    path : path-like
        Destination.
    writer : callable
        Called once with the temporary path; its return value is ignored.
    parents : bool
        Create missing parent folders.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    Whatever ``writer`` raises (including KeyboardInterrupt) or OSError from the file
    system; the temporary file is removed first and ``path`` is unchanged.
    """
    path = Path(path)
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                    suffix=f".tmp{path.suffix}")
    tmp = Path(tmp_name)
    try:
        os.close(fd)
        writer(tmp)
        with open(tmp, "rb+") as f:     # the writer may have used its own handle: sync ours
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def write_bytes(path, data: bytes, *, parents: bool = True) -> Path:
    """Atomically create or replace ``path`` with ``data`` (see :func:`write_with`)."""
    data = bytes(data)

    def put(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
    return write_with(path, put, parents=parents)


def write_text(path, text: str, *, encoding: str = "utf-8", parents: bool = True) -> Path:
    """Atomically create or replace ``path`` with ``text`` (see :func:`write_with`)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    return write_bytes(path, text.encode(encoding), parents=parents)


def prepare_out_dir(path, *, what: str = "--out", create: bool = True) -> Path:
    """Create the output folder ``path`` (with parents) and check that it is writable.

    With ``create=False`` nothing is created: a command checks its ``--out`` before long
    work that may still fail (training), and the nearest existing ancestor of a missing
    ``path`` must be a writable folder.

    Raises
    ------
    OutputError
        When ``path`` or one of its parents is an existing non-folder, or the folder
        cannot be created or written; the message names the path and the reason.
    """
    path = Path(path)
    if not create:
        probe = path
        while not probe.exists() and not probe.is_symlink() and probe != probe.parent:
            probe = probe.parent
        if probe != path:
            if not probe.is_dir():
                raise OutputError(f"{what} {path}: a parent of it is a file, not a folder")
            if not os.access(probe, os.W_OK | os.X_OK):
                raise OutputError(f"{what} {path}: cannot create it, {probe} is not writable")
            return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"{what} {path}: exists and is not a folder") from None
    except NotADirectoryError:
        raise OutputError(f"{what} {path}: a parent of it is a file, not a folder") from None
    except OSError as e:
        raise OutputError(f"{what} {path}: cannot create the folder ({e.strerror or e})") from None
    if not path.is_dir():
        raise OutputError(f"{what} {path}: exists and is not a folder")
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {path}: the folder is not writable")
    return path


def prepare_out_file(path, *, what: str = "--out") -> Path:
    """Check that the file ``path`` can be written: its folder is created and writable
    (:func:`prepare_out_dir`) and ``path`` itself is not a folder. Raises OutputError."""
    path = Path(path)
    try:
        prepare_out_dir(path.parent, what="folder")
    except OutputError as e:
        raise OutputError(f"{what} {path}: {e}") from None
    if path.is_dir():
        raise OutputError(f"{what} {path}: is a folder; give a file name")
    return path


def claim_out_dir(path, *, ours: Iterable[str] = (), force: bool = False,
                  what: str = "--out") -> Path:
    """Prepare a folder that a command fills with generated files, and mark it as ours.

    The folder may be new or empty, hold :data:`MARKER` (our earlier output), or hold only
    names in ``ours`` (what the command writes itself, e.g. from before the marker
    existed). Otherwise it holds files we did not generate and is refused -- the message
    names up to 5 of them -- unless ``force``.

    Raises
    ------
    OutputError
        As :func:`prepare_out_dir`, or for a folder holding foreign files.
    """
    path = prepare_out_dir(path, what=what)
    entries = sorted(p.name for p in path.iterdir())
    if MARKER not in entries and not force:
        foreign = [n for n in entries if n not in set(ours)]
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            raise OutputError(
                f"{what} {path}: the folder holds files msdf-unet did not write ({shown}); "
                f"choose an empty or new folder, or pass --force to write into it anyway")
    write_text(path / MARKER, "This folder holds output of msdf-unet; it may be overwritten "
                              "by the next run.\n")
    return path
