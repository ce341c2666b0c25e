/* gemm.c — general matrix multiply, C = alpha·op(A)·op(B) + beta·C, with transpose flags so the
 * backward pass never materialises a transpose.
 *
 * gemm_reference is the plain triple loop the tests trust. gemm is the fast path, organised like
 * BLIS/GotoBLAS: C is cut into blocks, the operands are copied ("packed") into cache-friendly panels
 * when that pays, and a register-tiled microkernel (gemm_avx512.c, gemm_avx2.c, or the portable one
 * below, chosen at run time by simd.c) computes MR × NR tiles of C. Threads split C into disjoint blocks of
 * whole tiles; the k dimension is never split and its blocking depends only on k, so every element
 * of C is summed by one thread in the same order whatever the thread count: results are
 * reproducible bit for bit for a given kernel.
 *
 * The float32 mode (pn_set_matmul_f32, gemm_f32; fit's matmul="float32") runs the same driver with
 * both operands always packed, rounded to float32 as they are copied, and float32 microkernels that
 * store into the double C after each k block: twice the arithmetic per instruction and half the
 * bytes per panel. Its bits are defined by gemm_f32_reference and are the same on every SIMD level. */
#if !defined(_POSIX_C_SOURCE) && !defined(_WIN32)
#define _POSIX_C_SOURCE 200809L   /* posix_memalign, pthread keys */
#endif
#include "internal.h"
#include "gemm_kernels.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define PN_HAVE_PTHREAD_KEY 1
#else
#define PN_HAVE_PTHREAD_KEY 0
#endif
#ifdef _WIN32
#include <malloc.h>
#endif

#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE static inline
#endif

/* ---- checks and the reference ------------------------------------------------------------------ */

/* Do the rows × cols matrices at p (stride ldp) and q (stride ldq) share any memory? */
static int overlap(const double *p, int p_rows, int p_cols, int ldp, const double *q, int q_rows, int q_cols, int ldq)
{
    if (!p || !q || !p_rows || !p_cols || !q_rows || !q_cols) return 0;
    uintptr_t p0 = (uintptr_t)p, p1 = (uintptr_t)(p + (size_t)(p_rows - 1) * ldp + p_cols);
    uintptr_t q0 = (uintptr_t)q, q1 = (uintptr_t)(q + (size_t)(q_rows - 1) * ldq + q_cols);
    return p0 < q1 && q0 < p1;
}

static int check_args(const char *fn, int ta, int tb, int m, int n, int k, const double *a, int lda,
                      const double *b, int ldb, const double *c, int ldc)
{
    if (m < 0 || n < 0 || k < 0)
        return pn_fail(PN_ERR_SHAPE, "%s: sizes must be >= 0, got m=%d n=%d k=%d", fn, m, n, k);
    int a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
    /* an empty operand has no rows to stride over, so any stride will do */
    if ((a_rows && a_cols && lda < a_cols) || (b_rows && b_cols && ldb < b_cols) || (m && n && ldc < n))
        return pn_fail(PN_ERR_SHAPE, "%s: a row stride is shorter than its row (lda=%d for %d columns, "
                       "ldb=%d for %d, ldc=%d for %d)", fn, lda, a_cols, ldb, b_cols, ldc, n);
    if ((m && n && !c) || (m && n && k && (!a || !b)))
        return pn_fail(PN_ERR_VALUE, "%s: NULL buffer for a non-empty product", fn);
    if (overlap(c, m, n, ldc, a, a_rows, a_cols, lda) || overlap(c, m, n, ldc, b, b_rows, b_cols, ldb))
        return pn_fail(PN_ERR_VALUE, "%s: the output C shares memory with %s, which the product still reads; "
                       "write the result to a separate matrix", fn,
                       overlap(c, m, n, ldc, a, a_rows, a_cols, lda) ? "input A" : "input B");
    return PN_OK;
}

int gemm_reference(int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda,
                   const double *b, int ldb, double beta, double *c, int ldc)
{
    int status = check_args("gemm_reference", ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
    if (status) return status;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double sum = 0;
            for (int p = 0; p < k; p++) {
                double aip = ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                double bpj = tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                sum += aip * bpj;
            }
            double *cij = &c[(size_t)i * ldc + j];
            *cij = alpha * sum + (beta == 0 ? 0 : beta * *cij);
        }
    return PN_OK;
}

/* ---- the portable microkernel ------------------------------------------------------------------ */

/* A 4 × 8 tile in plain C: what every compiler turns into decent vector code. It keeps the contract
 * of gemm_kernels.h, with a separate multiply and add where the SIMD kernels fuse them. */
enum { PORTABLE_MR = 4, PORTABLE_NR = 8 };

static void kernel_portable(int k, const double *a, ptrdiff_t rs_a, ptrdiff_t cs_a, const double *b,
                            ptrdiff_t rs_b, double *c, ptrdiff_t ldc, int m, int n, const double *alpha,
                            const double *beta)
{
    double acc[PORTABLE_MR][PORTABLE_NR] = {{0}};
    if (m == PORTABLE_MR && n == PORTABLE_NR) {
        for (int p = 0; p < k; p++, a += cs_a, b += rs_b)
            for (int i = 0; i < PORTABLE_MR; i++) {
                double aip = a[i * rs_a];
                for (int j = 0; j < PORTABLE_NR; j++) acc[i][j] += aip * b[j];
            }
    } else {
        for (int p = 0; p < k; p++, a += cs_a, b += rs_b)
            for (int i = 0; i < m; i++) {
                double aip = a[i * rs_a];
                for (int j = 0; j < n; j++) acc[i][j] += aip * b[j];
            }
    }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double *cij = c + i * ldc + j;
            *cij = *beta == 0 ? *alpha * acc[i][j] : *alpha * acc[i][j] + *beta * *cij;
        }
}

static const pn_gemm_kernel portable = {"portable", PORTABLE_MR, PORTABLE_NR, kernel_portable};

/* The portable float32-product kernel (gemm_kernels.h): a 4 × 8 tile with fmaf, which is what the
 * SIMD kernels' fused multiply-adds compute, so every level gives the same bits. */
enum { PORTABLE32_MR = 4, PORTABLE32_NR = 8 };

static void kernel_f32_portable(int k, const float *a, const float *b, double *c, ptrdiff_t ldc, int m, int n,
                                const double *alpha, const double *beta)
{
    float acc[PORTABLE32_MR][PORTABLE32_NR] = {{0}};
    for (int p = 0; p < k; p++, a += PORTABLE32_MR, b += PORTABLE32_NR)
        for (int i = 0; i < PORTABLE32_MR; i++)
            for (int j = 0; j < PORTABLE32_NR; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double *cij = c + i * ldc + j, x = (double)acc[i][j];
            *cij = *beta == 0 ? *alpha * x : *alpha * x + *beta * *cij;
        }
}

static const pn_gemm_kernel_f32 portable_f32 = {"portable", PORTABLE32_MR, PORTABLE32_NR, kernel_f32_portable};

/* ---- choosing the kernel ----------------------------------------------------------------------- */

/* The microkernel of each level simd.c may choose (PN_SIMD_PORTABLE, PN_SIMD_AVX2, PN_SIMD_AVX512). */
static const pn_gemm_kernel *const kernels[] = {
    [PN_SIMD_PORTABLE] = &portable, [PN_SIMD_AVX2] = &pn_gemm_avx2, [PN_SIMD_AVX512] = &pn_gemm_avx512};

static const pn_gemm_kernel *active_kernel(void) { return kernels[pn_simd_level()]; }

static const pn_gemm_kernel_f32 *const kernels_f32[] = {
    [PN_SIMD_PORTABLE] = &portable_f32, [PN_SIMD_AVX2] = &pn_gemm_f32_avx2, [PN_SIMD_AVX512] = &pn_gemm_f32_avx512};

static const pn_gemm_kernel_f32 *active_kernel_f32(void) { return kernels_f32[pn_simd_level()]; }

/* ---- float32 products: the switch ------------------------------------------------------------ */

/* Whether pn_gemm on this thread computes in float32 (pn_set_matmul_f32): the training loop sets it
 * for its steps when asked (train_config.matmul), every other caller gets float64. */
static _Thread_local int matmul_f32;

int pn_set_matmul_f32(int on)
{
    int before = matmul_f32;
    matmul_f32 = on != 0;
    return before;
}

/* ---- packing ----------------------------------------------------------------------------------- */

/* Block sizes: a KC-deep slice of op(B), NC columns wide, is packed once and reused by every row
 * block; an MC × KC block of op(A) stays in L2 while the microkernel sweeps it. */
enum { KC = 256, MC = 144, NC = 1024 };

/* rows × w doubles from src (row stride ld) to dst (row stride dst_ld). Inlined with constant
 * widths so the copies vectorise. */
ALWAYS_INLINE void copy_block(int rows, int w, const double *src, ptrdiff_t ld, double *dst, int dst_ld)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < w; j++) dst[(ptrdiff_t)r * dst_ld + j] = src[r * ld + j];
}

/* The transpose: dst[j·dst_ld + r] = src[r·ld + j] for r < rows, j < w, in blocks of 8 columns so
 * the lines written are filled while they are still in L1. */
static void copy_transposed(int rows, int w, const double *src, ptrdiff_t ld, double *dst, int dst_ld)
{
    for (int j0 = 0; j0 < w; j0 += 8) {
        int j1 = w - j0 < 8 ? w : j0 + 8;
        for (int r = 0; r < rows; r++)
            for (int j = j0; j < j1; j++) dst[(ptrdiff_t)j * dst_ld + r] = src[r * ld + j];
    }
}

/* Panels of `width` values along the tile dimension, `depth` deep: panel q holds, for each p < depth,
 * the `width` values x(q·width + 0.., p) side by side. x(t, p) is src[t·rs + p·cs]: rs == 1 means the
 * width direction is contiguous in memory (a plain copy per p), cs == 1 that the depth direction is
 * (a transpose). Only the `count % width` real values of a last, partial panel are written; the
 * kernels never read the rest. */
static void pack_panels(int count, int depth, int width, const double *src, ptrdiff_t rs, ptrdiff_t cs,
                        double *dst)
{
    for (int t0 = 0; t0 < count; t0 += width, dst += (size_t)depth * width) {
        int w = count - t0 < width ? count - t0 : width;
        const double *s = src + t0 * rs;
        if (rs == 1) {
            if (w == 16 && width == 16) copy_block(depth, 16, s, cs, dst, 16);
            else if (w == 8 && width == 8) copy_block(depth, 8, s, cs, dst, 8);
            else if (w == 6 && width == 6) copy_block(depth, 6, s, cs, dst, 6);
            else if (w == 4 && width == 4) copy_block(depth, 4, s, cs, dst, 4);
            else copy_block(depth, w, s, cs, dst, width);
        } else {
            copy_transposed(w, depth, s, rs, dst, width);
        }
    }
}

/* pack_panels for the float32 mode: the values rounded to float, and a last, partial panel padded
 * with zeros to `width`, so the float32 kernels always compute whole tiles. The loops below are
 * inlined with constant widths so that they vectorise (a conversion of 8 doubles per instruction on
 * the plain side; 8 rows read side by side on the transposed one). */
ALWAYS_INLINE void convert_rows(int depth, const int width, int w, const double *s, ptrdiff_t cs, float *dst)
{
    if (w == width) {
        for (int p = 0; p < depth; p++)
            for (int j = 0; j < width; j++) dst[(size_t)p * width + j] = (float)s[p * cs + j];
        return;
    }
    for (int p = 0; p < depth; p++)
        for (int j = 0; j < width; j++) dst[(size_t)p * width + j] = j < w ? (float)s[p * cs + j] : 0.0f;
}

ALWAYS_INLINE void convert_columns(int depth, const int width, int w, const double *s, ptrdiff_t rs, ptrdiff_t cs,
                                   float *dst)
{
    if (w == width) {
        for (int p = 0; p < depth; p++)
            for (int t = 0; t < width; t++) dst[(size_t)p * width + t] = (float)s[t * rs + p * cs];
        return;
    }
    for (int p = 0; p < depth; p++)
        for (int t = 0; t < width; t++) dst[(size_t)p * width + t] = t < w ? (float)s[t * rs + p * cs] : 0.0f;
}

static void pack_panels_f32(int count, int depth, int width, const double *src, ptrdiff_t rs, ptrdiff_t cs,
                            float *dst)
{
    for (int t0 = 0; t0 < count; t0 += width, dst += (size_t)depth * width) {
        int w = count - t0 < width ? count - t0 : width;
        const double *s = src + t0 * rs;
        if (rs == 1) {   /* the width direction is contiguous: rows of `width` values per p */
            switch (width) {
            case 32: convert_rows(depth, 32, w, s, cs, dst); break;
            case 16: convert_rows(depth, 16, w, s, cs, dst); break;
            case 8: convert_rows(depth, 8, w, s, cs, dst); break;
            case 6: convert_rows(depth, 6, w, s, cs, dst); break;
            case 4: convert_rows(depth, 4, w, s, cs, dst); break;
            default: convert_rows(depth, width, w, s, cs, dst); break;
            }
        } else {         /* the depth direction is contiguous: a transpose */
            switch (width) {
            case 32: convert_columns(depth, 32, w, s, rs, cs, dst); break;
            case 16: convert_columns(depth, 16, w, s, rs, cs, dst); break;
            case 8: convert_columns(depth, 8, w, s, rs, cs, dst); break;
            case 6: convert_columns(depth, 6, w, s, rs, cs, dst); break;
            case 4: convert_columns(depth, 4, w, s, rs, cs, dst); break;
            default: convert_columns(depth, width, w, s, rs, cs, dst); break;
            }
        }
    }
}

/* ---- the blocked driver ------------------------------------------------------------------------ */

typedef struct plan {
    const pn_gemm_kernel *kern;
    int ta, tb, m, n, k;
    double alpha, beta;
    const double *a, *b;
    double *c;
    ptrdiff_t lda, ldb, ldc;
    ptrdiff_t rs_a, cs_a;   /* op(A)(i, p) = a[i·rs_a + p·cs_a] */
    ptrdiff_t rs_b, cs_b;   /* op(B)(p, j) = b[p·rs_b + j·cs_b] */
    int kc;                 /* depth of every k block but the last */
    int pack_a, pack_b;
    pn_epilogue epi;
    const pn_gemm_kernel_f32 *kern32;   /* the float32 mode's kernel, or NULL for float64 */
} plan;

/* What the plan does to a finished tile (rows i.., columns j.. of C) while it is in cache. */
static void finish_tile(const plan *P, int i, int j, int rows, int cols)
{
    double *c = P->c + i * P->ldc + j;
    if (P->epi.kind == PN_EPI_ACTIVATE && P->epi.a != SOFTMAX) pn_activate_block(c, P->ldc, rows, cols, P->epi.a);
}

/* Computes rows [i0, i1) × columns [j0, j1) of C on this thread; `buf` holds MC·KC + KC·NC doubles. */
static void run_block(const plan *P, int i0, int i1, int j0, int j1, double *buf)
{
    const pn_gemm_kernel *K = P->kern;
    const int mr = K->mr, nr = K->nr, mc_max = MC / mr * mr;
    double *a_pack = buf, *b_pack = buf + (size_t)MC * KC;
    for (int jc = j0; jc < j1; jc += NC) {
        int nc = j1 - jc < NC ? j1 - jc : NC;
        for (int pc = 0; pc < P->k; pc += P->kc) {
            int kb = P->k - pc < P->kc ? P->k - pc : P->kc;
            int last = pc + kb == P->k;
            double beta = pc == 0 ? P->beta : 1.0;   /* later k blocks add to what the first wrote */

            /* op(B)(pc.., jc..) as panels of nr columns: packed, or read in place (tb == 0). */
            const double *b = P->b + pc * P->rs_b + jc * P->cs_b;
            ptrdiff_t rs_b = P->rs_b, b_panel = nr;
            if (P->pack_b) {
                pack_panels(nc, kb, nr, b, P->cs_b, P->rs_b, b_pack);
                b = b_pack;
                rs_b = nr;
                b_panel = (ptrdiff_t)kb * nr;
            }
            for (int ic = i0; ic < i1; ic += mc_max) {
                int mc = i1 - ic < mc_max ? i1 - ic : mc_max;
                const double *a = P->a + ic * P->rs_a + pc * P->cs_a;
                ptrdiff_t rs_a = P->rs_a, cs_a = P->cs_a, a_panel = mr * P->rs_a;
                if (P->pack_a) {
                    pack_panels(mc, kb, mr, a, P->rs_a, P->cs_a, a_pack);
                    a = a_pack;
                    rs_a = 1;
                    cs_a = mr;
                    a_panel = (ptrdiff_t)kb * mr;
                }
                for (int jr = 0; jr < nc; jr += nr) {
                    int cols = nc - jr < nr ? nc - jr : nr;
                    const double *bj = b + (jr / nr) * b_panel;
                    for (int ir = 0; ir < mc; ir += mr) {
                        int rows = mc - ir < mr ? mc - ir : mr;
                        double *c = P->c + (ic + ir) * P->ldc + jc + jr;
                        K->kernel(kb, a + (ir / mr) * a_panel, rs_a, cs_a, bj, rs_b, c, P->ldc, rows, cols,
                                  &P->alpha, &beta);
                        if (last && P->epi.kind != PN_EPI_NONE) finish_tile(P, ic + ir, jc + jr, rows, cols);
                    }
                }
            }
        }
    }
}

/* run_block in the float32 mode: both operands always packed, as zero-padded float panels (the
 * buffer's doubles hold twice as many floats; MC and NC are multiples of every kernel's MR and NR).
 * With `shared` (threads splitting C by columns, all calling this with the same rows), the threads
 * pack op(A) together into `shared` — thread t of nt its share of the row panels — between two
 * barriers, instead of each packing all of it. The values packed are the same either way. */
static void run_block_f32_shared(const plan *P, int i0, int i1, int j0, int j1, double *buf, float *shared, int t,
                                 int nt)
{
    const pn_gemm_kernel_f32 *K = P->kern32;
    const int mr = K->mr, nr = K->nr, mc_max = MC / mr * mr;
    float *a_pack = shared ? shared : (float *)buf, *b_pack = (float *)buf + (size_t)MC * KC;
    for (int jc = j0; jc < j1; jc += NC) {
        int nc = j1 - jc < NC ? j1 - jc : NC;
        for (int pc = 0; pc < P->k; pc += P->kc) {
            int kb = P->k - pc < P->kc ? P->k - pc : P->kc;
            int last = pc + kb == P->k;
            double beta = pc == 0 ? P->beta : 1.0;
            pack_panels_f32(nc, kb, nr, P->b + pc * P->rs_b + jc * P->cs_b, P->cs_b, P->rs_b, b_pack);
            for (int ic = i0; ic < i1; ic += mc_max) {
                int mc = i1 - ic < mc_max ? i1 - ic : mc_max;
                const double *a = P->a + ic * P->rs_a + pc * P->cs_a;
                if (shared) {
                    int panels = (mc + mr - 1) / mr, q0 = panels * t / nt, q1 = panels * (t + 1) / nt;
                    int r0 = q0 * mr, r1 = q1 * mr < mc ? q1 * mr : mc;
                    #pragma omp barrier
                    if (r0 < r1) pack_panels_f32(r1 - r0, kb, mr, a + r0 * P->rs_a, P->rs_a, P->cs_a,
                                                 a_pack + (size_t)q0 * kb * mr);
                    #pragma omp barrier
                } else {
                    pack_panels_f32(mc, kb, mr, a, P->rs_a, P->cs_a, a_pack);
                }
                for (int jr = 0; jr < nc; jr += nr) {
                    int cols = nc - jr < nr ? nc - jr : nr;
                    const float *bj = b_pack + (size_t)(jr / nr) * kb * nr;
                    for (int ir = 0; ir < mc; ir += mr) {
                        int rows = mc - ir < mr ? mc - ir : mr;
                        double *c = P->c + (ic + ir) * P->ldc + jc + jr;
                        K->kernel(kb, a_pack + (size_t)(ir / mr) * kb * mr, bj, c, P->ldc, rows, cols, &P->alpha,
                                  &beta);
                        if (last && P->epi.kind != PN_EPI_NONE) finish_tile(P, ic + ir, jc + jr, rows, cols);
                    }
                }
            }
        }
    }
}

static void run_block_f32(const plan *P, int i0, int i1, int j0, int j1, double *buf)
{
    run_block_f32_shared(P, i0, i1, j0, j1, buf, NULL, 0, 1);
}

/* Per-thread packing buffer, allocated on a thread's first gemm and kept, so later calls allocate
 * nothing; thread-local, so concurrent gemm calls never share one, and each OpenMP thread keeps
 * packing into memory already in its own core's cache. Where POSIX threads exist the buffer is freed
 * when its thread exits (a program that runs gemm on many short-lived threads does not leak). */
enum { PACK_DOUBLES = MC * KC + KC * NC, PACK_ALIGN = 64 };

static int live_buffers;   /* packing buffers allocated and not yet freed (pn_packing_buffers) */

static void free_packing_buffer(void *p)
{
    if (p) __atomic_fetch_sub(&live_buffers, 1, __ATOMIC_RELAXED);
#ifdef _WIN32
    _aligned_free(p);
#else
    free(p);
#endif
}

static double *alloc_packing_buffer(void)
{
    size_t bytes = (size_t)PACK_DOUBLES * sizeof(double);
#ifdef _WIN32
    return _aligned_malloc(bytes, PACK_ALIGN);
#else
    void *p = NULL;
    return posix_memalign(&p, PACK_ALIGN, bytes) ? NULL : p;
#endif
}

static _Thread_local double *thread_buf;

#if PN_HAVE_PTHREAD_KEY
static pthread_key_t buf_key;
static pthread_once_t buf_key_once = PTHREAD_ONCE_INIT;
static int buf_key_ok;

static void make_buf_key(void) { buf_key_ok = pthread_key_create(&buf_key, free_packing_buffer) == 0; }
#endif

static double *packing_buffer(void)
{
    if (!thread_buf) {
        thread_buf = alloc_packing_buffer();
        if (thread_buf) __atomic_fetch_add(&live_buffers, 1, __ATOMIC_RELAXED);
#if PN_HAVE_PTHREAD_KEY
        pthread_once(&buf_key_once, make_buf_key);
        if (thread_buf && buf_key_ok) pthread_setspecific(buf_key, thread_buf);   /* freed at thread exit */
#endif
    }
    return thread_buf;
}

int pn_packing_buffers(void) { return __atomic_load_n(&live_buffers, __ATOMIC_RELAXED); }

/* ---- entry points ------------------------------------------------------------------------------ */

/* C ← beta·C, treating beta == 0 as "overwrite" so stale NaNs in C never leak through. */
static void scale_c(int m, int n, double beta, double *c, int ldc)
{
    if (beta == 1) return;
    for (int i = 0; i < m; i++) {
        double *row = c + (size_t)i * ldc;
        if (beta == 0) memset(row, 0, (size_t)n * sizeof(double));
        else for (int j = 0; j < n; j++) row[j] *= beta;
    }
}

/* Work below this many multiply-adds runs on one thread: waking a second costs more than it saves.
 * Up to MAX_SHARING threads share the float32 mode's packing of A. */
enum { THREADED_WORK = 1 << 16, MAX_SHARING = 64 };

int pn_gemm(int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda,
            const double *b, int ldb, double beta, double *c, int ldc, pn_epilogue epi)
{
    int status = check_args("gemm", ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
    if (status) return status;
    if (m == 0 || n == 0) return PN_OK;
    if (k == 0 || alpha == 0) {   /* no product: C ← beta·C, then the epilogue over all of C */
        scale_c(m, n, beta, c, ldc);
        plan whole = {0};
        whole.c = c;
        whole.ldc = ldc;
        whole.epi = epi;
        finish_tile(&whole, 0, 0, m, n);
        if (epi.kind == PN_EPI_ACTIVATE && epi.a == SOFTMAX) pn_activate_block(c, ldc, m, n, SOFTMAX);
        return PN_OK;
    }

    plan P;
    P.kern = active_kernel();
    P.ta = ta, P.tb = tb, P.m = m, P.n = n, P.k = k;
    P.alpha = alpha, P.beta = beta;
    P.a = a, P.b = b, P.c = c;
    P.lda = lda, P.ldb = ldb, P.ldc = ldc;
    P.rs_a = ta ? 1 : lda, P.cs_a = ta ? lda : 1;
    P.rs_b = tb ? 1 : ldb, P.cs_b = tb ? ldb : 1;
    int k_blocks = (k + KC - 1) / KC;
    P.kc = (k + k_blocks - 1) / k_blocks;     /* equal blocks: 785 → 4 × 197, not 3 × 256 + 17 */
    P.kern32 = matmul_f32 ? active_kernel_f32() : NULL;
    const int mr = P.kern32 ? P.kern32->mr : P.kern->mr, nr = P.kern32 ? P.kern32->nr : P.kern->nr;
    /* The microkernel reads B row by row, so a transposed B is always packed; a plain one only when
     * it is wide enough for its rows to be far apart in memory. A transposed A is packed when many
     * column panels will reuse it; a plain A is read in place (its rows are contiguous runs). */
    P.pack_b = tb || n > 4 * nr || P.kern32;
    P.pack_a = (ta && n > 2 * nr) || P.kern32;
    P.epi = epi;
    pn_epilogue none = {PN_EPI_NONE, LINEAR};
    if (epi.kind == PN_EPI_ACTIVATE && epi.a == SOFTMAX) P.epi = none;   /* needs whole rows: after */

    /* Split C between threads along one dimension, in whole tiles: by columns when B is packed and
     * there are enough column panels (each thread then packs only its own part of B), else by rows. */
    int threads = (double)m * n * k >= THREADED_WORK ? pn_threads() : 1;
#ifdef _OPENMP
    if (omp_in_parallel()) threads = 1;   /* called from a parallel loop (evaluation): stay on this thread */
#endif
    int row_tiles = (m + mr - 1) / mr, col_tiles = (n + nr - 1) / nr;
    int by_cols = (P.pack_b && col_tiles >= 2 * threads) || row_tiles < threads;
    int units = by_cols ? col_tiles : row_tiles;
    if (threads > units) threads = units;
    int failed = 0;
    /* The float32 mode's threads pack A together when they split C by columns and every thread's
     * columns fit in one NC block: then each runs the same loops (one column block, the same k and
     * row blocks) and so meets the same barriers. (With shares of different block counts the threads
     * would wait at barriers the others never reach.) */
    int share = (units + threads - 1) / (threads > 0 ? threads : 1);
    int coop = P.kern32 && by_cols && threads > 1 && threads <= MAX_SHARING && (long long)share * nr <= NC;
    double *bufs[MAX_SHARING];

    #pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        int u0 = (int)((long long)units * t / nt), u1 = (int)((long long)units * (t + 1) / nt);
        double *buf = packing_buffer();
        if (!buf) {
            #pragma omp atomic write
            failed = 1;
        }
        if (coop && nt == threads) {   /* (nt < threads only if OpenMP gave fewer: no sharing then) */
            bufs[t] = buf;
            #pragma omp barrier
            int any_failed;
            #pragma omp atomic read
            any_failed = failed;
            if (!any_failed)
                run_block_f32_shared(&P, 0, m, u0 * nr, u1 * nr < n ? u1 * nr : n, buf, (float *)bufs[0], t, nt);
        } else if (buf && u0 < u1) {
            void (*run)(const plan *, int, int, int, int, double *) = P.kern32 ? run_block_f32 : run_block;
            if (by_cols) run(&P, 0, m, u0 * nr, u1 * nr < n ? u1 * nr : n, buf);
            else run(&P, u0 * mr, u1 * mr < m ? u1 * mr : m, 0, n, buf);
        }
    }
    if (failed)
        return pn_fail(PN_ERR_NOMEM, "gemm: out of memory for the %.1f MB packing buffer of a thread",
                       (double)PACK_DOUBLES * sizeof(double) / 1e6);
    if (epi.kind == PN_EPI_ACTIVATE && epi.a == SOFTMAX) pn_activate_block(c, ldc, m, n, SOFTMAX);
    return PN_OK;
}

int gemm(int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda,
         const double *b, int ldb, double beta, double *c, int ldc)
{
    pn_epilogue none = {PN_EPI_NONE, LINEAR};
    return pn_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, none);
}

int gemm_f32(int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda,
             const double *b, int ldb, double beta, double *c, int ldc)
{
    pn_epilogue none = {PN_EPI_NONE, LINEAR};
    int before = pn_set_matmul_f32(1);
    int status = pn_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, none);
    pn_set_matmul_f32(before);
    return status;
}

int gemm_f32_reference(int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda,
                       const double *b, int ldb, double beta, double *c, int ldc)
{
    int status = check_args("gemm_f32_reference", ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
    if (status) return status;
    if (m == 0 || n == 0) return PN_OK;
    if (k == 0 || alpha == 0) {
        scale_c(m, n, beta, c, ldc);
        return PN_OK;
    }
    int blocks = (k + KC - 1) / KC, kc = (k + blocks - 1) / blocks;   /* as pn_gemm splits k */
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double *cij = &c[(size_t)i * ldc + j];
            for (int pc = 0; pc < k; pc += kc) {
                float acc = 0.0f;
                for (int p = pc; p < k && p < pc + kc; p++) {
                    double aip = ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                    double bpj = tb ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                    acc = fmaf((float)aip, (float)bpj, acc);
                }
                double be = pc == 0 ? beta : 1.0, x = (double)acc;
                *cij = be == 0 ? alpha * x : alpha * x + be * *cij;
            }
        }
    return PN_OK;
}
