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
    double sum = 0;
    for (int j = 0; j < n; j++) {
        x[j] = exp(x[j] - max);
        sum += x[j];
    }
    for (int j = 0; j < n; j++) x[j] /= sum;
}

int activate_matrix(matrix m, ACTIVATION a)
{
    int status = pn_check_activation("activate_matrix", a);
    if (!status) status = pn_check_matrix("activate_matrix", "m", m);
    if (status) return status;
    size_t n = pn_size(m);
    double *x = m.data;
    switch (a) {
    case LINEAR:
        break;
    case LOGISTIC:
        for (size_t i = 0; i < n; i++) x[i] = 1.0 / (1.0 + exp(-x[i]));
        break;
    case RELU:
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
        break;
    case LRELU:
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0.1 * x[i];
        break;
    case SOFTMAX:
        for (int i = 0; i < m.rows; i++) softmax_row(x + (size_t)i * m.cols, m.cols);
        break;
    case TANH:
        for (size_t i = 0; i < n; i++) x[i] = tanh(x[i]);
        break;
    }
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
    size_t n = pn_size(m);
    const double *y = m.data;
    double *g = d.data;
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
    return PN_OK;
}
