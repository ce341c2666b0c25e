/* classifier.c — the homework's neural network: layers, a model as a stack of layers, the loss, and
 * the training loop. Reads like the lecture: forward is out = f(in·w), backward applies the chain
 * rule, update is SGD with momentum and weight decay. The heavy lifting is in gemm and the
 * activation kernels; buffers are allocated on a layer's first use and reused, so a training step
 * allocates nothing. */
#include "internal.h"

#include <float.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

static const matrix empty = {0, 0, NULL};

/* ---- layer buffers ----------------------------------------------------------------------------- */

struct pn_retired {
    struct pn_retired *next;
    double *buf;
};

int pn_reserve(layer_workspace *ws, double **buf, size_t *cap, size_t need, const char *who)
{
    if (need <= *cap) return PN_OK;
    size_t grown = *cap + *cap / 2;
    size_t new_cap = need > grown ? need : grown;
    double *fresh = pn_alloc(new_cap, who);
    if (!fresh) return PN_ERR_NOMEM;
    if (*buf) {
        struct pn_retired *r = malloc(sizeof *r);
        if (!r) {
            free(fresh);
            return pn_fail(PN_ERR_NOMEM, "%s: out of memory", who);
        }
        r->buf = *buf;
        r->next = ws->retired;
        ws->retired = r;
    }
    *buf = fresh;
    *cap = new_cap;
    return PN_OK;
}

/* ---- layers ------------------------------------------------------------------------------------ */

layer make_layer(int input, int output, ACTIVATION activation)
{
    layer l;
    memset(&l, 0, sizeof l);
    if (pn_check_activation("make_layer", activation)) return l;
    if (input < 1 || output < 1) {
        pn_fail(PN_ERR_SHAPE, "make_layer: input and output sizes must be >= 1, got %d and %d", input, output);
        return l;
    }
    l.activation = activation;
    l.ws = calloc(1, sizeof *l.ws);
    if (!l.ws) {
        pn_fail(PN_ERR_NOMEM, "make_layer: out of memory");
        return l;
    }
    l.w = random_matrix(input, output, sqrt(2.0 / input));
    l.dw = make_matrix(input, output);
    l.v = make_matrix(input, output);
    if (!l.w.data || !l.dw.data || !l.v.data) {
        free_layer(&l);   /* the failing make_matrix recorded why */
        return l;
    }
    return l;
}

int layer_add_bias(layer *l)
{
    if (!l || !l->w.data) return pn_fail(PN_ERR_VALUE, "layer_add_bias: the layer has no weights (make it with make_layer)");
    if (l->b.data) return PN_OK;
    matrix b = make_matrix(1, l->w.cols), db = make_matrix(1, l->w.cols), vb = make_matrix(1, l->w.cols);
    if (!b.data || !db.data || !vb.data) {
        free_matrix(b);
        free_matrix(db);
        free_matrix(vb);
        return PN_ERR_NOMEM;
    }
    l->b = b;
    l->db = db;
    l->vb = vb;
    return PN_OK;
}

void free_layer(layer *l)
{
    if (!l) return;
    free_matrix(l->w);
    free_matrix(l->dw);
    free_matrix(l->v);
    free_matrix(l->b);
    free_matrix(l->db);
    free_matrix(l->vb);
    if (l->ws) {   /* out, mask and the scratch buffers are the workspace's */
        free(l->out.data);
        free(l->mask.data);
        free(l->ws->dx);
        free(l->ws->delta);
        free(l->ws->dropped);
        free(l->ws->adam_s);
        free(l->ws->adam_sb);
        for (struct pn_retired *r = l->ws->retired, *next; r; r = next) {
            next = r->next;
            free(r->buf);
            free(r);
        }
        free(l->ws);
    }
    memset(l, 0, sizeof *l);
}

static int check_layer(const char *fn, const layer *l)
{
    if (!l) return pn_fail(PN_ERR_VALUE, "%s: layer is NULL", fn);
    if (!l->ws || !l->w.data || !l->dw.data || !l->v.data)
        return pn_fail(PN_ERR_VALUE, "%s: the layer has no weights or buffers (make it with make_layer)", fn);
    if (l->dw.rows != l->w.rows || l->dw.cols != l->w.cols || l->v.rows != l->w.rows || l->v.cols != l->w.cols)
        return pn_fail(PN_ERR_SHAPE, "%s: the layer's w is %dx%d but dw is %dx%d and v is %dx%d", fn,
                       l->w.rows, l->w.cols, l->dw.rows, l->dw.cols, l->v.rows, l->v.cols);
    if (l->b.data && (l->b.rows != 1 || l->b.cols != l->w.cols || !l->db.data || !l->vb.data ||
                      pn_size(l->db) != pn_size(l->b) || pn_size(l->vb) != pn_size(l->b)))
        return pn_fail(PN_ERR_SHAPE, "%s: the layer's bias is %dx%d but w is %dx%d (the bias must be 1x%d, "
                       "with db and vb alike)", fn, l->b.rows, l->b.cols, l->w.rows, l->w.cols, l->w.cols);
    if (!(l->dropout >= 0 && l->dropout < 1))
        return pn_fail(PN_ERR_VALUE, "%s: the layer's dropout must be in [0, 1), got %g", fn, l->dropout);
    return pn_check_activation(fn, l->activation);
}

/* A matrix the caller passes in must not share memory with a buffer of the layer that the call writes
 * or reads while writing others (say `forward_layer(l, l.out)`): the result would be garbage.
 * Returns the name of the first buffer it shares memory with, or NULL. */
static const char *shared_buffer(matrix m, const layer *l)
{
    if (!m.data || !pn_size(m)) return NULL;
    const layer_workspace *ws = l->ws;
    struct { const char *name; const double *p; size_t n; } bufs[] = {
        {"w", l->w.data, pn_size(l->w)}, {"dw", l->dw.data, pn_size(l->dw)}, {"v", l->v.data, pn_size(l->v)},
        {"b", l->b.data, pn_size(l->b)}, {"db", l->db.data, pn_size(l->db)}, {"vb", l->vb.data, pn_size(l->vb)},
        {"out", l->out.data, ws ? ws->out_cap : 0}, {"mask", l->mask.data, ws ? ws->mask_cap : 0},
        {"input gradient", ws ? ws->dx : NULL, ws ? ws->dx_cap : 0},
        {"dropout copy", ws ? ws->dropped : NULL, ws ? ws->dropped_cap : 0},
        {"delta copy", ws ? ws->delta : NULL, ws ? ws->delta_cap : 0},
    };
    uintptr_t m0 = (uintptr_t)m.data, m1 = (uintptr_t)(m.data + pn_size(m));
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        if (!bufs[i].p || !bufs[i].n) continue;
        uintptr_t b0 = (uintptr_t)bufs[i].p, b1 = (uintptr_t)(bufs[i].p + bufs[i].n);
        if (m0 < b1 && b0 < m1) return bufs[i].name;
    }
    return NULL;
}

static int check_apart(const char *fn, const char *name, matrix m, const layer *l, int index)
{
    const char *shared = shared_buffer(m, l);
    if (!shared) return PN_OK;
    if (index < 0)
        return pn_fail(PN_ERR_VALUE, "%s: %s shares memory with the layer's %s, which this call overwrites or "
                       "needs intact; pass a copy", fn, name, shared);
    return pn_fail(PN_ERR_VALUE, "%s: %s shares memory with layer %d's %s, which this call overwrites or needs "
                   "intact; pass a copy", fn, name, index, shared);
}

/* Inverted dropout on the input: each entry is kept with probability 1 − p and scaled by 1/(1 − p),
 * so the expected input is unchanged and evaluation needs no rescaling. Returns the dropped copy. */
static matrix drop_input(layer *l, matrix in)
{
    layer_workspace *ws = l->ws;
    size_t n = pn_size(in);
    if (pn_reserve(ws, &l->mask.data, &ws->mask_cap, n, "forward_layer") ||
        pn_reserve(ws, &ws->dropped, &ws->dropped_cap, n, "forward_layer"))
        return empty;
    double keep = 1.0 - l->dropout, scale = 1.0 / keep;
    double *mask = l->mask.data, *dropped = ws->dropped;
    for (size_t i = 0; i < n; i++) {
        mask[i] = rand_uniform() < keep ? scale : 0.0;
        dropped[i] = in.data[i] * mask[i];
    }
    l->mask.rows = in.rows;
    l->mask.cols = in.cols;
    return (matrix){in.rows, in.cols, dropped};
}

matrix pn_forward_layer(layer *l, matrix in, int training)
{
    layer_workspace *ws = l->ws;
    l->mask.rows = l->mask.cols = 0;
    if (training && l->dropout > 0) {
        in = drop_input(l, in);
        if (!in.data && pn_size(in)) return empty;
    }
    size_t need = (size_t)in.rows * l->w.cols;
    if (pn_reserve(ws, &l->out.data, &ws->out_cap, need, "forward_layer")) return empty;
    l->in = in;
    l->out.rows = in.rows;
    l->out.cols = l->w.cols;
    double beta = 0.0;
    if (l->b.data) {   /* start every row at the bias and let gemm accumulate onto it */
        for (int i = 0; i < in.rows; i++)
            memcpy(l->out.data + (size_t)i * l->out.cols, l->b.data, (size_t)l->out.cols * sizeof(double));
        beta = 1.0;
    }
    pn_gemm(0, 0, in.rows, l->w.cols, l->w.rows, 1.0, in.data, in.cols, l->w.data, l->w.cols,
            beta, l->out.data, l->out.cols, pn_epilogue_activate(l->activation));   /* out = f(in·w) */
    return l->out;
}

matrix forward_layer(layer *l, matrix in)
{
    if (check_layer("forward_layer", l) || pn_check_matrix("forward_layer", "in", in)) return empty;
    if (in.cols != l->w.rows) {
        pn_fail(PN_ERR_SHAPE, "forward_layer: input is %dx%d but the layer's w is %dx%d "
                "(input columns must equal weight rows)", in.rows, in.cols, l->w.rows, l->w.cols);
        return empty;
    }
    if (check_apart("forward_layer", "in", in, l, -1)) return empty;
    return pn_forward_layer(l, in, 1);
}

matrix pn_backward_layer(layer *l, matrix delta, int need_dx)
{
    const matrix in = l->in, w = l->w;
    gradient_matrix(l->out, l->activation, delta);                        /* delta = dL/d(in·w) */
    gemm(1, 0, w.rows, w.cols, in.rows, 1.0, in.data, in.cols, delta.data, delta.cols,
         0.0, l->dw.data, l->dw.cols);                                     /* dw = inᵀ · delta */
    if (l->b.data) {                                                       /* db = Σ rows of delta */
        memset(l->db.data, 0, (size_t)w.cols * sizeof(double));
        for (int i = 0; i < delta.rows; i++)
            for (int j = 0; j < w.cols; j++) l->db.data[j] += delta.data[(size_t)i * delta.cols + j];
    }
    if (!need_dx) return empty;
    layer_workspace *ws = l->ws;
    if (pn_reserve(ws, &ws->dx, &ws->dx_cap, (size_t)delta.rows * w.rows, "backward_layer")) return empty;
    matrix dx = {delta.rows, w.rows, ws->dx};
    gemm(0, 1, delta.rows, w.rows, w.cols, 1.0, delta.data, delta.cols, w.data, w.cols,
         0.0, dx.data, dx.cols);                                           /* dx = delta · wᵀ */
    if (l->mask.rows == dx.rows && l->mask.cols == dx.cols)               /* through the dropout */
        for (size_t i = 0; i < pn_size(dx); i++) dx.data[i] *= l->mask.data[i];
    return dx;
}

/* backward_layer needs the forward pass it differentiates: out and the saved in, batch rows each. */
static int check_saved(const char *fn, const layer *l, matrix delta)
{
    if (delta.rows != l->out.rows || delta.cols != l->out.cols)
        return pn_fail(PN_ERR_SHAPE, "%s: delta is %dx%d but the layer's last output is %dx%d "
                       "(call forward first; delta must match its output)", fn, delta.rows, delta.cols,
                       l->out.rows, l->out.cols);
    if (l->in.rows != delta.rows || l->in.cols != l->w.rows || (!l->in.data && pn_size(l->in)))
        return pn_fail(PN_ERR_SHAPE, "%s: the layer's saved input is %dx%d but delta has %d rows and w "
                       "has %d rows (call forward first)", fn, l->in.rows, l->in.cols, delta.rows, l->w.rows);
    return PN_OK;
}

matrix backward_layer(layer *l, matrix delta)
{
    if (check_layer("backward_layer", l) || pn_check_matrix("backward_layer", "delta", delta) ||
        check_saved("backward_layer", l, delta) || check_apart("backward_layer", "delta", delta, l, -1))
        return empty;
    /* delta is overwritten first, and in is read after: they must not overlap either */
    if (pn_size(delta) && pn_size(l->in) && l->in.data &&
        (uintptr_t)delta.data < (uintptr_t)(l->in.data + pn_size(l->in)) &&
        (uintptr_t)l->in.data < (uintptr_t)(delta.data + pn_size(delta))) {
        pn_fail(PN_ERR_VALUE, "backward_layer: delta shares memory with the layer's saved input, which this call "
                "overwrites or needs intact; pass a copy");
        return empty;
    }
    return pn_backward_layer(l, delta, 1);
}

int update_layer(layer *l, double rate, double momentum, double decay)
{
    int status = check_layer("update_layer", l);
    if (status) return status;
    if (!isfinite(rate) || !isfinite(momentum) || !isfinite(decay))
        return pn_fail(PN_ERR_VALUE, "update_layer: rate, momentum and decay must be finite, got %g, %g, %g",
                       rate, momentum, decay);
    double *w = l->w.data, *v = l->v.data;
    const double *dw = l->dw.data;
    size_t n = pn_size(l->w);
    for (size_t i = 0; i < n; i++) {
        v[i] = dw[i] - decay * w[i] + momentum * v[i];
        w[i] += rate * v[i];
    }
    for (int j = 0; l->b.data && j < l->b.cols; j++) {   /* biases are not decayed */
        l->vb.data[j] = l->db.data[j] + momentum * l->vb.data[j];
        l->b.data[j] += rate * l->vb.data[j];
    }
    return PN_OK;
}

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
        int status = check_layer(fn, &m.layers[i]);
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
        if (check_apart("forward_model", "X", X, &m.layers[i], i)) return empty;
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
        status = check_saved("backward_model", &m.layers[i], expected);
    }
    if (status) return status;
    layer *last = &m.layers[m.n - 1];
    status = pn_reserve(last->ws, &last->ws->delta, &last->ws->delta_cap, pn_size(dL), "backward_model");
    if (status) return status;
    matrix delta = {dL.rows, dL.cols, last->ws->delta};   /* the caller's dL stays as it was */
    if (pn_size(dL)) memcpy(delta.data, dL.data, pn_size(dL) * sizeof(double));
    return pn_backward_model(m, delta);
}

int update_model(model m, double rate, double momentum, double decay)
{
    int status = pn_check_model("update_model", m);
    for (int i = 0; i < m.n && !status; i++) status = update_layer(&m.layers[i], rate, momentum, decay);
    return status;
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
        pn_gemm(0, 0, rows, l->w.cols, l->w.rows, 1.0, in, in_cols, l->w.data, l->w.cols, beta, out, l->w.cols,
                pn_epilogue_activate(l->activation));   /* out = f(in·w), activation fused */
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
static int check_dataset(const char *fn, data d)
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

int pn_check_data(const char *fn, model m, data d)
{
    int status = check_dataset(fn, d);
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
            for (int i = 0; i < rows; i++)
                correct += pn_max_index(p + (size_t)i * classes, classes) ==
                           pn_max_index(d.y.data + (size_t)(r0 + i) * classes, classes);
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

/* ---- batches ----------------------------------------------------------------------------------- */

data random_batch(data d, int n)
{
    data b = {empty, empty};
    if (check_dataset("random_batch", d)) return b;
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
