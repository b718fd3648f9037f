// Matrix–vector products over ggml's block-quantized rows (Q8_0, Q4_0, Q4_1), the decode step of
// a model whose weights stay in their GGUF blocks. The activations stay Float32 and each block is
// decoded in registers, so the result equals dequantize-then-multiply up to the order of the
// Float32 sums. AVX2+FMA+F16C behind a run-time check, with a portable loop for other CPUs.
//
// Block layouts (32 values each; d and m are IEEE half floats):
//   Q8_0: d, then 32 int8 q              value = d·q                       34 bytes
//   Q4_0: d, then 16 bytes of nibbles    value = d·(q − 8)                 18 bytes
//   Q4_1: d, m, then 16 bytes of nibbles value = d·q + m                   20 bytes
// Nibbles: value j (0…15) is the low half of byte j, value j + 16 its high half.
#include "vector_kernels.h"
#include <string.h>

static float half_to_float(uint16_t bits) {
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

static uint16_t load_half(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

size_t lm_quantized_block_bytes(int format) {
    switch (format) {
    case LM_Q8_0: return 34;
    case LM_Q4_0: return 18;
    case LM_Q4_1: return 20;
    default: return 0;
    }
}

/// The portable loop: one block at a time, in the order the AVX2 loop sums.
static void rows_portable(int format, const uint8_t *w, size_t row_bytes, const float *x, float *y,
                          size_t r0, size_t r1, size_t columns) {
    size_t blocks = columns / 32, block_bytes = lm_quantized_block_bytes(format);
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = w + r * row_bytes;
        float total = 0;
        for (size_t b = 0; b < blocks; b++) {
            const uint8_t *block = row + b * block_bytes;
            const float *xs = x + b * 32;
            float d = half_to_float(load_half(block)), dot = 0, sum = 0;
            switch (format) {
            case LM_Q8_0:
                for (int j = 0; j < 32; j++) dot += (float)(int8_t)block[2 + j] * xs[j];
                total += d * dot;
                break;
            case LM_Q4_0:
                for (int j = 0; j < 16; j++) {
                    dot += (float)((block[2 + j] & 0x0F) - 8) * xs[j] + (float)((block[2 + j] >> 4) - 8) * xs[j + 16];
                }
                total += d * dot;
                break;
            case LM_Q4_1: {
                float m = half_to_float(load_half(block + 2));
                for (int j = 0; j < 16; j++) {
                    dot += (float)(block[4 + j] & 0x0F) * xs[j] + (float)(block[4 + j] >> 4) * xs[j + 16];
                    sum += xs[j] + xs[j + 16];
                }
                total += d * dot + m * sum;
                break;
            }
            }
        }
        y[r] = total;
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include "avx2_sum.h"

int lm_quantized_available(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    }
    return cached;
}

/// 8 signed bytes → 8 floats.
__attribute__((target("avx2,fma,f16c")))
static inline __m256 bytes_to_floats(__m128i eight) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(eight)); }

/// The 32 values of a block's q (as signed bytes; nibbles already split) times x, one vector.
__attribute__((target("avx2,fma,f16c")))
static inline __m256 dot32(__m256i q, const float *x) {
    __m128i low = _mm256_castsi256_si128(q), high = _mm256_extracti128_si256(q, 1);
    __m256 acc = _mm256_mul_ps(bytes_to_floats(low), _mm256_loadu_ps(x));
    acc = _mm256_fmadd_ps(bytes_to_floats(_mm_srli_si128(low, 8)), _mm256_loadu_ps(x + 8), acc);
    acc = _mm256_fmadd_ps(bytes_to_floats(high), _mm256_loadu_ps(x + 16), acc);
    return _mm256_fmadd_ps(bytes_to_floats(_mm_srli_si128(high, 8)), _mm256_loadu_ps(x + 24), acc);
}

/// 16 bytes of nibbles → 32 bytes: the low halves (values 0…15), then the high halves (16…31).
__attribute__((target("avx2,fma,f16c")))
static inline __m256i split_nibbles(const uint8_t *p) {
    __m128i packed = _mm_loadu_si128((const __m128i *)p), mask = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(packed, 4), mask), _mm_and_si128(packed, mask));
}

__attribute__((target("avx2,fma,f16c")))
static void rows_avx2(int format, const uint8_t *w, size_t row_bytes, const float *x, float *y,
                      size_t r0, size_t r1, size_t columns) {
    size_t blocks = columns / 32, block_bytes = lm_quantized_block_bytes(format);
    const __m256i eight = _mm256_set1_epi8(8);
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = w + r * row_bytes;
        __m256 acc = _mm256_setzero_ps(), minimums = _mm256_setzero_ps();
        for (size_t b = 0; b < blocks; b++) {
            const uint8_t *block = row + b * block_bytes;
            const float *xs = x + b * 32;
            __m256 d = _mm256_set1_ps(_cvtsh_ss(load_half(block)));
            switch (format) {
            case LM_Q8_0:
                acc = _mm256_fmadd_ps(d, dot32(_mm256_loadu_si256((const __m256i *)(block + 2)), xs), acc);
                break;
            case LM_Q4_0:
                acc = _mm256_fmadd_ps(d, dot32(_mm256_sub_epi8(split_nibbles(block + 2), eight), xs), acc);
                break;
            case LM_Q4_1: {
                __m256 m = _mm256_set1_ps(_cvtsh_ss(load_half(block + 2)));
                acc = _mm256_fmadd_ps(d, dot32(split_nibbles(block + 4), xs), acc);
                __m256 sum = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(xs), _mm256_loadu_ps(xs + 8)),
                                           _mm256_add_ps(_mm256_loadu_ps(xs + 16), _mm256_loadu_ps(xs + 24)));
                minimums = _mm256_fmadd_ps(m, sum, minimums);
                break;
            }
            }
        }
        y[r] = lm_sum8(_mm256_add_ps(acc, minimums));
    }
}

void lm_quantized_rows(int format, const void *w, size_t row_bytes, const float *x, float *y,
                       size_t row_start, size_t row_end, size_t columns) {
    if (lm_quantized_available()) {
        rows_avx2(format, (const uint8_t *)w, row_bytes, x, y, row_start, row_end, columns);
    } else {
        rows_portable(format, (const uint8_t *)w, row_bytes, x, y, row_start, row_end, columns);
    }
}

#else
int lm_quantized_available(void) { return 0; }
void lm_quantized_rows(int format, const void *w, size_t row_bytes, const float *x, float *y,
                       size_t row_start, size_t row_end, size_t columns) {
    rows_portable(format, (const uint8_t *)w, row_bytes, x, y, row_start, row_end, columns);
}
#endif

void lm_quantized_rows_portable(int format, const void *w, size_t row_bytes, const float *x, float *y,
                                size_t row_start, size_t row_end, size_t columns) {
    rows_portable(format, (const uint8_t *)w, row_bytes, x, y, row_start, row_end, columns);
}

static void dequantize_portable(int format, const void *w, size_t row_bytes, float *out, size_t ldo,
                                  size_t row_start, size_t row_end, size_t columns) {
    size_t blocks = columns / 32, block_bytes = lm_quantized_block_bytes(format);
    for (size_t r = row_start; r < row_end; r++) {
        const uint8_t *row = (const uint8_t *)w + r * row_bytes;
        float *o = out + (r - row_start) * ldo;
        for (size_t b = 0; b < blocks; b++) {
            const uint8_t *block = row + b * block_bytes;
            float d = half_to_float(load_half(block));
            for (int j = 0; j < 32; j++) {
                switch (format) {
                case LM_Q8_0: o[b * 32 + j] = d * (float)(int8_t)block[2 + j]; break;
                case LM_Q4_0: o[b * 32 + j] = d * (float)((j < 16 ? block[2 + j] & 0x0F : block[2 + j - 16] >> 4) - 8); break;
                case LM_Q4_1: o[b * 32 + j] = d * (float)(j < 16 ? block[4 + j] & 0x0F : block[4 + j - 16] >> 4) + half_to_float(load_half(block + 2)); break;
                }
            }
        }
    }
}

// ---- The other design: activations quantized to 8 bits per block of 32, as ggml does, so each
// block's dot product is integer multiply-adds (vpmaddubsw). Measured beside the Float32-activation
// kernel above (bench qmatvec8/…); the results move by the activation rounding (≈ 1/254 of each
// block's largest |x|).

void lm_quantize_activations(const float *x, size_t columns, int8_t *qx, float *scales, float *sums) {
    for (size_t b = 0; b < columns / 32; b++) {
        const float *xs = x + b * 32;
        float largest = 0, sum = 0;
        for (int j = 0; j < 32; j++) {
            float a = xs[j] < 0 ? -xs[j] : xs[j];
            if (a > largest) largest = a;
            sum += xs[j];
        }
        float d = largest / 127, inverse = d != 0 ? 1 / d : 0;
        for (int j = 0; j < 32; j++) {
            float v = xs[j] * inverse;
            qx[b * 32 + j] = (int8_t)(v < 0 ? v - 0.5f : v + 0.5f);
        }
        scales[b] = d;
        sums[b] = sum;
    }
}

#if defined(__x86_64__) || defined(__i386__)
/// Σ unsigned bytes u × signed bytes s over 32 lanes, as 8 int32 sums converted to floats.
__attribute__((target("avx2,fma,f16c")))
static inline __m256 dot_u8_s8(__m256i u, __m256i s) {
    __m256i pairs = _mm256_maddubs_epi16(u, s);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

/// One block's integer dot product of weights and 8-bit activations `xq`, as 8 float lanes
/// (Q4_1's minimum term is added by the caller).
__attribute__((target("avx2,fma,f16c")))
static inline __m256 block_dot_q8(int format, const uint8_t *block, __m256i xq) {
    switch (format) {
    case LM_Q8_0: {
        __m256i wq = _mm256_loadu_si256((const __m256i *)(block + 2));
        return dot_u8_s8(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));
    }
    case LM_Q4_0: {
        __m256i wq = _mm256_sub_epi8(split_nibbles(block + 2), _mm256_set1_epi8(8));
        return dot_u8_s8(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));
    }
    default:
        return dot_u8_s8(split_nibbles(block + 4), xq);
    }
}

/// Two rows at a time: each block of activations is loaded once for both, and the two rows'
/// accumulators are independent chains (one chain per row left the loop waiting on FMA latency).
__attribute__((target("avx2,fma,f16c")))
void lm_quantized_rows_q8(int format, const void *w, size_t row_bytes, const int8_t *qx, const float *scales,
                          const float *sums, float *y, size_t row_start, size_t row_end, size_t columns) {
    size_t blocks = columns / 32, block_bytes = lm_quantized_block_bytes(format);
    size_t r = row_start;
    for (; r + 2 <= row_end; r += 2) {
        const uint8_t *row0 = (const uint8_t *)w + r * row_bytes, *row1 = row0 + row_bytes;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        __m128 min0 = _mm_setzero_ps(), min1 = _mm_setzero_ps();
        for (size_t b = 0; b < blocks; b++) {
            const uint8_t *block0 = row0 + b * block_bytes, *block1 = row1 + b * block_bytes;
            __m256i xq = _mm256_loadu_si256((const __m256i *)(qx + b * 32));
            float scale = scales[b];
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(load_half(block0)) * scale), block_dot_q8(format, block0, xq), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(load_half(block1)) * scale), block_dot_q8(format, block1, xq), acc1);
            if (format == LM_Q4_1) {
                __m128 sum = _mm_set_ss(sums[b]);
                min0 = _mm_fmadd_ss(_mm_set_ss(_cvtsh_ss(load_half(block0 + 2))), sum, min0);
                min1 = _mm_fmadd_ss(_mm_set_ss(_cvtsh_ss(load_half(block1 + 2))), sum, min1);
            }
        }
        y[r] = lm_sum8(acc0) + _mm_cvtss_f32(min0);
        y[r + 1] = lm_sum8(acc1) + _mm_cvtss_f32(min1);
    }
    for (; r < row_end; r++) {
        const uint8_t *row = (const uint8_t *)w + r * row_bytes;
        __m256 acc = _mm256_setzero_ps();
        float minimums = 0;
        for (size_t b = 0; b < blocks; b++) {
            const uint8_t *block = row + b * block_bytes;
            __m256i xq = _mm256_loadu_si256((const __m256i *)(qx + b * 32));
            acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(load_half(block)) * scales[b]), block_dot_q8(format, block, xq), acc);
            if (format == LM_Q4_1) minimums += _cvtsh_ss(load_half(block + 2)) * sums[b];
        }
        y[r] = lm_sum8(acc) + minimums;
    }
}
#else
void lm_quantized_rows_q8(int format, const void *w, size_t row_bytes, const int8_t *qx, const float *scales,
                          const float *sums, float *y, size_t row_start, size_t row_end, size_t columns) {
    (void)format; (void)w; (void)row_bytes; (void)qx; (void)scales; (void)sums; (void)y; (void)row_start; (void)row_end; (void)columns;
}
#endif

#if defined(__x86_64__) || defined(__i386__)
/// 32 signed bytes → 32 floats d·q + m (multiply, then add: rounded as ggml's scalar decoder), at out.
__attribute__((target("avx2,fma,f16c")))
static inline void store32(__m256i q, __m256 d, __m256 m, float *out) {
    __m128i low = _mm256_castsi256_si128(q), high = _mm256_extracti128_si256(q, 1);
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_mul_ps(d, bytes_to_floats(low)), m));
    _mm256_storeu_ps(out + 8, _mm256_add_ps(_mm256_mul_ps(d, bytes_to_floats(_mm_srli_si128(low, 8))), m));
    _mm256_storeu_ps(out + 16, _mm256_add_ps(_mm256_mul_ps(d, bytes_to_floats(high)), m));
    _mm256_storeu_ps(out + 24, _mm256_add_ps(_mm256_mul_ps(d, bytes_to_floats(_mm_srli_si128(high, 8))), m));
}

__attribute__((target("avx2,fma,f16c")))
static void dequantize_avx2(int format, const uint8_t *w, size_t row_bytes, float *out, size_t ldo,
                            size_t r0, size_t r1, size_t columns) {
    size_t blocks = columns / 32, block_bytes = lm_quantized_block_bytes(format);
    const __m256i eight = _mm256_set1_epi8(8);
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = w + r * row_bytes;
        float *o = out + (r - r0) * ldo;
        for (size_t b = 0; b < blocks; b++) {
            const uint8_t *block = row + b * block_bytes;
            __m256 d = _mm256_set1_ps(_cvtsh_ss(load_half(block)));
            switch (format) {
            case LM_Q8_0: store32(_mm256_loadu_si256((const __m256i *)(block + 2)), d, _mm256_setzero_ps(), o + b * 32); break;
            case LM_Q4_0: store32(_mm256_sub_epi8(split_nibbles(block + 2), eight), d, _mm256_setzero_ps(), o + b * 32); break;
            case LM_Q4_1: store32(split_nibbles(block + 4), d, _mm256_set1_ps(_cvtsh_ss(load_half(block + 2))), o + b * 32); break;
            }
        }
    }
}
#endif

void lm_quantized_dequantize_rows(int format, const void *w, size_t row_bytes, float *out, size_t ldo,
                                  size_t row_start, size_t row_end, size_t columns) {
#if defined(__x86_64__) || defined(__i386__)
    if (lm_quantized_available()) {
        dequantize_avx2(format, (const uint8_t *)w, row_bytes, out, ldo, row_start, row_end, columns);
        return;
    }
#endif
    dequantize_portable(format, w, row_bytes, out, ldo, row_start, row_end, columns);
}
