/* matrix.c — the homework's matrix functions over one contiguous row-major buffer. Each returns a
 * new matrix the caller frees, or the empty matrix {0, 0, NULL} with an error recorded. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static const matrix empty = {0, 0, NULL};

matrix make_matrix(int rows, int cols)
{
    if (rows < 0 || cols < 0) {
        pn_fail(PN_ERR_SHAPE, "make_matrix: rows and cols must be >= 0, got %dx%d", rows, cols);
        return empty;
    }
    matrix m = {rows, cols, NULL};
    if (pn_size(m) == 0) return m;
    m.data = pn_alloc(pn_size(m), "make_matrix");
    return m.data ? m : empty;
}

void free_matrix(matrix m) { free(m.data); }

matrix copy_matrix(matrix m)
{
    if (pn_check_matrix("copy_matrix", "m", m)) return empty;
    matrix c = make_matrix(m.rows, m.cols);
    if (c.data) memcpy(c.data, m.data, pn_size(m) * sizeof(double));
    return c;
}

matrix random_matrix(int rows, int cols, double s)
{
    if (!(s >= 0) || s > 1e300) {
        pn_fail(PN_ERR_VALUE, "random_matrix: scale s must be a finite number >= 0, got %g", s);
        return empty;
    }
    matrix m = make_matrix(rows, cols);
    if (!m.data) return m;   /* empty: a 0-sized request, or a failure make_matrix recorded */
    for (size_t i = 0; i < pn_size(m); i++) m.data[i] = s * (2.0 * rand_uniform() - 1.0);
    return m;
}

matrix transpose_matrix(matrix m)
{
    if (pn_check_matrix("transpose_matrix", "m", m)) return empty;
    matrix t = make_matrix(m.cols, m.rows);
    if (!t.data) return t;
    /* 32×32 tiles keep both the rows read and the rows written in cache. */
    enum { TILE = 32 };
    for (int i0 = 0; i0 < m.rows; i0 += TILE)
        for (int j0 = 0; j0 < m.cols; j0 += TILE) {
            int i1 = i0 + TILE < m.rows ? i0 + TILE : m.rows;
            int j1 = j0 + TILE < m.cols ? j0 + TILE : m.cols;
            for (int i = i0; i < i1; i++)
                for (int j = j0; j < j1; j++)
                    t.data[(size_t)j * m.rows + i] = m.data[(size_t)i * m.cols + j];
        }
    return t;
}

matrix matrix_mult_matrix(matrix a, matrix b)
{
    if (pn_check_matrix("matrix_mult_matrix", "a", a) || pn_check_matrix("matrix_mult_matrix", "b", b))
        return empty;
    if (a.cols != b.rows) {
        pn_fail(PN_ERR_SHAPE, "matrix_mult_matrix: a is %dx%d but b is %dx%d (a.cols must equal b.rows)",
                a.rows, a.cols, b.rows, b.cols);
        return empty;
    }
    matrix c = make_matrix(a.rows, b.cols);
    if (!c.data) return c;
    if (gemm(0, 0, a.rows, b.cols, a.cols, 1.0, a.data, a.cols, b.data, b.cols, 0.0, c.data, c.cols)) {
        free_matrix(c);
        return empty;
    }
    return c;
}

matrix axpy_matrix(double a, matrix x, matrix y)
{
    if (pn_check_matrix("axpy_matrix", "x", x) || pn_check_matrix("axpy_matrix", "y", y)) return empty;
    if (x.rows != y.rows || x.cols != y.cols) {
        pn_fail(PN_ERR_SHAPE, "axpy_matrix: x is %dx%d but y is %dx%d (they must match)",
                x.rows, x.cols, y.rows, y.cols);
        return empty;
    }
    matrix p = make_matrix(x.rows, x.cols);
    if (!p.data) return p;
    for (size_t i = 0; i < pn_size(x); i++) p.data[i] = a * x.data[i] + y.data[i];
    return p;
}
