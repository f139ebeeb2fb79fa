"""The runtime's ``rtl`` backend: the convolution engine's RTL in cocotb, driven by the
board driver (:class:`msdf_unet.host.engine_driver.EngineDriver`) over AXI4-Lite, with
cocotbext-axi's AXI RAM holding the compiled image."""
