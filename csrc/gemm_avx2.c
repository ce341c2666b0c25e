/* gemm_avx2.c — the AVX2 + FMA microkernel: a 6 × 8 tile of C held in 12 ymm registers (two
 * 4-double vectors per row), the shape that fits AVX2's 16 registers with room for one row of B and
 * a broadcast. Each step p loads one row of B (8 doubles) and broadcasts a(0..5, p) into 12 fused
 * multiply-adds. Edge tiles are separate instantiations: the row count is a compile-time constant,
 * a tile of at most 4 columns uses one vector per row, and only a partial last vector goes through
 * a mask (so full tiles keep every register for the arithmetic). Below it, the float32-product
 * kernel (6 × 16 floats in 12 ymm, stored in double). Compiled for AVX2 by a function
 * attribute only; gemm.c calls it after checking the CPU. */
#include "gemm_kernels.h"

#if PN_HAVE_X86_KERNELS
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

enum { MR = 6, NR = 8 };

/* The tile for constant M rows (1..6), NV vectors per row (1 or 2) and MASKED (whether the last
 * vector is partial; `mask` then selects its columns). */
TARGET INLINE void tile(const int M, const int NV, const int MASKED, int k, const double *a, ptrdiff_t rs_a,
                        ptrdiff_t cs_a, const double *b, ptrdiff_t rs_b, double *c, ptrdiff_t ldc,
                        __m256i mask, const double *alpha, const double *beta)
{
    __m256d acc0[MR], acc1[MR];
#pragma GCC unroll 6
    for (int i = 0; i < M; i++) acc0[i] = acc1[i] = _mm256_setzero_pd();

    for (int p = 0; p < k; p++) {
        __m256d b0, b1 = _mm256_setzero_pd();
        if (NV == 1) {
            b0 = MASKED ? _mm256_maskload_pd(b, mask) : _mm256_loadu_pd(b);
        } else {
            b0 = _mm256_loadu_pd(b);
            b1 = MASKED ? _mm256_maskload_pd(b + 4, mask) : _mm256_loadu_pd(b + 4);
        }
#pragma GCC unroll 6
        for (int i = 0; i < M; i++) {
            __m256d ai = _mm256_broadcast_sd(a + i * rs_a);
            acc0[i] = _mm256_fmadd_pd(ai, b0, acc0[i]);
            if (NV == 2) acc1[i] = _mm256_fmadd_pd(ai, b1, acc1[i]);
        }
        a += cs_a;
        b += rs_b;
    }

    const __m256d va = _mm256_broadcast_sd(alpha), vb = _mm256_broadcast_sd(beta);
    const int mask0 = MASKED && NV == 1, mask1 = MASKED && NV == 2;
#pragma GCC unroll 6
    for (int i = 0; i < M; i++) {
        double *ci = c + i * ldc;
        __m256d r0 = _mm256_mul_pd(va, acc0[i]);
        if (*beta != 0)
            r0 = _mm256_add_pd(r0, _mm256_mul_pd(vb, mask0 ? _mm256_maskload_pd(ci, mask) : _mm256_loadu_pd(ci)));
        if (mask0) _mm256_maskstore_pd(ci, mask, r0);
        else _mm256_storeu_pd(ci, r0);
        if (NV == 2) {
            __m256d r1 = _mm256_mul_pd(va, acc1[i]);
            if (*beta != 0)
                r1 = _mm256_add_pd(r1, _mm256_mul_pd(vb, mask1 ? _mm256_maskload_pd(ci + 4, mask)
                                                                : _mm256_loadu_pd(ci + 4)));
            if (mask1) _mm256_maskstore_pd(ci + 4, mask, r1);
            else _mm256_storeu_pd(ci + 4, r1);
        }
    }
}

/* One instantiation per row count; full tiles get a second one for packed A, whose constant strides
 * let the compiler address the six broadcasts directly. */
#define ROWS(NV, MASKED)                                                                                   \
    switch (m) {                                                                                           \
    case 6:                                                                                                \
        if (rs_a == 1 && cs_a == MR) tile(6, NV, MASKED, k, a, 1, MR, b, rs_b, c, ldc, mask, alpha, beta); \
        else tile(6, NV, MASKED, k, a, rs_a, cs_a, b, rs_b, c, ldc, mask, alpha, beta);                    \
        break;                                                                                             \
    case 5: tile(5, NV, MASKED, k, a, rs_a, cs_a, b, rs_b, c, ldc, mask, alpha, beta); break;              \
    case 4: tile(4, NV, MASKED, k, a, rs_a, cs_a, b, rs_b, c, ldc, mask, alpha, beta); break;              \
    case 3: tile(3, NV, MASKED, k, a, rs_a, cs_a, b, rs_b, c, ldc, mask, alpha, beta); break;              \
    case 2: tile(2, NV, MASKED, k, a, rs_a, cs_a, b, rs_b, c, ldc, mask, alpha, beta); break;              \
    case 1: tile(1, NV, MASKED, k, a, rs_a, cs_a, b, rs_b, c, ldc, mask, alpha, beta); break;              \
    default: break;                                                                                        \
    }

TARGET static void kernel(int k, const double *a, ptrdiff_t rs_a, ptrdiff_t cs_a, const double *b,
                          ptrdiff_t rs_b, double *c, ptrdiff_t ldc, int m, int n, const double *alpha,
                          const double *beta)
{
    int last = n > 4 ? n - 4 : n;   /* columns in the last vector, 1..4 */
    __m256i mask = _mm256_cmpgt_epi64(_mm256_set1_epi64x(last), _mm256_set_epi64x(3, 2, 1, 0));
    if (n == 8) ROWS(2, 0)
    else if (n > 4) ROWS(2, 1)
    else if (n == 4) ROWS(1, 0)
    else ROWS(1, 1)
}

#undef ROWS

const pn_gemm_kernel pn_gemm_avx2 = {"avx2", MR, NR, kernel};

/* ---- float32 products (gemm_kernels.h): a 6 × 16 tile in 12 ymm of 8 floats ------------------- */

enum { MR32 = 6, NR32 = 16 };

/* c[0..cols) ← alpha·(double)x + beta·c (x: 4 floats, cols ≤ 4), in double, under a mask. */
TARGET INLINE void store4(double *c, __m128 x, int cols, __m256d va, __m256d vb, int add)
{
    __m256i mask = _mm256_cmpgt_epi64(_mm256_set1_epi64x(cols), _mm256_setr_epi64x(0, 1, 2, 3));
    __m256d r = _mm256_mul_pd(va, _mm256_cvtps_pd(x));
    if (add) r = _mm256_add_pd(r, _mm256_mul_pd(vb, _mm256_maskload_pd(c, mask)));
    _mm256_maskstore_pd(c, mask, r);
}

TARGET static void kernel_f32(int k, const float *a, const float *b, double *c, ptrdiff_t ldc, int m, int n,
                              const double *alpha, const double *beta)
{
    __m256 acc0[MR32], acc1[MR32];
#pragma GCC unroll 6
    for (int i = 0; i < MR32; i++) acc0[i] = acc1[i] = _mm256_setzero_ps();
    for (int p = 0; p < k; p++, a += MR32, b += NR32) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR32; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
            acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
        }
    }
    const __m256d va = _mm256_set1_pd(*alpha), vb = _mm256_set1_pd(*beta);
    const int add = *beta != 0;
#pragma GCC unroll 6
    for (int i = 0; i < MR32; i++) {
        if (i >= m) break;
        double *ci = c + i * ldc;
        __m128 parts[4] = {_mm256_castps256_ps128(acc0[i]), _mm256_extractf128_ps(acc0[i], 1),
                           _mm256_castps256_ps128(acc1[i]), _mm256_extractf128_ps(acc1[i], 1)};
        for (int g = 0; g < 4 && 4 * g < n; g++)
            store4(ci + 4 * g, parts[g], n - 4 * g < 4 ? n - 4 * g : 4, va, vb, add);
    }
}

const pn_gemm_kernel_f32 pn_gemm_f32_avx2 = {"avx2", MR32, NR32, kernel_f32};

#else
const pn_gemm_kernel pn_gemm_avx2 = {"avx2", 6, 8, 0};
const pn_gemm_kernel_f32 pn_gemm_f32_avx2 = {"avx2", 6, 16, 0};
#endif
