/* data.c — a data set as pynet's C side sees it (X and one-hot y, one row per example): the shape
 * check every data-taking call makes (pn_check_dataset), drawing and freeing batches (random_batch,
 * free_data), the gather the training loop uses (pn_gather_rows) and the shuffle behind epochs
 * (shuffle_indices). */
#include "internal.h"

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
