"""The optimiser's fast loops (csrc/optim_kernels.c): Adam, the clipping norm and its rescale.

Adam is elementwise and the kernels keep the order of operations of optim.c's formula with no fused
multiply-add, so the weights and both moments must equal, bit for bit, NumPy doing the same
operations — over several steps, with and without bias, decay and clipping, for every SIMD level this
CPU runs and for 1 and 2 threads. The clipping norm is a reduction in an order fixed by the data's
size: the same bits for every level and thread count, and within a few ulps of NumPy's sum.
"""
import math

import numpy as np
import pytest

import pynet
from pynet import make_layer, make_model
from pynet._native import lib
from simd_levels import KERNELS



@pytest.fixture(autouse=True)
def restore_settings():
    before = pynet.get_threads()
    yield
    lib.pn_set_simd(b"auto")
    pynet.set_threads(before)


def adam_numpy(w, dw, m, s, t, rate, beta1, beta2, eps, decay, scale):
    """optim.c's Adam, operation for operation (each NumPy op is one IEEE-rounded operation)."""
    c1, c2 = 1 - beta1 ** t, 1 - beta2 ** t
    g = scale * dw
    m = beta1 * m + (1 - beta1) * g
    s = beta2 * s + (1 - beta2) * g * g
    w = w + rate * ((m / c1) / (np.sqrt(s / c2) + eps) - decay * w)
    return w, m, s


def layers_for_test(bias):
    # 301 × 131 = 39,431 weights: above the threshold for threads, not a multiple of a vector or a chunk
    pynet.set_seed(5)
    return [make_layer(301, 131, "relu", bias=bias), make_layer(131, 7, "softmax", bias=bias)]


def run_adam(kernel, threads, bias, decay, clip, steps=4):
    """`steps` Adam steps (optionally after clipping the model's gradients) on fixed random gradients;
    returns the parameters and moments, and the NumPy reference of the same steps."""
    assert lib.pn_set_simd(kernel.encode()) == 0
    pynet.set_threads(threads)
    layers = layers_for_test(bias)
    m = make_model(layers)
    rng = np.random.default_rng(7)
    rate, beta1, beta2, eps, scale = 1e-3, 0.9, 0.999, 1e-8, 1 / 128
    ref = [[l.w.data.copy(), np.zeros_like(l.w.data), np.zeros_like(l.w.data)] for l in m.layers]
    ref_b = [[l.b.data.copy(), np.zeros_like(l.b.data), np.zeros_like(l.b.data)] if bias else None for l in m.layers]
    norms = []
    for t in range(1, steps + 1):
        grads = [(rng.normal(size=l.w.data.shape) * 10.0 ** -t, rng.normal(size=(1, l.w.data.shape[1])))
                 for l in m.layers]
        for l, (dw, db) in zip(m.layers, grads):
            l.dw = dw
            if bias:
                l.db.data[...] = db
        if clip:
            norms.append(lib.clip_gradients(m._c[0], clip, scale))
            total = math.sqrt(sum(np.sum(dw * dw) + (np.sum(db * db) if bias else 0) for dw, db in grads))
            factor = clip / (scale * total) if scale * total > clip else 1.0
            # the rescale is one product per element; use the factor C computed from its own norm
            c_factor = clip / norms[-1] if norms[-1] > clip else 1.0
            assert c_factor == pytest.approx(factor, rel=1e-12)
            grads = [(dw * c_factor, db * c_factor) for dw, db in grads]
            for l, (dw, db) in zip(m.layers, grads):
                np.testing.assert_array_equal(l.dw.data, dw)
                if bias:
                    np.testing.assert_array_equal(l.db.data, db)
        for i, l in enumerate(m.layers):
            assert lib.adam_update_layer(l._ptr, rate, beta1, beta2, eps, decay, t, scale) == 0
            ref[i] = list(adam_numpy(*ref[i][:1], grads[i][0], *ref[i][1:], t, rate, beta1, beta2, eps, decay, scale))
            if bias:
                ref_b[i] = list(adam_numpy(ref_b[i][0], grads[i][1], ref_b[i][1], ref_b[i][2], t, rate, beta1, beta2,
                                           eps, 0.0, scale))
    got = [(l.w.data.copy(), l.v.data.copy(), None if not bias else (l.b.data.copy(), l.vb.data.copy()))
           for l in m.layers]
    return got, ref, ref_b, norms


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bias, decay, clip", [(True, 0.0, 0.0), (False, 0.0, 0.0), (True, 0.01, 0.0),
                                               (True, 0.0, 0.5), (False, 0.01, 0.5)])
def test_adam_equals_numpy_bit_for_bit_for_every_kernel_and_thread_count(kernel, bias, decay, clip):
    results = {}
    for threads in (1, 2):
        got, ref, ref_b, norms = run_adam(kernel, threads, bias, decay, clip)
        for (w, v, b), (rw, rm, _), rb in zip(got, ref, ref_b):
            np.testing.assert_array_equal(w, rw)       # exact: the same operations in the same order
            np.testing.assert_array_equal(v, rm)       # the first moment lives in l->v
            if bias:
                np.testing.assert_array_equal(b[0], rb[0])
                np.testing.assert_array_equal(b[1], rb[1])
        results[threads] = (got, norms)
    assert results[1][1] == results[2][1]   # the clipping norms: the same bits on 1 and 2 threads


def test_clipping_norm_is_the_same_bits_for_every_kernel_and_thread_count_and_close_to_numpy():
    seen = set()
    for kernel in KERNELS:
        for threads in (1, 2):
            assert lib.pn_set_simd(kernel.encode()) == 0
            pynet.set_threads(threads)
            for n_in in (3, 301, 2049):   # below, around and above the threaded size (one layer)
                pynet.set_seed(9)
                m = make_model([make_layer(n_in, 67, "linear", bias=True)])
                rng = np.random.default_rng(n_in)
                dw, db = rng.normal(size=(n_in, 67)), rng.normal(size=(1, 67))
                m.layers[0].dw = dw
                m.layers[0].db.data[...] = db
                norm = lib.clip_gradients(m._c[0], 1e9, 0.5)
                exact = 0.5 * math.sqrt(math.fsum(np.concatenate([dw.ravel(), db.ravel()]) ** 2))
                assert norm == pytest.approx(exact, rel=1e-13)
                seen.add((n_in, norm.hex()))
    assert len(seen) == 3, "the norm differs between kernels or thread counts: %s" % sorted(seen)


@pytest.mark.parametrize("kernel", KERNELS)
def test_adam_through_train_steps_matches_across_thread_counts(kernel):
    """A whole Adam run with bias and clipping on real-sized layers gives the same weights on 1 and 2
    threads (gemm and the optimiser both keep their order whatever the thread count)."""
    from pynet.training import train_config
    from pynet._native import ffi
    rng = np.random.default_rng(3)
    X, labels = rng.random((512, 301)), rng.integers(0, 7, 512)
    Y = np.eye(7)[labels]
    weights = []
    for threads in (1, 2):
        assert lib.pn_set_simd(kernel.encode()) == 0
        pynet.set_threads(threads)
        m = make_model(layers_for_test(True))
        d = pynet.make_data(X, Y)
        pynet.set_seed(11)
        cfg = train_config(batch=64, rate=1e-3, optimizer="adam", clip=0.5)
        losses = np.empty(6)
        assert lib.train_steps(m._c[0], d._c[0], cfg, 0, 6, ffi.NULL, ffi.cast("double *", ffi.from_buffer(losses)),
                               ffi.NULL) == 0
        weights.append([(l.w.data.copy(), l.b.data.copy()) for l in m.layers] + [losses])
    for a, b in zip(*weights):
        if isinstance(a, tuple):
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])
        else:
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("user_env", [{}, {"OMP_WAIT_POLICY": "active"}, {"GOMP_SPINCOUNT": "5"}])
def test_the_wait_policy_reaches_only_pynets_openmp_runtime(user_env):
    """pynet loads its OpenMP runtime with a short spin before sleeping (OMP_WAIT_POLICY=PASSIVE,
    GOMP_SPINCOUNT=10000) unless the user set either variable, which is then left alone; the
    runtime's own report (OMP_DISPLAY_ENV) shows what it read. Both variables are taken back
    afterwards, so no other library or child process inherits them."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(user_env, OMP_DISPLAY_ENV="verbose")
    code = ("import os, pynet; "
            "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))")
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert run.stdout.split() == [user_env.get("OMP_WAIT_POLICY", "None"), user_env.get("GOMP_SPINCOUNT", "None")]
    seen = dict(line.strip().replace("'", "").split(" = ") for line in run.stderr.splitlines() if " = " in line)
    if not seen:
        pytest.skip("this OpenMP runtime does not honour OMP_DISPLAY_ENV")
    if not user_env:
        assert (seen["OMP_WAIT_POLICY"], seen["GOMP_SPINCOUNT"]) == ("PASSIVE", "10000")
    elif "OMP_WAIT_POLICY" in user_env:
        assert seen["OMP_WAIT_POLICY"] == "ACTIVE" and seen["GOMP_SPINCOUNT"] != "10000"
    else:
        assert seen["GOMP_SPINCOUNT"] == "5"
