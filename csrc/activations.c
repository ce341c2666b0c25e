/* activations.c — the homework's activation functions and their gradients, applied in place.
 * The switch on the activation runs once per call; each case is its own tight loop. */
#include "internal.h"

#include <math.h>

/* Softmax of one row, stably: subtracting the row's max leaves the result unchanged and keeps
 * exp() from overflowing. */
static void softmax_row(double *x, int n)
{
    if (n == 0) return;
    double max = x[0];
    for (int j = 1; j < n; j++) if (x[j] > max) max = x[j];
    for (int j = 0; j < n; j++) x[j] -= max;
    pn_exp_array(x, x, (size_t)n);
    double sum = 0;
    for (int j = 0; j < n; j++) sum += x[j];
    for (int j = 0; j < n; j++) x[j] /= sum;
}

/* One run of n values: x ← f(x). The switch runs once per run; each case is its own tight loop. */
static void activate_run(double *x, size_t n, ACTIVATION a)
{
    switch (a) {
    case LINEAR:
    case SOFTMAX:   /* rows, not runs: pn_activate_block handles it */
        break;
    case LOGISTIC:  /* 1 / (1 + e^−x), with e^−x computed for the whole run at once */
        for (size_t i = 0; i < n; i++) x[i] = -x[i];
        pn_exp_array(x, x, n);
        for (size_t i = 0; i < n; i++) x[i] = 1.0 / (1.0 + x[i]);
        break;
    case RELU:
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
        break;
    case LRELU:
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0.1 * x[i];
        break;
    case TANH:
        for (size_t i = 0; i < n; i++) x[i] = tanh(x[i]);
        break;
    }
}

/* g ← g ∘ f′(y) on one run of n values. */
static void gradient_run(const double *y, double *g, size_t n, ACTIVATION a)
{
    switch (a) {
    case LINEAR:
    case SOFTMAX:
        break;
    case LOGISTIC:
        for (size_t i = 0; i < n; i++) g[i] *= y[i] * (1.0 - y[i]);
        break;
    case RELU:
        for (size_t i = 0; i < n; i++) g[i] = y[i] > 0 ? g[i] : 0;
        break;
    case LRELU:
        for (size_t i = 0; i < n; i++) g[i] = y[i] > 0 ? g[i] : 0.1 * g[i];
        break;
    case TANH:
        for (size_t i = 0; i < n; i++) g[i] *= 1.0 - y[i] * y[i];
        break;
    }
}

/* The element-wise work on a block of `rows` rows of `cols` values, `ld` apart. gemm calls these on
 * each tile of C it finishes (while the tile is in cache); activate_matrix and gradient_matrix call
 * them on a whole matrix, so the fused and the separate passes compute the same bits. A contiguous
 * block is one long run. */
void pn_activate_block(double *x, ptrdiff_t ld, int rows, int cols, ACTIVATION a)
{
    if (a == SOFTMAX) {
        for (int r = 0; r < rows; r++) softmax_row(x + r * ld, cols);
        return;
    }
    size_t n = (size_t)cols;
    if (ld == cols) {
        n *= (size_t)rows;
        rows = rows > 0;
    }
    for (int r = 0; r < rows; r++) activate_run(x + r * ld, n, a);
}

void pn_gradient_block(const double *y, ptrdiff_t ldy, double *g, ptrdiff_t ldg, int rows, int cols,
                       ACTIVATION a)
{
    size_t n = (size_t)cols;
    if (ldy == cols && ldg == cols) {
        n *= (size_t)rows;
        rows = rows > 0;
    }
    for (int r = 0; r < rows; r++) gradient_run(y + r * ldy, g + r * ldg, n, a);
}

int activate_matrix(matrix m, ACTIVATION a)
{
    int status = pn_check_activation("activate_matrix", a);
    if (!status) status = pn_check_matrix("activate_matrix", "m", m);
    if (status) return status;
    pn_activate_block(m.data, m.cols, m.rows, m.cols, a);
    return PN_OK;
}

int gradient_matrix(matrix m, ACTIVATION a, matrix d)
{
    int status = pn_check_activation("gradient_matrix", a);
    if (!status) status = pn_check_matrix("gradient_matrix", "m", m);
    if (!status) status = pn_check_matrix("gradient_matrix", "d", d);
    if (status) return status;
    if (m.rows != d.rows || m.cols != d.cols)
        return pn_fail(PN_ERR_SHAPE, "gradient_matrix: m is %dx%d but d is %dx%d (they must match)",
                       m.rows, m.cols, d.rows, d.cols);
    pn_gradient_block(m.data, m.cols, d.data, d.cols, d.rows, d.cols, a);
    return PN_OK;
}
