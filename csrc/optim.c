/* optim.c — what a training step does with the gradients: the homework's SGD with momentum and weight
 * decay (update_layer, update_model: v = dw − λw + m·v, w += rate·v), Adam, clipping by the global
 * gradient norm, learning-rate schedules, and the training configuration: its defaults
 * (default_train_config) and its one range check (pn_check_config), used by every training loop. */
#include "internal.h"

#include <math.h>
#include <string.h>

int pn_update_layer(layer *l, double rate, double momentum, double decay, double *sum)
{
    int status = pn_check_layer("update_layer", l);
    if (status) return status;
    if (!isfinite(rate) || !isfinite(momentum) || !isfinite(decay))
        return pn_fail(PN_ERR_VALUE, "update_layer: rate, momentum and decay must be finite, got %g, %g, %g",
                       rate, momentum, decay);
    /* pn_sgd_kernel (optim_kernels.c, threaded) returns the sum of the new weights, computed in the
     * same pass: NaN or infinite when any weight is, so train_steps' divergence check costs no extra
     * pass. Only its finiteness means anything: the threads' partial sums are added in no fixed order. */
    double total = pn_sgd_kernel(l->w.data, l->v.data, l->dw.data, pn_size(l->w), rate, momentum, decay);
    if (l->b.data)   /* biases are not decayed */
        total += pn_sgd_kernel(l->b.data, l->vb.data, l->db.data, (size_t)l->b.cols, rate, momentum, 0.0);
    if (l->gain.data) {   /* nor are the norm's gain and shift */
        total += pn_sgd_kernel(l->gain.data, l->vgain.data, l->dgain.data, (size_t)l->gain.cols, rate, momentum, 0.0);
        total += pn_sgd_kernel(l->shift.data, l->vshift.data, l->dshift.data, (size_t)l->shift.cols, rate, momentum,
                               0.0);
    }
    if (sum) *sum = total;
    return PN_OK;
}

int update_layer(layer *l, double rate, double momentum, double decay)
{
    return pn_update_layer(l, rate, momentum, decay, NULL);
}


int update_model(model m, double rate, double momentum, double decay)
{
    int status = pn_check_model("update_model", m);
    for (int i = 0; i < m.n && !status; i++) status = update_layer(&m.layers[i], rate, momentum, decay);
    return status;
}

train_config default_train_config(void)
{
    train_config c;
    memset(&c, 0, sizeof c);
    c.batch = 128;
    c.rate = 0.01;
    c.momentum = 0.9;
    c.optimizer = PN_SGD;
    c.beta1 = 0.9;
    c.beta2 = 0.999;
    c.eps = 1e-8;
    c.schedule = PN_CONSTANT;
    c.gamma = 0.1;
    return c;
}

double scheduled_rate(const train_config *c, int step)
{
    if (c->warmup > 0 && step < c->warmup) return c->rate * (step + 1) / c->warmup;
    int t = step - (c->warmup > 0 ? c->warmup : 0);
    switch (c->schedule) {
    case PN_STEP:
        return c->step_size > 0 ? c->rate * pow(c->gamma, t / c->step_size) : c->rate;
    case PN_COSINE: {
        int span = c->total_steps - (c->warmup > 0 ? c->warmup : 0);
        if (span <= 0 || t >= span) return c->min_rate;
        return c->min_rate + (c->rate - c->min_rate) * 0.5 * (1.0 + cos(M_PI * t / span));
    }
    case PN_CONSTANT:
    default:
        return c->rate;
    }
}

/* One Adam moment update over n weights: m and s track the gradient g = −scale·dw; the step moves
 * along −m̂/(√ŝ + eps), i.e. along +m of the negative gradient, matching the homework's sign:
 *     g = scale·dw;  m ← β₁m + (1 − β₁)g;  s ← β₂s + (1 − β₂)g·g;
 *     w ← w + rate·((m / (1 − β₁ᵗ)) / (√(s / (1 − β₂ᵗ)) + eps) − decay·w)
 * in that order of operations, for every weight (optim_kernels.c runs it vectorised and threaded). */
static double adam(double *w, const double *dw, double *m, double *s, size_t n, double rate, double beta1,
                   double beta2, double eps, double decay, double correction1, double correction2, double scale)
{
    pn_adam_args a = {rate, beta1, beta2, eps, decay, correction1, correction2, scale};
    return pn_adam_kernel(w, dw, m, s, n, &a);   /* with the new weights' sum, for the divergence check */
}

int pn_adam_update_layer(layer *l, double rate, double beta1, double beta2, double eps, double decay,
                         int t, double grad_scale, double *sum)
{
    const char *fn = "adam_update_layer";
    if (!l || !l->ws || !l->w.data) return pn_fail(PN_ERR_VALUE, "%s: the layer has no weights (make it with make_layer)", fn);
    if (!isfinite(rate) || !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(eps > 0) ||
        !isfinite(decay) || !isfinite(grad_scale) || t < 1)
        return pn_fail(PN_ERR_VALUE, "%s: need a finite rate, 0 <= beta1, beta2 < 1, eps > 0, a finite decay and "
                       "step t >= 1; got rate=%g beta1=%g beta2=%g eps=%g decay=%g t=%d", fn, rate, beta1, beta2,
                       eps, decay, t);
    layer_workspace *ws = l->ws;
    size_t n = pn_size(l->w), nb = pn_size(l->b);
    if (!ws->adam_s && !(ws->adam_s = pn_alloc(n, fn))) return PN_ERR_NOMEM;
    if (nb && !ws->adam_sb && !(ws->adam_sb = pn_alloc(nb, fn))) return PN_ERR_NOMEM;
    size_t ng = pn_size(l->gain);
    if (ng && !ws->adam_sgain && !(ws->adam_sgain = pn_alloc(ng, fn))) return PN_ERR_NOMEM;
    if (ng && !ws->adam_sshift && !(ws->adam_sshift = pn_alloc(ng, fn))) return PN_ERR_NOMEM;
    double c1 = 1 - pow(beta1, t), c2 = 1 - pow(beta2, t);
    double total = adam(l->w.data, l->dw.data, l->v.data, ws->adam_s, n, rate, beta1, beta2, eps, decay, c1, c2,
                        grad_scale);
    if (nb)
        total += adam(l->b.data, l->db.data, l->vb.data, ws->adam_sb, nb, rate, beta1, beta2, eps, 0.0, c1, c2,
                      grad_scale);
    if (ng) {   /* like the bias: no decay */
        total += adam(l->gain.data, l->dgain.data, l->vgain.data, ws->adam_sgain, ng, rate, beta1, beta2, eps, 0.0,
                      c1, c2, grad_scale);
        total += adam(l->shift.data, l->dshift.data, l->vshift.data, ws->adam_sshift, ng, rate, beta1, beta2, eps,
                      0.0, c1, c2, grad_scale);
    }
    if (sum) *sum = total;
    return PN_OK;
}

int adam_update_layer(layer *l, double rate, double beta1, double beta2, double eps, double decay,
                      int t, double grad_scale)
{
    return pn_adam_update_layer(l, rate, beta1, beta2, eps, decay, t, grad_scale, NULL);
}

static int adam_moment_sizes(const layer *l, size_t n, size_t nb, const char *fn)
{
    if (!l || !l->ws || !l->w.data) return pn_fail(PN_ERR_VALUE, "%s: the layer has no weights (make it with make_layer)", fn);
    if (n != pn_size(l->w) || nb != pn_size(l->b))
        return pn_fail(PN_ERR_SHAPE, "%s: the layer has %zu weights and %zu biases, not %zu and %zu", fn,
                       pn_size(l->w), pn_size(l->b), n, nb);
    return PN_OK;
}

int pn_get_adam_moments(const layer *l, double *s, size_t n, double *sb, size_t nb)
{
    int status = adam_moment_sizes(l, n, nb, "pn_get_adam_moments");
    if (status) return status;
    for (size_t i = 0; i < n; i++) s[i] = l->ws->adam_s ? l->ws->adam_s[i] : 0.0;
    for (size_t i = 0; i < nb; i++) sb[i] = l->ws->adam_sb ? l->ws->adam_sb[i] : 0.0;
    return PN_OK;
}

int pn_set_adam_moments(layer *l, const double *s, size_t n, const double *sb, size_t nb)
{
    const char *fn = "pn_set_adam_moments";
    int status = adam_moment_sizes(l, n, nb, fn);
    if (status) return status;
    layer_workspace *ws = l->ws;
    if (!ws->adam_s && !(ws->adam_s = pn_alloc(n, fn))) return PN_ERR_NOMEM;
    if (nb && !ws->adam_sb && !(ws->adam_sb = pn_alloc(nb, fn))) return PN_ERR_NOMEM;
    memcpy(ws->adam_s, s, n * sizeof *s);
    if (nb) memcpy(ws->adam_sb, sb, nb * sizeof *sb);
    return PN_OK;
}

double clip_gradients(model m, double max_norm, double grad_scale)
{
    if (pn_check_model("clip_gradients", m)) return NAN;
    if (!(max_norm > 0) || !isfinite(grad_scale)) {
        pn_fail(PN_ERR_VALUE, "clip_gradients: max_norm must be > 0 and grad_scale finite, got %g and %g",
                max_norm, grad_scale);
        return NAN;
    }
    double sum = 0;   /* Σ dw² + Σ db² (+ Σ dgain² + Σ dshift²), layer by layer, each in the order fixed by its size */
    for (int i = 0; i < m.n; i++) {
        const layer *l = &m.layers[i];
        sum += pn_sum_squares(l->dw.data, pn_size(l->dw));
        if (l->b.data) sum += pn_sum_squares(l->db.data, pn_size(l->db));
        if (l->gain.data)
            sum += pn_sum_squares(l->dgain.data, pn_size(l->dgain)) + pn_sum_squares(l->dshift.data, pn_size(l->dshift));
    }
    double norm = fabs(grad_scale) * sqrt(sum);
    if (norm > max_norm) {
        double f = max_norm / norm;
        for (int i = 0; i < m.n; i++) {
            layer *l = &m.layers[i];
            pn_scale_array(l->dw.data, pn_size(l->dw), f);
            if (l->b.data) pn_scale_array(l->db.data, pn_size(l->db), f);
            if (l->gain.data) {
                pn_scale_array(l->dgain.data, pn_size(l->dgain), f);
                pn_scale_array(l->dshift.data, pn_size(l->dshift), f);
            }
        }
    }
    return norm;
}


int pn_check_config(const char *fn, const train_config *c)
{
    if (!c) return pn_fail(PN_ERR_VALUE, "%s: no training configuration", fn);
    if (c->batch < 1) return pn_fail(PN_ERR_VALUE, "%s: batch must be >= 1, got %d", fn, c->batch);
    if (!isfinite(c->rate) || !isfinite(c->momentum) || !isfinite(c->decay))
        return pn_fail(PN_ERR_VALUE, "%s: rate, momentum and decay must be finite, got %g, %g, %g", fn,
                       c->rate, c->momentum, c->decay);
    if (!(c->rate > 0)) return pn_fail(PN_ERR_VALUE, "%s: rate must be > 0, got %g", fn, c->rate);
    if (!(c->momentum >= 0 && c->momentum < 1))
        return pn_fail(PN_ERR_VALUE, "%s: momentum must be in [0, 1), got %g", fn, c->momentum);
    if (c->decay < 0) return pn_fail(PN_ERR_VALUE, "%s: decay must be >= 0, got %g", fn, c->decay);
    if (c->optimizer != PN_SGD && c->optimizer != PN_ADAM)
        return pn_fail(PN_ERR_VALUE, "%s: unknown optimizer %d; valid: PN_SGD=0, PN_ADAM=1", fn, (int)c->optimizer);
    if (c->optimizer == PN_ADAM && (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1) || !(c->eps > 0)))
        return pn_fail(PN_ERR_VALUE, "%s: Adam needs 0 <= beta1, beta2 < 1 and eps > 0, got %g, %g, %g", fn,
                       c->beta1, c->beta2, c->eps);
    if (c->schedule != PN_CONSTANT && c->schedule != PN_STEP && c->schedule != PN_COSINE)
        return pn_fail(PN_ERR_VALUE, "%s: unknown schedule %d; valid: PN_CONSTANT=0, PN_STEP=1, PN_COSINE=2", fn,
                       (int)c->schedule);
    if (c->warmup < 0) return pn_fail(PN_ERR_VALUE, "%s: warmup must be >= 0, got %d", fn, c->warmup);
    if (c->schedule == PN_STEP && c->step_size < 1)
        return pn_fail(PN_ERR_VALUE, "%s: the step schedule needs step_size >= 1 (the period of its rate cuts), "
                       "got %d", fn, c->step_size);
    if (c->schedule == PN_COSINE && c->total_steps < 1)
        return pn_fail(PN_ERR_VALUE, "%s: the cosine schedule needs total_steps >= 1 (its length), got %d", fn,
                       c->total_steps);
    if (c->warmup < 0 || (c->schedule == PN_STEP && (c->step_size < 1 || !isfinite(c->gamma))) ||
        (c->schedule == PN_COSINE && (c->total_steps < 1 || !isfinite(c->min_rate))))
        return pn_fail(PN_ERR_VALUE, "%s: bad schedule settings: warmup=%d step_size=%d gamma=%g total_steps=%d "
                       "min_rate=%g", fn, c->warmup, c->step_size, c->gamma, c->total_steps, c->min_rate);
    if (!(c->min_rate >= 0 && c->min_rate <= c->rate))
        return pn_fail(PN_ERR_VALUE, "%s: min_rate must be in [0, rate] = [0, %g], got %g", fn, c->rate, c->min_rate);
    if (c->schedule == PN_STEP && !(c->gamma > 0))   /* gamma > 1 is allowed: the rate may rise */
        return pn_fail(PN_ERR_VALUE, "%s: gamma (the step schedule's factor per step) must be > 0, got %g", fn,
                       c->gamma);
    if (!(c->clip >= 0)) return pn_fail(PN_ERR_VALUE, "%s: clip must be >= 0 (0: off), got %g", fn, c->clip);
    if (!(c->l2 >= 0) || !isfinite(c->l2)) return pn_fail(PN_ERR_VALUE, "%s: l2 must be finite and >= 0, got %g", fn, c->l2);
    if (c->matmul != PN_FLOAT64 && c->matmul != PN_FLOAT32)
        return pn_fail(PN_ERR_VALUE, "%s: unknown matmul %d; valid: PN_FLOAT64=0, PN_FLOAT32=1", fn, (int)c->matmul);
    return PN_OK;
}
