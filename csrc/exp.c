/* exp.c — exp over an array, vectorised. The logistic and softmax activations spend most of
 * their time in exp(); libm computes one value per call, these kernels eight (AVX-512) or four
 * (AVX2 + FMA) at a time. The method is SLEEF's double-precision exp (1-ulp accuracy): x = q·ln2 + s
 * with q an integer and |s| <= ln2/2 (ln2 split in two parts so s is exact), e^s from its degree-11
 * Taylor-like polynomial in fused multiply-adds, then e^x = 2^q · e^s. Results below the smallest
 * subnormal are 0, above the largest double +inf, NaN stays NaN. Without those instruction sets
 * (or with pn_set_simd("portable")) it is libm's exp. */
#include "internal.h"
#include "simd.h"

#include <math.h>

#if PN_HAVE_X86_KERNELS
#include <immintrin.h>

#define EXP_OVERFLOW 709.78271289338399678773454114191   /* above: +inf */
#define EXP_UNDERFLOW -746.0                             /* below: 0 (e^x < smallest subnormal / 2) */
#define R_LN2 1.442695040888963407359924681001892137426645954152985934135449406931
#define L2U .69314718055966295651160180568695068359375                          /* ln2, high part */
#define L2L .28235290563031577122588448175013436025525412068e-12                /* ln2 − L2U */

/* e^s for |s| <= ln2/2 minus the final 1 + s: the polynomial part, evaluated by Horner's rule. */
#define EXP_POLY(FMA, SET1, s)                                                                  \
    FMA(FMA(FMA(FMA(FMA(FMA(FMA(FMA(FMA(FMA(SET1(2.08860621107283687536341e-09), s,           \
    SET1(2.51112930892876518610661e-08)), s, SET1(2.75573911234900471893338e-07)), s,         \
    SET1(2.75572362911928827629423e-06)), s, SET1(2.4801587159235472998791e-05)), s,          \
    SET1(0.000198412698960509205564975)), s, SET1(0.00138888888889774492207962)), s,          \
    SET1(0.00833333333331652721664984)), s, SET1(0.0416666666666665047591422)), s,            \
    SET1(0.166666666666666851703837)), s, SET1(0.5))

__attribute__((target("avx512f,avx2,fma"))) static inline __m512d exp8(__m512d x)
{
    __m512d q = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(R_LN2)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d s = _mm512_fmadd_pd(q, _mm512_set1_pd(-L2U), x);
    s = _mm512_fmadd_pd(q, _mm512_set1_pd(-L2L), s);
    __m512d u = EXP_POLY(_mm512_fmadd_pd, _mm512_set1_pd, s);
    u = _mm512_add_pd(_mm512_set1_pd(1.0), _mm512_fmadd_pd(_mm512_mul_pd(s, s), u, s));
    u = _mm512_scalef_pd(u, q);   /* u·2^q, with correct overflow and gradual underflow */
    u = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(x, _mm512_set1_pd(EXP_OVERFLOW), _CMP_GT_OQ), u,
                             _mm512_set1_pd(INFINITY));
    return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(x, _mm512_set1_pd(EXP_UNDERFLOW), _CMP_LT_OQ), u,
                                _mm512_setzero_pd());
}

__attribute__((target("avx512f,avx2,fma"))) static void exp_avx512(const double *x, double *y, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm512_storeu_pd(y + i, exp8(_mm512_loadu_pd(x + i)));
    if (i < n) {
        __mmask8 m = (__mmask8)((1u << (n - i)) - 1);
        _mm512_mask_storeu_pd(y + i, m, exp8(_mm512_maskz_loadu_pd(m, x + i)));
    }
}

/* 2^e for integer e in (−1023, 1024), as a double built from its exponent bits. */
__attribute__((target("avx2,fma"))) static inline __m256d pow2i4(__m128i e)
{
    __m256i bits = _mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(e), _mm256_set1_epi64x(1023)), 52);
    return _mm256_castsi256_pd(bits);
}

__attribute__((target("avx2,fma"))) static inline __m256d exp4(__m256d x)
{
    /* Clamping keeps q within what two factors 2^(q/2) can express; the blends below then set the
     * true results outside the range. */
    __m256d xc = _mm256_min_pd(_mm256_max_pd(x, _mm256_set1_pd(EXP_UNDERFLOW)), _mm256_set1_pd(EXP_OVERFLOW + 1));
    __m256d q = _mm256_round_pd(_mm256_mul_pd(xc, _mm256_set1_pd(R_LN2)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256d s = _mm256_fmadd_pd(q, _mm256_set1_pd(-L2U), xc);
    s = _mm256_fmadd_pd(q, _mm256_set1_pd(-L2L), s);
    __m256d u = EXP_POLY(_mm256_fmadd_pd, _mm256_set1_pd, s);
    u = _mm256_add_pd(_mm256_set1_pd(1.0), _mm256_fmadd_pd(_mm256_mul_pd(s, s), u, s));
    __m128i qi = _mm256_cvtpd_epi32(q), q1 = _mm_srai_epi32(qi, 1), q2 = _mm_sub_epi32(qi, q1);
    u = _mm256_mul_pd(_mm256_mul_pd(u, pow2i4(q1)), pow2i4(q2));   /* two steps: gradual underflow */
    u = _mm256_blendv_pd(u, _mm256_set1_pd(INFINITY), _mm256_cmp_pd(x, _mm256_set1_pd(EXP_OVERFLOW), _CMP_GT_OQ));
    u = _mm256_blendv_pd(u, _mm256_setzero_pd(), _mm256_cmp_pd(x, _mm256_set1_pd(EXP_UNDERFLOW), _CMP_LT_OQ));
    return _mm256_blendv_pd(u, x, _mm256_cmp_pd(x, x, _CMP_UNORD_Q));   /* NaN in, NaN out */
}

__attribute__((target("avx2,fma"))) static void exp_avx2(const double *x, double *y, size_t n)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) _mm256_storeu_pd(y + i, exp4(_mm256_loadu_pd(x + i)));
    if (i < n) {
        double in[4] = {0, 0, 0, 0}, out[4];
        for (size_t j = i; j < n; j++) in[j - i] = x[j];
        _mm256_storeu_pd(out, exp4(_mm256_loadu_pd(in)));
        for (size_t j = i; j < n; j++) y[j] = out[j - i];
    }
}
#endif

void pn_exp_array(const double *x, double *y, size_t n)
{
#if PN_HAVE_X86_KERNELS
    switch (pn_simd_level()) {
    case PN_SIMD_AVX512: exp_avx512(x, y, n); return;
    case PN_SIMD_AVX2: exp_avx2(x, y, n); return;
    default: break;
    }
#endif
    for (size_t i = 0; i < n; i++) y[i] = exp(x[i]);
}
