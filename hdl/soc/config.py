"""Generation settings of the accelerator, as a typed dataclass that round-trips to JSON.

Plain Python (no Amaranth): the host driver, the build and the tests all read it.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields

#: Arithmetic variants selectable at generation time (declared in spec/arith.py)
from ...spec.arith import ACCEL_ACT_BITS_MAX, ACCEL_MAX_LANES, VARIANTS, check_act_bits

__all__ = ["AccelConfig", "VARIANTS", "CLK_MHZ_RANGE", "PS7_IO_PLL_MHZ", "ps7_fclk_mhz"]

#: PL clocks the build accepts, in MHz (FCLK_CLK0 of the Zynq-7020)
CLK_MHZ_RANGE = (1.0, 250.0)
#: The PS7's IO PLL on the PYNQ-Z2 (50 MHz crystal x 20); FCLK0 = IO PLL / (d0 * d1).
PS7_IO_PLL_MHZ = 1000.0
_FCLK_DIVISOR_MAX = 63


def ps7_fclk_mhz(requested_mhz: float) -> float:
    """The FCLK frequency (MHz) the PS7 actually produces for ``requested_mhz``: the IO PLL
    divided by the product of two dividers in 1..63 closest to the request."""
    best = min((abs(PS7_IO_PLL_MHZ / (a * b) - requested_mhz), PS7_IO_PLL_MHZ / (a * b))
               for a in range(1, _FCLK_DIVISOR_MAX + 1) for b in range(1, _FCLK_DIVISOR_MAX + 1))
    return best[1]


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


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
        Clock the PL runs at (FCLK_CLK0 on the Zynq), in :data:`CLK_MHZ_RANGE`.

    Raises
    ------
    ValueError
        Naming the setting and the bad value, for a value of the wrong type (a bool, a
        float or a string where an integer belongs, ``null``, a list, ...) or out of range.
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
            least = 0 if name == "bias_lanes" else 1
            if not _is_int(v) or v < least:
                what = "a non-negative integer" if least == 0 else "a positive integer"
                raise ValueError(f"AccelConfig.{name} must be {what}, not {v!r}")
        if self.data_lanes + self.bias_lanes > ACCEL_MAX_LANES:
            raise ValueError(f"data_lanes + bias_lanes must be <= {ACCEL_MAX_LANES}, not "
                             f"{self.data_lanes + self.bias_lanes}")
        if not isinstance(self.signed_acts, bool):
            raise ValueError(f"AccelConfig.signed_acts must be true or false, not {self.signed_acts!r}")
        check_act_bits(self.act_bits, hi=ACCEL_ACT_BITS_MAX, name="AccelConfig.act_bits")
        if not isinstance(self.variant, str) or self.variant not in VARIANTS:
            raise ValueError(f"AccelConfig.variant must be one of {VARIANTS}, not {self.variant!r}")
        clk = self.clk_mhz
        lo, hi = CLK_MHZ_RANGE
        if not (_is_int(clk) or isinstance(clk, float)) or not math.isfinite(clk) \
                or not lo <= clk <= hi:
            raise ValueError(f"AccelConfig.clk_mhz must be a number in [{lo:g}, {hi:g}], "
                             f"not {clk!r}")
        object.__setattr__(self, "clk_mhz", float(clk))

    @property
    def n_lanes(self) -> int:
        return self.data_lanes + self.bias_lanes

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "AccelConfig":
        """The config of a JSON object of settings (missing keys take their defaults).

        ValueError for text that is not JSON, JSON that is not an object, unknown keys and
        bad values (see the class)."""
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as e:
            raise ValueError(f"AccelConfig JSON is not valid JSON: {e}") from None
        if not isinstance(d, dict):
            raise ValueError(f"AccelConfig JSON must be an object of settings, not "
                             f"{type(d).__name__} {d!r}"[:200])
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown AccelConfig keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)
