# msdf-unet — every entry point. `make demo` sets everything up first; `make test` runs the suite.
# The Python environment lives in .venv (created by `make setup`); apt packages are installed
# when missing (Icarus Verilog, Tcl), as root or through sudo.

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
CLI    := $(VENV)/bin/msdf-unet
STAMP  := $(VENV)/.installed
JOBS   ?= 2
PYTEST_ARGS ?=

.PHONY: setup demo test test-all verilog synth-report bitstream bench train eval clean help

help:
	@echo "make demo          set up (once) and run the demo on the bundled MRI slice"
	@echo "make test          the default test suite (2 to 8 minutes on 2 cores)"
	@echo "make test-all      every test, long simulations included"
	@echo "make verilog       board top (the convolution engine, BOARD_CONFIG) + register map under build/verilog/"
	@echo "make synth-report  Yosys xc7 utilization + timing estimate of the board top -> build/reports/utilization.json"
	@echo "                   (the engine: ~20-30 min the first time, then cached by the Verilog's hash)"
	@echo "make bitstream     Vivado tree + overlay files under build/vivado/ (runs Vivado when installed)"
	@echo "make bench         arithmetic (N = 9, 144) and golden-model benchmarks"
	@echo "make train         retrain the MRI edge U-Net into build/train/mri_edge"
	@echo "make eval          Dice/IoU of float, INT8 and MSDF policies -> build/eval/"
	@echo "make clean         remove build/"

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py .ci/setup.sh
	bash .ci/setup.sh "$(PYTHON)" "$(VENV)"
	@touch $(STAMP)

demo: setup
	$(CLI) demo

test: setup
	$(PY) -m pytest -n $(JOBS) $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -n $(JOBS) -m "not vivado and not board" $(PYTEST_ARGS)

verilog: setup
	$(CLI) verilog --out build/verilog

synth-report: setup
	$(CLI) synth-report --out build/reports/utilization.json

bitstream: setup
	$(CLI) bitstream --out build/vivado

bench: setup
	$(CLI) bench arith --n 9 144
	$(CLI) bench golden

train: setup
	$(CLI) train --dataset mri --preset edge --out build/train/mri_edge

eval: setup
	$(CLI) eval

clean:
	rm -rf build
