/* gemm.c — general matrix multiply, C = alpha·op(A)·op(B) + beta·C, with transpose flags so the
 * backward pass never materialises a transpose. gemm_reference is the plain triple loop the tests
 * trust; gemm is the fast path. Every element of C is summed by one thread in a fixed order, so the
 * result does not depend on the number of threads. */
#include "internal.h"

#include <string.h>

static int check_args(const char *fn, int ta, int tb, int m, int n, int k, const double *a, int lda,
                      const double *b, int ldb, const double *c, int ldc)
{
    if (m < 0 || n < 0 || k < 0)
        return pn_fail(PN_ERR_SHAPE, "%s: sizes must be >= 0, got m=%d n=%d k=%d", fn, m, n, k);
    int a_cols = ta ? m : k, b_cols = tb ? k : n;
    if (lda < (a_cols > 1 ? a_cols : 1) || ldb < (b_cols > 1 ? b_cols : 1) || ldc < (n > 1 ? n : 1))
        return pn_fail(PN_ERR_SHAPE, "%s: a row stride is shorter than its row (lda=%d for %d columns, "
                       "ldb=%d for %d, ldc=%d for %d)", fn, lda, a_cols, ldb, b_cols, ldc, n);
    if ((m && n && !c) || (m && n && k && (!a || !b)))
        return pn_fail(PN_ERR_VALUE, "%s: NULL buffer for a non-empty product", fn);
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

int gemm(int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda,
         const double *b, int ldb, double beta, double *c, int ldc)
{
    int status = check_args("gemm", ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
    if (status) return status;
    scale_c(m, n, beta, c, ldc);
    if (m == 0 || n == 0 || k == 0 || alpha == 0) return PN_OK;
    int threads = (double)m * n * k > 1e5 ? pn_threads() : 1;

    /* Row i of C is a combination of rows of op(B): C[i,:] += alpha·op(A)[i,p] · op(B)[p,:]. With B
     * untransposed those rows are contiguous and the inner loop vectorises; a transposed B takes the
     * dot-product form instead. */
    if (!tb) {
        #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int i = 0; i < m; i++) {
            double *ci = c + (size_t)i * ldc;
            for (int p = 0; p < k; p++) {
                double aip = alpha * (ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p]);
                const double *bp = b + (size_t)p * ldb;
                for (int j = 0; j < n; j++) ci[j] += aip * bp[j];
            }
        }
    } else {
        #pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
        for (int i = 0; i < m; i++) {
            double *ci = c + (size_t)i * ldc;
            for (int j = 0; j < n; j++) {
                const double *bj = b + (size_t)j * ldb;
                double sum = 0;
                if (ta) for (int p = 0; p < k; p++) sum += a[(size_t)p * lda + i] * bj[p];
                else {
                    const double *ai = a + (size_t)i * lda;
                    for (int p = 0; p < k; p++) sum += ai[p] * bj[p];
                }
                ci[j] += alpha * sum;
            }
        }
    }
    return PN_OK;
}
