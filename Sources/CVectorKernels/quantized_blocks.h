// ggml's block layouts, shared by the quantized kernels of this target (not part of its public
// header): the sizes of each format, a portable decoder of one block, and the AVX2 pieces that
// unpack a block's codes into bytes.
//
// Blocks of 32 values (d and m are IEEE half floats):
//   Q8_0: d, 32 int8 q                                       value = d·q              34 bytes
//   Q4_0: d, 16 bytes of nibbles                             value = d·(q − 8)        18 bytes
//   Q4_1: d, m, 16 bytes of nibbles                          value = d·q + m          20 bytes
//   Q5_0: d, 4 bytes of fifth bits, 16 bytes of nibbles      value = d·(q − 16)       22 bytes
//   Q5_1: d, m, 4 bytes of fifth bits, 16 bytes of nibbles   value = d·q + m          24 bytes
// Nibbles: value j (0…15) is the low half of byte j, value j + 16 its high half; fifth bits:
// bit j of the little-endian word is bit 4 of value j.
// Super-blocks of 256 values (K-quants): Q4_K (144 bytes), Q5_K (176), Q6_K (210), decoded as
// ggml's dequantize_row_q4_K / _q5_K / _q6_K do, value by value.
#ifndef LM_QUANTIZED_BLOCKS_H
#define LM_QUANTIZED_BLOCKS_H
#include "vector_kernels.h"
#include <string.h>

static inline uint16_t lm_load_half(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static inline uint32_t lm_load_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline float lm_half_to_float(uint16_t bits) {
    uint32_t sign = (uint32_t)(bits & 0x8000) << 16, exponent = (bits >> 10) & 0x1F, mantissa = bits & 0x3FF;
    uint32_t out;
    if (exponent == 0) {
        if (mantissa == 0) {
            out = sign;
        } else {  // subnormal: normalise
            exponent = 127 - 15 + 1;
            while (!(mantissa & 0x400)) { mantissa <<= 1; exponent--; }
            out = sign | (exponent << 23) | ((mantissa & 0x3FF) << 13);
        }
    } else if (exponent == 31) {
        out = sign | 0x7F800000 | (mantissa << 13);
    } else {
        out = sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);
    }
    float value;
    memcpy(&value, &out, 4);
    return value;
}

static inline float lm_half_at(const uint8_t *p) { return lm_half_to_float(lm_load_half(p)); }

/// Whether `format` is a K-quant (super-blocks of 256 values).
static inline int lm_is_super_block(int format) { return format == LM_Q4_K || format == LM_Q5_K || format == LM_Q6_K; }

/// Sub-block `j`'s 6-bit scale and minimum from Q4_K/Q5_K's twelve packed bytes (ggml's
/// get_scale_min_k4).
static inline void lm_scale_min_k4(int j, const uint8_t *q, float *scale, float *minimum) {
    if (j < 4) {
        *scale = (float)(q[j] & 63);
        *minimum = (float)(q[j + 4] & 63);
    } else {
        *scale = (float)((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4));
        *minimum = (float)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/// One block (32 values) or super-block (256) of `format` decoded to floats, in the order and
/// rounding of ggml's scalar decoders (and of GGMLType.dequantize in TensorIO).
static inline void lm_decode_block_portable(int format, const uint8_t *b, float *y) {
    switch (format) {
    case LM_Q8_0: {
        float d = lm_half_at(b);
        for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
        break;
    }
    case LM_Q4_0: {
        float d = lm_half_at(b);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((b[2 + j] & 0x0F) - 8) * d;
            y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
        }
        break;
    }
    case LM_Q4_1: {
        float d = lm_half_at(b), m = lm_half_at(b + 2);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(b[4 + j] & 0x0F) * d + m;
            y[j + 16] = (float)(b[4 + j] >> 4) * d + m;
        }
        break;
    }
    case LM_Q5_0:
    case LM_Q5_1: {
        int offset = format == LM_Q5_0 ? 2 : 4;
        float d = lm_half_at(b), m = format == LM_Q5_1 ? lm_half_at(b + 2) : 0;
        uint32_t high = lm_load_u32(b + offset);
        for (int j = 0; j < 16; j++) {
            uint8_t q = b[offset + 4 + j];
            int low = (q & 0x0F) | ((high >> j) & 1) << 4, up = (q >> 4) | ((high >> (j + 16)) & 1) << 4;
            if (format == LM_Q5_0) {
                y[j] = (float)(low - 16) * d;
                y[j + 16] = (float)(up - 16) * d;
            } else {
                y[j] = (float)low * d + m;
                y[j + 16] = (float)up * d + m;
            }
        }
        break;
    }
    case LM_Q4_K:
    case LM_Q5_K: {
        float d = lm_half_at(b), dmin = lm_half_at(b + 2);
        const uint8_t *scales = b + 4, *high = format == LM_Q5_K ? b + 16 : NULL;
        const uint8_t *quants = b + (format == LM_Q5_K ? 48 : 16);
        for (int pass = 0; pass < 4; pass++) {
            float s1, n1, s2, n2;
            lm_scale_min_k4(2 * pass, scales, &s1, &n1);
            lm_scale_min_k4(2 * pass + 1, scales, &s2, &n2);
            float d1 = d * s1, m1 = dmin * n1, d2 = d * s2, m2 = dmin * n2;
            const uint8_t *q = quants + 32 * pass;
            float *out = y + 64 * pass;
            for (int l = 0; l < 32; l++) {
                float low = (float)(q[l] & 0x0F), up = (float)(q[l] >> 4);
                if (high) {
                    if (high[l] & (1 << (2 * pass))) low += 16;
                    if (high[l] & (2 << (2 * pass))) up += 16;
                }
                out[l] = d1 * low - m1;
                out[l + 32] = d2 * up - m2;
            }
        }
        break;
    }
    case LM_Q6_K: {
        float d = lm_half_at(b + 208);
        for (int half = 0; half < 2; half++) {
            const uint8_t *low = b + 64 * half, *high = b + 128 + 32 * half;
            const int8_t *scale = (const int8_t *)(b + 192 + 8 * half);
            float *out = y + 128 * half;
            for (int l = 0; l < 32; l++) {
                int s = l / 16;
                int q1 = (low[l] & 0x0F) | (high[l] & 3) << 4, q2 = (low[l + 32] & 0x0F) | ((high[l] >> 2) & 3) << 4;
                int q3 = (low[l] >> 4) | ((high[l] >> 4) & 3) << 4, q4 = (low[l + 32] >> 4) | ((high[l] >> 6) & 3) << 4;
                out[l] = d * (float)scale[s] * (float)(q1 - 32);
                out[l + 32] = d * (float)scale[s + 2] * (float)(q2 - 32);
                out[l + 64] = d * (float)scale[s + 4] * (float)(q3 - 32);
                out[l + 96] = d * (float)scale[s + 6] * (float)(q4 - 32);
            }
        }
        break;
    }
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "avx2_sum.h"

#define LM_AVX2 __attribute__((target("avx2,fma,f16c")))
/// For the loops specialised per format: each call site passes a constant format.
#define LM_INLINE inline __attribute__((always_inline))
/// How far ahead (in rows) the decode loops prefetch the blocks they will read.
#ifndef LM_PREFETCH_ROWS
#define LM_PREFETCH_ROWS 4
#endif

/// 16 bytes of nibbles → 32 bytes: the low halves (values 0…15), then the high halves (16…31).
LM_AVX2 LM_INLINE static __m256i lm_split_nibbles(const uint8_t *p) {
    __m128i packed = _mm_loadu_si128((const __m128i *)p), mask = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(packed, 4), mask), _mm_and_si128(packed, mask));
}

/// A little-endian word of 32 bits → 32 bytes, byte j 0x10 where bit j is set, else 0.
LM_AVX2 LM_INLINE static __m256i lm_fifth_bits(const uint8_t *p) {
    uint32_t word;
    memcpy(&word, p, 4);
    // Byte j of the result takes byte j / 8 of the word, then keeps its bit j % 8.
    const __m256i spread = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)word), spread);
    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
    return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

/// The 32 codes of a block of a 32-value format as bytes: signed values for Q8_0/Q4_0/Q5_0
/// (q − 8, q − 16), the unsigned q for Q4_1/Q5_1 (whose minimum the caller adds).
LM_AVX2 LM_INLINE static __m256i lm_block_codes(int format, const uint8_t *b) {
    switch (format) {
    case LM_Q8_0: return _mm256_loadu_si256((const __m256i *)(b + 2));
    case LM_Q4_0: return _mm256_sub_epi8(lm_split_nibbles(b + 2), _mm256_set1_epi8(8));
    case LM_Q4_1: return lm_split_nibbles(b + 4);
    case LM_Q5_0: return _mm256_sub_epi8(_mm256_or_si256(lm_split_nibbles(b + 6), lm_fifth_bits(b + 2)), _mm256_set1_epi8(16));
    default: return _mm256_or_si256(lm_split_nibbles(b + 8), lm_fifth_bits(b + 4));  // Q5_1
    }
}

/// Whether a 32-value format has a minimum m (value = d·q + m), at byte 2 of the block.
static inline int lm_has_minimum(int format) { return format == LM_Q4_1 || format == LM_Q5_1; }

/// 8 signed bytes → 8 floats.
LM_AVX2 LM_INLINE static __m256 lm_bytes_to_floats(__m128i eight) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(eight)); }

/// A super-block of Q4_K, Q5_K or Q6_K decoded to 256 floats at y, each rounded as
/// lm_decode_block_portable rounds it (the multiplications in the same order, no fused add).
LM_AVX2 static inline void lm_decode_super_block_avx2(int format, const uint8_t *b, float *y) {
    if (format == LM_Q6_K) {
        float d = _cvtsh_ss(lm_load_half(b + 208));
        const __m256i low4 = _mm256_set1_epi8(0x0F), two = _mm256_set1_epi8(3), offset = _mm256_set1_epi8(32);
        for (int half = 0; half < 2; half++) {
            const uint8_t *low = b + 64 * half, *high = b + 128 + 32 * half;
            const int8_t *scale = (const int8_t *)(b + 192 + 8 * half);
            float *out = y + 128 * half;
            __m256i ql0 = _mm256_loadu_si256((const __m256i *)low), ql1 = _mm256_loadu_si256((const __m256i *)(low + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)high);
            __m256i q[4] = {
                _mm256_and_si256(ql0, low4), _mm256_and_si256(ql1, low4),
                _mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), _mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
            };
            for (int k = 0; k < 4; k++) {
                __m256i h = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), two);
                q[k] = _mm256_sub_epi8(_mm256_or_si256(q[k], _mm256_slli_epi16(h, 4)), offset);
                __m128i lanes[2] = {_mm256_castsi256_si128(q[k]), _mm256_extracti128_si256(q[k], 1)};
                for (int s = 0; s < 2; s++) {  // 16 values share a scale
                    __m256 ds = _mm256_set1_ps(d * (float)scale[s + 2 * k]);
                    _mm256_storeu_ps(out + 32 * k + 16 * s, _mm256_mul_ps(ds, lm_bytes_to_floats(lanes[s])));
                    _mm256_storeu_ps(out + 32 * k + 16 * s + 8, _mm256_mul_ps(ds, lm_bytes_to_floats(_mm_srli_si128(lanes[s], 8))));
                }
            }
        }
        return;
    }
    // Q4_K, Q5_K: four passes of 64 values, two sub-blocks of 32 each.
    float d = _cvtsh_ss(lm_load_half(b)), dmin = _cvtsh_ss(lm_load_half(b + 2));
    const uint8_t *scales = b + 4, *quants = b + (format == LM_Q5_K ? 48 : 16);
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    __m256i high = format == LM_Q5_K ? _mm256_loadu_si256((const __m256i *)(b + 16)) : _mm256_setzero_si256();
    for (int pass = 0; pass < 4; pass++) {
        __m256i packed = _mm256_loadu_si256((const __m256i *)(quants + 32 * pass));
        __m256i codes[2] = {_mm256_and_si256(packed, low4), _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4)};
        for (int s = 0; s < 2; s++) {
            float scale, minimum;
            lm_scale_min_k4(2 * pass + s, scales, &scale, &minimum);
            if (format == LM_Q5_K) {  // bit 2·pass + s of each high byte is bit 4 of the value
                __m256i bit = _mm256_set1_epi8((char)(1 << (2 * pass + s)));
                codes[s] = _mm256_or_si256(codes[s], _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(high, bit), bit), _mm256_set1_epi8(16)));
            }
            __m256 ds = _mm256_set1_ps(d * scale), ms = _mm256_set1_ps(dmin * minimum);
            __m128i lanes[2] = {_mm256_castsi256_si128(codes[s]), _mm256_extracti128_si256(codes[s], 1)};
            float *out = y + 64 * pass + 32 * s;
            for (int h = 0; h < 2; h++) {
                _mm256_storeu_ps(out + 16 * h, _mm256_sub_ps(_mm256_mul_ps(ds, lm_bytes_to_floats(lanes[h])), ms));
                _mm256_storeu_ps(out + 16 * h + 8, _mm256_sub_ps(_mm256_mul_ps(ds, lm_bytes_to_floats(_mm_srli_si128(lanes[h], 8))), ms));
            }
        }
    }
}
#endif
#endif
