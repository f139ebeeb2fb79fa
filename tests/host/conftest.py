"""Fixtures shared by the host tests."""
import pytest


@pytest.fixture(scope="module")
def private_model_cache(tmp_path_factory):
    """A module's own model cache: ``MSDF_UNET_CACHE`` in a fresh folder and an empty
    in-process model table of ``host/api.py``, both restored afterwards. Use it with
    ``pytestmark = pytest.mark.usefixtures("private_model_cache")``."""
    from msdf_unet.host import api
    mp = pytest.MonkeyPatch()
    mp.setenv("MSDF_UNET_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.setattr(api, "_MODELS", {})
    yield
    mp.undo()
