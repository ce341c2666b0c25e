/* gemm_avx512.c — the AVX-512 microkernel: an 8 × 16 tile of C held in 16 zmm registers (two
 * 8-double vectors per row). Each step p loads one row of B (16 doubles) and broadcasts the 8 values
 * a(0..7, p) into 16 fused multiply-adds, which keeps both FMA pipes of a core busy. Edge tiles are
 * separate instantiations: the row count is a compile-time constant, a tile of at most 8 columns
 * uses one vector per row, and a partial last vector is loaded and stored under a mask, so nothing
 * outside the tile is read or written. Below it, the float32-product kernel (8 × 32 floats in 16 zmm,
 * stored in double). Compiled for AVX-512 by a function attribute only; gemm.c
 * calls it after checking the CPU. */
#include "gemm_kernels.h"

#if PN_HAVE_X86_KERNELS
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

enum { MR = 8, NR = 16 };

/* The tile for constant M rows (1..8) and NV vectors per row (1 or 2); `mask` selects the columns
 * of the last vector (all ones for a full tile). */
TARGET INLINE void tile(const int M, const int NV, int k, const double *a, ptrdiff_t rs_a, ptrdiff_t cs_a,
                        const double *b, ptrdiff_t rs_b, double *c, ptrdiff_t ldc, __mmask8 mask,
                        const double *alpha, const double *beta)
{
    __m512d acc0[MR], acc1[MR];
#pragma GCC unroll 8
    for (int i = 0; i < M; i++) acc0[i] = acc1[i] = _mm512_setzero_pd();

    for (int p = 0; p < k; p++) {
        __m512d b0, b1 = _mm512_setzero_pd();
        if (NV == 1) {
            b0 = _mm512_maskz_loadu_pd(mask, b);
        } else {
            b0 = _mm512_loadu_pd(b);
            b1 = _mm512_maskz_loadu_pd(mask, b + 8);
        }
#pragma GCC unroll 8
        for (int i = 0; i < M; i++) {
            __m512d ai = _mm512_set1_pd(a[i * rs_a]);
            acc0[i] = _mm512_fmadd_pd(ai, b0, acc0[i]);
            if (NV == 2) acc1[i] = _mm512_fmadd_pd(ai, b1, acc1[i]);
        }
        a += cs_a;
        b += rs_b;
    }

    const __m512d va = _mm512_set1_pd(*alpha), vb = _mm512_set1_pd(*beta);
    const __mmask8 mask0 = NV == 1 ? mask : 0xFF;
#pragma GCC unroll 8
    for (int i = 0; i < M; i++) {
        double *ci = c + i * ldc;
        __m512d r0 = _mm512_mul_pd(va, acc0[i]);
        if (*beta != 0) r0 = _mm512_add_pd(r0, _mm512_mul_pd(vb, _mm512_maskz_loadu_pd(mask0, ci)));
        _mm512_mask_storeu_pd(ci, mask0, r0);
        if (NV == 2) {
            __m512d r1 = _mm512_mul_pd(va, acc1[i]);
            if (*beta != 0) r1 = _mm512_add_pd(r1, _mm512_mul_pd(vb, _mm512_maskz_loadu_pd(mask, ci + 8)));
            _mm512_mask_storeu_pd(ci + 8, mask, r1);
        }
    }
}

/* One instantiation per row count for NV vectors per row; full tiles get a second one for packed A,
 * whose constant strides let the compiler address the eight broadcasts directly. */
#define ROWS(NV)                                                                                   \
    switch (m) {                                                                                   \
    case 8:                                                                                        \
        if (rs_a == 1 && cs_a == MR) tile(8, NV, k, a, 1, MR, b, rs_b, c, ldc, mask, alpha, beta); \
        else tile(8, NV, k, a, rs_a, cs_a, b, rs_b, c, ldc, mask, alpha, beta);                    \
        break;                                                                                     \
    case 7: tile(7, NV, k, a, rs_a, cs_a, b, rs_b, c, ldc, mask, alpha, beta); break;              \
    case 6: tile(6, NV, k, a, rs_a, cs_a, b, rs_b, c, ldc, mask, alpha, beta); break;              \
    case 5: tile(5, NV, k, a, rs_a, cs_a, b, rs_b, c, ldc, mask, alpha, beta); break;              \
    case 4: tile(4, NV, k, a, rs_a, cs_a, b, rs_b, c, ldc, mask, alpha, beta); break;              \
    case 3: tile(3, NV, k, a, rs_a, cs_a, b, rs_b, c, ldc, mask, alpha, beta); break;              \
    case 2: tile(2, NV, k, a, rs_a, cs_a, b, rs_b, c, ldc, mask, alpha, beta); break;              \
    case 1: tile(1, NV, k, a, rs_a, cs_a, b, rs_b, c, ldc, mask, alpha, beta); break;              \
    default: break;                                                                                \
    }

TARGET static void kernel(int k, const double *a, ptrdiff_t rs_a, ptrdiff_t cs_a, const double *b,
                          ptrdiff_t rs_b, double *c, ptrdiff_t ldc, int m, int n, const double *alpha,
                          const double *beta)
{
    int last = n > 8 ? n - 8 : n;   /* columns in the last vector, 1..8 */
    __mmask8 mask = (__mmask8)((1u << last) - 1);
    if (n > 8) ROWS(2) else ROWS(1)
}

#undef ROWS

const pn_gemm_kernel pn_gemm_avx512 = {"avx512", MR, NR, kernel};

/* ---- float32 products (gemm_kernels.h): an 8 × 32 tile in 16 zmm of 16 floats ----------------- */

enum { MR32 = 8, NR32 = 32 };

/* c[0..cols) ← alpha·(double)x + beta·c (x: 8 floats, cols ≤ 8), in double, under a mask. */
TARGET INLINE void store8(double *c, __m256 x, int cols, __m512d va, __m512d vb, int add)
{
    __mmask8 mask = (__mmask8)((1u << cols) - 1);
    __m512d r = _mm512_mul_pd(va, _mm512_cvtps_pd(x));
    if (add) r = _mm512_add_pd(r, _mm512_mul_pd(vb, _mm512_maskz_loadu_pd(mask, c)));
    _mm512_mask_storeu_pd(c, mask, r);
}

TARGET INLINE __m256 high8(__m512 x) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)); }

TARGET static void kernel_f32(int k, const float *a, const float *b, double *c, ptrdiff_t ldc, int m, int n,
                              const double *alpha, const double *beta)
{
    __m512 acc0[MR32], acc1[MR32];
#pragma GCC unroll 8
    for (int i = 0; i < MR32; i++) acc0[i] = acc1[i] = _mm512_setzero_ps();
    for (int p = 0; p < k; p++, a += MR32, b += NR32) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 8
        for (int i = 0; i < MR32; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
            acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
        }
    }
    const __m512d va = _mm512_set1_pd(*alpha), vb = _mm512_set1_pd(*beta);
    const int add = *beta != 0;
#pragma GCC unroll 8
    for (int i = 0; i < MR32; i++) {
        if (i >= m) break;
        double *ci = c + i * ldc;
        __m256 parts[4] = {_mm512_castps512_ps256(acc0[i]), high8(acc0[i]), _mm512_castps512_ps256(acc1[i]),
                           high8(acc1[i])};
        for (int g = 0; g < 4 && 8 * g < n; g++)
            store8(ci + 8 * g, parts[g], n - 8 * g < 8 ? n - 8 * g : 8, va, vb, add);
    }
}

const pn_gemm_kernel_f32 pn_gemm_f32_avx512 = {"avx512", MR32, NR32, kernel_f32};

#else
const pn_gemm_kernel pn_gemm_avx512 = {"avx512", 8, 16, 0};
const pn_gemm_kernel_f32 pn_gemm_f32_avx512 = {"avx512", 8, 32, 0};
#endif
