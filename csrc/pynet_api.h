/* pynet_api.h — the whole public C API of pynet, in the homework's words.
 *
 * This file has no preprocessor lines on purpose: build_ffi.py hands it to cffi's cdef verbatim, and
 * the C sources see it through pynet.h, so the binding is checked by the compiler against the very
 * declarations the library is built from. Include pynet.h, never this file directly.
 *
 * Conventions (the lecture's, kept so homework answers carry over):
 *   - A matrix is one contiguous row-major buffer of doubles: element (i, j) is data[i*cols + j].
 *   - A layer computes out = f(in · w); in is (batch × input), w is (input × output).
 *   - Deltas carry the NEGATIVE gradient: the loss gradient handed to backward_model is
 *     dL = truth − prediction, so dw = inᵀ·delta is −∂L/∂w summed over the batch.
 *   - update_layer applies   v ← dw − λ·w + m·v ;   w ← w + η·v   (λ = decay, m = momentum, η = rate),
 *     and train_model passes η = rate / batch, so the step is the mean over the batch.
 *   - Activation gradients are taken from the layer's OUTPUT y = f(x): logistic y(1−y) (the slide's
 *     "g(x)g(1−x)" is a typo), relu 1 where y > 0 else 0, lrelu 1 where y > 0 else 0.1, linear 1,
 *     softmax 1 (softmax is always paired with cross-entropy, whose gradient the caller passes in),
 *     tanh 1 − y².
 *   - Beyond the homework, all off by default so homework models behave exactly as specified: a bias
 *     per layer (out = f(in·w + b), never decayed), layer normalisation of in·w (+ b) with a learnt gain and
 *     shift (layer_add_norm), inverted dropout on a layer's input during
 *     training, Adam, gradient clipping and learning-rate schedules (train_steps).
 *   - forward_layer / forward_model are the forward pass of a TRAINING step (they save what backward
 *     needs and apply dropout); predict_model / accuracy_model evaluate (no dropout, nothing saved).
 *
 * Errors: nothing here exits, aborts or prints. A function that fails records a code and a message
 * (pn_error_code / pn_error_message, per thread) and returns a status (int functions: the code, 0 on
 * success), an empty matrix {0, 0, NULL}, an empty layer (w.data == NULL) or NaN (double functions).
 * Successful calls do not clear an earlier error; call pn_clear_error() first when you mean to check.
 *
 * Ownership: every matrix returned by a make_/copy_/random_/transpose_/mult/axpy function is the
 * caller's, released with free_matrix. Buffers a layer hands out (forward_layer's result, which is
 * l->out, and backward_layer's result) belong to the layer: overwritten by its next forward (resp.
 * backward), but the memory stays valid until free_layer, even when a larger batch makes the layer
 * grow a new buffer. A layer never owns the `in` it saved.
 */

typedef struct matrix {
    int rows, cols;
    double *data;           /* rows*cols doubles, row-major; NULL when empty */
} matrix;

typedef enum { LINEAR, LOGISTIC, RELU, LRELU, SOFTMAX, TANH } ACTIVATION;   /* TANH: beyond the homework */

typedef struct layer_workspace layer_workspace;   /* private: reusable buffers of a layer */

typedef struct layer {
    matrix in;              /* input saved by forward_layer (not owned: the caller keeps it alive);
                               with dropout, the dropped copy the layer actually used (owned) */
    matrix w;               /* weights, input × output (owned) */
    matrix dw;              /* weight delta from the last backward_layer, input × output (owned) */
    matrix v;               /* last update, for momentum (Adam: first moment), input × output (owned) */
    matrix out;             /* output of the last forward_layer, batch × output (owned) */
    ACTIVATION activation;
    layer_workspace *ws;    /* private; NULL for a layer that make_layer did not build */
    /* Beyond the homework (see layer_add_bias, train_steps). */
    matrix b;               /* bias, 1 × output, or empty when the layer has none (owned) */
    matrix db;              /* bias delta from the last backward: column sums of delta (owned) */
    matrix vb;              /* bias's last update / Adam first moment (owned) */
    double dropout;         /* probability of zeroing each input unit in a training forward, [0, 1) */
    matrix mask;            /* the last training forward's input mask: 0 or 1/(1 − dropout) per
                               entry, batch × input; empty when no dropout was applied (owned) */
    /* Layer normalisation of the pre-activation (see layer_add_norm); all empty when off. */
    matrix gain, shift;     /* learnt per-unit gain (starts at 1) and shift (starts at 0), 1 × output (owned) */
    matrix dgain, dshift;   /* their deltas from the last backward, 1 × output (owned) */
    matrix vgain, vshift;   /* their last updates / Adam first moments, 1 × output (owned) */
    matrix mean, rstd;      /* per row of the last forward: mean and 1/sqrt(var + PN_NORM_EPS) of
                               the pre-activation, batch × 1 (owned) */
} layer;

typedef struct model {
    layer *layers;          /* n layers, first to last; free_model frees them and the array */
    int n;
} model;

typedef struct data {
    matrix X;               /* one example per row */
    matrix y;               /* one-hot truth per row */
} data;

/* ---- errors, threads, randomness -------------------------------------------------------------- */
enum { PN_OK = 0, PN_ERR_NOMEM = 1, PN_ERR_SHAPE = 2, PN_ERR_VALUE = 3, PN_ERR_NONFINITE = 4 };
int pn_error_code(void);                 /* code of the last failure on this thread, PN_OK if none */
const char *pn_error_message(void);      /* its message, naming the function, shapes and values */
void pn_clear_error(void);
void pn_free(void *p);                   /* free() for a buffer the library allocated (bindings) */

int pn_set_threads(int n);               /* threads for the kernels; n >= 1 */
int pn_get_threads(void);
/* Whether train_model / train_steps may run a block of steps on one thread instead of all when one
 * measures faster (another process busy on a core): they time blocks of steps on each and keep the
 * faster, measuring the other afresh once its figures are two seconds old. Results are the same
 * bits either way. On by default; returns the previous setting. */
int pn_set_adaptive_threads(int on);
/* What this thread's training loops measured last: seconds per step on one thread and on all
 * (0 where not measured), and the thread count of the last block; for benchmarks and reports. */
void pn_training_threads(double *one, double *all, int *last);
int pn_has_openmp(void);                 /* 1 if built with OpenMP */
int pn_packing_buffers(void);            /* gemm packing buffers alive now (one per thread that ran gemm) */
const char *pn_simd(void);               /* the kernels in use: "avx512", "avx2" or "portable" */
int pn_set_simd(const char *name);       /* use those ("auto": the best this CPU runs); for tests */

void set_seed(uint64_t seed);            /* one generator drives everything random */
double rand_uniform(void);               /* uniform in [0, 1) */
int rand_int(int n);                     /* uniform in [0, n), unbiased; n >= 1 */
void pn_get_rng_state(uint64_t state[4]);        /* the generator's whole state (xoshiro256**), for checkpoints */
void pn_set_rng_state(const uint64_t state[4]);  /* continue exactly where pn_get_rng_state was taken */

/* ---- matrices ------------------------------------------------------------------------------- */
matrix make_matrix(int rows, int cols);                 /* zeros */
void free_matrix(matrix m);
matrix copy_matrix(matrix m);
matrix random_matrix(int rows, int cols, double s);     /* uniform in [-s, s] */
matrix transpose_matrix(matrix m);
matrix matrix_mult_matrix(matrix a, matrix b);          /* a·b; a is (n × k), b is (k × m) */
matrix axpy_matrix(double a, matrix x, matrix y);       /* a·x + y, same shapes */

/* C = alpha·op(A)·op(B) + beta·C with op(X) = Xᵀ when its flag is set; op(A) is (m × k), op(B) is
 * (k × n), C is (m × n); lda, ldb, ldc are the row strides of A, B and C as stored. With beta == 0,
 * C is overwritten (its old contents, even NaN, are ignored). gemm is the fast kernel; gemm_reference
 * is the obviously-correct triple loop that tests compare it against. */
int gemm(int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda,
         const double *b, int ldb, double beta, double *c, int ldc);
int gemm_reference(int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda,
                   const double *b, int ldb, double beta, double *c, int ldc);
/* The same product with float32 arithmetic (fit's matmul="float32"): A and B rounded to float32, the
 * products summed in float32 with fused multiply-adds within each block of k (k is cut into equal
 * blocks of at most 256), C ← alpha·sum + beta·C in double after each block (beta = 1 after the first).
 * gemm_f32_reference is that definition as a plain loop; gemm_f32 gives its bits on every SIMD level
 * and thread count. */
int gemm_f32(int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda,
             const double *b, int ldb, double beta, double *c, int ldc);
int gemm_f32_reference(int ta, int tb, int m, int n, int k, double alpha, const double *a, int lda,
                       const double *b, int ldb, double beta, double *c, int ldc);

/* ---- the homework's classifier ---------------------------------------------------------------- */
int activate_matrix(matrix m, ACTIVATION a);             /* m ← f(m), in place (softmax per row) */
int gradient_matrix(matrix m, ACTIVATION a, matrix d);   /* d ← d ∘ f′, f′ taken from the output m */
/* The activation's name ("LINEAR", "LOGISTIC", ...), or NULL when a is not an activation. The values
 * are 0, 1, 2, ... without gaps: calling this for 0, 1, 2, ... until it returns NULL lists them all
 * (that is how pynet's Python side learns them). */
const char *pn_activation_name(ACTIVATION a);

layer make_layer(int input, int output, ACTIVATION activation);  /* w uniform in ±sqrt(2/input) */
int layer_add_bias(layer *l);            /* gives l a zero bias (and db, vb); PN_OK if it has one */
/* Layer normalisation (beyond the homework, off unless this is called): with z = in·w (+ b), each
 * row becomes u = gain ∘ (z − mean(z)) / sqrt(var(z) + PN_NORM_EPS) + shift before the activation,
 * mean and (biased) variance taken over that row's units; out = f(u). Gives l gain = 1, shift = 0
 * and their deltas and momenta (zero); PN_OK if it has them already. backward_layer then turns delta
 * into dL/d(in·w) through the normalisation and fills dgain, dshift (negative gradients, like dw);
 * update_layer updates gain and shift like the bias (never decayed), adam_update_layer likewise,
 * and clip_gradients counts them. */
int layer_add_norm(layer *l);
double pn_norm_eps(void);              /* PN_NORM_EPS: 1e-5 */
void free_layer(layer *l);
matrix forward_layer(layer *l, matrix in);               /* out = f(in·w); saves in and out */
matrix backward_layer(layer *l, matrix delta);           /* delta ∘= f′(out); dw = inᵀ·delta; returns delta·wᵀ */
int update_layer(layer *l, double rate, double momentum, double decay);

layer *alloc_layers(int n);              /* n empty layers (calloc); free with free_layers */
void free_layers(layer *layers, int n);  /* free_layer on each, then the array */
void free_model(model m);                /* free_layers(m.layers, m.n) */
matrix forward_model(model m, matrix X); /* returns the last layer's out (owned by that layer) */
int backward_model(model m, matrix dL);  /* dL is not modified; the first layer skips its dx */
int update_model(model m, double rate, double momentum, double decay);

int predict_model(model m, matrix X, matrix out);   /* out ← model(X), in row chunks; layers untouched */
int evaluate_model(model m, data d, double *loss, double *accuracy);   /* mean cross-entropy and accuracy */
double accuracy_model(model m, data d);              /* share of rows whose argmax matches y's */
double cross_entropy_loss(matrix y, matrix p);       /* mean over rows of −Σ y·log p, p clamped > 0 */

data random_batch(data d, int n);        /* n rows drawn uniformly with replacement (copied) */
/* One pass over n doubles, on pynet's threads: min and max of the values that are not NaN (both NaN
 * when there are none; a zero as +0), the index of the first NaN or infinite value (-1: none) and how
 * many there are. What make_data and MLPClassifier check an input array with. */
typedef struct pn_scan_result {
    double min, max;
    long long first_bad, bad;
} pn_scan_result;
int pn_scan_values(const double *x, size_t n, pn_scan_result *out);
void free_data(data d);

/* The homework's training loop: `iters` steps of random_batch, forward, dL = y − p, backward, and
 * update_model(rate/batch, momentum, decay). train_model_losses also stores each step's batch loss
 * in losses[0..iters) when losses is not NULL. If a loss is NaN or infinite, training stops before
 * that step's update and PN_ERR_NONFINITE is returned (losses[i] holds the bad value). */
int train_model(model m, data d, int batch, int iters, double rate, double momentum, double decay);
int train_model_losses(model m, data d, int batch, int iters, double rate, double momentum,
                       double decay, double *losses);

/* ---- training beyond the homework ----------------------------------------------------------------- */
typedef enum { PN_SGD, PN_ADAM } OPTIMIZER;
typedef enum { PN_CONSTANT, PN_STEP, PN_COSINE } SCHEDULE;
typedef enum { PN_FLOAT64, PN_FLOAT32 } MATMUL;

typedef struct train_config {
    int batch;              /* rows per step */
    double rate;            /* peak learning rate (SGD: divided by batch, as the homework does) */
    double momentum;        /* SGD momentum */
    double decay;           /* weight decay λ (SGD: v = dw − λw + m·v; Adam: decoupled, w −= rate·λ·w) */
    OPTIMIZER optimizer;
    double beta1, beta2, eps;   /* Adam's moment decay rates and denominator guard */
    SCHEDULE schedule;
    int warmup;             /* steps of linear warm-up to `rate` (0: none) */
    int step_size;          /* PN_STEP: the rate is multiplied by gamma every step_size steps */
    double gamma;
    int total_steps;        /* PN_COSINE: the rate follows a half cosine from `rate` to min_rate */
    double min_rate;
    double clip;            /* > 0: rescale the gradient of the mean loss to global norm <= clip */
    double l2;              /* L2 penalty (l2/2)·Σ‖w‖² on the batch's summed loss, in the gradient before
                               clipping and the optimiser (scikit-learn's alpha; biases are not penalised) */
    MATMUL matmul;          /* the training step's products: PN_FLOAT64, or PN_FLOAT32 (operands rounded to
                               float32 as gemm packs them, summed in float32 within each k block of at most
                               256 terms, in float64 across blocks); weights, moments and everything else
                               stay float64 */
} train_config;

train_config default_train_config(void);          /* the homework's: SGD, constant rate, no clipping */
/* PN_OK if c is a usable configuration: the one range check of every setting, used by every training
 * loop (train_model, train_steps; fit calls it with fn "fit"): batch >= 1, rate > 0, momentum in
 * [0, 1), decay >= 0, Adam's beta1, beta2 in [0, 1) and eps > 0, min_rate in [0, rate], a step
 * schedule's gamma > 0 (it may be > 1), clip >= 0. The message starts with fn. */
int pn_check_config(const char *fn, const train_config *c);
double scheduled_rate(const train_config *c, int step);   /* the rate at 0-based step */
int adam_update_layer(layer *l, double rate, double beta1, double beta2, double eps, double decay,
                      int t, double grad_scale);   /* t: 1-based step; gradient = −grad_scale·dw */
/* Adam's second moments of l's weights (n = w's size) and bias (nb = b's size, 0 without one), which
 * live in the layer's private workspace (the first moments are l->v and l->vb): get copies them out
 * (zeros before the first Adam step), set copies them in; for checkpoints. PN_ERR_SHAPE on a size mismatch. */
int pn_get_adam_moments(const layer *l, double *s, size_t n, double *sb, size_t nb);
int pn_set_adam_moments(layer *l, const double *s, size_t n, const double *sb, size_t nb);
double clip_gradients(model m, double max_norm, double grad_scale);  /* returns the norm before */
/* Diagnostics of the step just taken (pynet/diagnostics.py): norms = {‖dw‖, ‖w_before‖, ‖w − w_before‖},
 * w_before (w.rows × w.cols, the weights before the step) is overwritten with w − w_before. */
int layer_step_norms(const layer *l, double *w_before, double *norms);
int shuffle_indices(int *idx, int n);             /* idx ← a uniform permutation of 0..n−1 */

/* `steps` training steps numbered from first_step (for the schedule and Adam). Step s uses the
 * rows rows[s*batch .. s*batch+batch) when rows is not NULL (e.g. a shuffled epoch), else rows
 * drawn uniformly with replacement. Losses, NaN handling and the return value as train_model;
 * correct[s], when not NULL, counts the batch rows the model (in training mode) got right.
 * Beyond the loss, each update is checked (in its own pass, at no measurable cost): an update that
 * leaves a weight or bias NaN or infinite stops training with PN_ERR_NONFINITE, the message naming
 * the step, the layer and the entry, and, when the batch held NaN or infinite input, that input. */
int train_steps(model m, data d, const train_config *c, int first_step, int steps, const int *rows,
                double *losses, int *correct);
/* After a training loop returned PN_ERR_NONFINITE on this thread: the step it stopped at, the layer
 * whose weights became non-finite (-1: the loss did) and whether the batch held non-finite input. */
void pn_last_divergence(int *step, int *layer, int *bad_input);
