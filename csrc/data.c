/* data.c — a data set as pynet's C side sees it (X and one-hot y, one row per example): the shape
 * check every data-taking call makes (pn_check_dataset), the one pass over an input array that finds its range and
 * its first NaN or infinity (pn_scan_values), drawing and freeing batches (random_batch, free_data),
 * the gather the training loop uses (pn_gather_rows) and the shuffle behind epochs (shuffle_indices). */
#include "internal.h"
#include "simd.h"

#include <math.h>
#include <string.h>

static const matrix empty = {0, 0, NULL};

int pn_check_dataset(const char *fn, data d)
{
    int status = pn_check_matrix(fn, "d.X", d.X);
    if (!status) status = pn_check_matrix(fn, "d.y", d.y);
    if (status) return status;
    if (d.X.rows != d.y.rows)
        return pn_fail(PN_ERR_SHAPE, "%s: d.X is %dx%d but d.y is %dx%d (one label row per example)",
                       fn, d.X.rows, d.X.cols, d.y.rows, d.y.cols);
    if (d.X.rows == 0) return pn_fail(PN_ERR_VALUE, "%s: the data has no rows", fn);
    return PN_OK;
}


/* ---- scanning input values ---------------------------------------------------------------------- */

enum { SCAN_THREADED = 1 << 16 };

/* min/max/NaN-or-infinity of x[lo, hi). The first pass only compares and counts NaNs (v != v), which
 * vectorises; comparisons skip NaN (v < mn is false), so min and max are those of the values that are
 * not NaN, and an infinity shows as one of them. Only when there is a bad value does a second pass
 * look for it entry by entry. The pass is compiled for each SIMD level (simd.h) from this one body;
 * every level gives the same result, since min, max and a count do not depend on the order (but for
 * the sign of a zero, which pn_scan_values makes +0). */
static inline __attribute__((always_inline)) void scan_body(const double *x, size_t lo, size_t hi,
                                                             pn_scan_result *r)
{
    double mn = INFINITY, mx = -INFINITY;
    long long nan = 0, first = -1, bad = 0;
    #pragma omp simd reduction(min:mn) reduction(max:mx) reduction(+:nan)
    for (size_t i = lo; i < hi; i++) {
        double v = x[i];
        mn = v < mn ? v : mn;
        mx = v > mx ? v : mx;
        nan += v != v;
    }
    if (nan || mn == -INFINITY || mx == INFINITY)
        for (size_t i = lo; i < hi; i++)
            if (!isfinite(x[i])) {
                if (first < 0) first = (long long)i;
                bad++;
            }
    *r = (pn_scan_result){mn, mx, first, bad};
}

static void scan_portable(const double *x, size_t lo, size_t hi, pn_scan_result *r) { scan_body(x, lo, hi, r); }
#if PN_HAVE_X86_KERNELS
__attribute__((target("avx2"))) static void scan_avx2(const double *x, size_t lo, size_t hi, pn_scan_result *r)
{
    scan_body(x, lo, hi, r);
}
__attribute__((target("avx512f"))) static void scan_avx512(const double *x, size_t lo, size_t hi,
                                                           pn_scan_result *r)
{
    scan_body(x, lo, hi, r);
}
#endif

static void scan_range(const double *x, size_t lo, size_t hi, pn_scan_result *r)
{
#if PN_HAVE_X86_KERNELS
    switch (pn_simd_level()) {
    case PN_SIMD_AVX512: scan_avx512(x, lo, hi, r); return;
    case PN_SIMD_AVX2: scan_avx2(x, lo, hi, r); return;
    }
#endif
    scan_portable(x, lo, hi, r);
}

int pn_scan_values(const double *x, size_t n, pn_scan_result *out)
{
    if (!out || (n && !x)) return pn_fail(PN_ERR_VALUE, "pn_scan_values: need a result and %zu values", n);
    enum { MAX_PARTS = 64 };
    int parts = n * sizeof(double) >= SCAN_THREADED ? pn_threads() : 1;
    if (parts > MAX_PARTS) parts = MAX_PARTS;
    pn_scan_result part[MAX_PARTS];
    #pragma omp parallel for num_threads(parts) schedule(static) if (parts > 1)
    for (int t = 0; t < parts; t++)
        scan_range(x, n / parts * t, t + 1 < parts ? n / parts * (t + 1) : n, &part[t]);
    *out = part[0];
    for (int t = 1; t < parts; t++) {
        out->min = part[t].min < out->min ? part[t].min : out->min;
        out->max = part[t].max > out->max ? part[t].max : out->max;
        if (out->first_bad < 0) out->first_bad = part[t].first_bad;
        out->bad += part[t].bad;
    }
    if (out->min > out->max) out->min = out->max = NAN;   /* every value is NaN (or there are none) */
    out->min += 0.0;   /* -0 + 0 is +0: which zero a min or max of both signs keeps depends on the order */
    out->max += 0.0;
    return PN_OK;
}


/* ---- batches ----------------------------------------------------------------------------------- */

data random_batch(data d, int n)
{
    data b = {empty, empty};
    if (pn_check_dataset("random_batch", d)) return b;
    if (n < 0) {
        pn_fail(PN_ERR_VALUE, "random_batch: n must be >= 0, got %d", n);
        return b;
    }
    b.X = (matrix){n, d.X.cols, NULL};
    b.y = (matrix){n, d.y.cols, NULL};
    b.X.data = pn_alloc(pn_size(b.X), "random_batch");
    if (b.X.data || !pn_size(b.X)) b.y.data = pn_alloc(pn_size(b.y), "random_batch");
    if ((!b.X.data && pn_size(b.X)) || (!b.y.data && pn_size(b.y))) {
        free_data(b);
        return (data){empty, empty};
    }
    pn_gather_rows(d, NULL, b);
    return b;
}

void free_data(data d)
{
    free_matrix(d.X);
    free_matrix(d.y);
}

/* The row numbers are drawn first, in order, so the random stream is the same for any thread count;
 * then the rows are copied. A batch is a few hundred kilobytes scattered over a data set far larger
 * than the caches, so the copy waits on memory: two cores keep twice as many reads in flight, and
 * each fetches the next row's lines while copying the current one. The rows are split between
 * threads the way gemm splits the forward pass that reads them. */
enum { GATHER_CHUNK = 512, GATHER_THREADED_BYTES = 1 << 16 };

static void copy_row(double *dst, const double *src, const double *next, size_t n)
{
    if (next)
        for (size_t i = 0; i < n; i += 64 / sizeof(double)) PN_PREFETCH(next + i);
    memcpy(dst, src, n * sizeof(double));
}

void pn_gather_rows(data d, const int *rows, data batch)
{
    size_t xc = (size_t)d.X.cols, yc = (size_t)d.y.cols;
    int drawn[GATHER_CHUNK];
    for (int i0 = 0; i0 < batch.X.rows; i0 += GATHER_CHUNK) {
        int n = batch.X.rows - i0 < GATHER_CHUNK ? batch.X.rows - i0 : GATHER_CHUNK;
        const int *r = rows ? rows + i0 : drawn;
        for (int i = 0; !rows && i < n; i++) drawn[i] = rand_int(d.X.rows);
        /* A zero-width X or y has no buffer (NULL data): there is nothing to copy, and memcpy must
         * not be handed the NULL pointer even for 0 bytes. */
        double *X = xc ? batch.X.data + i0 * xc : NULL, *y = yc ? batch.y.data + i0 * yc : NULL;
        #pragma omp parallel for num_threads(pn_threads()) schedule(static) \
            if ((size_t)n * xc * sizeof(double) >= GATHER_THREADED_BYTES)
        for (int i = 0; i < n; i++) {
            if (X) copy_row(X + i * xc, d.X.data + r[i] * xc, i + 1 < n ? d.X.data + r[i + 1] * xc : NULL, xc);
            if (y) memcpy(y + i * yc, d.y.data + r[i] * yc, yc * sizeof(double));
        }
    }
}

int shuffle_indices(int *idx, int n)
{
    if (n < 0 || (n > 0 && !idx)) return pn_fail(PN_ERR_VALUE, "shuffle_indices: need n >= 0 and a buffer, got n=%d", n);
    for (int i = 0; i < n; i++) idx[i] = i;
    for (int i = n - 1; i > 0; i--) {   /* Fisher–Yates */
        int j = rand_int(i + 1), t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    return PN_OK;
}
