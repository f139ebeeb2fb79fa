"""The PYNQ-Z2 board, derived from amaranth-boards' Arty Z7-20.

Both boards carry the same xc7z020clg400-1 and share the 125 MHz clock, LED, RGB LED,
switch, button, HDMI, Pmod and Arduino-header pins. The PYNQ-Z2 has an ADAU1761 audio
codec instead of the Arty's PWM audio and no ATSHA204A, so those resources are removed.

The accelerator itself does not use board pins: it is clocked by the PS (FCLK_CLK0) and
reached over M_AXI_GP0 (see :mod:`.vivado`). The platform supplies the part and is there
for designs that want the LEDs or buttons.
"""
from amaranth_boards.arty_z7 import ArtyZ720Platform

__all__ = ["PYNQZ2Platform"]


class PYNQZ2Platform(ArtyZ720Platform):
    resources = [r for r in ArtyZ720Platform.resources if r.name not in ("audio", "crypto_sda")]

    @property
    def part(self) -> str:
        """Vivado part name, e.g. ``xc7z020clg400-1``."""
        return f"{self.device}{self.package}-{self.speed}"
