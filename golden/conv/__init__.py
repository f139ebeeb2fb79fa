"""Models of the convolution engine (hdl/conv): functional (model.py) and cycles (cycles.py)."""
