/* train.c — the training loop: the homework's train_model, and train_steps, the same loop with
 * what the lecture lists beyond it (Adam, gradient clipping, learning-rate schedules, shuffled
 * epochs). A step is: gather a batch, forward (training mode), loss, dL = y − p, backward, update.
 * Buffers are allocated before the first step; the steps themselves allocate nothing (Adam's
 * second moments appear on its first step and stay). */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int count_correct(matrix y, matrix p);

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
        double *X = batch.X.data + i0 * xc, *y = batch.y.data + i0 * yc;
        #pragma omp parallel for num_threads(pn_threads()) schedule(static) \
            if ((size_t)n * xc * sizeof(double) >= GATHER_THREADED_BYTES)
        for (int i = 0; i < n; i++) {
            copy_row(X + i * xc, d.X.data + r[i] * xc, i + 1 < n ? d.X.data + r[i + 1] * xc : NULL, xc);
            memcpy(y + i * yc, d.y.data + r[i] * yc, yc * sizeof(double));
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
 * along −m̂/(√ŝ + eps), i.e. along +m of the negative gradient, matching the homework's sign. */
static void adam(double *w, const double *dw, double *m, double *s, size_t n, double rate, double beta1,
                 double beta2, double eps, double decay, double correction1, double correction2, double scale)
{
    for (size_t i = 0; i < n; i++) {
        double g = scale * dw[i];   /* negative gradient of the mean loss */
        m[i] = beta1 * m[i] + (1 - beta1) * g;
        s[i] = beta2 * s[i] + (1 - beta2) * g * g;
        w[i] += rate * ((m[i] / correction1) / (sqrt(s[i] / correction2) + eps) - decay * w[i]);
    }
}

int adam_update_layer(layer *l, double rate, double beta1, double beta2, double eps, double decay,
                      int t, double grad_scale)
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
    double c1 = 1 - pow(beta1, t), c2 = 1 - pow(beta2, t);
    adam(l->w.data, l->dw.data, l->v.data, ws->adam_s, n, rate, beta1, beta2, eps, decay, c1, c2, grad_scale);
    if (nb) adam(l->b.data, l->db.data, l->vb.data, ws->adam_sb, nb, rate, beta1, beta2, eps, 0.0, c1, c2, grad_scale);
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
    double sum = 0;
    for (int i = 0; i < m.n; i++) {
        const layer *l = &m.layers[i];
        for (size_t j = 0; j < pn_size(l->dw); j++) sum += l->dw.data[j] * l->dw.data[j];
        for (size_t j = 0; l->b.data && j < pn_size(l->db); j++) sum += l->db.data[j] * l->db.data[j];
    }
    double norm = fabs(grad_scale) * sqrt(sum);
    if (norm > max_norm) {
        double f = max_norm / norm;
        for (int i = 0; i < m.n; i++) {
            layer *l = &m.layers[i];
            for (size_t j = 0; j < pn_size(l->dw); j++) l->dw.data[j] *= f;
            for (size_t j = 0; l->b.data && j < pn_size(l->db); j++) l->db.data[j] *= f;
        }
    }
    return norm;
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
        if (accuracy) *accuracy = (double)count_correct(d.y, p) / p.rows;
    }
    free_matrix(p);
    return status;
}

static int check_config(const char *fn, const train_config *c)
{
    if (!c) return pn_fail(PN_ERR_VALUE, "%s: no training configuration", fn);
    if (c->batch < 1) return pn_fail(PN_ERR_VALUE, "%s: batch must be >= 1, got %d", fn, c->batch);
    if (!isfinite(c->rate) || !isfinite(c->momentum) || !isfinite(c->decay))
        return pn_fail(PN_ERR_VALUE, "%s: rate, momentum and decay must be finite, got %g, %g, %g", fn,
                       c->rate, c->momentum, c->decay);
    if (c->optimizer != PN_SGD && c->optimizer != PN_ADAM)
        return pn_fail(PN_ERR_VALUE, "%s: unknown optimizer %d; valid: PN_SGD=0, PN_ADAM=1", fn, (int)c->optimizer);
    if (c->optimizer == PN_ADAM && (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1) || !(c->eps > 0)))
        return pn_fail(PN_ERR_VALUE, "%s: Adam needs 0 <= beta1, beta2 < 1 and eps > 0, got %g, %g, %g", fn,
                       c->beta1, c->beta2, c->eps);
    if (c->schedule != PN_CONSTANT && c->schedule != PN_STEP && c->schedule != PN_COSINE)
        return pn_fail(PN_ERR_VALUE, "%s: unknown schedule %d; valid: PN_CONSTANT=0, PN_STEP=1, PN_COSINE=2", fn,
                       (int)c->schedule);
    if (c->warmup < 0 || (c->schedule == PN_STEP && (c->step_size < 1 || !isfinite(c->gamma))) ||
        (c->schedule == PN_COSINE && (c->total_steps < 1 || !isfinite(c->min_rate))))
        return pn_fail(PN_ERR_VALUE, "%s: bad schedule settings: warmup=%d step_size=%d gamma=%g total_steps=%d "
                       "min_rate=%g", fn, c->warmup, c->step_size, c->gamma, c->total_steps, c->min_rate);
    if (!(c->clip >= 0)) return pn_fail(PN_ERR_VALUE, "%s: clip must be >= 0 (0: off), got %g", fn, c->clip);
    return PN_OK;
}

/* How many rows of p have their largest value where y has its (first maximum each). */
static int count_correct(matrix y, matrix p)
{
    int correct = 0;
    for (int i = 0; i < p.rows; i++)
        correct += pn_max_index(p.data + (size_t)i * p.cols, p.cols) == pn_max_index(y.data + (size_t)i * p.cols, p.cols);
    return correct;
}

int train_steps(model m, data d, const train_config *c, int first_step, int steps, const int *rows,
                double *losses, int *correct)
{
    const char *fn = "train_model";
    int status = pn_check_model(fn, m);
    if (!status) status = pn_check_data(fn, m, d);
    if (!status) status = check_config(fn, c);
    if (status) return status;
    if (steps < 0 || first_step < 0)
        return pn_fail(PN_ERR_VALUE, "%s: iters must be >= 0, got %d (from step %d)", fn, steps, first_step);
    int batch = c->batch;
    for (long i = 0; rows && i < (long)steps * batch; i++)
        if (rows[i] < 0 || rows[i] >= d.X.rows)
            return pn_fail(PN_ERR_VALUE, "%s: row index %d at position %ld is outside the data's %d rows", fn,
                           rows[i], i, d.X.rows);
    int classes = d.y.cols;
    data b = {make_matrix(batch, d.X.cols), make_matrix(batch, classes)};
    matrix dL = make_matrix(batch, classes);
    if (!b.X.data || !b.y.data || !dL.data) {
        free_data(b);
        free_matrix(dL);
        return PN_ERR_NOMEM;
    }
    for (int s = 0; s < steps && !status; s++) {
        int step = first_step + s;
        pn_gather_rows(d, rows ? rows + (size_t)s * batch : NULL, b);
        matrix p = pn_forward_model(m, b.X, 1);
        if (!p.data) {
            status = PN_ERR_NOMEM;   /* a layer could not grow a buffer (recorded) */
            break;
        }
        double loss = pn_cross_entropy(b.y, p);
        if (losses) losses[s] = loss;
        if (correct) correct[s] = count_correct(b.y, p);
        if (!isfinite(loss)) {
            status = pn_fail(PN_ERR_NONFINITE, "%s: the loss became %g at iteration %d; the learning rate "
                             "(%g) is probably too high for this model, try a lower one", fn, loss, step, c->rate);
            break;
        }
        for (size_t i = 0; i < pn_size(dL); i++) dL.data[i] = b.y.data[i] - p.data[i];  /* truth − prediction */
        status = pn_backward_model(m, dL);
        if (status) break;
        if (c->clip > 0) clip_gradients(m, c->clip, 1.0 / batch);
        double rate = scheduled_rate(c, step);
        for (int i = 0; i < m.n && !status; i++)
            status = c->optimizer == PN_ADAM
                         ? adam_update_layer(&m.layers[i], rate, c->beta1, c->beta2, c->eps, c->decay, step + 1, 1.0 / batch)
                         : update_layer(&m.layers[i], rate / batch, c->momentum, c->decay);
    }
    m.layers[0].in = (matrix){0, 0, NULL};   /* it pointed at the batch buffer, which goes now */
    free_data(b);
    free_matrix(dL);
    return status;
}

int train_model_losses(model m, data d, int batch, int iters, double rate, double momentum,
                       double decay, double *losses)
{
    train_config c = default_train_config();
    c.batch = batch;
    c.rate = rate;
    c.momentum = momentum;
    c.decay = decay;
    return train_steps(m, d, &c, 0, iters, NULL, losses, NULL);
}

int train_model(model m, data d, int batch, int iters, double rate, double momentum, double decay)
{
    return train_model_losses(m, d, batch, iters, rate, momentum, decay, NULL);
}
