// The decode step's attention products: one query row for each of the `group` query heads that
// share a key/value head, over a KV cache of `keys` rows. Each key and value row is read once
// for the whole group (grouped-query attention reads K and V once, not once per query head),
// and the scores of eight keys are reduced together (one transpose of eight accumulators in
// place of eight horizontal sums). AVX2+FMA, head sizes a multiple of 8 up to 128; callers use
// the GEMM path otherwise (lm_decode_attention_available).
#include "vector_kernels.h"

int lm_decode_attention_available(size_t head_dim) {
    return lm_matvec_available() && head_dim % 8 == 0 && head_dim >= 8 && head_dim <= 128;
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "avx2_sum.h"

/// Lane j of the result: the sum of the eight lanes of a[j].
__attribute__((target("avx2,fma")))
static inline __m256 sum_each(__m256 a[8]) {
    __m256 s01 = _mm256_hadd_ps(a[0], a[1]), s23 = _mm256_hadd_ps(a[2], a[3]);
    __m256 s45 = _mm256_hadd_ps(a[4], a[5]), s67 = _mm256_hadd_ps(a[6], a[7]);
    __m256 s0123 = _mm256_hadd_ps(s01, s23), s4567 = _mm256_hadd_ps(s45, s67);
    // Each 128-bit half now holds partial sums of four rows: add the halves across.
    __m256 low = _mm256_permute2f128_ps(s0123, s4567, 0x20), high = _mm256_permute2f128_ps(s0123, s4567, 0x31);
    return _mm256_add_ps(low, high);
}

__attribute__((target("avx2,fma")))
void lm_attention_scores(const float *q, size_t group, size_t head_dim, const float *k, size_t k_stride, size_t keys,
                         float alpha, float *scores, size_t scores_stride) {
    size_t vectors = head_dim / 8;
    __m256 scale = _mm256_set1_ps(alpha);
    size_t t = 0;
    for (; t + 8 <= keys; t += 8) {
        for (size_t g = 0; g < group; g++) {
            const float *qg = q + g * head_dim;
            __m256 acc[8];
            for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_ps();
            for (size_t i = 0; i < vectors; i++) {
                __m256 qv = _mm256_loadu_ps(qg + 8 * i);
                for (int j = 0; j < 8; j++) acc[j] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + (t + j) * k_stride + 8 * i), acc[j]);
            }
            _mm256_storeu_ps(scores + g * scores_stride + t, _mm256_mul_ps(scale, sum_each(acc)));
        }
    }
    for (; t < keys; t++) {
        for (size_t g = 0; g < group; g++) {
            __m256 acc = _mm256_setzero_ps();
            for (size_t i = 0; i < vectors; i++) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + g * head_dim + 8 * i), _mm256_loadu_ps(k + t * k_stride + 8 * i), acc);
            scores[g * scores_stride + t] = alpha * lm_sum8(acc);
        }
    }
}

__attribute__((target("avx2,fma")))
void lm_attention_values(const float *p, size_t p_stride, size_t group, size_t keys, const float *v, size_t v_stride,
                         size_t head_dim, float *out, size_t out_stride) {
    size_t vectors = head_dim / 8;
    // Blocks of keys small enough that their value rows stay in L1 for the group's passes.
    const size_t block = 32;
    for (size_t g = 0; g < group; g++) {
        for (size_t i = 0; i < vectors; i++) _mm256_storeu_ps(out + g * out_stride + 8 * i, _mm256_setzero_ps());
    }
    for (size_t start = 0; start < keys; start += block) {
        size_t end = start + block < keys ? start + block : keys;
        for (size_t g = 0; g < group; g++) {
            const float *pg = p + g * p_stride;
            float *og = out + g * out_stride;
            __m256 acc[16];
            for (size_t i = 0; i < vectors; i++) acc[i] = _mm256_loadu_ps(og + 8 * i);
            for (size_t t = start; t < end; t++) {
                __m256 weight = _mm256_set1_ps(pg[t]);
                for (size_t i = 0; i < vectors; i++) acc[i] = _mm256_fmadd_ps(weight, _mm256_loadu_ps(v + t * v_stride + 8 * i), acc[i]);
            }
            for (size_t i = 0; i < vectors; i++) _mm256_storeu_ps(og + 8 * i, acc[i]);
        }
    }
}
#else
void lm_attention_scores(const float *q, size_t group, size_t head_dim, const float *k, size_t k_stride, size_t keys,
                         float alpha, float *scores, size_t scores_stride) {
    (void)q; (void)group; (void)head_dim; (void)k; (void)k_stride; (void)keys; (void)alpha; (void)scores; (void)scores_stride;
}
void lm_attention_values(const float *p, size_t p_stride, size_t group, size_t keys, const float *v, size_t v_stride,
                         size_t head_dim, float *out, size_t out_stride) {
    (void)p; (void)p_stride; (void)group; (void)keys; (void)v; (void)v_stride; (void)head_dim; (void)out; (void)out_stride;
}
#endif
