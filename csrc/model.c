/* model.c — a model as a stack of layers: its lifecycle (alloc_layers, free_layers, free_model), the
 * whole-model forward and backward, prediction and accuracy on any number of rows (in chunks, over
 * threads, without touching the layers' training state), evaluate_model, the cross-entropy loss, and
 * the one correct-counting helper the evaluation and the training loop share. */
#include "internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static const matrix empty = {0, 0, NULL};

/* ---- models ------------------------------------------------------------------------------------ */

layer *alloc_layers(int n)
{
    if (n < 1) {
        pn_fail(PN_ERR_VALUE, "alloc_layers: need at least 1 layer, got %d", n);
        return NULL;
    }
    layer *ls = calloc((size_t)n, sizeof *ls);
    if (!ls) pn_fail(PN_ERR_NOMEM, "alloc_layers: out of memory for %d layers", n);
    return ls;
}

void free_layers(layer *layers, int n)
{
    if (!layers) return;
    for (int i = 0; i < n; i++) free_layer(&layers[i]);
    free(layers);
}

void free_model(model m) { free_layers(m.layers, m.n); }

int pn_check_model(const char *fn, model m)
{
    if (m.n < 1 || !m.layers) return pn_fail(PN_ERR_VALUE, "%s: the model has no layers", fn);
    for (int i = 0; i < m.n; i++) {
        int status = pn_check_layer(fn, &m.layers[i]);
        if (status) return status;
        if (i > 0 && m.layers[i - 1].w.cols != m.layers[i].w.rows)
            return pn_fail(PN_ERR_SHAPE, "%s: layer %d outputs %d values but layer %d takes %d "
                           "(w is %dx%d, then %dx%d)", fn, i - 1, m.layers[i - 1].w.cols, i,
                           m.layers[i].w.rows, m.layers[i - 1].w.rows, m.layers[i - 1].w.cols,
                           m.layers[i].w.rows, m.layers[i].w.cols);
    }
    return PN_OK;
}

static int check_input(const char *fn, model m, matrix X, const char *name)
{
    int status = pn_check_matrix(fn, name, X);
    if (status) return status;
    if (X.cols != m.layers[0].w.rows)
        return pn_fail(PN_ERR_SHAPE, "%s: %s is %dx%d but the first layer's w is %dx%d "
                       "(%s columns must equal its rows)", fn, name, X.rows, X.cols,
                       m.layers[0].w.rows, m.layers[0].w.cols, name);
    return PN_OK;
}

matrix pn_forward_model(model m, matrix X, int training)
{
    for (int i = 0; i < m.n; i++) {
        X = pn_forward_layer(&m.layers[i], X, training);
        if (!X.data && pn_size(X)) return empty;   /* out of memory, recorded */
    }
    return X;
}

matrix forward_model(model m, matrix X)
{
    if (pn_check_model("forward_model", m) || check_input("forward_model", m, X, "X")) return empty;
    for (int i = 0; i < m.n; i++)   /* X is layer 0's saved input: no layer may write over it */
        if (pn_check_apart("forward_model", "X", X, &m.layers[i], i)) return empty;
    return pn_forward_model(m, X, 1);
}

/* delta is the model's to overwrite; the first layer's input gradient is never needed. Fails only
 * when a dx buffer cannot grow (out of memory, recorded). */
int pn_backward_model(model m, matrix delta)
{
    for (int i = m.n - 1; i >= 0; i--) {
        delta = pn_backward_layer(&m.layers[i], delta, i > 0);
        if (i > 0 && !delta.data && m.layers[i].out.rows && m.layers[i].w.rows) return PN_ERR_NOMEM;
    }
    return PN_OK;
}

int backward_model(model m, matrix dL)
{
    int status = pn_check_model("backward_model", m);
    if (!status) status = pn_check_matrix("backward_model", "dL", dL);
    for (int i = m.n - 1; i >= 0 && !status; i--) {   /* dL must match the last output; each layer's
                                                          saved forward must have dL's rows */
        matrix expected = {dL.rows, i == m.n - 1 ? dL.cols : m.layers[i].w.cols, NULL};
        status = pn_check_saved("backward_model", &m.layers[i], expected);
    }
    if (status) return status;
    layer *last = &m.layers[m.n - 1];
    status = pn_reserve(last->ws, &last->ws->delta, &last->ws->delta_cap, pn_size(dL), "backward_model");
    if (status) return status;
    matrix delta = {dL.rows, dL.cols, last->ws->delta};   /* the caller's dL stays as it was */
    if (pn_size(dL)) memcpy(delta.data, dL.data, pn_size(dL) * sizeof(double));
    return pn_backward_model(m, delta);
}


/* ---- evaluation -------------------------------------------------------------------------------- */

enum { PREDICT_CHUNK = 256 };

/* Runs the model on rows [r0, r0+rows) of X without touching any layer's saved state. `a` and `b`
 * are scratch of PREDICT_CHUNK × widest-layer doubles; the result lands in `a` or `b` (returned). */
static double *predict_chunk(model m, matrix X, int r0, int rows, double *a, double *b)
{
    const double *in = X.data + (size_t)r0 * X.cols;
    int in_cols = X.cols;
    double *out = a;
    for (int i = 0; i < m.n; i++) {
        const layer *l = &m.layers[i];
        out = (i % 2 == 0) ? a : b;
        double beta = 0.0;
        if (l->b.data) {
            for (int r = 0; r < rows; r++) memcpy(out + (size_t)r * l->w.cols, l->b.data, (size_t)l->w.cols * sizeof(double));
            beta = 1.0;
        }
        if (l->gain.data) {   /* out = f(norm(in·w)): the activation waits for the normalisation */
            gemm(0, 0, rows, l->w.cols, l->w.rows, 1.0, in, in_cols, l->w.data, l->w.cols, beta, out, l->w.cols);
            pn_norm_rows(out, rows, l->w.cols, l->gain.data, l->shift.data, NULL, NULL, NULL);
            pn_activate_block(out, l->w.cols, rows, l->w.cols, l->activation);
        } else {
            pn_gemm(0, 0, rows, l->w.cols, l->w.rows, 1.0, in, in_cols, l->w.data, l->w.cols, beta, out, l->w.cols,
                    pn_epilogue_activate(l->activation));   /* out = f(in·w), activation fused */
        }
        in = out;
        in_cols = l->w.cols;
    }
    return out;
}

static int widest(model m)
{
    int w = 0;
    for (int i = 0; i < m.n; i++) if (m.layers[i].w.cols > w) w = m.layers[i].w.cols;
    return w;
}

/* Evaluation runs whole chunks on each thread (one parallel region, no barrier per chunk), each with
 * its own slice of the scratch; the products inside then run on one thread. Every row's result is
 * the same whichever thread computes it. */
static int eval_threads(int rows)
{
    int chunks = (rows + PREDICT_CHUNK - 1) / PREDICT_CHUNK, t = pn_threads();
    return chunks < t ? (chunks > 0 ? chunks : 1) : t;
}

/* This thread's two scratch areas of `scratch` doubles each, in a buffer of 2 · scratch per thread. */
static double *thread_scratch(double *buf, size_t scratch)
{
#ifdef _OPENMP
    return buf + 2 * scratch * (size_t)omp_get_thread_num();
#else
    (void)scratch;
    return buf;
#endif
}

int predict_model(model m, matrix X, matrix out)
{
    int status = pn_check_model("predict_model", m);
    if (!status) status = check_input("predict_model", m, X, "X");
    if (!status) status = pn_check_matrix("predict_model", "out", out);
    if (status) return status;
    int classes = m.layers[m.n - 1].w.cols;
    if (out.rows != X.rows || out.cols != classes)
        return pn_fail(PN_ERR_SHAPE, "predict_model: out is %dx%d but X is %dx%d and the model gives %d "
                       "outputs (out must be %dx%d)", out.rows, out.cols, X.rows, X.cols, classes, X.rows, classes);
    int threads = eval_threads(X.rows);
    size_t scratch = (size_t)PREDICT_CHUNK * widest(m);
    double *buf = pn_alloc(2 * scratch * threads, "predict_model");
    if (!buf) return PN_ERR_NOMEM;
    #pragma omp parallel num_threads(threads) if (threads > 1)
    {
        double *a = thread_scratch(buf, scratch), *b = a + scratch;
        #pragma omp for schedule(static)
        for (int r0 = 0; r0 < X.rows; r0 += PREDICT_CHUNK) {
            int rows = X.rows - r0 < PREDICT_CHUNK ? X.rows - r0 : PREDICT_CHUNK;
            double *p = predict_chunk(m, X, r0, rows, a, b);
            memcpy(out.data + (size_t)r0 * classes, p, (size_t)rows * classes * sizeof(double));
        }
    }
    free(buf);
    return PN_OK;
}

/* Index of the first largest value, as the homework's max_index. */
int pn_max_index(const double *a, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++) if (a[i] > a[best]) best = i;
    return best;
}

/* d.X and d.y are valid matrices with the same, nonzero number of rows. */
int pn_check_data(const char *fn, model m, data d)
{
    int status = pn_check_dataset(fn, d);
    if (!status) status = check_input(fn, m, d.X, "d.X");
    if (status) return status;
    int classes = m.layers[m.n - 1].w.cols;
    if (d.y.cols != classes)
        return pn_fail(PN_ERR_SHAPE, "%s: d.y is %dx%d but the last layer's w is %dx%d (%d outputs)", fn,
                       d.y.rows, d.y.cols, m.layers[m.n - 1].w.rows, classes, classes);
    return PN_OK;
}

double accuracy_model(model m, data d)
{
    if (pn_check_model("accuracy_model", m) || pn_check_data("accuracy_model", m, d)) return NAN;
    int classes = d.y.cols;
    int threads = eval_threads(d.X.rows);
    size_t scratch = (size_t)PREDICT_CHUNK * widest(m);
    double *buf = pn_alloc(2 * scratch * threads, "accuracy_model");
    if (!buf) return NAN;
    long correct = 0;
    #pragma omp parallel num_threads(threads) if (threads > 1) reduction(+ : correct)
    {
        double *a = thread_scratch(buf, scratch), *b = a + scratch;
        #pragma omp for schedule(static)
        for (int r0 = 0; r0 < d.X.rows; r0 += PREDICT_CHUNK) {
            int rows = d.X.rows - r0 < PREDICT_CHUNK ? d.X.rows - r0 : PREDICT_CHUNK;
            const double *p = predict_chunk(m, d.X, r0, rows, a, b);
            correct += pn_count_correct(d.y.data + (size_t)r0 * classes, p, rows, classes);
        }
    }
    free(buf);
    return (double)correct / d.X.rows;
}

double pn_cross_entropy(matrix y, matrix p)
{
    double sum = 0;
    for (size_t i = 0; i < pn_size(y); i++) {
        double pi = p.data[i] < DBL_MIN ? DBL_MIN : p.data[i];   /* log(0) would be -inf; NaN passes */
        sum += -y.data[i] * log(pi);
    }
    return sum / y.rows;
}

double cross_entropy_loss(matrix y, matrix p)
{
    if (pn_check_matrix("cross_entropy_loss", "y", y) || pn_check_matrix("cross_entropy_loss", "p", p))
        return NAN;
    if (y.rows != p.rows || y.cols != p.cols) {
        pn_fail(PN_ERR_SHAPE, "cross_entropy_loss: y is %dx%d but p is %dx%d (they must match)",
                y.rows, y.cols, p.rows, p.cols);
        return NAN;
    }
    if (y.rows == 0) {
        pn_fail(PN_ERR_VALUE, "cross_entropy_loss: y and p have no rows");
        return NAN;
    }
    return pn_cross_entropy(y, p);
}

int pn_count_correct(const double *y, const double *p, int rows, int cols)
{
    int correct = 0;
    for (int i = 0; i < rows; i++)
        correct += pn_max_index(p + (size_t)i * cols, cols) == pn_max_index(y + (size_t)i * cols, cols);
    return correct;
}


int evaluate_model(model m, data d, double *loss, double *accuracy)
{
    const char *fn = "evaluate_model";
    int status = pn_check_model(fn, m);
    if (!status) status = pn_check_data(fn, m, d);
    if (status) return status;
    matrix p = make_matrix(d.y.rows, d.y.cols);
    if (!p.data) return PN_ERR_NOMEM;
    status = predict_model(m, d.X, p);
    if (!status) {
        if (loss) *loss = pn_cross_entropy(d.y, p);
        if (accuracy) *accuracy = (double)pn_count_correct(d.y.data, p.data, p.rows, p.cols) / p.rows;
    }
    free_matrix(p);
    return status;
}

/* ---- diagnostics ------------------------------------------------------------------------------- */

int layer_step_norms(const layer *l, double *w_before, double *norms)
{
    /* w_before is w.rows × w.cols, the weights before the step; it is overwritten with w − w_before */
    int status = pn_check_layer("layer_step_norms", l);
    if (status) return status;
    if (!w_before || !norms) return pn_fail(PN_ERR_VALUE, "layer_step_norms: w_before and norms must not be NULL");
    size_t n = pn_size(l->w);
    norms[0] = sqrt(pn_sum_squares(l->dw.data, n));
    norms[1] = sqrt(pn_sum_squares(w_before, n));
    for (size_t i = 0; i < n; i++) w_before[i] = l->w.data[i] - w_before[i];
    norms[2] = sqrt(pn_sum_squares(w_before, n));
    return PN_OK;
}
