/* simd.h — which instruction set pynet's kernels use (internal). The GEMM microkernels (gemm.c) and
 * the exp kernel (exp.c) both dispatch on pn_simd_level(): the best level this CPU runs, found once
 * on first use, unless pn_set_simd (pynet_api.h; for tests and benchmarks) forced another. The level
 * is process-wide and read, never written, inside the kernels, so every thread uses the same one.
 * This file calls nothing but runtime.c's error recording. */
#ifndef PYNET_SIMD_H
#define PYNET_SIMD_H

/* The levels, plainest first; PN_SIMD_AVX512 is the best. */
enum { PN_SIMD_PORTABLE, PN_SIMD_AVX2, PN_SIMD_AVX512 };

/* The level in use (one of the above). */
int pn_simd_level(void);

/* x86-64 kernels are built with GCC or Clang function attributes only; elsewhere only portable C. */
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define PN_HAVE_X86_KERNELS 1
#else
#define PN_HAVE_X86_KERNELS 0
#endif

#endif
