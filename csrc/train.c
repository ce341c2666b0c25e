/* train.c — the training loops: the homework's train_model (and train_model_losses), and train_steps,
 * the same loop with what the lecture lists beyond it (Adam, gradient clipping, learning-rate
 * schedules, shuffled epochs). A step is: gather a batch (data.c), forward in training mode, loss,
 * dL = y − p, backward (model.c), update (optim.c). Buffers are allocated before the first step; the
 * steps themselves allocate nothing (Adam's second moments appear on its first step and stay). */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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

/* ---- choosing the thread count, block by block ---------------------------------------------- */

/* Two threads that wait on each other at every product are only worth having when both get a core.
 * With another process busy on one, a two-thread step took 2.2-3.6x its one-thread time here
 * (docs/PERFORMANCE.md), and no wait policy fixes that without slowing the quiet case. So the loop
 * measures instead: it runs the steps in blocks, times each block, and keeps running on whichever of
 * one thread and all measured faster per step (the median of its last three blocks). At the start
 * the other choice gets a short probe (about 20 ms, 2 to 8 steps) after every block until both have
 * three figures, so that one unlucky probe decides nothing; once the other's figures are two seconds
 * old they are dropped and it is measured afresh the same way (the load may have changed). Every
 * kernel gives the same bits for any thread count, so this changes timings only, never results. The
 * figures are per thread of the caller and are forgotten when the work changes shape (another model,
 * batch, data width or matmul precision). */
enum { PROBE_STEPS = 8, MAX_BLOCK_STEPS = 4096 };
#define BLOCK_SECONDS 0.1    /* a block on the faster choice lasts about this long */
#define RECHECK_SECONDS 2.0  /* the other choice is measured afresh once its figures are this old */
#define KEEP_MARGIN 0.95     /* switch only for a step at least 5% faster */
#define PROBE_SECONDS 0.02   /* a probe of the other choice lasts about this long (2 to 8 steps) */

typedef struct tuner {
    unsigned long long key;  /* the shape of the work the figures are for */
    int all;                 /* the thread count they were measured against */
    double per_step[2];      /* seconds per step on one thread [0] and on `all` [1]: the median of
                                the last three blocks' figures (fewer at first); 0: unknown */
    double recent[2][3];     /* those figures, newest first (0: none) */
    double measured_at[2];   /* pn_seconds() of each newest figure */
    int current;             /* 0 or 1: the choice in use */
    int starting;            /* until both choices have three figures, the other is measured every block */
    int last_threads;        /* the thread count of the last block */
} tuner;

static _Thread_local tuner tune;

void pn_training_threads(double *one, double *all, int *last)
{
    if (one) *one = tune.per_step[0];
    if (all) *all = tune.per_step[1];
    if (last) *last = tune.last_threads;
}

static unsigned long long work_key(model m, data d, const train_config *c)
{
    /* unsigned: the hash wraps around instead of overflowing */
    unsigned long long key = ((unsigned long long)c->batch * 1000003u + (unsigned)d.X.cols) * 2u +
                             (c->matmul == PN_FLOAT32);
    for (int i = 0; i < m.n; i++)
        key = key * 31u + (unsigned long long)m.layers[i].w.rows * 7919u + (unsigned)m.layers[i].w.cols;
    return key;
}

/* How many of the three figures r holds. */
static int known(const double r[3]) { return (r[0] > 0) + (r[1] > 0) + (r[2] > 0); }

/* A probe's length: about PROBE_SECONDS by the figures known (2 to PROBE_STEPS steps), so that
 * measuring the slower choice costs little even when a step is long. */
static int probe_steps(const tuner *t, int which)
{
    double est = t->per_step[which] > 0 ? t->per_step[which] : t->per_step[1 - which];
    if (!(est > 0)) return PROBE_STEPS;
    double want = PROBE_SECONDS / est;
    return want < 2 ? 2 : want > PROBE_STEPS ? PROBE_STEPS : (int)want;
}

/* How many of `left` steps the next block runs, and on which choice (*which: 0 one thread, 1 all). */
static int next_block(tuner *t, int left, int *which)
{
    double now = pn_seconds();
    int other = 1 - t->current, n;
    if (t->per_step[other] > 0 && now - t->measured_at[other] > RECHECK_SECONDS) {
        /* stale: the load may have changed; measure the other choice afresh, three probes again */
        memset(t->recent[other], 0, sizeof t->recent[other]);
        t->per_step[other] = 0;
        t->starting = 1;
    }
    if (t->starting && known(t->recent[0]) >= 3 && known(t->recent[1]) >= 3) t->starting = 0;
    if (t->per_step[t->current] == 0) {
        *which = t->current;
        n = probe_steps(t, t->current);
    } else if (t->per_step[other] == 0 ||
               (t->starting && known(t->recent[other]) < 3 && now - t->measured_at[other] > BLOCK_SECONDS)) {
        *which = other;
        n = probe_steps(t, other);
    } else {
        *which = t->current;
        double want = BLOCK_SECONDS / t->per_step[t->current];
        n = want < PROBE_STEPS ? PROBE_STEPS : want > MAX_BLOCK_STEPS ? MAX_BLOCK_STEPS : (int)want;
    }
    return n < left ? n : left;
}

/* The median of the known (nonzero) values among r[0..3). */
static double median_known(const double r[3])
{
    double v[3] = {0, 0, 0};
    int n = 0;
    for (int i = 0; i < 3; i++)
        if (r[i] > 0) v[n++] = r[i];
    if (n <= 1) return v[0];
    if (n == 2) return 0.5 * (v[0] + v[1]);
    double lo = fmin(v[0], v[1]), hi = fmax(v[0], v[1]);
    return fmax(lo, fmin(hi, v[2]));
}

/* Records a block's figure: one slow block (an interrupt, a page fault) does not move the median. */
static void block_done(tuner *t, int which, int steps, double seconds)
{
    double *r = t->recent[which];
    r[2] = r[1];
    r[1] = r[0];
    r[0] = seconds / steps;
    t->per_step[which] = median_known(r);
    t->measured_at[which] = pn_seconds();
    int other = 1 - t->current;
    if (known(t->recent[other]) == 3 && t->per_step[other] < KEEP_MARGIN * t->per_step[t->current])
        t->current = other;   /* only on three figures of the other: one probe decides nothing */
}

/* One training step (gather, forward, loss, backward, update) of run_steps. */
static int one_step(const char *fn, model m, data d, data b, matrix dL, const train_config *c, int step,
                    const int *rows, double *loss_out, int *correct_out)
{
    int status = PN_OK;
    pn_gather_rows(d, rows, b);
    matrix p = pn_forward_model(m, b.X, 1);
    if (!p.data) return PN_ERR_NOMEM;   /* a layer could not grow a buffer (recorded) */
    double loss = pn_cross_entropy(b.y, p);
    if (loss_out) *loss_out = loss;
    if (correct_out) *correct_out = pn_count_correct(b.y.data, p.data, p.rows, p.cols);
    if (!isfinite(loss)) return diverged(fn, m, d, b, step, -1, 0, 0, loss, c->rate);
    for (size_t i = 0; i < pn_size(dL); i++) dL.data[i] = b.y.data[i] - p.data[i];  /* truth − prediction */
    status = pn_backward_model(m, dL);
    if (status) return status;
    if (c->l2 > 0)   /* dw is the negative gradient of the summed loss: add that of (l2/2)·Σ‖w‖² */
        for (int i = 0; i < m.n; i++)
            for (size_t j = 0; j < pn_size(m.layers[i].w); j++) m.layers[i].dw.data[j] -= c->l2 * m.layers[i].w.data[j];
    if (c->clip > 0) clip_gradients(m, c->clip, 1.0 / c->batch);
    double rate = scheduled_rate(c, step);
    for (int i = 0; i < m.n && !status; i++) {
        double sum = 0;
        long at;
        int in_bias;
        status = c->optimizer == PN_ADAM
                     ? pn_adam_update_layer(&m.layers[i], rate, c->beta1, c->beta2, c->eps, c->decay, step + 1,
                                            1.0 / c->batch, &sum)
                     : pn_update_layer(&m.layers[i], rate / c->batch, c->momentum, c->decay, &sum);
        if (!status && !isfinite(sum) && nonfinite_entry(&m.layers[i], &at, &in_bias))
            status = diverged(fn, m, d, b, step, i, at, in_bias, loss, c->rate);
    }
    return status;
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
    int all = pn_threads();
    int adapt = all > 1 && pn_adaptive_threads();
    unsigned long long key = work_key(m, d, c);
    if (tune.key != key || tune.all != all || !adapt) {   /* figures for other work are no guide */
        memset(&tune, 0, sizeof tune);
        tune.key = key;
        tune.all = all;
        tune.current = 1;
        tune.starting = 1;
    }
    int matmul_before = pn_set_matmul_f32(c->matmul == PN_FLOAT32);
    for (int s = 0; s < steps && !status;) {
        /* The first step of a call may grow buffers: it runs on the current choice, untimed. */
        int which = tune.current, n = s == 0 ? 1 : adapt ? next_block(&tune, steps - s, &which) : steps - s;
        int before = pn_use_threads(which ? 0 : 1);
        tune.last_threads = which ? all : 1;
        double t0 = pn_seconds();
        for (int j = 0; j < n && !status; j++, s++)
            status = one_step(fn, m, d, b, dL, c, first_step + s, rows ? rows + (size_t)s * batch : NULL,
                              losses ? losses + s : NULL, correct ? correct + s : NULL);
        double seconds = pn_seconds() - t0;
        pn_use_threads(before);
        if (adapt && !status && s > 1 && n > 1) block_done(&tune, which, n, seconds);
    }
    pn_set_matmul_f32(matmul_before);
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
