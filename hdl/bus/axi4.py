"""AXI4 (full): the bus signature and the burst rules of the engine's memory master.

Port names follow the AXI4 specification (``araddr``, ``arlen``, ...); a component member
``m_axi`` of this signature flattens to ``m_axi__araddr`` etc. in Verilog, which
cocotbext-axi binds with ``AxiBus.from_prefix(dut, "m_axi_")``.

The burst rules are those of the Zynq-7000 S_AXI_HP ports (UG585, ch. 5): INCR bursts of
at most 16 beats that never cross a 4 KiB boundary.
"""
from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AXI4Signature", "MAX_BURST_BEATS", "BOUNDARY_BYTES", "BURST_INCR",
           "RESP_OKAY", "RESP_EXOKAY", "RESP_SLVERR", "RESP_DECERR", "burst_split"]

#: longest burst the S_AXI_HP ports accept (AXI3 on the PS side: AxLEN is 4 bits)
MAX_BURST_BEATS = 16
#: no burst may cross an address that is a multiple of this (AXI rule)
BOUNDARY_BYTES = 4096
BURST_INCR = 0b01
RESP_OKAY, RESP_EXOKAY, RESP_SLVERR, RESP_DECERR = 0b00, 0b01, 0b10, 0b11


def burst_split(addr: int, beats: int, *, beat_bytes: int = 8) -> list[tuple[int, int]]:
    """``(address, beats)`` of the bursts a transfer of ``beats`` beats from ``addr`` is cut
    into: greedy, each as long as the 16-beat and 4 KiB rules allow (what
    :class:`~msdf_unet.hdl.bus.axi_master.AXI4Master` issues)."""
    if addr % beat_bytes or addr < 0:
        raise ValueError(f"addr must be a non-negative multiple of {beat_bytes}, not {addr!r}")
    if beats < 1:
        raise ValueError(f"beats must be >= 1, not {beats!r}")
    out = []
    while beats:
        to_boundary = (BOUNDARY_BYTES - addr % BOUNDARY_BYTES) // beat_bytes
        n = min(MAX_BURST_BEATS, beats, to_boundary)
        out.append((addr, n))
        addr += n * beat_bytes
        beats -= n
    return out


class AXI4Signature(wiring.Signature):
    """AXI4 with INCR bursts, seen from the master (flip it for a slave).

    Parameters
    ----------
    addr_width : int in [12, 64]
        Byte address bits (32 for S_AXI_HP).
    data_width : int, 32 / 64 / 128
        Data bits (64 for S_AXI_HP).
    id_width : int in [1, 16]
        ID bits (6 on S_AXI_HP); the master uses ID 0 only, so responses come in order.
    """

    def __init__(self, *, addr_width: int = 32, data_width: int = 64, id_width: int = 6):
        if not isinstance(addr_width, int) or not 12 <= addr_width <= 64:
            raise ValueError(f"addr_width must be an integer in [12, 64], not {addr_width!r}")
        if data_width not in (32, 64, 128):
            raise ValueError(f"data_width must be 32, 64 or 128, not {data_width!r}")
        if not isinstance(id_width, int) or not 1 <= id_width <= 16:
            raise ValueError(f"id_width must be an integer in [1, 16], not {id_width!r}")
        self.addr_width, self.data_width, self.id_width = addr_width, data_width, id_width
        members = {}
        for ch in ("aw", "ar"):
            members.update({
                f"{ch}id": Out(id_width), f"{ch}addr": Out(addr_width), f"{ch}len": Out(8),
                f"{ch}size": Out(3), f"{ch}burst": Out(2), f"{ch}cache": Out(4),
                f"{ch}prot": Out(3), f"{ch}valid": Out(1), f"{ch}ready": In(1),
            })
        members.update({
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wlast": Out(1),
            "wvalid": Out(1), "wready": In(1),
            "bid": In(id_width), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "rid": In(id_width), "rdata": In(data_width), "rresp": In(2), "rlast": In(1),
            "rvalid": In(1), "rready": Out(1),
        })
        super().__init__(members)
