"""gemm's float32 mode (gemm_f32; fit's matmul="float32") against its definition and NumPy.

The definition (csrc/pynet_api.h) is gemm_f32_reference, a plain loop: A and B rounded to float32,
each k block (k cut into equal blocks of at most 256) summed in float32 with fused multiply-adds in
order, C ← alpha·sum + beta·C in double after each block. gemm_f32 must give exactly its bits on
every SIMD kernel the CPU has, for any thread count, over shapes that hit the edges of the tiles
(AVX-512 8 × 32, AVX2 6 × 16, portable 4 × 8 floats), of the k blocks and of the cache blocks.
Independently, NumPy's float64 product of the float32-rounded operands bounds the error: float32
sums of at most kb terms are within about kb·2⁻²⁴·(|A|·|B|) of it.
"""
import numpy as np
import pytest

import pynet
from pynet._native import ffi, lib

from test_gemm import kernel, op, operands, ptr, run_gemm, threads  # noqa: F401  (fixtures and helpers)

U32 = 2.0 ** -24

SHAPES = [
    (0, 0, 0), (0, 5, 3), (5, 0, 3), (5, 3, 0), (1, 1, 1), (1, 33, 1), (33, 1, 1), (1, 1, 300),
    (2, 3, 4), (6, 16, 5), (7, 17, 13), (8, 32, 3), (9, 33, 11), (5, 15, 6), (12, 48, 7), (13, 10, 33),
    (128, 10, 784), (784, 10, 128), (128, 256, 784), (784, 256, 128), (143, 65, 255), (145, 66, 257),
    (100, 70, 513), (3, 5, 2000), (300, 1030, 40),
]


def run(fn, ta, tb, A, B, C, alpha=1.0, beta=0.0):
    run_gemm(ta, tb, A, B, C, alpha, beta, fn=fn)
    return C


def f32(x):
    return x.astype(np.float32).astype(np.float64)


def block(k):
    return -(-k // -(-k // 256)) if k else 0   # the equal k blocks pn_gemm uses


@pytest.mark.parametrize("ta", [0, 1])
@pytest.mark.parametrize("tb", [0, 1])
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_gemm_f32_is_its_definition_bit_for_bit_and_near_numpy(kernel, ta, tb, m, n, k):
    rng = np.random.default_rng(m * 10007 + n * 101 + k + 7 * ta + 13 * tb)
    A, B = operands(rng, ta, tb, m, n, k)
    C = run(lib.gemm_f32, ta, tb, A, B, np.full((m, n), np.nan))   # beta = 0 ignores C, NaN included
    R = run(lib.gemm_f32_reference, ta, tb, A, B, np.full((m, n), np.nan))
    np.testing.assert_array_equal(C, R)
    exact = op(f32(A), ta) @ op(f32(B), tb)
    mag = np.abs(op(f32(A), ta)) @ np.abs(op(f32(B), tb))
    assert np.all(np.abs(C - exact) <= 2 * max(block(k), 1) * U32 * mag + 1e-300)
    if k and m and n:   # and it is float32 arithmetic, not float64's
        loose = np.abs(op(A, ta) @ op(B, tb) - C)
        assert np.all(loose <= 4 * k * U32 * (np.abs(op(A, ta)) @ np.abs(op(B, tb))) + 1e-300)


@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (-0.5, 0.25), (2.0, -1.0), (0.0, 0.5), (0.0, 0.0), (0.75, 1.0)])
@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_alpha_beta_across_k_blocks(kernel, alpha, beta, ta, tb):
    rng = np.random.default_rng(11)
    m, n, k = 37, 45, 600   # three k blocks: beta in the first, the later ones add in double
    A, B = operands(rng, ta, tb, m, n, k)
    C0 = rng.standard_normal((m, n))
    C = run(lib.gemm_f32, ta, tb, A, B, C0.copy(), alpha, beta)
    np.testing.assert_array_equal(C, run(lib.gemm_f32_reference, ta, tb, A, B, C0.copy(), alpha, beta))
    if alpha == 0:
        np.testing.assert_array_equal(C, beta * C0)


@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("m,n,k", [(9, 17, 5), (37, 45, 260), (130, 33, 300)])
def test_strided_operands_and_output_window(kernel, ta, tb, m, n, k):
    rng = np.random.default_rng(17)
    A, B = operands(rng, ta, tb, m, n, k, pad=5)
    buf = np.full((m, n + 7), -3.0)
    C = buf[:, 2:2 + n]
    C[...] = np.nan
    run(lib.gemm_f32, ta, tb, A, B, C)
    np.testing.assert_array_equal(C, run(lib.gemm_f32_reference, ta, tb, A, B, np.empty((m, n))))
    np.testing.assert_array_equal(buf[:, :2], -3.0)
    np.testing.assert_array_equal(buf[:, 2 + n:], -3.0)


def test_same_bits_for_any_thread_count(kernel, threads):
    rng = np.random.default_rng(23)
    for ta, tb, m, n, k in [(0, 0, 128, 256, 784), (1, 0, 784, 256, 128), (0, 1, 128, 784, 256),
                            (0, 0, 300, 1030, 300), (1, 1, 97, 61, 513)]:
        A, B = operands(rng, ta, tb, m, n, k)
        runs = []
        for t in (1, 2, 3, 2, 1):   # 3: an uneven share of the packing of A
            pynet.set_threads(t)
            runs.append(run(lib.gemm_f32, ta, tb, A, B, np.empty((m, n))))
        for C in runs[1:]:
            np.testing.assert_array_equal(C, runs[0])


@pytest.mark.parametrize("threads_used,n", [(2, 2080), (2, 2048), (3, 2080), (3, 3300), (2, 1030)])
def test_threads_whose_column_shares_span_different_block_counts_finish(threads, threads_used, n):
    """Shares of C's columns that need a different number of 1024-column blocks on different threads
    (2080 columns = 65 AVX-512 tiles: 32 and 33) once made the threads wait at each other's A-packing
    barriers forever; run in a child process with a timeout, so a hang fails instead of stalling."""
    import subprocess
    import sys
    code = ("import numpy as np, pynet\n"
            "pynet.set_threads(%d)\n"
            "rng = np.random.default_rng(1)\n"
            "a, b = rng.standard_normal((40, 300)), rng.standard_normal((300, %d))\n"
            "got = pynet.gemm(a, b, precision='float32').data\n"
            "want = pynet.gemm(a, b, precision='float32', reference=True).data\n"
            "print('same' if np.array_equal(got, want) else 'differ')\n" % (threads_used, n))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "same", r.stderr[-2000:]


def test_python_wrapper_takes_a_precision():
    rng = np.random.default_rng(29)
    a, b = rng.standard_normal((70, 90)), rng.standard_normal((90, 50))
    got = pynet.gemm(a, b, precision="float32").data
    np.testing.assert_array_equal(got, pynet.gemm(a, b, precision="float32", reference=True).data)
    np.testing.assert_array_equal(got, run(lib.gemm_f32_reference, 0, 0, a, b, np.empty((70, 50))))
    assert not np.array_equal(got, pynet.gemm(a, b).data)
    with pytest.raises(ValueError, match="gemm: unknown precision 'float16'; valid: float64, float32"):
        pynet.gemm(a, b, precision="float16")


def test_bad_arguments_are_reported_by_both():
    a = np.zeros((3, 4))
    pa = ptr(a)
    for fn, name in ((lib.gemm_f32, "gemm"), (lib.gemm_f32_reference, "gemm_f32_reference")):
        assert fn(0, 0, -1, 3, 4, 1.0, pa, 4, pa, 3, 0.0, pa, 3) == lib.PN_ERR_SHAPE
        assert ffi.string(lib.pn_error_message()).decode().startswith(name + ": sizes must be >= 0")
        lib.pn_clear_error()
        assert fn(0, 0, 3, 3, 4, 1.0, pa, 3, pa, 3, 0.0, pa, 3) == lib.PN_ERR_SHAPE   # lda 3 < k = 4
        lib.pn_clear_error()
        assert fn(0, 0, 3, 3, 4, 1.0, ffi.NULL, 4, pa, 3, 0.0, pa, 3) == lib.PN_ERR_VALUE
        lib.pn_clear_error()
