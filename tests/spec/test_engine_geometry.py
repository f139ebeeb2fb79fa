"""One source for the engine's buffers: the RTL geometry (hdl/conv/conv_control.ConvGeometry)
and the cycle model's (golden/conv/cycles._Geometry) are the EngineConfig's."""
import pytest

from msdf_unet.spec import engine as E

CONFIGS = [
    E.BOARD_CONFIG,
    E.EngineConfig(arrays=(E.ArrayConfig("mma", 2, 12),), weight_buffer_bytes=4096,
                   out_buffer_bytes=512, param_table_depth=5),
]


@pytest.mark.parametrize("config", CONFIGS)
def test_rtl_and_cycle_model_geometry_come_from_the_config(config):
    pytest.importorskip("amaranth")
    from msdf_unet.golden.conv.cycles import _Geometry
    from msdf_unet.hdl.conv.conv_control import ConvGeometry
    from msdf_unet.hdl.conv.engine import ConvEngine
    want = (config.weight_rows, config.out_buffer_words, config.param_table_depth)
    g = ConvEngine(config).geometry
    assert isinstance(g, ConvGeometry)
    assert (g.lanes, g.bias_lanes) == (config.lanes, config.max_bias_lanes)
    assert (g.weight_rows, g.out_words, g.param_depth) == want
    m = _Geometry(config)
    assert (m.weight_rows, m.out_words, m.param_depth) == want
