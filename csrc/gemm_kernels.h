/* gemm_kernels.h — the contract between gemm.c's blocked driver and the per-instruction-set
 * microkernels (gemm_avx512.c, gemm_avx2.c, and the portable one in gemm.c). Internal only.
 *
 * A microkernel computes one MR × NR tile of C from k rank-1 updates:
 *     acc[i][j] = Σ_p  a(i, p) · b(p, j)        (p = 0, 1, …, k−1 in this order, fused multiply-add
 *                                                 where the instruction set has it)
 *     c[i][j]   = alpha·acc[i][j]               if beta == 0 (C's old contents are never read)
 *     c[i][j]   = alpha·acc[i][j] + beta·c[i][j] otherwise
 * (alpha and beta come by pointer, as in BLIS, so they do not tie up vector registers in the loop)
 * for i < m (m ≤ MR) and j < n (n ≤ NR). a(i, p) is a[i·rs_a + p·cs_a], so the kernel reads A packed
 * (rs_a = 1, cs_a = MR) or straight from the caller's matrix, transposed or not. b(p, j) is
 * b[p·rs_b + j]: a row of NR contiguous doubles per p, packed or not. The kernel never reads a(i, ·)
 * for i ≥ m nor b(·, j) for j ≥ n, so an edge tile needs no padding. Every element of C goes through
 * the same sequence of operations whatever tile it falls in, which is what makes gemm's result
 * independent of how the work is split between threads. */
#ifndef PYNET_GEMM_KERNELS_H
#define PYNET_GEMM_KERNELS_H

#include <stddef.h>

#include "simd.h"

typedef void pn_microkernel(int k, const double *a, ptrdiff_t rs_a, ptrdiff_t cs_a,
                            const double *b, ptrdiff_t rs_b, double *c, ptrdiff_t ldc,
                            int m, int n, const double *alpha, const double *beta);

typedef struct pn_gemm_kernel {
    const char *name;         /* "avx512", "avx2" or "portable" */
    int mr, nr;               /* tile shape */
    pn_microkernel *kernel;
} pn_gemm_kernel;

/* Defined in gemm_avx512.c / gemm_avx2.c on x86-64 with GCC or Clang; absent (NULL kernel) elsewhere. */
extern const pn_gemm_kernel pn_gemm_avx512, pn_gemm_avx2;

/* The float32-product microkernels (gemm's float32 mode, pn_set_matmul_f32). Both operands come
 * packed as float32 panels padded with zeros to whole tiles: a(i, p) = a[p·MR + i], b(p, j) =
 * b[p·NR + j]. The kernel computes the whole MR × NR tile
 *     acc[i][j] = fmaf(a(i, p), b(p, j), acc[i][j])   for p = 0, 1, …, k−1, from acc = 0 (float32)
 * and stores, for i < m and j < n only, in double (no fused multiply-add there):
 *     c[i][j] = alpha·(double)acc[i][j]                 if beta == 0
 *     c[i][j] = alpha·(double)acc[i][j] + beta·c[i][j]  otherwise.
 * Every element goes through exactly these operations in every kernel (AVX-512, AVX2 + FMA, portable
 * with fmaf), so all give the same bits. */
typedef void pn_microkernel_f32(int k, const float *a, const float *b, double *c, ptrdiff_t ldc, int m, int n,
                                const double *alpha, const double *beta);

typedef struct pn_gemm_kernel_f32 {
    const char *name;
    int mr, nr;
    pn_microkernel_f32 *kernel;
} pn_gemm_kernel_f32;

extern const pn_gemm_kernel_f32 pn_gemm_f32_avx512, pn_gemm_f32_avx2;

#endif
