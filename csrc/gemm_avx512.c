/* gemm_avx512.c — the AVX-512 microkernel: an 8 × 16 tile of C held in 16 zmm registers (two
 * 8-double vectors per row). Each step p loads one row of B (16 doubles) and broadcasts the 8 values
 * a(0..7, p) into 16 fused multiply-adds. Edge tiles use masked loads and stores for the columns and
 * a kernel specialised for the number of rows, so nothing outside the tile is read or written.
 * Compiled for AVX-512 by a function attribute only; gemm.c calls it after checking the CPU. */
#include "gemm_kernels.h"

#if PN_HAVE_X86_KERNELS
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

enum { MR = 8, NR = 16 };

/* The tile for a constant number of rows M (1..8); the compiler unrolls and specialises it. */
TARGET INLINE void tile(const int M, int k, const double *a, ptrdiff_t rs_a, ptrdiff_t cs_a,
                        const double *b, ptrdiff_t rs_b, double *c, ptrdiff_t ldc, int n,
                        double alpha, double beta)
{
    const __mmask8 m0 = n >= 8 ? 0xFF : (__mmask8)((1u << n) - 1);
    const __mmask8 m1 = n >= 16 ? 0xFF : n <= 8 ? 0 : (__mmask8)((1u << (n - 8)) - 1);
    __m512d acc0[MR], acc1[MR];
#pragma GCC unroll 8
    for (int i = 0; i < M; i++) acc0[i] = acc1[i] = _mm512_setzero_pd();

    for (int p = 0; p < k; p++) {
        __m512d b0 = _mm512_maskz_loadu_pd(m0, b), b1 = _mm512_maskz_loadu_pd(m1, b + 8);
#pragma GCC unroll 8
        for (int i = 0; i < M; i++) {
            __m512d ai = _mm512_set1_pd(a[i * rs_a]);
            acc0[i] = _mm512_fmadd_pd(ai, b0, acc0[i]);
            acc1[i] = _mm512_fmadd_pd(ai, b1, acc1[i]);
        }
        a += cs_a;
        b += rs_b;
    }

    const __m512d va = _mm512_set1_pd(alpha), vb = _mm512_set1_pd(beta);
#pragma GCC unroll 8
    for (int i = 0; i < M; i++) {
        double *ci = c + i * ldc;
        __m512d r0 = _mm512_mul_pd(va, acc0[i]), r1 = _mm512_mul_pd(va, acc1[i]);
        if (beta != 0) {
            r0 = _mm512_add_pd(r0, _mm512_mul_pd(vb, _mm512_maskz_loadu_pd(m0, ci)));
            r1 = _mm512_add_pd(r1, _mm512_mul_pd(vb, _mm512_maskz_loadu_pd(m1, ci + 8)));
        }
        _mm512_mask_storeu_pd(ci, m0, r0);
        _mm512_mask_storeu_pd(ci + 8, m1, r1);
    }
}

/* One instantiation per row count, and for full tiles a second one for packed A, whose constant
 * strides let the compiler address the eight broadcasts directly. */
TARGET static void kernel(int k, const double *a, ptrdiff_t rs_a, ptrdiff_t cs_a, const double *b,
                          ptrdiff_t rs_b, double *c, ptrdiff_t ldc, int m, int n, double alpha, double beta)
{
    switch (m) {
    case 8:
        if (rs_a == 1 && cs_a == MR) tile(8, k, a, 1, MR, b, rs_b, c, ldc, n, alpha, beta);
        else tile(8, k, a, rs_a, cs_a, b, rs_b, c, ldc, n, alpha, beta);
        break;
    case 7: tile(7, k, a, rs_a, cs_a, b, rs_b, c, ldc, n, alpha, beta); break;
    case 6: tile(6, k, a, rs_a, cs_a, b, rs_b, c, ldc, n, alpha, beta); break;
    case 5: tile(5, k, a, rs_a, cs_a, b, rs_b, c, ldc, n, alpha, beta); break;
    case 4: tile(4, k, a, rs_a, cs_a, b, rs_b, c, ldc, n, alpha, beta); break;
    case 3: tile(3, k, a, rs_a, cs_a, b, rs_b, c, ldc, n, alpha, beta); break;
    case 2: tile(2, k, a, rs_a, cs_a, b, rs_b, c, ldc, n, alpha, beta); break;
    case 1: tile(1, k, a, rs_a, cs_a, b, rs_b, c, ldc, n, alpha, beta); break;
    default: break;
    }
}

const pn_gemm_kernel pn_gemm_avx512 = {"avx512", MR, NR, kernel};

#else
const pn_gemm_kernel pn_gemm_avx512 = {"avx512", 8, 16, 0};
#endif
