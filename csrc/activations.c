/* activations.c — the homework's activation functions and their gradients, applied in place, and the
 * one table of activations (name and kernels) that the name lookup, the "valid: ..." list of an error
 * and the dispatch all read. The table is consulted once per call; each kernel is its own tight loop. */
#include "internal.h"

#include <math.h>
#include <stdio.h>

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

/* Each activation's kernels on one run of n values: x ← f(x), and g ← g ∘ f′(y) with y = f(x) (the
 * gradient reads the layer's output, so a layer keeps only out). */
static void linear_activate(double *x, size_t n) { (void)x, (void)n; }
static void linear_gradient(const double *y, double *g, size_t n) { (void)y, (void)g, (void)n; }

/* 1 / (1 + e^−x), with e^−x computed for the whole run at once */
static void logistic_activate(double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = -x[i];
    pn_exp_array(x, x, n);
    for (size_t i = 0; i < n; i++) x[i] = 1.0 / (1.0 + x[i]);
}
static void logistic_gradient(const double *y, double *g, size_t n)
{
    for (size_t i = 0; i < n; i++) g[i] *= y[i] * (1.0 - y[i]);
}

static void relu_activate(double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
}
static void relu_gradient(const double *y, double *g, size_t n)
{
    for (size_t i = 0; i < n; i++) g[i] = y[i] > 0 ? g[i] : 0;
}

static void lrelu_activate(double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0.1 * x[i];
}
static void lrelu_gradient(const double *y, double *g, size_t n)
{
    for (size_t i = 0; i < n; i++) g[i] = y[i] > 0 ? g[i] : 0.1 * g[i];
}

static void tanh_activate(double *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = tanh(x[i]);
}
static void tanh_gradient(const double *y, double *g, size_t n)
{
    for (size_t i = 0; i < n; i++) g[i] *= 1.0 - y[i] * y[i];
}

/* Softmax's gradient is folded into the cross-entropy's dL = y − p, so it passes g through. */
static void softmax_activate(double *x, size_t n) { softmax_row(x, (int)n); }

/* The one table of activations, indexed by ACTIVATION: the name (pn_activation_name, the "valid:"
 * list and Python's list of activations all come from it), the two kernels, and whether f works on a
 * whole row (softmax) rather than on each value alone. Adding an activation: its enum value in
 * pynet_api.h, its kernels above, its line here. */
typedef void activate_fn(double *x, size_t n);
typedef void gradient_fn(const double *y, double *g, size_t n);
static const struct {
    const char *name;
    activate_fn *activate;
    gradient_fn *gradient;
    int per_row;
} activations[] = {
    [LINEAR] = {"LINEAR", linear_activate, linear_gradient, 0},
    [LOGISTIC] = {"LOGISTIC", logistic_activate, logistic_gradient, 0},
    [RELU] = {"RELU", relu_activate, relu_gradient, 0},
    [LRELU] = {"LRELU", lrelu_activate, lrelu_gradient, 0},
    [SOFTMAX] = {"SOFTMAX", softmax_activate, linear_gradient, 1},
    [TANH] = {"TANH", tanh_activate, tanh_gradient, 0},
};
enum { N_ACTIVATIONS = sizeof activations / sizeof activations[0] };

static int known(ACTIVATION a) { return (int)a >= 0 && (int)a < N_ACTIVATIONS && activations[a].name; }

const char *pn_activation_name(ACTIVATION a) { return known(a) ? activations[a].name : NULL; }

int pn_check_activation(const char *fn, ACTIVATION a)
{
    if (known(a)) return PN_OK;
    char valid[256];
    size_t used = 0;
    valid[0] = '\0';
    for (int i = 0; i < N_ACTIVATIONS && used < sizeof valid; i++)
        if (activations[i].name)
            used += (size_t)snprintf(valid + used, sizeof valid - used, "%s%s=%d", used ? ", " : "",
                                     activations[i].name, i);
    return pn_fail(PN_ERR_VALUE, "%s: unknown activation %d; valid: %s", fn, (int)a, valid);
}

/* The element-wise work on a block of `rows` rows of `cols` values, `ld` apart. gemm calls these on
 * each tile of C it finishes (while the tile is in cache); activate_matrix and gradient_matrix call
 * them on a whole matrix, so the fused and the separate passes compute the same bits. A contiguous
 * block is one long run. */
void pn_activate_block(double *x, ptrdiff_t ld, int rows, int cols, ACTIVATION a)
{
    activate_fn *f = activations[a].activate;   /* dispatched once, outside the loops */
    size_t n = (size_t)cols;
    if (ld == cols && !activations[a].per_row) {
        n *= (size_t)rows;
        rows = rows > 0;
    }
    for (int r = 0; r < rows; r++) f(x + r * ld, n);
}

void pn_gradient_block(const double *y, ptrdiff_t ldy, double *g, ptrdiff_t ldg, int rows, int cols,
                       ACTIVATION a)
{
    size_t n = (size_t)cols;
    if (ldy == cols && ldg == cols) {
        n *= (size_t)rows;
        rows = rows > 0;
    }
    gradient_fn *f = activations[a].gradient;
    for (int r = 0; r < rows; r++) f(y + r * ldy, g + r * ldg, n);
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
