import json

import pytest

from msdf_unet.hdl.bus.regmap import Field, Register, RegisterMap, RegisterMapError
from msdf_unet.hdl.soc.regs import accelerator_map


def test_addresses_are_allocated_in_order():
    m = RegisterMap("t", (Register("A", "rw", (Field("v", 0, 8),)),
                          Register("B", "r", (Field("v", 0, 32),), count=3),
                          Register("C", "w", (Field("go", 0, 1),))))
    assert [m.address("A"), m.address("B", 0), m.address("B", 2), m.address("C")] == [0, 4, 12, 16]
    assert m.addr_width == 5
    assert [a for a, _, _ in m.words()] == [0, 4, 8, 12, 16]


def test_json_round_trip_and_digest():
    m = accelerator_map(n_lanes=11)
    again = RegisterMap.from_json(m.to_json())
    assert again == m and again.digest32 == m.digest32
    assert accelerator_map(n_lanes=12).digest32 != m.digest32


def test_tampered_json_is_refused():
    d = json.loads(accelerator_map(n_lanes=11).to_json())
    d["registers"][3]["address"] += 4
    with pytest.raises(RegisterMapError, match="disagrees with the allocation"):
        RegisterMap.from_dict(d)
    with pytest.raises(RegisterMapError, match="not valid JSON"):
        RegisterMap.from_json("{")


@pytest.mark.parametrize("value,width,signed", [(-129, 8, True), (128, 8, True), (256, 8, False), (-1, 8, False)])
def test_field_encode_rejects_out_of_range(value, width, signed):
    with pytest.raises(ValueError, match="holds integers in"):
        Field("v", 0, width, signed=signed).encode(value)


def test_field_signed_round_trip():
    f = Field("v", 8, 8, signed=True)
    for v in range(-128, 128):
        assert f.decode(f.encode(v)) == v


def test_bad_declarations():
    with pytest.raises(RegisterMapError, match="overlaps"):
        Register("A", "rw", (Field("a", 0, 8), Field("b", 4, 8)))
    with pytest.raises(RegisterMapError, match="does not fit"):
        Field("a", 30, 4)
    with pytest.raises(RegisterMapError, match="access must be"):
        Register("A", "x", ())
    with pytest.raises(RegisterMapError, match="duplicate register"):
        RegisterMap("t", (Register("A", "rw", ()), Register("A", "rw", ())))
    with pytest.raises(IndexError, match="out of range"):
        accelerator_map(n_lanes=3).address("W", 3)
