// Shared by the AVX2 kernels of this target (not part of its public header).
#ifndef LM_AVX2_SUM_H
#define LM_AVX2_SUM_H
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/// The sum of a vector's eight lanes.
__attribute__((target("avx2,fma")))
static inline float lm_sum8(__m256 v) {
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_movehdup_ps(t));
    return _mm_cvtss_f32(t);
}
#endif
#endif
