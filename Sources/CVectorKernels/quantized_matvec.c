// Matrix–vector products over ggml's block-quantized rows, the decode step of a model whose
// weights stay in their GGUF blocks, and the decoding of whole rows (the tiles of a prompt's
// GEMM). The activations stay Float32 and each block is decoded in registers, so the result
// equals dequantize-then-multiply up to the order of the Float32 sums. AVX2+FMA+F16C behind a
// run-time check, with a portable loop for other CPUs. The layouts are in quantized_blocks.h.
#include "quantized_blocks.h"

size_t lm_quantized_block_bytes(int format) {
    switch (format) {
    case LM_Q8_0: return 34;
    case LM_Q4_0: return 18;
    case LM_Q4_1: return 20;
    case LM_Q5_0: return 22;
    case LM_Q5_1: return 24;
    case LM_Q4_K: return 144;
    case LM_Q5_K: return 176;
    case LM_Q6_K: return 210;
    default: return 0;
    }
}

size_t lm_quantized_block_values(int format) {
    if (lm_quantized_block_bytes(format) == 0) return 0;
    return lm_is_super_block(format) ? 256 : 32;
}

/// The portable loop: each block decoded to floats, then its dot product added to the row's.
static void rows_portable(int format, const uint8_t *w, size_t row_bytes, const float *x, float *y,
                          size_t r0, size_t r1, size_t columns) {
    size_t values = lm_quantized_block_values(format), block_bytes = lm_quantized_block_bytes(format);
    float decoded[256];
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = w + r * row_bytes;
        float total = 0;
        for (size_t b = 0; b < columns / values; b++) {
            lm_decode_block_portable(format, row + b * block_bytes, decoded);
            const float *xs = x + b * values;
            float dot = 0;
            for (size_t j = 0; j < values; j++) dot += decoded[j] * xs[j];
            total += dot;
        }
        y[r] = total;
    }
}

static void dequantize_portable(int format, const uint8_t *w, size_t row_bytes, float *out, size_t ldo,
                                size_t r0, size_t r1, size_t columns) {
    size_t values = lm_quantized_block_values(format), block_bytes = lm_quantized_block_bytes(format);
    for (size_t r = r0; r < r1; r++) {
        for (size_t b = 0; b < columns / values; b++) {
            lm_decode_block_portable(format, w + r * row_bytes + b * block_bytes, out + (r - r0) * ldo + b * values);
        }
    }
}

void lm_quantized_rows_portable(int format, const void *w, size_t row_bytes, const float *x, float *y,
                                size_t row_start, size_t row_end, size_t columns) {
    rows_portable(format, (const uint8_t *)w, row_bytes, x, y, row_start, row_end, columns);
}

void lm_quantized_dequantize_rows_portable(int format, const void *w, size_t row_bytes, float *out, size_t ldo,
                                           size_t row_start, size_t row_end, size_t columns) {
    dequantize_portable(format, (const uint8_t *)w, row_bytes, out, ldo, row_start, row_end, columns);
}

#if defined(__x86_64__) || defined(__i386__)

int lm_quantized_available(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    }
    return cached;
}

/// A block's 32 codes as four vectors of 8 floats (values 0–7, 8–15, 16–23, 24–31): signed for
/// Q8_0/Q4_0/Q5_0, the unsigned q for Q4_1/Q5_1. Q8_0 and the 4-bit formats widen straight from
/// memory (one vpmovsxbd/vpmovzxbd per 8 values), which takes fewer shuffles than splitting
/// the nibbles into 32 bytes first.
LM_AVX2 LM_INLINE static void block_floats(int format, const uint8_t *b, __m256 out[4]) {
    switch (format) {
    case LM_Q8_0:
        for (int k = 0; k < 4; k++) out[k] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(b + 2 + 8 * k))));
        return;
    case LM_Q4_0:
    case LM_Q4_1: {
        const uint8_t *p = b + (format == LM_Q4_0 ? 2 : 4);
        __m256i first = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
        __m256i second = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 8)));
        const __m256i mask = _mm256_set1_epi32(0x0F);
        const __m256i centre = _mm256_set1_epi32(format == LM_Q4_0 ? 8 : 0);
        __m256i q[4] = {_mm256_and_si256(first, mask), _mm256_and_si256(second, mask), _mm256_srli_epi32(first, 4), _mm256_srli_epi32(second, 4)};
        for (int k = 0; k < 4; k++) out[k] = _mm256_cvtepi32_ps(_mm256_sub_epi32(q[k], centre));
        return;
    }
    default: {
        __m256i codes = lm_block_codes(format, b);
        __m128i low = _mm256_castsi256_si128(codes), high = _mm256_extracti128_si256(codes, 1);
        out[0] = lm_bytes_to_floats(low);
        out[1] = lm_bytes_to_floats(_mm_srli_si128(low, 8));
        out[2] = lm_bytes_to_floats(high);
        out[3] = lm_bytes_to_floats(_mm_srli_si128(high, 8));
        return;
    }
    }
}

/// Σ codes · x over one block of 32, as 8 lanes.
LM_AVX2 LM_INLINE static __m256 block_dot(const __m256 codes[4], const __m256 xs[4]) {
    __m256 acc = _mm256_mul_ps(codes[0], xs[0]);
    acc = _mm256_fmadd_ps(codes[1], xs[1], acc);
    acc = _mm256_fmadd_ps(codes[2], xs[2], acc);
    return _mm256_fmadd_ps(codes[3], xs[3], acc);
}

/// 32-value formats, two rows at a time: each block of x is loaded once for both, and the two
/// rows' sums are independent chains. The minimum term m·Σx of Q4_1/Q5_1 uses the block's Σx as
/// 8 lanes, summed once for both rows.
LM_AVX2 LM_INLINE static void rows_avx2_body(int format, const uint8_t *w, size_t row_bytes, const float *x, float *y,
                                             size_t r0, size_t r1, size_t columns) {
    size_t blocks = columns / 32, block_bytes = lm_quantized_block_bytes(format);
    int minimum = lm_has_minimum(format);
    size_t r = r0;
    for (; r + 2 <= r1; r += 2) {
        const uint8_t *row0 = w + r * row_bytes, *row1 = row0 + row_bytes;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), min0 = _mm256_setzero_ps(), min1 = _mm256_setzero_ps();
        for (size_t b = 0; b < blocks; b++) {
            const uint8_t *block0 = row0 + b * block_bytes, *block1 = row1 + b * block_bytes;
            const float *xs = x + 32 * b;
            __m256 xv[4] = {_mm256_loadu_ps(xs), _mm256_loadu_ps(xs + 8), _mm256_loadu_ps(xs + 16), _mm256_loadu_ps(xs + 24)};
            __m256 codes0[4], codes1[4];
            _mm_prefetch((const char *)(block0 + LM_PREFETCH_ROWS * row_bytes), _MM_HINT_T0);
            _mm_prefetch((const char *)(block1 + LM_PREFETCH_ROWS * row_bytes), _MM_HINT_T0);
            block_floats(format, block0, codes0);
            block_floats(format, block1, codes1);
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(lm_load_half(block0))), block_dot(codes0, xv), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(lm_load_half(block1))), block_dot(codes1, xv), acc1);
            if (minimum) {
                __m256 sum = _mm256_add_ps(_mm256_add_ps(xv[0], xv[1]), _mm256_add_ps(xv[2], xv[3]));
                min0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(lm_load_half(block0 + 2))), sum, min0);
                min1 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(lm_load_half(block1 + 2))), sum, min1);
            }
        }
        y[r] = lm_sum8(_mm256_add_ps(acc0, min0));
        y[r + 1] = lm_sum8(_mm256_add_ps(acc1, min1));
    }
    for (; r < r1; r++) {
        const uint8_t *row = w + r * row_bytes;
        __m256 acc = _mm256_setzero_ps(), minimums = _mm256_setzero_ps();
        for (size_t b = 0; b < blocks; b++) {
            const uint8_t *block = row + b * block_bytes;
            const float *xs = x + 32 * b;
            __m256 xv[4] = {_mm256_loadu_ps(xs), _mm256_loadu_ps(xs + 8), _mm256_loadu_ps(xs + 16), _mm256_loadu_ps(xs + 24)};
            __m256 codes[4];
            block_floats(format, block, codes);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(lm_load_half(block))), block_dot(codes, xv), acc);
            if (minimum) {
                __m256 sum = _mm256_add_ps(_mm256_add_ps(xv[0], xv[1]), _mm256_add_ps(xv[2], xv[3]));
                minimums = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(lm_load_half(block + 2))), sum, minimums);
            }
        }
        y[r] = lm_sum8(_mm256_add_ps(acc, minimums));
    }
}

/// One copy of the loop per format, so the block decoding has no branch on the format.
LM_AVX2 static void rows_avx2(int format, const uint8_t *w, size_t row_bytes, const float *x, float *y,
                              size_t r0, size_t r1, size_t columns) {
    switch (format) {
    case LM_Q8_0: rows_avx2_body(LM_Q8_0, w, row_bytes, x, y, r0, r1, columns); break;
    case LM_Q4_0: rows_avx2_body(LM_Q4_0, w, row_bytes, x, y, r0, r1, columns); break;
    case LM_Q4_1: rows_avx2_body(LM_Q4_1, w, row_bytes, x, y, r0, r1, columns); break;
    case LM_Q5_0: rows_avx2_body(LM_Q5_0, w, row_bytes, x, y, r0, r1, columns); break;
    case LM_Q5_1: rows_avx2_body(LM_Q5_1, w, row_bytes, x, y, r0, r1, columns); break;
    }
}

/// K-quant rows: each super-block decoded to 256 floats in L1, then multiplied with x by four
/// independent accumulators. (Its values are ggml's, so the product is exact to the decoding.)
LM_AVX2 static void rows_super_avx2(int format, const uint8_t *w, size_t row_bytes, const float *x, float *y,
                                    size_t r0, size_t r1, size_t columns) {
    size_t blocks = columns / 256, block_bytes = lm_quantized_block_bytes(format);
    float decoded[256] __attribute__((aligned(32)));
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = w + r * row_bytes;
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (size_t b = 0; b < blocks; b++) {
            const char *ahead = (const char *)(row + b * block_bytes + LM_PREFETCH_ROWS * row_bytes);
            for (size_t line = 0; line < block_bytes; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
            lm_decode_super_block_avx2(format, row + b * block_bytes, decoded);
            const float *xs = x + 256 * b;
            for (int j = 0; j < 256; j += 32) {
                for (int k = 0; k < 4; k++) acc[k] = _mm256_fmadd_ps(_mm256_load_ps(decoded + j + 8 * k), _mm256_loadu_ps(xs + j + 8 * k), acc[k]);
            }
        }
        y[r] = lm_sum8(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    }
}


/// Rows decoded to floats d·q + m (multiply, then add: rounded as ggml's scalar decoder).
/// Inlined once per format by dequantize_avx2, so no block pays for the format's switch.
LM_AVX2 LM_INLINE static void dequantize_body(int format, const uint8_t *w, size_t row_bytes, float *out, size_t ldo,
                                             size_t r0, size_t r1, size_t columns) {
    size_t values = lm_quantized_block_values(format), block_bytes = lm_quantized_block_bytes(format);
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *row = w + r * row_bytes;
        float *o = out + (r - r0) * ldo;
        for (size_t b = 0; b < columns / values; b++) {
            const uint8_t *block = row + b * block_bytes;
            if (values == 256) {
                lm_decode_super_block_avx2(format, block, o + 256 * b);
                continue;
            }
            __m256 d = _mm256_set1_ps(_cvtsh_ss(lm_load_half(block)));
            __m256 m = lm_has_minimum(format) ? _mm256_set1_ps(_cvtsh_ss(lm_load_half(block + 2))) : _mm256_setzero_ps();
            __m256 codes[4];
            block_floats(format, block, codes);
            for (int k = 0; k < 4; k++) _mm256_storeu_ps(o + 32 * b + 8 * k, _mm256_add_ps(_mm256_mul_ps(d, codes[k]), m));
        }
    }
}

LM_AVX2 static void dequantize_avx2(int format, const uint8_t *w, size_t row_bytes, float *out, size_t ldo,
                                    size_t r0, size_t r1, size_t columns) {
    switch (format) {
    case LM_Q8_0: dequantize_body(LM_Q8_0, w, row_bytes, out, ldo, r0, r1, columns); break;
    case LM_Q4_0: dequantize_body(LM_Q4_0, w, row_bytes, out, ldo, r0, r1, columns); break;
    case LM_Q4_1: dequantize_body(LM_Q4_1, w, row_bytes, out, ldo, r0, r1, columns); break;
    case LM_Q5_0: dequantize_body(LM_Q5_0, w, row_bytes, out, ldo, r0, r1, columns); break;
    case LM_Q5_1: dequantize_body(LM_Q5_1, w, row_bytes, out, ldo, r0, r1, columns); break;
    default: dequantize_body(format, w, row_bytes, out, ldo, r0, r1, columns); break;
    }
}

#else
int lm_quantized_available(void) { return 0; }
#endif

// The entry points: the AVX2 loops when this CPU has them, else the portable ones.
void lm_quantized_rows(int format, const void *w, size_t row_bytes, const float *x, float *y,
                       size_t row_start, size_t row_end, size_t columns) {
#if defined(__x86_64__) || defined(__i386__)
    if (lm_quantized_available()) {
        if (lm_is_super_block(format)) {
            rows_super_avx2(format, (const uint8_t *)w, row_bytes, x, y, row_start, row_end, columns);
        } else {
            rows_avx2(format, (const uint8_t *)w, row_bytes, x, y, row_start, row_end, columns);
        }
        return;
    }
#endif
    lm_quantized_rows_portable(format, w, row_bytes, x, y, row_start, row_end, columns);
}

void lm_quantized_dequantize_rows(int format, const void *w, size_t row_bytes, float *out, size_t ldo,
                                  size_t row_start, size_t row_end, size_t columns) {
#if defined(__x86_64__) || defined(__i386__)
    if (lm_quantized_available()) {
        dequantize_avx2(format, (const uint8_t *)w, row_bytes, out, ldo, row_start, row_end, columns);
        return;
    }
#endif
    lm_quantized_dequantize_rows_portable(format, w, row_bytes, out, ldo, row_start, row_end, columns);
}
