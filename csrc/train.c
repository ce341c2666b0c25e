/* train.c — the training loops: the homework's train_model (and train_model_losses), and train_steps,
 * the same loop with what the lecture lists beyond it (Adam, gradient clipping, learning-rate
 * schedules, shuffled epochs). A step is: gather a batch (data.c), forward in training mode, loss,
 * dL = y − p, backward (model.c), update (optim.c). Buffers are allocated before the first step; the
 * steps themselves allocate nothing (Adam's second moments appear on its first step and stay). */
#include "internal.h"

#include <math.h>
#include <stdio.h>

static _Thread_local int diverged_step = -1, diverged_layer = -1, diverged_input = 0;

void pn_last_divergence(int *step, int *layer, int *bad_input)
{
    if (step) *step = diverged_step;
    if (layer) *layer = diverged_layer;
    if (bad_input) *bad_input = diverged_input;
}

/* Index of the first NaN or infinite entry of a[0..n), or -1. */
static long first_nonfinite(const double *a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        if (!isfinite(a[i])) return (long)i;
    return -1;
}

/* A layer's trained parts by number: 0 the weights, 1 the bias, 2 the norm's gain, 3 its shift. */
static const matrix *part_of(const layer *l, int which)
{
    return which == 0 ? &l->w : which == 1 ? &l->b : which == 2 ? &l->gain : &l->shift;
}

/* Records and reports that step `step` went non-finite: in layer `li`'s update (li >= 0, at
 * entry `at` of the part `in_bias` names, see nonfinite_entry) or in the loss (li < 0). Names the
 * first non-finite input of the batch, and of the data, when there is one: that is the cause then,
 * not the learning rate. Only called on failure, so its scans cost nothing in training. */
static int diverged(const char *fn, model m, data d, data b, int step, int li, long at, int in_bias,
                    double loss, double rate)
{
    char what[160];
    if (li >= 0) {
        const layer *l = &m.layers[li];
        static const char *const part[] = {"weights", "bias", "norm gain", "norm shift"};
        static const char *const sym[] = {"w", "b", "gain", "shift"};
        const matrix *w = part_of(l, in_bias);
        snprintf(what, sizeof what, "the update of step %d made layer %d's %s non-finite (%s[%ld][%ld] = %g)",
                 step, li, part[in_bias], sym[in_bias], at / w->cols, at % w->cols, w->data[at]);
    } else {
        snprintf(what, sizeof what, "the loss became %g at iteration %d", loss, step);
    }
    diverged_step = step;
    diverged_layer = li;
    long bx = first_nonfinite(b.X.data, pn_size(b.X)), by = first_nonfinite(b.y.data, pn_size(b.y));
    diverged_input = bx >= 0 || by >= 0;
    if (diverged_input) {
        const matrix *bm = bx >= 0 ? &d.X : &d.y;
        long at_d = first_nonfinite(bm->data, pn_size(*bm));
        const char *name = bx >= 0 ? "X" : "y";
        long bat = bx >= 0 ? bx : by;
        int bcols = bx >= 0 ? b.X.cols : b.y.cols;
        if (at_d >= 0)
            return pn_fail(PN_ERR_NONFINITE, "%s: %s; its batch holds %g in %s (batch row %ld); the data's %s has %g "
                           "at row %ld, column %ld: only finite numbers can be learnt from", fn, what,
                           (bx >= 0 ? b.X.data : b.y.data)[bat], name, bat / bcols, name, bm->data[at_d],
                           at_d / bm->cols, at_d % bm->cols);
        return pn_fail(PN_ERR_NONFINITE, "%s: %s; its batch holds %g in %s (batch row %ld, column %ld): only finite "
                       "numbers can be learnt from", fn, what, (bx >= 0 ? b.X.data : b.y.data)[bat], name,
                       bat / bcols, bat % bcols);
    }
    return pn_fail(PN_ERR_NONFINITE, "%s: %s; the learning rate (%g) is probably too high for this model, try a "
                   "lower one", fn, what, rate);
}

/* After an update whose weight sum was not finite: the first non-finite entry of layer l, if any
 * (the sum of finite weights can overflow; that is not divergence); *which says which part (part_of). */
static int nonfinite_entry(const layer *l, long *at, int *which)
{
    for (*which = 0; *which < 4; (*which)++) {
        const matrix *p = part_of(l, *which);
        if (p->data && (*at = first_nonfinite(p->data, pn_size(*p))) >= 0) return 1;
    }
    return 0;
}

/* train_steps' loop; its messages start with fn, the public function that was called. */
static int run_steps(const char *fn, model m, data d, const train_config *c, int first_step, int steps,
                     const int *rows, double *losses, int *correct)
{
    diverged_step = diverged_layer = -1;
    diverged_input = 0;
    int status = pn_check_model(fn, m);
    if (!status) status = pn_check_data(fn, m, d);
    if (!status) status = pn_check_config(fn, c);
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
        if (correct) correct[s] = pn_count_correct(b.y.data, p.data, p.rows, p.cols);
        if (!isfinite(loss)) {
            status = diverged(fn, m, d, b, step, -1, 0, 0, loss, c->rate);
            break;
        }
        for (size_t i = 0; i < pn_size(dL); i++) dL.data[i] = b.y.data[i] - p.data[i];  /* truth − prediction */
        status = pn_backward_model(m, dL);
        if (status) break;
        if (c->l2 > 0)   /* dw is the negative gradient of the summed loss: add that of (l2/2)·Σ‖w‖² */
            for (int i = 0; i < m.n; i++)
                for (size_t j = 0; j < pn_size(m.layers[i].w); j++) m.layers[i].dw.data[j] -= c->l2 * m.layers[i].w.data[j];
        if (c->clip > 0) clip_gradients(m, c->clip, 1.0 / batch);
        double rate = scheduled_rate(c, step);
        for (int i = 0; i < m.n && !status; i++) {
            double sum = 0;
            long at;
            int in_bias;
            status = c->optimizer == PN_ADAM
                         ? pn_adam_update_layer(&m.layers[i], rate, c->beta1, c->beta2, c->eps, c->decay, step + 1,
                                                1.0 / batch, &sum)
                         : pn_update_layer(&m.layers[i], rate / batch, c->momentum, c->decay, &sum);
            if (!status && !isfinite(sum) && nonfinite_entry(&m.layers[i], &at, &in_bias))
                status = diverged(fn, m, d, b, step, i, at, in_bias, loss, c->rate);
        }
    }
    m.layers[0].in = (matrix){0, 0, NULL};   /* it pointed at the batch buffer, which goes now */
    free_data(b);
    free_matrix(dL);
    return status;
}

int train_steps(model m, data d, const train_config *c, int first_step, int steps, const int *rows,
                double *losses, int *correct)
{
    return run_steps("train_steps", m, d, c, first_step, steps, rows, losses, correct);
}

int train_model_losses(model m, data d, int batch, int iters, double rate, double momentum,
                       double decay, double *losses)
{
    train_config c = default_train_config();
    c.batch = batch;
    c.rate = rate;
    c.momentum = momentum;
    c.decay = decay;
    return run_steps("train_model", m, d, &c, 0, iters, NULL, losses, NULL);
}

int train_model(model m, data d, int batch, int iters, double rate, double momentum, double decay)
{
    return train_model_losses(m, d, batch, iters, rate, momentum, decay, NULL);
}
