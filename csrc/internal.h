/* internal.h — what pynet's C files share but users do not see: error recording, allocation, the
 * layer workspace, the checks, and the unchecked steps the model-level loops call once shapes are
 * validated. Grouped by the file that defines them; the files call downwards only:
 * train → optim → model → layer → gemm → activations → exp → simd (train also sets gemm's float32
 * mode around its steps), with train and model using data,
 * optim's per-weight kernels (optim_kernels.c) level with gemm's microkernels, and runtime.c /
 * matrix.c used by all (tests/test_layout_c.py keeps it so). */
#ifndef PYNET_INTERNAL_H
#define PYNET_INTERNAL_H

#include "pynet.h"

#if defined(__GNUC__) || defined(__clang__)
#define PN_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define PN_PRINTF(fmt, args)
#endif

/* Records code and message for pn_error_code / pn_error_message; returns code. */
int pn_fail(int code, const char *fmt, ...) PN_PRINTF(2, 3);

/* n zeroed doubles, or NULL (with PN_ERR_NOMEM recorded by `who`) on failure; NULL for n == 0. */
double *pn_alloc(size_t n, const char *who);

/* The number of threads the kernels may use (pn_set_threads, else OMP_NUM_THREADS, else all),
 * lowered on this thread while a training loop runs a block of steps on fewer (pn_use_threads). */
int pn_threads(void);
/* Limits this thread's kernels to n threads (0: no limit); returns the previous limit. */
int pn_use_threads(int n);
/* 1 if the training loops may run blocks of steps on fewer threads when that measures faster. */
int pn_adaptive_threads(void);
/* A monotonic clock, in seconds. */
double pn_seconds(void);

static inline size_t pn_size(matrix m) { return (size_t)m.rows * (size_t)m.cols; }

/* PN_OK, or a recorded error naming fn and what is wrong with argument `name`: negative sizes, or a
 * NULL buffer behind a non-empty shape. */
int pn_check_matrix(const char *fn, const char *name, matrix m);

/* PN_OK, or a recorded error naming fn and listing the valid activations (activations.c). */
int pn_check_activation(const char *fn, ACTIVATION a);

/* A layer's reusable buffers. A buffer only grows; the one it replaces is kept on `retired` until
 * free_layer, so a pointer handed out earlier (a numpy view of l->out, say) never dangles. */
struct pn_retired;
struct layer_workspace {
    size_t out_cap;         /* doubles behind l->out.data */
    size_t dx_cap;          /* doubles behind dx */
    size_t delta_cap;       /* doubles behind delta */
    size_t mask_cap;        /* doubles behind l->mask.data */
    size_t dropped_cap;     /* doubles behind dropped */
    double *dx;             /* backward_layer's result: delta · wᵀ */
    double *delta;          /* backward_model's working copy of dL (used on the last layer) */
    double *dropped;        /* the input after dropout, which l->in then points at */
    double *adam_s;         /* Adam's second moments of w and b (allocated on first use) */
    double *adam_sb;
    double *adam_sgain;     /* Adam's second moments of gain and shift (layer normalisation) */
    double *adam_sshift;
    size_t xhat_cap;        /* doubles behind xhat */
    size_t mean_cap;        /* doubles behind l->mean.data */
    size_t rstd_cap;        /* doubles behind l->rstd.data */
    double *xhat;           /* the last forward's normalised pre-activation (z − mean)·rstd, batch × output */
    struct pn_retired *retired;
};

/* Makes *buf hold at least `need` doubles (contents not preserved). PN_OK or PN_ERR_NOMEM. */
int pn_reserve(layer_workspace *ws, double **buf, size_t *cap, size_t need, const char *who);

/* ---- layer.c ------------------------------------------------------------------------------------ */

/* PN_OK if l was made by make_layer and its buffers, bias, dropout and activation are consistent. */
int pn_check_layer(const char *fn, const layer *l);
/* PN_OK unless m shares memory with one of l's buffers (index: the layer's place in a model, or -1). */
int pn_check_apart(const char *fn, const char *name, matrix m, const layer *l, int index);
/* PN_OK if l's last forward pass (out and the saved in) fits delta's shape. */
int pn_check_saved(const char *fn, const layer *l, matrix delta);

/* forward_layer / backward_layer without argument checks (the model-level loops check once).
 * `training` applies the layer's dropout. */
matrix pn_forward_layer(layer *l, matrix in, int training);
matrix pn_backward_layer(layer *l, matrix delta, int need_dx);

/* Added to the variance of every row before its square root (layer_add_norm). */
#define PN_NORM_EPS 1e-5
/* z (rows × cols, row stride cols) ← gain ∘ (z − mean)·rstd + shift, per row. xhat, mean and rstd
 * (rows × cols, rows, rows) receive what backward needs, or are all NULL (evaluation). No checks. */
void pn_norm_rows(double *z, int rows, int cols, const double *gain, const double *shift, double *xhat,
                  double *mean, double *rstd);

/* ---- model.c ------------------------------------------------------------------------------------ */

/* The same for a whole model: forward returns the last out (empty on out-of-memory, recorded);
 * backward overwrites delta and skips the first layer's dx. */
matrix pn_forward_model(model m, matrix X, int training);
int pn_backward_model(model m, matrix delta);

/* ---- optim_kernels.c: the optimiser's loops over every weight (vectorised, threaded) ----------- */

/* One Adam step's constants: g = scale·dw is the negative gradient of the mean loss;
 * correction1/2 = 1 − β₁ᵗ, 1 − β₂ᵗ. */
typedef struct pn_adam_args {
    double rate, beta1, beta2, eps, decay, correction1, correction2, scale;
} pn_adam_args;

/* w, m, s, dw are n doubles each (they may not overlap); the update of optim.c's adam(), the same
 * bits for every SIMD level and thread count. Returns the sum of the new weights (in an order that
 * may vary: only whether it is finite is used). */
double pn_adam_kernel(double *w, const double *dw, double *m, double *s, size_t n, const pn_adam_args *a);
/* The homework's SGD step on n weights, v = dw − decay·w + momentum·v, w += rate·v, threaded; returns
 * the sum of the new weights as pn_adam_kernel does. */
double pn_sgd_kernel(double *w, double *v, const double *dw, size_t n, double rate, double momentum, double decay);
/* Σ x[i]², summed in an order fixed by n alone (the same for every SIMD level and thread count). */
double pn_sum_squares(const double *x, size_t n);
/* x[i] ← x[i]·f. */
void pn_scale_array(double *x, size_t n, double f);

/* ---- fast kernels (gemm.c, activations.c, exp.c) ------------------------------------------------ */

#if defined(__GNUC__) || defined(__clang__)
#define PN_PREFETCH(p) __builtin_prefetch(p)
#else
#define PN_PREFETCH(p) ((void)(p))
#endif

/* What pn_gemm does to each tile of C once the tile is final, while it is still in cache: nothing,
 * or C ← f(C) (SOFTMAX needs whole rows, so it runs on them once the product is done). */
typedef enum { PN_EPI_NONE, PN_EPI_ACTIVATE } pn_epilogue_kind;
typedef struct pn_epilogue {
    pn_epilogue_kind kind;
    ACTIVATION a;
} pn_epilogue;

static inline pn_epilogue pn_epilogue_activate(ACTIVATION a)
{
    pn_epilogue e = {PN_EPI_ACTIVATE, a};
    return e;
}

/* Makes pn_gemm on this thread compute in float32 (on != 0) or float64, as gemm_f32 / gemm do;
 * returns the previous setting. */
int pn_set_matmul_f32(int on);

/* gemm with an epilogue (gemm itself is pn_gemm with PN_EPI_NONE). */
int pn_gemm(int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda,
            const double *b, int ldb, double beta, double *c, int ldc, pn_epilogue epi);

/* x ← f(x) and g ← g ∘ f′(y) on a block of rows × cols values with row strides ld (activations.c).
 * activate_matrix / gradient_matrix are these on a whole matrix, so fused and separate passes agree
 * to the bit. No checks. */
void pn_activate_block(double *x, ptrdiff_t ld, int rows, int cols, ACTIVATION a);
void pn_gradient_block(const double *y, ptrdiff_t ldy, double *g, ptrdiff_t ldg, int rows, int cols,
                       ACTIVATION a);

/* y[i] = exp(x[i]) for i < n, vectorised where the CPU allows (exp.c); x may be y. */
void pn_exp_array(const double *x, double *y, size_t n);

/* ---- model.c ------------------------------------------------------------------------------------ */

/* PN_OK if the layers chain (each one's output width is the next one's input width). */
int pn_check_model(const char *fn, model m);
/* PN_OK if d fits m: X and y have the same (non-zero) number of rows and the model's widths. */
int pn_check_data(const char *fn, model m, data d);

/* Index of the first largest of a[0..n) (the homework's max_index). */
int pn_max_index(const double *a, int n);

/* How many of `rows` rows (cols values each, contiguous) of p have their largest value where y has
 * its (first maximum each): the one count behind accuracy_model, evaluate_model and train_steps. */
int pn_count_correct(const double *y, const double *p, int rows, int cols);

/* Mean over rows of −Σ y·log p without checks. */
double pn_cross_entropy(matrix y, matrix p);

/* ---- data.c ------------------------------------------------------------------------------------- */

/* PN_OK if d.X and d.y are valid matrices with the same, nonzero number of rows. */
int pn_check_dataset(const char *fn, data d);

/* Copies rows of d into batch (batch.X.rows of them): rows[i] when rows is not NULL, else rows
 * drawn uniformly with replacement from the library's generator. */
void pn_gather_rows(data d, const int *rows, data batch);

/* ---- optim.c ------------------------------------------------------------------------------------ */

/* update_layer and adam_update_layer that also store in *sum (when not NULL) the sum of the layer's
 * new weights and bias, computed in the update's own pass: non-finite iff a weight became so (or
 * the sum overflowed, which train_steps tells apart by looking). */
int pn_update_layer(layer *l, double rate, double momentum, double decay, double *sum);
int pn_adam_update_layer(layer *l, double rate, double beta1, double beta2, double eps, double decay,
                         int t, double grad_scale, double *sum);

#endif
