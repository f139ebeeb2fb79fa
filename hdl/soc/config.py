"""Generation settings of the accelerator, as a typed dataclass that round-trips to JSON.

Plain Python (no Amaranth): the host driver, the build and the tests all read it.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

__all__ = ["AccelConfig", "VARIANTS"]

#: Arithmetic variants selectable at generation time (same interface, see hdl/arith/iface.py).
VARIANTS = ("mma", "cascaded", "bitserial", "bitparallel-lut", "bitparallel-dsp", "msdf-v2")


@dataclass(frozen=True)
class AccelConfig:
    """What ``make verilog`` / ``make bitstream`` generate.

    Parameters
    ----------
    data_lanes : int
        Dot-product terms per transaction (9 = one 3x3 window of one channel).
    bias_lanes : int
        Extra lanes that carry the bias as pseudo-products (each holds up to 127*128).
    act_bits : int
        Activation width B.
    signed_acts : bool
        Signed (two's complement) activations; False is the seed's unsigned mode.
    variant : str
        Arithmetic variant, one of :data:`VARIANTS`.
    group_size : int
        Lanes per first-stage reduction group of the MMA (the second stage adds the groups).
    clk_mhz : float
        Clock the PL runs at (FCLK_CLK0 on the Zynq).
    """

    data_lanes: int = 9
    bias_lanes: int = 2
    act_bits: int = 8
    signed_acts: bool = True
    variant: str = "mma"
    group_size: int = 4
    clk_mhz: float = 100.0

    def __post_init__(self):
        for name in ("data_lanes", "bias_lanes", "act_bits", "group_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < (0 if name == "bias_lanes" else 1):
                raise ValueError(f"AccelConfig.{name} must be a positive integer, not {v!r}")
        if self.data_lanes + self.bias_lanes > 255:
            raise ValueError(f"data_lanes + bias_lanes must be <= 255, not "
                             f"{self.data_lanes + self.bias_lanes}")
        if not isinstance(self.signed_acts, bool):
            raise ValueError(f"AccelConfig.signed_acts must be true or false, not {self.signed_acts!r}")
        if not 2 <= self.act_bits <= 8:
            raise ValueError(f"AccelConfig.act_bits must be in [2, 8], not {self.act_bits!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"AccelConfig.variant must be one of {VARIANTS}, not {self.variant!r}")
        if not 1.0 <= float(self.clk_mhz) <= 250.0:
            raise ValueError(f"AccelConfig.clk_mhz must be in [1, 250], not {self.clk_mhz!r}")

    @property
    def n_lanes(self) -> int:
        return self.data_lanes + self.bias_lanes

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "AccelConfig":
        d = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown AccelConfig keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)
