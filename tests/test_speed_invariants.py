"""What the speed work must not break: reproducible training and flat memory.

- The same seed gives the same weights and losses, bit for bit, run after run; and because every
  element of a product is summed by one thread in a fixed order (and the batch rows are drawn before
  the threads copy them), 1 and 2 threads give the same bits too.
- A long training run holds its memory flat: layer buffers and gemm's packing buffers are allocated
  once, and a training step allocates nothing.
No timing here: speed lives in benchmarks/bench.py.
"""
import gc
import os

import numpy as np
import pytest

import pynet
from pynet._native import lib


@pytest.fixture
def threads():
    before = pynet.get_threads()
    yield
    pynet.set_threads(before)


def synthetic(rows=3000, features=60, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, features))
    X[:, -1] = 1.0   # the homework's bias column
    y = np.argmax(X[:, :classes] + 0.5 * rng.standard_normal((rows, classes)), axis=1)
    return pynet.make_data(X, y, classes)


NETS = {
    "softmax": [("SOFTMAX", None)],
    "logistic": [("LOGISTIC", 32), ("SOFTMAX", None)],
    "relu": [("RELU", 64), ("RELU", 32), ("SOFTMAX", None)],
    "wide": [("LRELU", 300), ("TANH", 200), ("SOFTMAX", None)],
}


def make_net(name, inputs, classes, seed):
    pynet.set_seed(seed)
    layers, width = [], inputs
    for act, out in NETS[name]:
        out = out or classes
        layers.append(pynet.make_layer(width, out, act))
        width = out
    return pynet.make_model(layers)


def train_run(name, threads, seed=42, iters=60, batch=128):
    d = synthetic(features=300 if name == "wide" else 60)
    pynet.set_threads(threads)
    m = make_net(name, d.X.cols, d.y.cols, seed)
    losses = pynet.train_model(m, d, batch, iters, 0.01, 0.9, 0.0005, progress=False)
    return losses, [l.w.data.copy() for l in m.layers], pynet.accuracy_model(m, d)


@pytest.mark.parametrize("name", sorted(NETS))
def test_training_is_reproducible_and_independent_of_thread_count(threads, name):
    a = train_run(name, threads=2)
    b = train_run(name, threads=2)
    c = train_run(name, threads=1)
    for other in (b, c):
        np.testing.assert_array_equal(a[0], other[0])
        for wa, wo in zip(a[1], other[1]):
            np.testing.assert_array_equal(wa, wo)
        assert a[2] == other[2]
    assert np.all(np.isfinite(a[0]))


@pytest.fixture
def adaptive():
    before = pynet.set_adaptive_threads(True)
    yield
    pynet.set_adaptive_threads(before)


def fit_run(threads, adapt, steps=120, seed=7):
    """fit with Adam over `steps` steps of batch 32: long enough for the loop's first blocks on two
    threads and on one (csrc/train.c runs 8-step blocks on each before it settles)."""
    d = synthetic(rows=steps * 32, features=60)
    pynet.set_threads(threads)
    pynet.set_adaptive_threads(adapt)
    m = make_net("relu", d.X.cols, d.y.cols, seed)
    h = pynet.fit(m, d, epochs=1, batch=32, optimizer="adam", rate=1e-3, progress=False)
    return h.losses, [l.w.data.copy() for l in m.layers], pynet.training_threads()


def test_adaptive_threads_measure_both_counts_and_change_no_bit(threads, adaptive):
    """With adaptive threads (the default) the loop runs blocks of steps on two threads and on one and
    times both; the weights and losses are those of a fixed one-thread and a fixed two-thread run, to
    the bit. Pinned (set_adaptive_threads(False)), it measures nothing and runs every step on two."""
    adapt = fit_run(2, True)
    pinned = fit_run(2, False)
    one = fit_run(1, True)
    assert adapt[2]["one"] > 0 and adapt[2]["all"] > 0
    assert pinned[2] == {"one": None, "all": None, "last": 2}
    assert one[2] == {"one": None, "all": None, "last": 1}   # nothing to choose between
    for other in (pinned, one):
        np.testing.assert_array_equal(adapt[0], other[0])
        for wa, wo in zip(adapt[1], other[1]):
            np.testing.assert_array_equal(wa, wo)


def test_set_adaptive_threads_takes_a_bool_and_returns_the_previous(adaptive):
    assert pynet.set_adaptive_threads(False) is True
    assert pynet.set_adaptive_threads(True) is False
    with pytest.raises(TypeError, match="set_adaptive_threads: on must be True or False, got 'no'"):
        pynet.set_adaptive_threads("no")


@pytest.mark.parametrize("simd", ["avx2", "portable"])
def test_every_kernel_trains_the_same_model_to_rounding(threads, simd):
    """The SIMD paths differ only in rounding (fused multiply-adds, exp to 1 ulp), so a short run
    stays within a tiny distance of the default path's."""
    if lib.pn_set_simd(simd.encode()):
        lib.pn_clear_error()
        pytest.skip("%s kernel not available here" % simd)
    try:
        other = train_run("logistic", threads=2, iters=20)
    finally:
        lib.pn_set_simd(b"auto")
    base = train_run("logistic", threads=2, iters=20)
    np.testing.assert_allclose(other[0], base[0], rtol=1e-9)
    for wo, wb in zip(other[1], base[1]):
        np.testing.assert_allclose(wo, wb, rtol=1e-9, atol=1e-12)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
@pytest.mark.parametrize("threads_used,steps", [(1, 10000), (2, 2000)])
def test_training_steps_hold_memory_flat(threads, threads_used, steps):
    """10,000 training steps through train_model (in chunks, as pynet.train_model runs them) after
    a warm-up: resident memory may not grow by more than noise (1 MB). The two-thread run is
    shorter (it only adds the second thread's gemm buffer, a one-off the warm-up covers) because
    two threads on a loaded two-core machine wait on each other."""
    pynet.set_threads(threads_used)
    d = synthetic(rows=5000, features=100)
    m = make_net("relu", d.X.cols, d.y.cols, seed=1)
    pynet.train_model(m, d, 128, 200, 0.01, 0.9, 0.0005, progress=False)   # warm-up: buffers, threads
    pynet.accuracy_model(m, d)
    gc.collect()
    before = rss_bytes()
    for _ in range(10):
        pynet.train_model(m, d, 128, steps // 10, 0.01, 0.9, 0.0005, progress=False)
        pynet.accuracy_model(m, d)
    gc.collect()
    grown = rss_bytes() - before
    assert grown < 1 << 20, "resident memory grew by %.1f MB over %d steps" % (grown / 2 ** 20, steps)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
def test_python_level_training_loop_holds_memory_flat(threads):
    """The homework's loop written in Python (random_batch, forward, backward, update) for 3,000
    steps: the batches it allocates are freed, the layers' buffers are reused."""
    pynet.set_threads(2)
    d = synthetic(rows=2000, features=50)
    m = make_net("logistic", d.X.cols, d.y.cols, seed=2)

    def steps(n):
        for _ in range(n):
            b = pynet.random_batch(d, 64)
            p = pynet.forward_model(m, b.X)
            pynet.backward_model(m, b.y.data - p.data)
            pynet.update_model(m, 0.01 / 64, 0.9, 0.0005)

    steps(200)
    gc.collect()
    before = rss_bytes()
    steps(3000)
    gc.collect()
    grown = rss_bytes() - before
    assert grown < 1 << 20, "resident memory grew by %.1f MB over 3,000 steps" % (grown / 2 ** 20)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)")
def test_short_lived_threads_do_not_leak_packing_buffers(threads):
    """gemm keeps a packing buffer (about 2.4 MB) per thread; a thread's buffer is freed when the
    thread ends, so running products on 40 short-lived threads in turn leaves no more buffers alive
    than before. Counted by the C core (pn_packing_buffers), not guessed from the process's RSS,
    whose growth depends on the allocator (the old RSS version of this test failed 1 run in 9)."""
    import threading
    import time
    pynet.set_threads(2)
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((64, 256)), rng.standard_normal((256, 2048))   # each thread packs 2 MB of b
    expected = pynet.matrix_mult_matrix(a, b).data.copy()

    seen = []

    def work():
        np.testing.assert_array_equal(pynet.matrix_mult_matrix(a, b).data, expected)
        seen.append(lib.pn_packing_buffers())   # this thread's buffer is alive while it runs

    def settled(limit):
        # OpenMP's helper threads of a finished thread exit on their own, a moment after it
        deadline = time.monotonic() + 10
        while lib.pn_packing_buffers() > limit and time.monotonic() < deadline:
            time.sleep(0.01)
        return lib.pn_packing_buffers()

    before = lib.pn_packing_buffers()
    assert before >= 1   # this thread has run gemm above and keeps its buffer
    for _ in range(40):
        t = threading.Thread(target=work)
        t.start()
        t.join()
        assert settled(before) <= before, "a finished thread's packing buffer is still alive"
    assert len(seen) == 40 and min(seen) > before   # the count does see each thread's buffer
    left = settled(before)
    assert left <= before, "40 short-lived threads left %d packing buffers behind" % (left - before)
