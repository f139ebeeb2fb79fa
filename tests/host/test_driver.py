"""Host driver on the software backend: results equal exact arithmetic / golden; bad input
and a wrong accelerator give clear errors."""
import random

import pytest

from msdf_unet.golden.arith import mma as golden
from msdf_unet.hdl.soc.config import AccelConfig
from msdf_unet.host.driver import DotProductDriver, DriverError
from msdf_unet.host.mmio import BusError, ModelMMIO


@pytest.fixture
def driver():
    return DotProductDriver(ModelMMIO(AccelConfig()))


def test_full_precision_is_the_exact_dot_product(driver):
    rng = random.Random(5)
    for _ in range(200):
        x = [rng.randint(-128, 127) for _ in range(9)]
        w = [rng.randint(-127, 127) for _ in range(9)]
        b = rng.randint(-16255, 16255)
        r = driver.dot(x, w, b)
        assert r.value == sum(a * c for a, c in zip(x, w)) + b
        assert r.digits_used == driver.digits_total and not r.terminated


def test_relu_end_stops_exactly_on_negative_results(driver):
    rng = random.Random(6)
    for _ in range(200):
        x = [rng.randint(-128, 127) for _ in range(9)]
        w = [rng.randint(-127, 127) for _ in range(9)]
        exact = sum(a * c for a, c in zip(x, w))
        r = driver.dot(x, w, policy="relu_end")
        assert r.value == max(exact, 0)
        assert r.terminated == (exact < 0)
        gold = golden.transaction(x + [0, 0], w + [0, 0], "RELU_END")
        assert r.digits_used == gold.digits_used


def test_truncation_stays_within_its_bound(driver):
    rng = random.Random(7)
    T = driver.digits_total
    for _ in range(200):
        x = [rng.randint(-128, 127) for _ in range(9)]
        w = [rng.randint(-127, 127) for _ in range(9)]
        p = rng.randint(1, T)
        exact = sum(a * c for a, c in zip(x, w))
        r = driver.dot(x, w, policy="truncate", digits=p)
        assert abs(exact - r.value) < 2 ** (T - p)


def test_bad_input_is_refused_with_the_value(driver):
    with pytest.raises(ValueError, match="need 9 entries"):
        driver.dot([0] * 8, [0] * 9)
    with pytest.raises(ValueError, match="weight -128"):
        driver.dot([0] * 9, [-128] + [0] * 8)
    with pytest.raises(ValueError, match="activation 128"):
        driver.dot([128] + [0] * 8, [0] * 9)
    with pytest.raises(ValueError, match="bias 40000 does not fit"):
        driver.dot([0] * 9, [0] * 9, bias=40000)
    with pytest.raises(ValueError, match="x must hold integers, not 1.9"):
        driver.dot([1.9] * 9, [0] * 9)
    with pytest.raises(ValueError, match="bias must hold integers, not 3.5"):
        driver.dot([0] * 9, [0] * 9, bias=3.5)
    with pytest.raises(ValueError, match="truncate needs digits"):
        driver.dot([0] * 9, [0] * 9, policy="truncate", digits=True)
    with pytest.raises(ValueError, match="policy must be one of"):
        driver.dot([0] * 9, [0] * 9, policy="fast")
    with pytest.raises(ValueError, match="truncate needs digits"):
        driver.dot([0] * 9, [0] * 9, policy="truncate", digits=0)


def test_wrong_accelerator_is_refused():
    class NotOurs:
        def read(self, offset):
            return 0x12345678

        def write(self, offset, value):
            raise AssertionError("the driver must not write to an unknown device")

    with pytest.raises(DriverError, match="ID reads 0x12345678"):
        DotProductDriver(NotOurs())

    mmio = ModelMMIO(AccelConfig())
    mmio._store[mmio.regmap.address("MAP_DIGEST")] ^= 1
    with pytest.raises(DriverError, match="register map mismatch"):
        DotProductDriver(mmio)


def test_model_bus_errors_like_the_rtl():
    mmio = ModelMMIO(AccelConfig())
    with pytest.raises(BusError, match="read-only"):
        mmio.write(mmio.regmap.address("RESULT"), 1)
    with pytest.raises(BusError, match="outside the register map"):
        mmio.read(4 * mmio.regmap.n_words)
    with pytest.raises(ValueError, match="multiple of 4"):
        mmio.read(2)


def test_timeout_names_the_status():
    class Stuck(ModelMMIO):
        def _start(self):
            self._store[self.regmap.address("STATUS")] = self.regmap["STATUS"].encode(busy=1)

    driver = DotProductDriver(Stuck(AccelConfig()))
    with pytest.raises(DriverError, match="no result within"):
        driver.dot([0] * 9, [0] * 9, timeout_s=0.01)
    with pytest.raises(DriverError, match="busy"):
        driver.dot([0] * 9, [0] * 9)


@pytest.mark.parametrize("kwargs", [{"timeout_s": float("nan")}, {"timeout_s": float("inf")},
                                    {"timeout_s": 0}, {"timeout_s": -1.0}, {"timeout_s": True},
                                    {"timeout_s": "1"}, {"timeout_s": None},
                                    {"poll_s": float("nan")}, {"poll_s": -0.1}, {"poll_s": "0"}])
def test_timeouts_must_be_finite_and_positive(driver, kwargs):
    (name, value), = kwargs.items()
    with pytest.raises(ValueError, match=name) as e:
        driver.dot([0] * 9, [0] * 9, **kwargs)
    assert repr(value) in str(e.value)


def test_digits_of_any_integer_type(driver):
    import numpy as np
    x, w = list(range(-4, 5)), [3] * 9
    want = driver.dot(x, w, policy="truncate", digits=5)
    for p in (np.int64(5), np.uint8(5), np.int32(5)):
        assert driver.dot(x, w, policy="truncate", digits=p) == want
    for bad in (5.0, np.float64(5), "5", True, None, 1.5):
        with pytest.raises(ValueError, match="truncate needs digits"):
            driver.dot(x, w, policy="truncate", digits=bad)


def test_threads_sharing_one_driver_get_their_own_results():
    import threading
    import time

    class Slow(ModelMMIO):
        """Yields to other threads on every bus access, as a real bus does."""
        def read(self, offset):
            time.sleep(0)
            return super().read(offset)

        def write(self, offset, value):
            time.sleep(0)
            super().write(offset, value)

    driver = DotProductDriver(Slow(AccelConfig()))
    errors = []

    def work(seed):
        rng = random.Random(seed)
        for _ in range(40):
            x = [rng.randint(-128, 127) for _ in range(9)]
            w = [rng.randint(-127, 127) for _ in range(9)]
            b = rng.randint(-16255, 16255)
            r = driver.dot(x, w, b)
            if r.value != sum(a * c for a, c in zip(x, w)) + b:
                errors.append((seed, x, w, b, r.value))

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, f"{len(errors)} wrong results, first: {errors[0]}"
