// AVX2+FMA kernels behind vector_kernels.h. Compiled for the baseline CPU; only these functions
// carry the avx2/fma target attribute, and they run only after a run-time check, so the package
// needs no compiler flags (which would stop other packages from depending on it).
#include "vector_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "avx2_sum.h"

int lm_matvec_available(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
}

static inline void store(float *y, size_t r, float dot, float alpha, float beta) {
    y[r] = beta == 0 ? alpha * dot : alpha * dot + beta * y[r];
}

/// One row at a time, four independent accumulators over 32 columns: one sequential stream per
/// thread, which the hardware prefetcher follows best. (A four-rows-at-a-time loop, sharing each
/// load of x, was faster on a matrix in cache but slower in decode, where the whole model streams
/// from memory every token; it was removed.)
__attribute__((target("avx2,fma")))
static void rows_streaming(const float *w, size_t ldw, const float *x, float *y,
                           size_t r0, size_t r1, size_t n, float alpha, float beta) {
    for (size_t r = r0; r < r1; r++) {
        const float *row = w + r * ldw;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        size_t j = 0;
        for (; j + 32 <= n; j += 32) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(x + j), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(row + j + 8), _mm256_loadu_ps(x + j + 8), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(row + j + 16), _mm256_loadu_ps(x + j + 16), a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(row + j + 24), _mm256_loadu_ps(x + j + 24), a3);
        }
        for (; j + 8 <= n; j += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(row + j), _mm256_loadu_ps(x + j), a0);
        float dot = lm_sum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; j < n; j++) dot += row[j] * x[j];
        store(y, r, dot, alpha, beta);
    }
}

void lm_matvec_rows(const float *w, size_t ldw, const float *x, float *y,
                    size_t row_start, size_t row_end, size_t columns,
                    float alpha, float beta) {
    rows_streaming(w, ldw, x, y, row_start, row_end, columns, alpha, beta);
}

#else
// Other architectures: no hand kernel; callers use cblas_sgemv.
int lm_matvec_available(void) { return 0; }
void lm_matvec_rows(const float *w, size_t ldw, const float *x, float *y,
                    size_t row_start, size_t row_end, size_t columns,
                    float alpha, float beta) {
    (void)w; (void)ldw; (void)x; (void)y; (void)row_start; (void)row_end; (void)columns;
    (void)alpha; (void)beta;
}
#endif
