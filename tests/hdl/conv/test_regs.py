"""The engine register map: declared once, JSON round trip, widths from the enums."""
from msdf_unet.hdl.bus.regmap import RegisterMap
from msdf_unet.hdl.conv.regs import ID_MAGIC, config_word, engine_map, enum_width
from msdf_unet.spec.engine import EngineConfig, ErrorCode, Op


def test_map_round_trip_and_fields():
    m = engine_map()
    assert RegisterMap.from_json(m.to_json()) == m
    assert m["ERROR"].field("code").width == enum_width(ErrorCode)
    assert m["ERROR"].field("code").encode(max(ErrorCode)) >= 0
    assert m["LAYER"].field("op").width == enum_width(Op)
    assert m["ID"].field("magic").encode(ID_MAGIC) == ID_MAGIC
    for name in ("MAP_DIGEST", "CONFIG_DIGEST", "CONFIG", "CTRL", "START", "MEM_BASE_LO",
                 "MEM_BASE_HI", "MEM_SIZE", "CMD_OFFSET", "STATUS", "ERROR", "CYCLES",
                 "WATCHDOG", "LAYER"):
        m.address(name)


def test_config_word_fits():
    c = EngineConfig()
    word = engine_map()["CONFIG"].encode(**config_word(c))
    assert engine_map()["CONFIG"].decode(word) == config_word(c)
