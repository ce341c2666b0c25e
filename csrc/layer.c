/* layer.c — one layer of the homework's network: its reusable workspace, its lifecycle (make_layer,
 * layer_add_bias, free_layer), the checks every layer-level call shares, and the two passes that read
 * like the lecture: forward is out = f(in·w), backward applies the chain rule (dw = inᵀ·delta,
 * dx = delta·wᵀ). The products are gemm's; buffers grow on a layer's first use and are reused, so a
 * training step allocates nothing. The update of the weights is the optimiser's (optim.c). */
#include "internal.h"

#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

int layer_add_norm(layer *l)
{
    if (!l || !l->w.data) return pn_fail(PN_ERR_VALUE, "layer_add_norm: the layer has no weights (make it with make_layer)");
    if (l->gain.data) return PN_OK;
    int n = l->w.cols;
    matrix p[6] = {make_matrix(1, n), make_matrix(1, n), make_matrix(1, n), make_matrix(1, n),
                   make_matrix(1, n), make_matrix(1, n)};
    for (int i = 0; i < 6; i++)
        if (!p[i].data) {
            for (int j = 0; j < 6; j++) free_matrix(p[j]);
            return PN_ERR_NOMEM;
        }
    for (int j = 0; j < n; j++) p[0].data[j] = 1.0;   /* gain 1, shift 0: the identity at the start */
    l->gain = p[0];
    l->shift = p[1];
    l->dgain = p[2];
    l->dshift = p[3];
    l->vgain = p[4];
    l->vshift = p[5];
    return PN_OK;
}

double pn_norm_eps(void) { return PN_NORM_EPS; }

void free_layer(layer *l)
{
    if (!l) return;
    free_matrix(l->w);
    free_matrix(l->dw);
    free_matrix(l->v);
    free_matrix(l->b);
    free_matrix(l->db);
    free_matrix(l->vb);
    free_matrix(l->gain);
    free_matrix(l->shift);
    free_matrix(l->dgain);
    free_matrix(l->dshift);
    free_matrix(l->vgain);
    free_matrix(l->vshift);
    if (l->ws) {   /* out, mask and the scratch buffers are the workspace's */
        free(l->out.data);
        free(l->mask.data);
        free(l->ws->dx);
        free(l->ws->delta);
        free(l->ws->dropped);
        free(l->ws->adam_s);
        free(l->ws->adam_sb);
        free(l->ws->adam_sgain);
        free(l->ws->adam_sshift);
        free(l->ws->xhat);
        free(l->mean.data);
        free(l->rstd.data);
        for (struct pn_retired *r = l->ws->retired, *next; r; r = next) {
            next = r->next;
            free(r->buf);
            free(r);
        }
        free(l->ws);
    }
    memset(l, 0, sizeof *l);
}

int pn_check_layer(const char *fn, const layer *l)
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
    matrix norm[6] = {l->gain, l->shift, l->dgain, l->dshift, l->vgain, l->vshift};
    int with_norm = l->gain.data != NULL;
    for (int i = 0; i < 6; i++)
        if ((norm[i].data != NULL) != with_norm || (with_norm && (norm[i].rows != 1 || norm[i].cols != l->w.cols)))
            return pn_fail(PN_ERR_SHAPE, "%s: the layer's normalisation parameters are inconsistent: gain is %dx%d, "
                           "shift %dx%d, dgain %dx%d, dshift %dx%d, vgain %dx%d, vshift %dx%d, but w is %dx%d "
                           "(all must be 1x%d, or all empty; use layer_add_norm)", fn, l->gain.rows, l->gain.cols,
                           l->shift.rows, l->shift.cols, l->dgain.rows, l->dgain.cols, l->dshift.rows,
                           l->dshift.cols, l->vgain.rows, l->vgain.cols, l->vshift.rows, l->vshift.cols,
                           l->w.rows, l->w.cols, l->w.cols);
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
        {"gain", l->gain.data, pn_size(l->gain)}, {"shift", l->shift.data, pn_size(l->shift)},
        {"dgain", l->dgain.data, pn_size(l->dgain)}, {"dshift", l->dshift.data, pn_size(l->dshift)},
        {"vgain", l->vgain.data, pn_size(l->vgain)}, {"vshift", l->vshift.data, pn_size(l->vshift)},
        {"normalised copy", ws ? ws->xhat : NULL, ws ? ws->xhat_cap : 0},
        {"mean", l->mean.data, ws ? ws->mean_cap : 0}, {"rstd", l->rstd.data, ws ? ws->rstd_cap : 0},
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

int pn_check_apart(const char *fn, const char *name, matrix m, const layer *l, int index)
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
    if (!l->gain.data) {
        pn_gemm(0, 0, in.rows, l->w.cols, l->w.rows, 1.0, in.data, in.cols, l->w.data, l->w.cols,
                beta, l->out.data, l->out.cols, pn_epilogue_activate(l->activation));   /* out = f(in·w) */
        return l->out;
    }
    if (pn_reserve(ws, &ws->xhat, &ws->xhat_cap, need, "forward_layer")) return empty;
    if (pn_reserve(ws, &l->mean.data, &ws->mean_cap, (size_t)in.rows, "forward_layer") ||
        pn_reserve(ws, &l->rstd.data, &ws->rstd_cap, (size_t)in.rows, "forward_layer"))
        return empty;
    l->mean.rows = l->rstd.rows = in.rows;
    l->mean.cols = l->rstd.cols = 1;
    gemm(0, 0, in.rows, l->w.cols, l->w.rows, 1.0, in.data, in.cols, l->w.data, l->w.cols,
         beta, l->out.data, l->out.cols);                                              /* z = in·w */
    pn_norm_rows(l->out.data, in.rows, l->out.cols, l->gain.data, l->shift.data, ws->xhat, l->mean.data,
                 l->rstd.data);                                                        /* u = g∘ẑ + s */
    pn_activate_block(l->out.data, l->out.cols, in.rows, l->out.cols, l->activation);  /* out = f(u) */
    return l->out;
}

/* z is (rows × cols); gain and shift are (cols); xhat (rows × cols), mean and rstd (rows) or NULL.
 * Two passes per row (mean, then variance about it) so a large common offset does not cancel. */
void pn_norm_rows(double *z, int rows, int cols, const double *gain, const double *shift, double *xhat,
                  double *mean, double *rstd)
{
    for (int i = 0; i < rows; i++) {
        double *zi = z + (size_t)i * cols;
        double mu = 0, var = 0;
        for (int j = 0; j < cols; j++) mu += zi[j];
        mu /= cols;
        for (int j = 0; j < cols; j++) var += (zi[j] - mu) * (zi[j] - mu);
        double r = 1.0 / sqrt(var / cols + PN_NORM_EPS);
        if (xhat) {
            double *xi = xhat + (size_t)i * cols;
            for (int j = 0; j < cols; j++) {
                xi[j] = (zi[j] - mu) * r;
                zi[j] = gain[j] * xi[j] + shift[j];
            }
            mean[i] = mu;
            rstd[i] = r;
        } else {
            for (int j = 0; j < cols; j++) zi[j] = gain[j] * ((zi[j] - mu) * r) + shift[j];
        }
    }
}

/* Through u = g∘ẑ + s with ẑ = (z − μ)·r: du (rows × cols) becomes dz in place, and dgain = Σ du∘ẑ,
 * dshift = Σ du over rows. Per row, with a = g∘du: dz = r·(a − mean(a) − ẑ·mean(a∘ẑ)). */
static void norm_backward(layer *l, matrix du)
{
    const double *gain = l->gain.data, *xhat = l->ws->xhat, *rstd = l->rstd.data;
    double *dgain = l->dgain.data, *dshift = l->dshift.data;
    int cols = du.cols;
    memset(dgain, 0, (size_t)cols * sizeof(double));
    memset(dshift, 0, (size_t)cols * sizeof(double));
    for (int i = 0; i < du.rows; i++) {
        double *d = du.data + (size_t)i * cols;
        const double *x = xhat + (size_t)i * cols;
        double sum_a = 0, sum_ax = 0;
        for (int j = 0; j < cols; j++) {
            dgain[j] += d[j] * x[j];
            dshift[j] += d[j];
            double a = gain[j] * d[j];
            sum_a += a;
            sum_ax += a * x[j];
        }
        double mean_a = sum_a / cols, mean_ax = sum_ax / cols;
        for (int j = 0; j < cols; j++) d[j] = rstd[i] * (gain[j] * d[j] - mean_a - x[j] * mean_ax);
    }
}

matrix forward_layer(layer *l, matrix in)
{
    if (pn_check_layer("forward_layer", l) || pn_check_matrix("forward_layer", "in", in)) return empty;
    if (in.cols != l->w.rows) {
        pn_fail(PN_ERR_SHAPE, "forward_layer: input is %dx%d but the layer's w is %dx%d "
                "(input columns must equal weight rows)", in.rows, in.cols, l->w.rows, l->w.cols);
        return empty;
    }
    if (pn_check_apart("forward_layer", "in", in, l, -1)) return empty;
    return pn_forward_layer(l, in, 1);
}

matrix pn_backward_layer(layer *l, matrix delta, int need_dx)
{
    const matrix in = l->in, w = l->w;
    gradient_matrix(l->out, l->activation, delta);                        /* delta = dL/d(pre-activation) */
    if (l->gain.data) norm_backward(l, delta);                             /* through the norm: dL/d(in·w) */
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
int pn_check_saved(const char *fn, const layer *l, matrix delta)
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
    if (pn_check_layer("backward_layer", l) || pn_check_matrix("backward_layer", "delta", delta) ||
        pn_check_saved("backward_layer", l, delta) || pn_check_apart("backward_layer", "delta", delta, l, -1))
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
