/* runtime.c — the library's small shared services: per-thread error state, aligned-enough zeroed
 * allocation, the thread count the kernels use (and a training loop's per-block choice of it, with
 * the clock it times blocks by), and the single seedable random generator
 * (xoshiro256**, seeded through splitmix64) behind every random draw in pynet. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- errors ---------------------------------------------------------------------------------- */

static _Thread_local int error_code = PN_OK;
static _Thread_local char error_message[512];

int pn_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    error_code = code;
    return code;
}

int pn_error_code(void) { return error_code; }
const char *pn_error_message(void) { return error_code == PN_OK ? "" : error_message; }

void pn_clear_error(void)
{
    error_code = PN_OK;
    error_message[0] = '\0';
}

void pn_free(void *p) { free(p); }

/* Bytes of physical memory, or SIZE_MAX where the system does not say. */
static size_t physical_bytes(void)
{
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGESIZE)
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    if (pages > 0 && size > 0 && (size_t)pages <= SIZE_MAX / (size_t)size) return (size_t)pages * (size_t)size;
#endif
    return SIZE_MAX;
}

double *pn_alloc(size_t n, const char *who)
{
    if (n == 0) return NULL;
    if (n > SIZE_MAX / sizeof(double)) {
        pn_fail(PN_ERR_NOMEM, "%s: cannot allocate %zu doubles (size overflows)", who, n);
        return NULL;
    }
    /* Linux grants almost any request and kills the process when the pages are touched; a buffer
     * larger than the machine's memory can never work, so refuse it while an error can still be
     * reported. */
    size_t ram = physical_bytes();
    if (n * sizeof(double) > ram) {
        pn_fail(PN_ERR_NOMEM, "%s: %zu doubles (%.1f GB) is more than this machine's %.1f GB of memory", who, n,
                (double)n * sizeof(double) / 1e9, (double)ram / 1e9);
        return NULL;
    }
    double *p = calloc(n, sizeof(double));
    if (!p) pn_fail(PN_ERR_NOMEM, "%s: out of memory allocating %zu doubles (%.1f MB)", who, n,
                    (double)n * sizeof(double) / 1e6);
    return p;
}

int pn_check_matrix(const char *fn, const char *name, matrix m)
{
    if (m.rows < 0 || m.cols < 0)
        return pn_fail(PN_ERR_SHAPE, "%s: %s has a negative shape %dx%d", fn, name, m.rows, m.cols);
    if (!m.data && pn_size(m) > 0)
        return pn_fail(PN_ERR_VALUE, "%s: %s is %dx%d but has no data (NULL)", fn, name, m.rows, m.cols);
    return PN_OK;
}

/* ---- threads --------------------------------------------------------------------------------- */

static int thread_count = 0;   /* 0: not chosen yet, take OpenMP's default */
/* A training loop's choice for the block of steps it is running on this thread (pn_use_threads):
 * fewer threads than thread_count, or 0 for no limit. */
static _Thread_local int block_threads = 0;
static int adaptive_threads = 1;   /* pn_set_adaptive_threads */

static int configured_threads(void)
{
#ifdef _OPENMP
    if (thread_count <= 0) thread_count = omp_get_max_threads();
    return thread_count;
#else
    return 1;
#endif
}

int pn_threads(void)
{
    int n = configured_threads();
    return block_threads > 0 && block_threads < n ? block_threads : n;
}

int pn_use_threads(int n)
{
    int before = block_threads;
    block_threads = n > 0 ? n : 0;
    return before;
}

int pn_set_adaptive_threads(int on)
{
    int before = adaptive_threads;
    adaptive_threads = on != 0;
    return before;
}

int pn_adaptive_threads(void) { return adaptive_threads; }

double pn_seconds(void)
{
    struct timespec ts;
#if defined(CLOCK_MONOTONIC)
    clock_gettime(CLOCK_MONOTONIC, &ts);
#else
    timespec_get(&ts, TIME_UTC);
#endif
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int pn_set_threads(int n)
{
    if (n < 1) return pn_fail(PN_ERR_VALUE, "set_threads: need at least 1 thread, got %d", n);
#ifdef _OPENMP
    thread_count = n;
#endif
    return PN_OK;
}

int pn_get_threads(void) { return configured_threads(); }

int pn_has_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* ---- randomness ------------------------------------------------------------------------------ */

static uint64_t rng_state[4];
static int rng_seeded = 0;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void set_seed(uint64_t seed)
{
    for (int i = 0; i < 4; i++) rng_state[i] = splitmix64(&seed);
    rng_seeded = 1;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rand_u64(void)
{
    if (!rng_seeded) set_seed(0);   /* a fixed default, so an unseeded run is still reproducible */
    uint64_t *s = rng_state;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void pn_get_rng_state(uint64_t state[4])
{
    if (!rng_seeded) set_seed(0);
    memcpy(state, rng_state, sizeof rng_state);
}

void pn_set_rng_state(const uint64_t state[4])
{
    memcpy(rng_state, state, sizeof rng_state);
    rng_seeded = 1;
}

double rand_uniform(void) { return (double)(rand_u64() >> 11) * 0x1.0p-53; }

int rand_int(int n)
{
    if (n < 1) {
        pn_fail(PN_ERR_VALUE, "rand_int: n must be >= 1, got %d", n);
        return 0;
    }
    /* Rejection sampling: discard the top sliver of the range so every value is equally likely. */
    uint64_t range = (uint64_t)n;
    uint64_t limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t x;
    do x = rand_u64(); while (x >= limit);
    return (int)(x % range);
}
