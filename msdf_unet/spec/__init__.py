"""Plain-Python facts declared once (no Amaranth, no torch), imported by golden/, hdl/ and host/."""
