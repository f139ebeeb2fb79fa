"""Every shipped program compiles for the board's engine (spec.engine.BOARD_CONFIG) as it
was trained and quantized: no bias clipped, and the board holds exactly the bias lanes the
most demanding shipped program needs (the number is derived here, not pasted)."""
import pytest

from msdf_unet.golden.train import PRETRAINED_TASKS, WEIGHTS_DIR
from msdf_unet.host import bench_frame
from msdf_unet.host.compiler import compile_program
from msdf_unet.spec import engine as E


def _shipped():
    """{task: Program} of every shipped model (the bench's cache for the presets)."""
    from msdf_unet.golden.evaluate import build_program
    by_preset = {task: preset for preset, task in bench_frame.TASK.items()}
    out = {}
    for task, folder in sorted(PRETRAINED_TASKS.items()):
        if not (WEIGHTS_DIR / folder / "weights.npz").is_file():
            continue
        out[task] = bench_frame._program(by_preset[task]) if task in by_preset else build_program(task)
    return out


@pytest.fixture(scope="module")
def shipped():
    progs = _shipped()
    if not progs:
        pytest.skip("no shipped weights")
    return progs


def test_board_config_holds_the_bias_lanes_of_every_shipped_program(shipped):
    need = {t: max(l.bias_lanes for l in p.conv_layers()) for t, p in shipped.items()}
    assert E.BOARD_CONFIG.max_bias_lanes == max(need.values()), (
        f"BOARD_CONFIG.max_bias_lanes={E.BOARD_CONFIG.max_bias_lanes}, but the shipped programs "
        f"need {need}: set it to the largest (every PE is lanes + max_bias_lanes wide)")


@pytest.mark.parametrize("policy", ["full", "end"])
def test_every_shipped_program_compiles_unclipped(shipped, policy):
    for task, p in shipped.items():
        assert p.meta.get("bias_saturated", {}) == {}, task     # quantized with every lane
        img = compile_program(p, E.BOARD_CONFIG, policy=policy)
        convs = {l.name: l for l in p.conv_layers()}
        for c in img.commands:
            if c.op == E.Op.CONV:
                assert c.fields["bias_lanes"] == convs[c.layer].bias_lanes, (task, c.layer)
