"""The board notebook runs end to end here, on the software backends (no board)."""
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, tmp_path, monkeypatch):
    import ipykernel  # noqa: F401 - the kernel nbclient starts; all three come with make setup
    import nbclient
    import nbformat
    monkeypatch.setenv("MSDF_UNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MSDF_OVERLAY", str(tmp_path / "no_board" / "msdf_accel.bit"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "labels identical to int8" in text and "'msdf': True" in text


def test_there_is_a_board_notebook():
    assert any(p.name == "msdf_unet_pynq.ipynb" for p in NOTEBOOKS)
