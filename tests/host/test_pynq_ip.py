"""The PYNQ IP driver against a fake ``pynq`` module (no board here)."""
import sys
import threading
import types

import numpy as np
import pytest

from msdf_unet.host import pynq_ip
from msdf_unet.host.mmio import ModelMMIO
from msdf_unet.host.runtime import AcceleratorTimeout, BackendUnavailable
from msdf_unet.hdl.soc.config import AccelConfig


class FakeBuffer(np.ndarray):
    def flush(self):
        self.events.append("flush")

    def invalidate(self):
        self.events.append("invalidate")


@pytest.fixture
def fake_pynq(monkeypatch):
    mod = types.ModuleType("pynq")
    registry = {}

    class RegisterIP(type):
        def __init__(cls, name, bases, attrs):
            for vlnv in attrs.get("bindto", ()):
                registry[vlnv] = cls
            super().__init__(name, bases, attrs)

    class DefaultIP(metaclass=RegisterIP):
        def __init__(self, description):
            self.description = description
            self.mmio = description["mmio"]

        def read(self, offset=0):
            return self.mmio.read(offset)

        def write(self, offset, value):
            self.mmio.write(offset, value)

    def allocate(shape, dtype):
        buf = np.zeros(shape, dtype).view(FakeBuffer)
        buf.events = []
        return buf

    mod.DefaultIP, mod.allocate, mod.registry = DefaultIP, allocate, registry
    monkeypatch.setitem(sys.modules, "pynq", mod)
    monkeypatch.setattr(pynq_ip, "_CLASS", None)
    return mod


def test_vlnv_is_the_one_the_block_design_produces():
    from msdf_unet.hdl.soc.vivado import ACCEL_VLNV
    assert pynq_ip.ACCEL_VLNV == ACCEL_VLNV


def test_class_registers_with_pynq_for_the_accelerator_vlnv(fake_pynq):
    cls = pynq_ip.MsdfAccelIP
    assert fake_pynq.registry[pynq_ip.ACCEL_VLNV] is cls
    assert pynq_ip.MsdfAccelIP is cls  # created once


def test_dot_driver_runs_through_the_ip(fake_pynq):
    from msdf_unet.golden.arith import mma
    config = AccelConfig()
    ip = pynq_ip.MsdfAccelIP({"mmio": ModelMMIO(config)})
    drv = ip.dot_driver()
    x, w = list(range(drv.data_lanes)), [3 - i for i in range(drv.data_lanes)]
    assert drv.dot(x, w, 5).value == sum(a * b for a, b in zip(x, w)) + 5


def test_buffers_are_flushed_and_invalidated(fake_pynq):
    buf = pynq_ip.allocate((16,), np.int8)
    pynq_ip.to_device(buf)
    pynq_ip.from_device(buf)
    assert buf.events == ["flush", "invalidate"] and buf.dtype == np.int8


def test_wait_times_out_and_refuses_bad_timeouts(fake_pynq):
    ip = pynq_ip.MsdfAccelIP({"mmio": ModelMMIO(AccelConfig())})
    with pytest.raises(AcceleratorTimeout, match="within 0.01 s"):
        ip.wait_done(lambda: False, timeout_s=0.01)
    for bad in (float("nan"), float("inf"), 0, -1, "soon", True):
        with pytest.raises(ValueError, match="timeout"):
            ip.wait_done(lambda: True, timeout_s=bad)
    ip.wait_done(lambda: True, timeout_s=1)


def test_wait_uses_the_interrupt_when_pynq_found_one(fake_pynq):
    ip = pynq_ip.MsdfAccelIP({"mmio": ModelMMIO(AccelConfig())})
    state = {"done": False}

    class Irq:
        async def wait(self):
            state["done"] = True

    ip.irq = Irq()
    ip.wait_done(lambda: state["done"], timeout_s=1)
    assert state["done"]


def test_register_accesses_hold_the_lock(fake_pynq):
    ip = pynq_ip.MsdfAccelIP({"mmio": ModelMMIO(AccelConfig())})
    assert isinstance(ip.lock, type(threading.Lock()))
    drv = ip.dot_driver()
    errors = []

    def worker():
        try:
            for _ in range(5):
                drv._read("STATUS")
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=worker) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


class FakeDDR:
    """Physical memory of the fake board: pynq.allocate buffers the engine model reaches."""

    def __init__(self):
        self.buffers, self.next = {}, 0x1800_0000

    def allocate(self, shape, dtype):
        raw = bytearray(int(np.prod(shape)) * np.dtype(dtype).itemsize)
        buf = np.frombuffer(raw, dtype).reshape(shape).view(FakeBuffer)
        buf.events, buf.physical_address = [], self.next
        self.buffers[self.next] = raw
        self.next += 1 << 20
        return buf

    @property
    def base(self):  # the engine model executes in the newest buffer
        return max(self.buffers)

    @property
    def buf(self):
        return self.buffers[self.base]


@pytest.fixture
def fake_board(fake_pynq, tmp_path):
    """A fake PYNQ board whose overlay holds the convolution engine (the engine model)."""
    from msdf_unet.host.engine_model import ModelEngine
    from msdf_unet.spec.engine import EngineConfig
    ddr = FakeDDR()
    fake_pynq.allocate = ddr.allocate
    engine = ModelEngine(EngineConfig(), ddr)

    class Overlay:
        def __init__(self, path):
            self.path = path
            pynq_ip.MsdfAccelIP  # what importing the driver does before Overlay() on the board
            self.msdf_accel_0 = fake_pynq.registry[pynq_ip.ACCEL_VLNV]({"mmio": engine})

    fake_pynq.Overlay = Overlay
    bit = tmp_path / "msdf_accel.bit"
    bit.write_bytes(b"bit")
    bit.with_suffix(".hwh").write_text("<hwh/>")
    _overlay_files(tmp_path, EngineConfig())
    return bit, engine


def _overlay_files(folder, config):
    """What `make bitstream` puts beside the .bit for the engine top."""
    from msdf_unet.hdl.conv.regs import engine_map
    (folder / pynq_ip.REGMAP_FILE).write_text(engine_map().to_json())
    (folder / pynq_ip.ENGINE_CONFIG_FILE).write_text(config.to_json())


def test_engine_driver_runs_through_the_ip_with_flush_and_invalidate(fake_board):
    from msdf_unet.golden.conv.programs import random_program
    from msdf_unet.host.compiler import compile_program, read_tensor, write_input
    from msdf_unet.spec.engine import EngineConfig
    bit, engine = fake_board
    prog = random_program(0, hw=(8, 8))
    image = compile_program(prog, EngineConfig(), policy="end")
    ip = sys.modules["pynq"].Overlay(str(bit)).msdf_accel_0
    drv = ip.engine_driver(image.mem_size)
    write_input(image, np.ones(prog.tensors[prog.input].shape, np.int8))
    drv.run(image, timeout_s=5)
    assert drv.memory.buf.events == ["flush", "invalidate"] and engine.runs == 1
    assert read_tensor(image, image.output).shape[1:] == (8, 8)


def test_pynq_backend_labels_equal_int8(fake_board, tmp_path, monkeypatch):
    from msdf_unet.golden.data import load_dataset
    from msdf_unet.host import api
    bit, engine = fake_board
    monkeypatch.setenv("MSDF_UNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(api, "_MODELS", {})
    img = load_dataset("mri", "test").images[5, 0, 32:64, 24:56]  # 32 x 32 keeps the model fast
    sw = api.segment(img, "mri_edge", "int8", progress=False)
    hw = api.segment(img, "mri_edge", "pynq", overlay=bit, progress=False)
    np.testing.assert_array_equal(hw.labels, sw.labels)
    assert engine.runs == 1 and hw.cycles is not None and "CYCLES register" in hw.cycle_model


def test_pynq_backend_without_an_overlay_says_so(fake_pynq, tmp_path):
    from msdf_unet.host import api
    with pytest.raises(BackendUnavailable, match="needs the overlay"):
        api.segment(np.ones((32, 32), np.float32), "mri_edge", "pynq", overlay=tmp_path / "x.bit")


def test_without_pynq_the_message_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynq", None)
    monkeypatch.setattr(pynq_ip, "_CLASS", None)
    with pytest.raises(BackendUnavailable, match="PYNQ board"):
        pynq_ip.MsdfAccelIP


def test_overlay_of_another_top_or_map_is_refused(fake_board, tmp_path):
    from msdf_unet.host import api
    from msdf_unet.host.runtime import ConfigMismatch
    bit, _ = fake_board
    img = np.ones((32, 32), np.float32)
    (tmp_path / pynq_ip.REGMAP_FILE).write_text('{"name": "msdf_accel", "registers": []}')
    with pytest.raises(ConfigMismatch, match="not the register map of this runtime's engine"):
        api.segment(img, "mri_edge", "pynq", overlay=bit, progress=False)
    (tmp_path / pynq_ip.ENGINE_CONFIG_FILE).unlink()
    with pytest.raises(ConfigMismatch, match="no engine_config.json: it was not built with the convolution engine"):
        api.segment(img, "mri_edge", "pynq", overlay=bit, progress=False)


def test_overlay_config_that_is_not_the_bitstream_s_is_refused(fake_board, tmp_path):
    from msdf_unet.host import api
    from msdf_unet.host.runtime import ConfigMismatch
    from msdf_unet.spec.engine import BOARD_CONFIG
    bit, engine = fake_board
    _overlay_files(tmp_path, BOARD_CONFIG)        # the fake bitstream runs EngineConfig()
    with pytest.raises(ConfigMismatch, match="mixes two builds"):
        api.segment(np.ones((32, 32), np.float32), "mri_edge", "pynq", overlay=bit, progress=False)
    assert engine.runs == 0


def test_shipped_image_is_used_instead_of_compiling(fake_board, tmp_path, monkeypatch):
    from msdf_unet.golden.data import load_dataset
    from msdf_unet.host import api, compiler
    from msdf_unet.spec.engine import EngineConfig
    bit, engine = fake_board
    monkeypatch.setenv("MSDF_UNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(api, "_MODELS", {})
    model = api.load_model("mri_edge")
    paths = pynq_ip.ship_programs({"mri_edge": model.program}, EngineConfig(), tmp_path)
    names = [p.name for p in paths]
    h, w = model.program.tensors[model.program.input].shape[1:]
    assert names[0] == "mri_edge.msdfp" and names[1].endswith(f".{h}x{w}.end.msdfi")
    assert api.load_model(str(tmp_path / "mri_edge.msdfp")).program.meta["model"] == "mri_edge"
    img = load_dataset("mri", "test").images[5, 0]
    assert img.shape == (h, w)
    sw = api.segment(img, model, "int8", progress=False)

    def no_compile(*a, **k):
        raise AssertionError("compiled on the board although the overlay ships the image")
    monkeypatch.setattr(compiler, "compile_program", no_compile)
    hw = api.segment(img, model, "pynq", overlay=bit, progress=False)
    np.testing.assert_array_equal(hw.labels, sw.labels)
    assert engine.runs == 1
    # the image under that name is refused for another engine configuration
    from msdf_unet.host.compiler import ImageFormatError
    from msdf_unet.spec.engine import BOARD_CONFIG
    assert BOARD_CONFIG.digest != EngineConfig().digest
    with pytest.raises(ImageFormatError, match="recompile the program"):
        pynq_ip.find_image(tmp_path, model.program, BOARD_CONFIG, (h, w))
    assert pynq_ip.find_image(tmp_path, model.program, EngineConfig(), (h // 2, w // 2)) is None


def test_engine_driver_enables_the_interrupt_when_pynq_found_one(fake_board):
    bit, engine = fake_board
    ip = sys.modules["pynq"].Overlay(str(bit)).msdf_accel_0
    assert ip.engine_driver(1 << 16).use_irq is False
    ip.irq = object()
    assert ip.engine_driver(1 << 16).use_irq is True
