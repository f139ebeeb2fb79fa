"""msdf_unet.fileio: atomic writes leave the old file or the complete new one, never a
temporary file; output folders are checked up front and foreign folders refused."""
import os
import stat

import numpy as np
import pytest

from msdf_unet import fileio


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_bytes_text_and_callback(tmp_path):
    assert fileio.write_bytes(tmp_path / "a" / "b.bin", b"\x00\x01") == tmp_path / "a" / "b.bin"
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"\x00\x01"
    fileio.write_text(tmp_path / "t.json", "{}\n")
    assert (tmp_path / "t.json").read_text() == "{}\n"
    arr = np.arange(5)
    fileio.write_with(tmp_path / "x.npy", lambda p: np.save(p, arr))      # no second .npy
    assert np.array_equal(np.load(tmp_path / "x.npy"), arr)
    fileio.write_with(tmp_path / "z.npz", lambda p: np.savez(p, a=arr))
    with np.load(tmp_path / "z.npz") as z:
        assert np.array_equal(z["a"], arr)
    assert _names(tmp_path) == ["a", "t.json", "x.npy", "z.npz"]
    mode = stat.S_IMODE((tmp_path / "t.json").stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_savefig_keeps_the_format(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig = plt.figure()
    fileio.write_with(tmp_path / "f.png", fig.savefig)
    plt.close(fig)
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failure_midway_keeps_the_old_file(tmp_path, exc):
    target = tmp_path / "net.msdfp"
    target.write_bytes(b"old complete content")

    def half_then_fail(p):
        with open(p, "wb") as f:
            f.write(b"new but tru")
        raise exc
    with pytest.raises(type(exc)):
        fileio.write_with(target, half_then_fail)
    assert target.read_bytes() == b"old complete content"
    assert _names(tmp_path) == ["net.msdfp"]


def test_failing_write_of_bytes_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "log.json"
    target.write_text("old")
    real = os.fsync

    def boom(fd):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        fileio.write_text(target, "new")
    monkeypatch.setattr(os, "fsync", real)
    assert target.read_text() == "old" and _names(tmp_path) == ["log.json"]


def test_prepare_out_dir(tmp_path):
    (tmp_path / "file").write_text("x")
    assert fileio.prepare_out_dir(tmp_path / "new" / "deep").is_dir()
    with pytest.raises(fileio.OutputError, match="not a folder"):
        fileio.prepare_out_dir(tmp_path / "file")
    with pytest.raises(fileio.OutputError, match="parent of it is a file"):
        fileio.prepare_out_dir(tmp_path / "file" / "sub")
    with pytest.raises(fileio.OutputError, match="is a folder"):
        fileio.prepare_out_file(tmp_path / "new")
    with pytest.raises(fileio.OutputError, match="r.json: folder .*file: exists and is not a folder"):
        fileio.prepare_out_file(tmp_path / "file" / "r.json")
    assert fileio.prepare_out_file(tmp_path / "r" / "r.json") == tmp_path / "r" / "r.json"


def test_check_without_creating(tmp_path):
    (tmp_path / "file").write_text("x")
    assert fileio.prepare_out_dir(tmp_path / "a" / "b", create=False) == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()
    with pytest.raises(fileio.OutputError, match="parent of it is a file"):
        fileio.prepare_out_dir(tmp_path / "file" / "a" / "b", create=False)
    with pytest.raises(fileio.OutputError, match="not a folder"):
        fileio.prepare_out_dir(tmp_path / "file", create=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(fileio.OutputError, match="not writable"):
            fileio.prepare_out_dir(ro)
    finally:
        ro.chmod(0o700)


def test_claim_out_dir(tmp_path):
    out = tmp_path / "out"
    fileio.claim_out_dir(out, ours=["a.v"])                      # new folder: ours
    assert (out / fileio.MARKER).is_file()
    fileio.claim_out_dir(out)                                    # marker: ours again
    other = tmp_path / "other"
    other.mkdir()
    for i in range(7):
        (other / f"f{i}.txt").write_text("mine")
    (other / "a.v").write_text("")
    with pytest.raises(fileio.OutputError) as e:
        fileio.claim_out_dir(other, ours=["a.v"])
    msg = str(e.value)
    assert "f0.txt, f1.txt, f2.txt, f3.txt, f4.txt and 2 more" in msg and "--force" in msg
    assert "a.v" not in msg and not (other / fileio.MARKER).exists()
    fileio.claim_out_dir(other, force=True)
    assert (other / fileio.MARKER).is_file()
    old = tmp_path / "old"                                       # our output before markers
    old.mkdir()
    (old / "a.v").write_text("")
    fileio.claim_out_dir(old, ours=["a.v"])
