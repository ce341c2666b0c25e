/* test_core.c — the C library tested from C, built with AddressSanitizer + UBSan by `make ctest`:
 * the lecture's worked example through the homework API, gemm against the reference loop, the
 * error paths (each must record an error and return, never crash), a training run with NaN
 * detection, and every allocation freed (LeakSanitizer checks at exit). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pynet.h"

static int failures = 0, checks = 0;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        checks++;                                                                     \
        if (!(cond)) {                                                                \
            failures++;                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);  \
        }                                                                             \
    } while (0)

#define CHECK_NEAR(a, b, tol) CHECK(fabs((a) - (b)) <= (tol))

/* The call must fail with `code` and a message containing `needle`. */
#define CHECK_ERROR(code, needle)                                                      \
    do {                                                                               \
        CHECK(pn_error_code() == (code));                                              \
        CHECK(strstr(pn_error_message(), (needle)) != NULL);                           \
        if (!strstr(pn_error_message(), (needle)))                                     \
            fprintf(stderr, "    message was: %s\n", pn_error_message());              \
        pn_clear_error();                                                              \
    } while (0)

static matrix from(int rows, int cols, const double *values)
{
    matrix m = make_matrix(rows, cols);
    memcpy(m.data, values, sizeof(double) * rows * cols);
    return m;
}

static void test_worked_example(void)
{
    const double x[] = {3, 2, 4}, w1[] = {1, 0.5, 0.1, 1, -2.3, -0.5}, w2[] = {0.7, -2.1, 0.1, -0.2};
    const double truth[] = {1, 0};
    model m = {alloc_layers(2), 2};
    m.layers[0] = make_layer(3, 2, RELU);
    m.layers[1] = make_layer(2, 2, SOFTMAX);
    memcpy(m.layers[0].w.data, w1, sizeof w1);
    memcpy(m.layers[1].w.data, w2, sizeof w2);
    matrix X = from(1, 3, x), y = from(1, 2, truth);

    matrix p = forward_model(m, X);
    CHECK(m.layers[0].out.data[0] == 0 && m.layers[0].out.data[1] == 1.5);
    double p0 = 1 / (1 + exp(-0.45));   /* softmax([0.15, -0.3]) */
    CHECK_NEAR(p.data[0], p0, 1e-15);
    CHECK_NEAR(p.data[1], 1 - p0, 1e-15);

    matrix dL = axpy_matrix(-1, p, y);  /* truth − prediction */
    CHECK(backward_model(m, dL) == PN_OK);
    double g = 1 - p0;                  /* dL = [g, −g] */
    CHECK(m.layers[1].dw.data[0] == 0 && m.layers[1].dw.data[1] == 0);
    CHECK_NEAR(m.layers[1].dw.data[2], 1.5 * g, 1e-15);
    CHECK_NEAR(m.layers[1].dw.data[3], -1.5 * g, 1e-15);
    double d1 = g * 0.1 + (-g) * (-0.2);   /* delta reaching layer 1's second unit */
    const double expect_dw1[] = {0, 3 * d1, 0, 2 * d1, 0, 4 * d1};
    for (int i = 0; i < 6; i++) CHECK_NEAR(m.layers[0].dw.data[i], expect_dw1[i], 1e-15);

    CHECK(update_model(m, 0.1, 0, 0) == PN_OK);
    CHECK_NEAR(m.layers[0].w.data[1], 0.5351, 1.5e-4);    /* the lecture's rounded figures */
    CHECK_NEAR(m.layers[0].w.data[3], 1.0234, 1.5e-4);
    CHECK_NEAR(m.layers[0].w.data[5], -0.4532, 1.5e-4);
    CHECK_NEAR(m.layers[1].w.data[2], 0.1585, 1.5e-4);
    CHECK_NEAR(m.layers[1].w.data[3], -0.2585, 1.5e-4);

    free_matrix(dL);
    free_matrix(X);
    free_matrix(y);
    free_model(m);
}

static void test_softmax(void)
{
    const double v[] = {1, 2, 7, 3, 2};
    matrix m = from(1, 5, v);
    CHECK(activate_matrix(m, SOFTMAX) == PN_OK);
    double sum = 0;
    for (int i = 0; i < 5; i++) sum += exp(v[i]);
    for (int i = 0; i < 5; i++) CHECK_NEAR(m.data[i], exp(v[i]) / sum, 1e-16);
    free_matrix(m);
}

static void test_gemm_against_reference(void)
{
    set_seed(1);
    const int sizes[][3] = {{1, 1, 1}, {3, 5, 7}, {17, 9, 33}, {64, 64, 64}, {130, 70, 257}, {0, 4, 4}, {4, 4, 0}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
                matrix a = ta ? random_matrix(k, m, 1) : random_matrix(m, k, 1);
                matrix b = tb ? random_matrix(n, k, 1) : random_matrix(k, n, 1);
                matrix c1 = random_matrix(m, n, 1), c2 = copy_matrix(c1);
                int lda = a.cols > 1 ? a.cols : 1, ldb = b.cols > 1 ? b.cols : 1, ldc = n > 1 ? n : 1;
                CHECK(gemm(ta, tb, m, n, k, 0.5, a.data, lda, b.data, ldb, 2.0, c1.data, ldc) == PN_OK);
                CHECK(gemm_reference(ta, tb, m, n, k, 0.5, a.data, lda, b.data, ldb, 2.0, c2.data, ldc) == PN_OK);
                double worst = 0;
                for (int i = 0; i < m * n; i++) worst = fmax(worst, fabs(c1.data[i] - c2.data[i]));
                CHECK(worst <= 1e-13 * (k + 1));
                free_matrix(a);
                free_matrix(b);
                free_matrix(c1);
                free_matrix(c2);
            }
}

/* The float32 mode: gemm_f32 gives gemm_f32_reference's bits exactly, on every SIMD level the CPU
 * has (partial tiles, several k blocks, beta = 0 over NaN and beta != 0), under the sanitizers. */
static void test_gemm_f32_against_its_definition(void)
{
    set_seed(2);
    const char *levels[] = {"auto", "avx512", "avx2", "portable"};
    const int sizes[][3] = {{1, 1, 1}, {7, 33, 5}, {9, 17, 300}, {130, 70, 600}, {0, 4, 4}, {4, 4, 0}};
    for (size_t v = 0; v < sizeof levels / sizeof levels[0]; v++) {
        if (pn_set_simd(levels[v]) != PN_OK) {   /* not on this CPU */
            pn_clear_error();
            continue;
        }
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            for (int t = 0; t < 4; t++) {
                int ta = t & 1, tb = t >> 1, m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
                matrix a = ta ? random_matrix(k, m, 1) : random_matrix(m, k, 1);
                matrix b = tb ? random_matrix(n, k, 1) : random_matrix(k, n, 1);
                matrix c1 = random_matrix(m, n, 1), c2 = copy_matrix(c1);
                int lda = a.cols > 1 ? a.cols : 1, ldb = b.cols > 1 ? b.cols : 1, ldc = n > 1 ? n : 1;
                double beta = t == 3 ? 0.0 : 0.75;
                if (beta == 0)
                    for (int i = 0; i < m * n; i++) c1.data[i] = NAN;
                CHECK(gemm_f32(ta, tb, m, n, k, 1.5, a.data, lda, b.data, ldb, beta, c1.data, ldc) == PN_OK);
                CHECK(gemm_f32_reference(ta, tb, m, n, k, 1.5, a.data, lda, b.data, ldb, beta, c2.data, ldc) == PN_OK);
                int same = 1;
                for (int i = 0; i < m * n; i++) same &= memcmp(&c1.data[i], &c2.data[i], sizeof(double)) == 0;
                CHECK(same);
                free_matrix(a);
                free_matrix(b);
                free_matrix(c1);
                free_matrix(c2);
            }
    }
    pn_set_simd("auto");
}

static void test_errors_never_crash(void)
{
    matrix a = make_matrix(2, 3), b = make_matrix(4, 5);
    matrix c = matrix_mult_matrix(a, b);
    CHECK(c.data == NULL && c.rows == 0);
    CHECK_ERROR(PN_ERR_SHAPE, "a is 2x3 but b is 4x5");
    c = axpy_matrix(1, a, b);
    CHECK(c.data == NULL);
    CHECK_ERROR(PN_ERR_SHAPE, "x is 2x3 but y is 4x5");
    CHECK(gradient_matrix(a, RELU, b) == PN_ERR_SHAPE);
    CHECK_ERROR(PN_ERR_SHAPE, "m is 2x3 but d is 4x5");
    CHECK(activate_matrix(a, (ACTIVATION)42) == PN_ERR_VALUE);
    CHECK_ERROR(PN_ERR_VALUE, "LINEAR=0, LOGISTIC=1, RELU=2, LRELU=3, SOFTMAX=4");
    CHECK(isnan(cross_entropy_loss(a, b)));
    CHECK_ERROR(PN_ERR_SHAPE, "y is 2x3 but p is 4x5");

    matrix bad = {3, 3, NULL};
    c = copy_matrix(bad);
    CHECK(c.data == NULL);
    CHECK_ERROR(PN_ERR_VALUE, "no data");
    c = make_matrix(-1, 2);
    CHECK_ERROR(PN_ERR_SHAPE, "-1x2");
    c = make_matrix(1 << 30, 1 << 30);
    CHECK(c.data == NULL);
    CHECK_ERROR(PN_ERR_NOMEM, "make_matrix");

    layer l = make_layer(4, 2, RELU);
    c = forward_layer(&l, a);
    CHECK(c.data == NULL);
    CHECK_ERROR(PN_ERR_SHAPE, "input is 2x3 but the layer's w is 4x2");
    c = backward_layer(&l, make_matrix(0, 0));
    CHECK_ERROR(PN_ERR_SHAPE, "call forward first");
    c = forward_layer(NULL, a);
    CHECK_ERROR(PN_ERR_VALUE, "layer is NULL");
    layer empty_layer;
    memset(&empty_layer, 0, sizeof empty_layer);
    c = forward_layer(&empty_layer, a);
    CHECK_ERROR(PN_ERR_VALUE, "make_layer");
    CHECK(update_layer(&l, NAN, 0, 0) == PN_ERR_VALUE);
    CHECK_ERROR(PN_ERR_VALUE, "finite");
    layer none = make_layer(0, 3, RELU);
    CHECK(none.w.data == NULL);
    CHECK_ERROR(PN_ERR_SHAPE, "got 0 and 3");
    free_layer(&none);
    free_layer(&l);
    free_layer(NULL);

    model m = {alloc_layers(2), 2};
    m.layers[0] = make_layer(3, 4, RELU);
    m.layers[1] = make_layer(5, 2, SOFTMAX);
    c = forward_model(m, a);
    CHECK_ERROR(PN_ERR_SHAPE, "layer 0 outputs 4 values but layer 1 takes 5");
    free_model(m);
    model nothing = {NULL, 0};
    CHECK(isnan(accuracy_model(nothing, (data){a, b})));
    CHECK_ERROR(PN_ERR_VALUE, "no layers");
    CHECK(gemm(0, 0, 2, 2, 2, 1, NULL, 2, NULL, 2, 0, NULL, 2) == PN_ERR_VALUE);
    CHECK_ERROR(PN_ERR_VALUE, "NULL");
    CHECK(gemm(0, 0, 2, 3, 4, 1, a.data, 1, b.data, 5, 0, b.data, 5) == PN_ERR_SHAPE);
    CHECK_ERROR(PN_ERR_SHAPE, "lda=1");
    CHECK(pn_set_threads(0) == PN_ERR_VALUE);
    CHECK_ERROR(PN_ERR_VALUE, "at least 1");

    /* an output over an input, an empty product with zero strides, a dL of the wrong width */
    matrix sq = make_matrix(4, 4), sq2 = make_matrix(4, 4);
    CHECK(gemm(0, 0, 4, 4, 4, 1, sq.data, 4, sq2.data, 4, 0, sq.data, 4) == PN_ERR_VALUE);
    CHECK_ERROR(PN_ERR_VALUE, "shares memory with input A");
    CHECK(gemm(0, 0, 2, 3, 0, 1, NULL, 0, NULL, 3, 0, sq.data, 3) == PN_OK);
    model two = {alloc_layers(2), 2};
    two.layers[0] = make_layer(4, 3, RELU);
    two.layers[1] = make_layer(3, 2, SOFTMAX);
    forward_model(two, sq);
    CHECK(pn_error_code() == PN_OK);
    matrix wide = make_matrix(4, 5);
    CHECK(backward_model(two, wide) == PN_ERR_SHAPE);
    CHECK_ERROR(PN_ERR_SHAPE, "delta is 4x5 but the layer's last output is 4x2");
    c = forward_layer(&two.layers[0], two.layers[0].out);
    CHECK_ERROR(PN_ERR_SHAPE, "input is 4x3");
    c = forward_model(two, two.layers[1].dw);
    CHECK_ERROR(PN_ERR_SHAPE, "X is 3x2");
    free_matrix(wide);
    free_model(two);
    free_matrix(sq);
    free_matrix(sq2);
    CHECK(make_matrix(1 << 30, 1 << 30).data == NULL);
    CHECK_ERROR(PN_ERR_NOMEM, "more than this machine's");
    free_matrix(a);
    free_matrix(b);
}

/* Three separable clusters: training must reach high accuracy, and a huge rate must stop with
 * PN_ERR_NONFINITE and the bad loss recorded. */
static void test_training(void)
{
    set_seed(7);
    int n = 300;
    data d = {make_matrix(n, 4), make_matrix(n, 3)};
    for (int i = 0; i < n; i++) {
        int c = rand_int(3);
        for (int j = 0; j < 4; j++) d.X.data[i * 4 + j] = (j == c ? 3.0 : 0.0) + rand_uniform() - 0.5;
        d.y.data[i * 3 + c] = 1;
    }
    model m = {alloc_layers(2), 2};
    m.layers[0] = make_layer(4, 8, LRELU);
    m.layers[1] = make_layer(8, 3, SOFTMAX);
    double *losses = calloc(400, sizeof(double));
    CHECK(train_model_losses(m, d, 32, 400, 0.1, 0.9, 1e-4, losses) == PN_OK);
    CHECK(losses[399] < 0.2 * losses[0]);
    CHECK(accuracy_model(m, d) > 0.97);
    CHECK(m.layers[0].in.data == NULL);   /* it no longer points at the freed batch */

    matrix out = make_matrix(n, 3);
    CHECK(predict_model(m, d.X, out) == PN_OK);
    matrix p = forward_model(m, d.X);
    double worst = 0;
    for (int i = 0; i < n * 3; i++) worst = fmax(worst, fabs(out.data[i] - p.data[i]));
    CHECK(worst == 0);

    data b = random_batch(d, 50);
    CHECK(b.X.rows == 50 && b.y.cols == 3);
    free_data(b);

    CHECK(train_model_losses(m, d, 32, 400, 1e9, 0.9, 0, losses) == PN_ERR_NONFINITE);
    CHECK_ERROR(PN_ERR_NONFINITE, "lower");
    CHECK(train_model(m, d, 0, 10, 0.1, 0, 0) == PN_ERR_VALUE);
    CHECK_ERROR(PN_ERR_VALUE, "batch must be >= 1");

    free(losses);
    free_matrix(out);
    free_model(m);
    free_data(d);
}

/* Zero-width X or y (5 rows, 0 columns: a legal matrix with no data pointer) are gathered without
 * handing memcpy a NULL pointer (issue 10 item 5, seen by UBSan); the batch has the right shape. */
static void test_zero_width_batches(void)
{
    double labels[5] = {0, 1, 0, 1, 0}, features[5] = {1, 2, 3, 4, 5};
    data no_features = {{5, 0, NULL}, {5, 1, labels}};
    data b = random_batch(no_features, 3);
    CHECK(pn_error_code() == PN_OK);
    CHECK(b.X.rows == 3 && b.X.cols == 0 && b.y.rows == 3 && b.y.cols == 1 && b.y.data != NULL);
    for (int i = 0; b.y.data && i < 3; i++) CHECK(b.y.data[i] == 0 || b.y.data[i] == 1);
    free_data(b);
    data no_labels = {{5, 1, features}, {5, 0, NULL}};
    b = random_batch(no_labels, 3);
    CHECK(pn_error_code() == PN_OK);
    CHECK(b.X.rows == 3 && b.X.cols == 1 && b.y.rows == 3 && b.y.cols == 0 && b.X.data != NULL);
    for (int i = 0; b.X.data && i < 3; i++) CHECK(b.X.data[i] >= 1 && b.X.data[i] <= 5);
    free_data(b);
    pn_clear_error();
}

/* pn_activation_name lists every activation, 0, 1, 2, ... and then NULL; an unknown one's error
 * lists the same names. */
static void test_activation_names(void)
{
    const char *expected[] = {"LINEAR", "LOGISTIC", "RELU", "LRELU", "SOFTMAX", "TANH"};
    int n = 0;
    while (pn_activation_name((ACTIVATION)n)) n++;
    CHECK(n == 6);
    for (int i = 0; i < n && i < 6; i++) CHECK(strcmp(pn_activation_name((ACTIVATION)i), expected[i]) == 0);
    CHECK(pn_activation_name((ACTIVATION)-1) == NULL);
    matrix m = make_matrix(1, 1);
    CHECK(activate_matrix(m, (ACTIVATION)n) == PN_ERR_VALUE);
    CHECK(strstr(pn_error_message(), "valid: LINEAR=0, LOGISTIC=1, RELU=2, LRELU=3, SOFTMAX=4, TANH=5") != NULL);
    free_matrix(m);
    pn_clear_error();
}

/* Layer normalisation: each output row of a LINEAR norm layer with gain 1, shift 0 has mean 0 and
 * variance var/(var + eps); backward's dL/d(in·w) rows sum to 0 (the mean is removed); the buffers
 * grow with the batch; update, Adam, clipping, predict and training cover it; bad inputs fail. */
static void test_layer_norm(void)
{
    set_seed(5);
    CHECK(layer_add_norm(NULL) == PN_ERR_VALUE);
    CHECK_ERROR(PN_ERR_VALUE, "layer_add_norm");
    layer none;
    memset(&none, 0, sizeof none);
    CHECK(layer_add_norm(&none) == PN_ERR_VALUE);
    CHECK_ERROR(PN_ERR_VALUE, "make_layer");
    CHECK_NEAR(pn_norm_eps(), 1e-5, 0);

    layer l = make_layer(3, 4, LINEAR);
    CHECK(layer_add_norm(&l) == PN_OK);
    double *gain = l.gain.data;
    CHECK(layer_add_norm(&l) == PN_OK && l.gain.data == gain);   /* a second call keeps it */
    CHECK(l.gain.data[0] == 1 && l.shift.data[3] == 0 && l.dgain.rows == 1 && l.vshift.cols == 4);
    const double x[] = {1, 2, 3, -1, 0.5, 4};
    matrix in = from(2, 3, x);
    matrix out = forward_layer(&l, in);
    CHECK(out.data != NULL && l.mean.rows == 2 && l.rstd.rows == 2);
    for (int i = 0; i < 2; i++) {
        double mu = 0, var = 0;
        for (int j = 0; j < 4; j++) mu += out.data[i * 4 + j] / 4;
        for (int j = 0; j < 4; j++) var += (out.data[i * 4 + j] - mu) * (out.data[i * 4 + j] - mu) / 4;
        CHECK_NEAR(mu, 0, 1e-14);
        double rstd = l.rstd.data[i], v = 1 / (rstd * rstd) - 1e-5;   /* the row's variance before */
        CHECK_NEAR(var, v / (v + 1e-5), 1e-12);
    }
    const double dv[] = {0.3, -1, 2, 0.5, 1, 1, -2, 0.25};
    matrix delta = from(2, 4, dv);
    matrix dx = backward_layer(&l, delta);
    CHECK(dx.data != NULL && dx.rows == 2 && dx.cols == 3);
    for (int i = 0; i < 2; i++)
        CHECK_NEAR(delta.data[i * 4] + delta.data[i * 4 + 1] + delta.data[i * 4 + 2] + delta.data[i * 4 + 3], 0, 1e-12);
    CHECK_NEAR(l.dshift.data[0], 0.3 + 1, 1e-15);   /* dshift: column sums of dL/d(out) (linear) */
    double g0 = l.gain.data[0], s0 = l.shift.data[0];
    CHECK(update_layer(&l, 0.5, 0, 10) == PN_OK);      /* never decayed */
    CHECK_NEAR(l.gain.data[0], g0 + 0.5 * l.dgain.data[0], 1e-15);
    CHECK_NEAR(l.shift.data[0], s0 + 0.5 * l.dshift.data[0], 1e-15);
    memset(l.vshift.data, 0, 4 * sizeof(double));     /* SGD's momentum is Adam's first moment */
    CHECK(adam_update_layer(&l, 0.01, 0.9, 0.999, 1e-8, 0, 1, 1.0) == PN_OK);
    CHECK_NEAR(l.shift.data[0], s0 + 0.5 * l.dshift.data[0] + 0.01, 1e-9);   /* Adam's first step: ±rate */

    matrix big = random_matrix(300, 3, 1);           /* the workspace grows with the batch */
    CHECK(forward_layer(&l, big).data != NULL && l.mean.rows == 300);
    CHECK(forward_layer(&l, in).data != NULL && l.mean.rows == 2);

    /* inconsistent parameters are refused, not read past their end */
    l.dshift.cols = 2;
    CHECK(forward_layer(&l, in).data == NULL);
    CHECK_ERROR(PN_ERR_SHAPE, "normalisation parameters are inconsistent");
    l.dshift.cols = 4;
    CHECK(backward_layer(&l, l.gain).data == NULL);   /* wrong shape: caught before anything is written */
    CHECK_ERROR(PN_ERR_SHAPE, "delta is 1x4");
    matrix row = {1, 4, l.gain.data};
    CHECK(forward_layer(&l, (matrix){1, 3, big.data}).data != NULL);
    CHECK(backward_layer(&l, row).data == NULL);
    CHECK_ERROR(PN_ERR_VALUE, "layer's gain");

    /* a model with norm: predict equals forward; train_steps with Adam and clipping runs */
    layer *layers = alloc_layers(2);
    layers[0] = make_layer(3, 5, TANH);
    layers[1] = make_layer(5, 2, SOFTMAX);
    CHECK(layer_add_norm(&layers[0]) == PN_OK && layer_add_bias(&layers[0]) == PN_OK);
    model m = {layers, 2};
    matrix p = make_matrix(300, 2);
    CHECK(predict_model(m, big, p) == PN_OK);
    matrix f = forward_model(m, big);
    double worst = 0;
    for (size_t i = 0; i < 600; i++) worst = fmax(worst, fabs(f.data[i] - p.data[i]));
    CHECK(worst <= 1e-14);
    matrix y = make_matrix(300, 2);
    for (int i = 0; i < 300; i++) y.data[i * 2 + (big.data[i * 3] > 0)] = 1;
    train_config c = default_train_config();
    c.optimizer = PN_ADAM;
    c.clip = 0.5;
    c.batch = 32;
    double losses[20];
    CHECK(train_steps(m, (data){big, y}, &c, 0, 20, NULL, losses, NULL) == PN_OK);
    CHECK(isfinite(losses[19]) && losses[19] < losses[0]);
    CHECK(layers[0].gain.data[0] != 1.0);
    CHECK(!isnan(clip_gradients(m, 1.0, 1.0)));

    free_model(m);
    free_matrix(p);
    free_matrix(y);
    free_matrix(big);
    free_matrix(in);
    free_matrix(delta);
    free_layer(&l);
}

/* layer_step_norms: ‖dw‖, ‖w_before‖ and ‖w − w_before‖ (left in w_before), and its errors. */
static void test_layer_step_norms(void)
{
    layer l = make_layer(2, 2, RELU);
    const double w[] = {1, 2, 3, 4}, dw[] = {3, 0, 0, 4};
    memcpy(l.w.data, w, sizeof w);
    memcpy(l.dw.data, dw, sizeof dw);
    double before[] = {1, 2, 3, 6}, norms[3];
    CHECK(layer_step_norms(&l, before, norms) == PN_OK);
    CHECK_NEAR(norms[0], 5.0, 1e-15);
    CHECK_NEAR(norms[1], sqrt(1 + 4 + 9 + 36), 1e-14);
    CHECK_NEAR(norms[2], 2.0, 1e-15);
    CHECK(before[0] == 0 && before[3] == -2);
    CHECK(layer_step_norms(&l, NULL, norms) == PN_ERR_VALUE);
    CHECK_ERROR(PN_ERR_VALUE, "layer_step_norms");
    CHECK(layer_step_norms(NULL, before, norms) == PN_ERR_VALUE);
    CHECK_ERROR(PN_ERR_VALUE, "layer is NULL");
    free_layer(&l);
}

/* Checkpoints: the generator's state read and put back continues the same sequence; Adam's second
 * moments copy out (zeros before any step) and in, with sizes checked. */
static void test_checkpoint_state(void)
{
    uint64_t state[4];
    set_seed(9);
    rand_uniform();
    pn_get_rng_state(state);
    double a = rand_uniform(), b = rand_uniform();
    set_seed(123);
    pn_set_rng_state(state);
    CHECK(rand_uniform() == a && rand_uniform() == b);

    layer l = make_layer(3, 2, RELU);
    CHECK(layer_add_bias(&l) == PN_OK);
    double s[6], sb[2], in[6] = {1, 2, 3, 4, 5, 6}, inb[2] = {7, 8};
    CHECK(pn_get_adam_moments(&l, s, 6, sb, 2) == PN_OK);
    CHECK(s[0] == 0 && s[5] == 0 && sb[1] == 0);
    CHECK(pn_set_adam_moments(&l, in, 6, inb, 2) == PN_OK);
    CHECK(pn_get_adam_moments(&l, s, 6, sb, 2) == PN_OK);
    CHECK(s[0] == 1 && s[5] == 6 && sb[0] == 7 && sb[1] == 8);
    CHECK(pn_set_adam_moments(&l, in, 5, inb, 2) == PN_ERR_SHAPE);
    CHECK_ERROR(PN_ERR_SHAPE, "6 weights and 2 biases, not 5 and 2");
    free_layer(&l);
}

static void test_scan_values(void)
{
    pn_scan_result r;
    CHECK(pn_scan_values(NULL, 0, &r) == PN_OK);
    CHECK(isnan(r.min) && isnan(r.max) && r.first_bad == -1 && r.bad == 0);
    CHECK(pn_scan_values(NULL, 3, &r) == PN_ERR_VALUE);
    CHECK_ERROR(PN_ERR_VALUE, "pn_scan_values: need a result and 3 values");
    enum { N = 20011 };   /* enough for the threaded pass, and not a multiple of any vector width */
    double *x = malloc(N * sizeof(double));
    for (int i = 0; i < N; i++) x[i] = (i * 7919 % N) - 5000.5;
    CHECK(pn_scan_values(x, N, &r) == PN_OK);
    CHECK(r.min == -5000.5 && r.max == N - 1 - 5000.5 && r.first_bad == -1 && r.bad == 0);
    x[N - 1] = INFINITY;
    x[12345] = NAN;
    x[20000] = -INFINITY;
    CHECK(pn_scan_values(x, N, &r) == PN_OK);
    CHECK(r.first_bad == 12345 && r.bad == 3 && r.max == INFINITY && r.min == -INFINITY);
    free(x);
}

int main(void)
{
    test_worked_example();
    test_softmax();
    test_gemm_against_reference();
    test_gemm_f32_against_its_definition();
    test_errors_never_crash();
    test_training();
    test_zero_width_batches();
    test_activation_names();
    test_layer_norm();
    test_layer_step_norms();
    test_checkpoint_state();
    test_scan_values();
    pn_set_threads(1);
    test_gemm_against_reference();
    if (failures) {
        fprintf(stderr, "test_core: %d of %d checks FAILED\n", failures, checks);
        return 1;
    }
    printf("test_core: all %d checks passed\n", checks);
    return 0;
}
