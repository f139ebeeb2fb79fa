"""Host driver of the accelerator: the same code on the board, in simulation and in software.

:class:`DotProductDriver` runs dot products on the accelerator's skeleton top
(:class:`msdf_unet.hdl.soc.accel.DotProductAccelerator`) through any backend of
:mod:`.mmio`. Register addresses and fields come from the register map declared in
``hdl/soc/regs.py``; nothing here types an offset.
"""
from __future__ import annotations

import math
import numbers
import operator
import threading
import time
from dataclasses import dataclass

from ..golden.arith import mma as golden_mma
from ..hdl.bus.regmap import RegisterMap
from ..hdl.soc.regs import ID_MAGIC, accelerator_map
from ..spec.arith import Policy

__all__ = ["DotProductDriver", "DotResult", "DriverError", "POLICIES", "Policy"]

#: policy names accepted by :meth:`DotProductDriver.dot` -> CTRL.policy codes
POLICIES = {p.name.lower(): int(p) for p in Policy}


def _integers(values, name: str) -> list[int]:
    """``values`` as Python ints; ValueError for anything that is not an integer (a float
    such as 1.9 is refused, never truncated)."""
    out = []
    for v in values:
        if isinstance(v, bool):
            raise ValueError(f"{name} must hold integers, not {v!r}")
        try:
            out.append(operator.index(v))
        except TypeError:
            raise ValueError(f"{name} must hold integers, not {v!r}") from None
    return out


def _seconds(value, name: str, *, zero_ok: bool) -> float:
    """``value`` as a finite float > 0 (>= 0 when ``zero_ok``); ValueError otherwise."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and math.isfinite(value) and (value >= 0 if zero_ok else value > 0)
    if not ok:
        raise ValueError(f"{name} must be a finite number of seconds "
                         f"{'>= 0' if zero_ok else '> 0'}, not {value!r}")
    return float(value)


class DriverError(RuntimeError):
    """The accelerator is not the one this driver expects, or it did not answer in time."""


@dataclass(frozen=True)
class DotResult:
    value: int          #: result as the policy defines it
    digits_used: int    #: digit cycles the transaction used
    terminated: bool    #: the policy stopped before the last digit
    cycles: int         #: clock cycles from START to done (hardware counter)


class DotProductDriver:
    """Runs ``sum(x[i] * w[i]) + bias`` on the accelerator.

    Parameters
    ----------
    mmio : an object with ``read(offset)`` / ``write(offset, value)`` (see :mod:`.mmio`)

    On construction the driver reads ``ID``, ``CONFIG`` and ``MAP_DIGEST`` and refuses an
    accelerator whose register map differs from the one it was built with
    (:class:`DriverError` naming both digests).

    Threads may share one driver: each :meth:`dot` holds a lock from its first register
    write to its last read, so transactions never interleave on the bus.
    """

    def __init__(self, mmio):
        self.mmio = mmio
        self._lock = threading.Lock()
        boot = accelerator_map(n_lanes=1)  # ID and CONFIG sit at the same place in every map
        magic = boot["ID"].decode(mmio.read(boot.address("ID")))["magic"]
        if magic != ID_MAGIC:
            raise DriverError(f"no msdf-unet accelerator: ID reads {magic:#010x}, "
                              f"expected {ID_MAGIC:#010x}")
        cfg = boot["CONFIG"].decode(mmio.read(boot.address("CONFIG")))
        self.n_lanes = cfg["n_lanes"]
        self.bias_lanes = cfg["bias_lanes"]
        self.act_bits = cfg["act_bits"]
        self.signed_acts = bool(cfg["signed_acts"])
        self.digits_total = cfg["digits_total"]
        self.regmap: RegisterMap = accelerator_map(n_lanes=self.n_lanes, act_bits=self.act_bits,
                                                   signed_acts=self.signed_acts)
        digest = mmio.read(self.regmap.address("MAP_DIGEST"))
        if digest != self.regmap.digest32:
            raise DriverError(f"register map mismatch: hardware digest {digest:#010x}, "
                              f"driver expects {self.regmap.digest32:#010x} "
                              f"(rebuild the bitstream or update msdf-unet)")

    @property
    def data_lanes(self) -> int:
        return self.n_lanes - self.bias_lanes

    def _write(self, name, index=0, **fields):
        self.mmio.write(self.regmap.address(name, index), self.regmap[name].encode(**fields))

    def _read(self, name, index=0) -> dict[str, int]:
        return self.regmap[name].decode(self.mmio.read(self.regmap.address(name, index)))

    def dot(self, x, w, bias: int = 0, *, policy: str = "full", digits: int | None = None,
            timeout_s: float = 1.0, poll_s: float = 0.0) -> DotResult:
        """One dot product; blocks until done or ``timeout_s`` (DriverError).

        ``x`` and ``w`` have ``data_lanes`` entries; ``bias`` is folded into the bias lanes
        as exact pseudo-products. ``policy`` is one of :data:`POLICIES`; ``digits`` is the
        digit budget for ``"truncate"`` (1..digits_total), any integer type. ``timeout_s``
        must be finite and > 0, ``poll_s`` finite and >= 0 (ValueError otherwise).
        """
        timeout_s = _seconds(timeout_s, "timeout_s", zero_ok=False)
        poll_s = _seconds(poll_s, "poll_s", zero_ok=True)
        x, w = _integers(x, "x"), _integers(w, "w")
        bias = _integers([bias], "bias")[0]
        if len(x) != self.data_lanes or len(w) != self.data_lanes:
            raise ValueError(f"x and w need {self.data_lanes} entries each, "
                             f"got {len(x)} and {len(w)}")
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {sorted(POLICIES)}, not {policy!r}")
        if policy == "truncate":
            try:
                budget = _integers([digits], "digits")[0]
            except ValueError:
                budget = 0
            if not 1 <= budget <= self.digits_total:
                raise ValueError(f"truncate needs digits in [1, {self.digits_total}], not {digits!r}")
            digits = budget
        elif digits is not None:
            raise ValueError(f"digits is only for policy 'truncate', not {policy!r}")
        bw, bx = golden_mma.fold_bias(bias, self.bias_lanes, act_bits=self.act_bits,
                                      signed_acts=self.signed_acts)
        lanes_w, lanes_x = w + list(bw), x + list(bx)
        golden_mma.check_weights(lanes_w)
        golden_mma.check_acts(lanes_x, self.act_bits, self.signed_acts)
        with self._lock:   # one transaction on the bus at a time
            if self._read("STATUS")["busy"]:
                raise DriverError("accelerator is busy with an earlier transaction")
            for i, (wi, xi) in enumerate(zip(lanes_w, lanes_x)):
                self._write("W", i, value=wi)
                self._write("X", i, value=xi)
            self._write("CTRL", policy=POLICIES[policy], digits=digits or 0, irq_en=0)
            self._write("START", go=1)
            deadline = time.monotonic() + timeout_s
            while True:
                status = self._read("STATUS")
                if status["done"]:
                    break
                if time.monotonic() > deadline:
                    raise DriverError(f"no result within {timeout_s} s (STATUS {status})")
                if poll_s:
                    time.sleep(poll_s)
            return DotResult(value=self._read("RESULT")["value"],
                             digits_used=self._read("DIGITS")["used"],
                             terminated=bool(status["terminated"]),
                             cycles=self._read("CYCLES")["count"])
