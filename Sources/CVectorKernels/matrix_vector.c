// AVX2+FMA kernels behind vector_kernels.h. Compiled for the baseline CPU; only these functions
// carry the avx2/fma target attribute, and they run only after a run-time check, so the package
// needs no compiler flags (which would stop other packages from depending on it).
#include "vector_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

int lm_matvec_available(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
}

__attribute__((target("avx2,fma")))
static inline float horizontal_sum(__m256 v) {
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_movehdup_ps(t));
    return _mm_cvtss_f32(t);
}

static inline void store(float *y, size_t r, float dot, float alpha, float beta) {
    y[r] = beta == 0 ? alpha * dot : alpha * dot + beta * y[r];
}

/// One row at a time, four independent accumulators over 32 columns.
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
        float dot = horizontal_sum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; j < n; j++) dot += row[j] * x[j];
        store(y, r, dot, alpha, beta);
    }
}

/// Four rows at a time: each 8-wide load of x feeds four FMAs.
__attribute__((target("avx2,fma")))
static void rows_blocked(const float *w, size_t ldw, const float *x, float *y,
                         size_t r0, size_t r1, size_t n, float alpha, float beta) {
    size_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const float *w0 = w + r * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        size_t j = 0;
        for (; j + 8 <= n; j += 8) {
            __m256 xv = _mm256_loadu_ps(x + j);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + j), xv, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + j), xv, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + j), xv, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + j), xv, a3);
        }
        float d0 = horizontal_sum(a0), d1 = horizontal_sum(a1), d2 = horizontal_sum(a2), d3 = horizontal_sum(a3);
        for (; j < n; j++) {
            d0 += w0[j] * x[j]; d1 += w1[j] * x[j]; d2 += w2[j] * x[j]; d3 += w3[j] * x[j];
        }
        store(y, r, d0, alpha, beta); store(y, r + 1, d1, alpha, beta);
        store(y, r + 2, d2, alpha, beta); store(y, r + 3, d3, alpha, beta);
    }
    if (r < r1) rows_streaming(w, ldw, x, y, r, r1, n, alpha, beta);
}

void lm_matvec_rows(const float *w, size_t ldw, const float *x, float *y,
                    size_t row_start, size_t row_end, size_t columns,
                    float alpha, float beta, int streaming) {
    if (streaming) rows_streaming(w, ldw, x, y, row_start, row_end, columns, alpha, beta);
    else rows_blocked(w, ldw, x, y, row_start, row_end, columns, alpha, beta);
}

#else
// Other architectures: no hand kernel; callers use cblas_sgemv.
int lm_matvec_available(void) { return 0; }
void lm_matvec_rows(const float *w, size_t ldw, const float *x, float *y,
                    size_t row_start, size_t row_end, size_t columns,
                    float alpha, float beta, int streaming) {
    (void)w; (void)ldw; (void)x; (void)y; (void)row_start; (void)row_end; (void)columns;
    (void)alpha; (void)beta; (void)streaming;
}
#endif
