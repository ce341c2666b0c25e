/* train.c — the training loops: the homework's train_model (and train_model_losses), and train_steps,
 * the same loop with what the lecture lists beyond it (Adam, gradient clipping, learning-rate
 * schedules, shuffled epochs). A step is: gather a batch (data.c), forward in training mode, loss,
 * dL = y − p, backward (model.c), update (optim.c). Buffers are allocated before the first step; the
 * steps themselves allocate nothing (Adam's second moments appear on its first step and stay). */
#include "internal.h"

#include <math.h>

int train_steps(model m, data d, const train_config *c, int first_step, int steps, const int *rows,
                double *losses, int *correct)
{
    const char *fn = "train_model";
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
            status = pn_fail(PN_ERR_NONFINITE, "%s: the loss became %g at iteration %d; the learning rate "
                             "(%g) is probably too high for this model, try a lower one", fn, loss, step, c->rate);
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
