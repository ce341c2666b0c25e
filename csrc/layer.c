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
    pn_gemm(0, 0, in.rows, l->w.cols, l->w.rows, 1.0, in.data, in.cols, l->w.data, l->w.cols,
            beta, l->out.data, l->out.cols, pn_epilogue_activate(l->activation));   /* out = f(in·w) */
    return l->out;
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
