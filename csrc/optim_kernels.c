/* optim_kernels.c — the optimiser's loops over every weight, fast: the Adam update (pn_adam_kernel),
 * the sum of squares behind gradient clipping (pn_sum_squares) and the rescale that clipping applies
 * (pn_scale_array), and the SGD update with momentum and decay (pn_sgd_kernel). optim.c says what
 * they compute in the lecture's terms; this file only makes them
 * quick: AVX-512 or AVX2 (chosen at run time by simd.c, with a portable C fallback) and OpenMP threads
 * over fixed chunks of the weights, only where the work is large enough to pay for waking a thread.
 *
 * Same bits everywhere. The Adam update and the rescale are elementwise and use only +, −, ×, ÷ and
 * √ (correctly rounded in IEEE arithmetic, scalar or vector) in the same order in every kernel, with
 * no fused multiply-add: any SIMD level and any thread count give the same weights as the plain loop
 * (and as NumPy doing the same operations). The sum of squares is a reduction, so its order is fixed
 * by the data's length alone: blocks of a size that depends on n only, each summed in 8 lanes (lane j
 * takes the elements j, j+8, … of the block) combined in one fixed order, then the blocks in order.
 * AVX-512 holds the 8 lanes in one register, AVX2 in two, the portable kernel in an array. */
#include "internal.h"
#include "simd.h"

#include <math.h>

/* Elementwise passes below this many weights run on one thread (waking another costs ~10 µs). */
enum { THREADED_WEIGHTS = 1 << 15, CHUNK = 4096, MAX_BLOCKS = 256, MIN_BLOCK = 2048 };

/* The fixed combination of the 8 lanes, the same in every kernel. */
static double combine_lanes(const double l[8])
{
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

/* ---- Adam ------------------------------------------------------------------------------------- */

/* The portable update of w[0..n): the reference every other kernel reproduces bit for bit. */
static void adam_portable(double *w, const double *dw, double *m, double *s, size_t n, const pn_adam_args *a)
{
    const double b1 = a->beta1, b2 = a->beta2, ob1 = 1 - a->beta1, ob2 = 1 - a->beta2;
    for (size_t i = 0; i < n; i++) {
        double g = a->scale * dw[i];   /* negative gradient of the mean loss */
        m[i] = b1 * m[i] + ob1 * g;
        s[i] = b2 * s[i] + ob2 * g * g;
        w[i] = w[i] + a->rate * ((m[i] / a->correction1) / (sqrt(s[i] / a->correction2) + a->eps) - a->decay * w[i]);
    }
}

#if PN_HAVE_X86_KERNELS
#include <immintrin.h>

__attribute__((target("avx2"))) static void adam_avx2(double *w, const double *dw, double *m, double *s, size_t n,
                                                      const pn_adam_args *a)
{
    const __m256d b1 = _mm256_set1_pd(a->beta1), b2 = _mm256_set1_pd(a->beta2), ob1 = _mm256_set1_pd(1 - a->beta1),
                  ob2 = _mm256_set1_pd(1 - a->beta2), scale = _mm256_set1_pd(a->scale), c1 = _mm256_set1_pd(a->correction1),
                  c2 = _mm256_set1_pd(a->correction2), eps = _mm256_set1_pd(a->eps), rate = _mm256_set1_pd(a->rate),
                  decay = _mm256_set1_pd(a->decay);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256d g = _mm256_mul_pd(scale, _mm256_loadu_pd(dw + i));
        __m256d mi = _mm256_add_pd(_mm256_mul_pd(b1, _mm256_loadu_pd(m + i)), _mm256_mul_pd(ob1, g));
        __m256d si = _mm256_add_pd(_mm256_mul_pd(b2, _mm256_loadu_pd(s + i)), _mm256_mul_pd(_mm256_mul_pd(ob2, g), g));
        __m256d wi = _mm256_loadu_pd(w + i);
        __m256d step = _mm256_div_pd(_mm256_div_pd(mi, c1), _mm256_add_pd(_mm256_sqrt_pd(_mm256_div_pd(si, c2)), eps));
        wi = _mm256_add_pd(wi, _mm256_mul_pd(rate, _mm256_sub_pd(step, _mm256_mul_pd(decay, wi))));
        _mm256_storeu_pd(m + i, mi);
        _mm256_storeu_pd(s + i, si);
        _mm256_storeu_pd(w + i, wi);
    }
    adam_portable(w + i, dw + i, m + i, s + i, n - i, a);
}

__attribute__((target("avx512f"))) static void adam_avx512(double *w, const double *dw, double *m, double *s,
                                                           size_t n, const pn_adam_args *a)
{
    const __m512d b1 = _mm512_set1_pd(a->beta1), b2 = _mm512_set1_pd(a->beta2), ob1 = _mm512_set1_pd(1 - a->beta1),
                  ob2 = _mm512_set1_pd(1 - a->beta2), scale = _mm512_set1_pd(a->scale), c1 = _mm512_set1_pd(a->correction1),
                  c2 = _mm512_set1_pd(a->correction2), eps = _mm512_set1_pd(a->eps), rate = _mm512_set1_pd(a->rate),
                  decay = _mm512_set1_pd(a->decay);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m512d g = _mm512_mul_pd(scale, _mm512_loadu_pd(dw + i));
        __m512d mi = _mm512_add_pd(_mm512_mul_pd(b1, _mm512_loadu_pd(m + i)), _mm512_mul_pd(ob1, g));
        __m512d si = _mm512_add_pd(_mm512_mul_pd(b2, _mm512_loadu_pd(s + i)), _mm512_mul_pd(_mm512_mul_pd(ob2, g), g));
        __m512d wi = _mm512_loadu_pd(w + i);
        __m512d step = _mm512_div_pd(_mm512_div_pd(mi, c1), _mm512_add_pd(_mm512_sqrt_pd(_mm512_div_pd(si, c2)), eps));
        wi = _mm512_add_pd(wi, _mm512_mul_pd(rate, _mm512_sub_pd(step, _mm512_mul_pd(decay, wi))));
        _mm512_storeu_pd(m + i, mi);
        _mm512_storeu_pd(s + i, si);
        _mm512_storeu_pd(w + i, wi);
    }
    adam_portable(w + i, dw + i, m + i, s + i, n - i, a);
}
#endif

/* Σ x[0..n) in 8 independent lanes, so the adds pipeline (a single running sum waits ~4 cycles per
 * weight, ~0.2 ms for 200,000). Only its finiteness is used (the divergence check), so its order is free. */
static double lane_sum(const double *x, size_t n)
{
    double l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) l[j] += x[i + j];
    for (; i < n; i++) l[i % 8] += x[i];
    return combine_lanes(l);
}

double pn_adam_kernel(double *w, const double *dw, double *m, double *s, size_t n, const pn_adam_args *a)
{
    void (*kernel)(double *, const double *, double *, double *, size_t, const pn_adam_args *) = adam_portable;
#if PN_HAVE_X86_KERNELS
    int level = pn_simd_level();
    if (level == PN_SIMD_AVX512) kernel = adam_avx512;
    else if (level == PN_SIMD_AVX2) kernel = adam_avx2;
#endif
    long chunks = (long)((n + CHUNK - 1) / CHUNK);
    int threads = n >= THREADED_WEIGHTS ? pn_threads() : 1;
    double sum = 0;
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1) reduction(+ : sum)
    for (long c = 0; c < chunks; c++) {
        size_t i0 = (size_t)c * CHUNK, len = n - i0 < CHUNK ? n - i0 : CHUNK;
        kernel(w + i0, dw + i0, m + i0, s + i0, len, a);
        sum += lane_sum(w + i0, len);   /* while the chunk is in cache */
    }
    return sum;
}

/* ---- SGD -------------------------------------------------------------------------------------- */

double pn_sgd_kernel(double *w, double *v, const double *dw, size_t n, double rate, double momentum, double decay)
{
    /* elementwise, each result one correctly rounded operation after another (no fused multiply-add):
     * the compiler's vectorisation gives the plain loop's bits, so only the threads are added here */
    long chunks = (long)((n + CHUNK - 1) / CHUNK);
    int threads = n >= THREADED_WEIGHTS ? pn_threads() : 1;
    double sum = 0;
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1) reduction(+ : sum)
    for (long c = 0; c < chunks; c++) {
        size_t i0 = (size_t)c * CHUNK, end = n - i0 < CHUNK ? n : i0 + CHUNK;
        for (size_t i = i0; i < end; i++) {
            v[i] = dw[i] - decay * w[i] + momentum * v[i];
            w[i] += rate * v[i];
        }
        sum += lane_sum(w + i0, end - i0);
    }
    return sum;
}

/* ---- clipping: the sum of squares and the rescale ------------------------------------------- */


static double block_squares_portable(const double *x, size_t n)
{
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < n; i++) lane[i % 8] += x[i] * x[i];
    return combine_lanes(lane);
}

#if PN_HAVE_X86_KERNELS
__attribute__((target("avx2"))) static double block_squares_avx2(const double *x, size_t n)
{
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256d a = _mm256_loadu_pd(x + i), b = _mm256_loadu_pd(x + i + 4);
        lo = _mm256_add_pd(lo, _mm256_mul_pd(a, a));
        hi = _mm256_add_pd(hi, _mm256_mul_pd(b, b));
    }
    double lane[8];
    _mm256_storeu_pd(lane, lo);
    _mm256_storeu_pd(lane + 4, hi);
    for (; i < n; i++) lane[i % 8] += x[i] * x[i];
    return combine_lanes(lane);
}

__attribute__((target("avx512f"))) static double block_squares_avx512(const double *x, size_t n)
{
    __m512d acc = _mm512_setzero_pd();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m512d a = _mm512_loadu_pd(x + i);
        acc = _mm512_add_pd(acc, _mm512_mul_pd(a, a));
    }
    double lane[8];
    _mm512_storeu_pd(lane, acc);
    for (; i < n; i++) lane[i % 8] += x[i] * x[i];
    return combine_lanes(lane);
}
#endif

double pn_sum_squares(const double *x, size_t n)
{
    double (*block_sum)(const double *, size_t) = block_squares_portable;
#if PN_HAVE_X86_KERNELS
    int level = pn_simd_level();
    if (level == PN_SIMD_AVX512) block_sum = block_squares_avx512;
    else if (level == PN_SIMD_AVX2) block_sum = block_squares_avx2;
#endif
    /* at most MAX_BLOCKS blocks, each a multiple of 8 long: the order depends on n alone */
    size_t block = (n + MAX_BLOCKS - 1) / MAX_BLOCKS;
    block = block < MIN_BLOCK ? MIN_BLOCK : (block + 7) / 8 * 8;
    long blocks = (long)((n + block - 1) / block);
    double partial[MAX_BLOCKS];
    int threads = n >= THREADED_WEIGHTS ? pn_threads() : 1;
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (long b = 0; b < blocks; b++) {
        size_t i0 = (size_t)b * block;
        partial[b] = block_sum(x + i0, n - i0 < block ? n - i0 : block);
    }
    double sum = 0;
    for (long b = 0; b < blocks; b++) sum += partial[b];
    return sum;
}

void pn_scale_array(double *x, size_t n, double f)
{
    /* x·f is one correctly rounded product per element: any vector width gives the same bits, so the
     * compiler's own vectorisation of this loop is enough; only the threads are added here. */
    long chunks = (long)((n + CHUNK - 1) / CHUNK);
    int threads = n >= THREADED_WEIGHTS ? pn_threads() : 1;
    #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
    for (long c = 0; c < chunks; c++) {
        size_t i0 = (size_t)c * CHUNK, end = n - i0 < CHUNK ? n : i0 + CHUNK;
        for (size_t i = i0; i < end; i++) x[i] *= f;
    }
}
