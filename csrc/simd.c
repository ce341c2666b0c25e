/* simd.c — CPU detection and forcing for the kernels: which of AVX-512, AVX2 + FMA or portable C
 * this CPU runs (asked once, the best wins), and pn_set_simd / pn_simd, which let tests and benchmarks
 * force a plainer level and name the one in use. gemm.c and exp.c read pn_simd_level() to pick their
 * kernels; this file knows nothing about them beyond their names. */
#include "internal.h"
#include "simd.h"

#include <string.h>

/* Indexed by level. `built`: the kernels of that level are compiled into this library. */
static const struct { const char *name; int built; } levels[] = {
    [PN_SIMD_PORTABLE] = {"portable", 1},
    [PN_SIMD_AVX2] = {"avx2", PN_HAVE_X86_KERNELS},
    [PN_SIMD_AVX512] = {"avx512", PN_HAVE_X86_KERNELS},
};
enum { N_LEVELS = sizeof levels / sizeof levels[0] };

static int cpu_runs(int level)
{
    if (!levels[level].built) return 0;
#if PN_HAVE_X86_KERNELS
    __builtin_cpu_init();
    if (level == PN_SIMD_AVX512) return __builtin_cpu_supports("avx512f");
    if (level == PN_SIMD_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return level == PN_SIMD_PORTABLE;
}

static int forced = -1;     /* the level pn_set_simd chose; -1: the best the CPU runs */
static int detected = -1;   /* that best, found on first use (every thread finds the same) */

int pn_simd_level(void)
{
    if (forced >= 0) return forced;
    if (detected < 0) {
        int level = PN_SIMD_AVX512;
        while (level > PN_SIMD_PORTABLE && !cpu_runs(level)) level--;
        detected = level;
    }
    return detected;
}

const char *pn_simd(void) { return levels[pn_simd_level()].name; }

int pn_set_simd(const char *name)
{
    if (!name || !strcmp(name, "auto")) {
        forced = -1;
        return PN_OK;
    }
    for (int level = N_LEVELS - 1; level >= 0; level--)
        if (!strcmp(name, levels[level].name)) {
            if (!cpu_runs(level))
                return pn_fail(PN_ERR_VALUE, "set_simd: the %s kernel cannot run here (%s)", name,
                               levels[level].built ? "this CPU lacks the instructions" : "not built for this platform");
            forced = level;
            return PN_OK;
        }
    return pn_fail(PN_ERR_VALUE, "set_simd: unknown kernel \"%s\"; valid: auto, avx512, avx2, portable", name);
}
