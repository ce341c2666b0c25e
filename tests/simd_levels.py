"""The SIMD levels pynet's kernels can be forced to (pn_set_simd), and those this CPU runs: shared by
the tests that check every level gives the same bits."""
from pynet._native import lib

ALL_KERNELS = ["avx512", "avx2", "portable"]


def _available(name):
    ok = lib.pn_set_simd(name.encode()) == 0
    lib.pn_clear_error()
    lib.pn_set_simd(b"auto")
    return ok


KERNELS = [k for k in ALL_KERNELS if _available(k)]
