// The other design of the decode product: activations quantized to 8 bits per block of 32, as
// ggml does, so each block's dot product is integer multiply-adds (vpmaddubsw). Measured beside
// the Float32-activation kernel of quantized_matvec.c (bench qmatvec8/…); the results move by
// the activation rounding (≈ 1/254 of each block's largest |x|).
#include "quantized_blocks.h"

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

void lm_quantize_activation_rows(const float *x, size_t ldx, size_t batch, size_t columns, int8_t *qx, float *scales, float *sums,
                                 int32_t *code_sums) {
    size_t blocks = columns / 32;
    for (size_t i = 0; i < batch; i++) {
        int8_t *codes = qx + i * columns;
        lm_quantize_activations(x + i * ldx, columns, codes, scales + i * blocks, sums + i * blocks);
        for (size_t c = 0; c < columns / 16; c++) {
            int32_t sum = 0;
            for (int j = 0; j < 16; j++) sum += codes[16 * c + j];
            code_sums[i * 2 * blocks + c] = sum;
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)
int lm_quantized_q8_available(int format) {
    return lm_quantized_available() && !lm_is_super_block(format) && lm_quantized_block_bytes(format) != 0;
}

/// Σ unsigned bytes u × signed bytes s over 32 lanes, as 8 int32 sums converted to floats.
LM_AVX2 LM_INLINE static __m256 dot_u8_s8(__m256i u, __m256i s) {
    __m256i pairs = _mm256_maddubs_epi16(u, s);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

/// One block's integer dot product of weights and 8-bit activations `xq`, as 8 float lanes.
/// Signed codes go through vpmaddubsw's unsigned operand by moving their signs onto x; the
/// minimum term of Q4_1/Q5_1 is added by the caller.
LM_AVX2 LM_INLINE static __m256 block_dot_q8(int format, const uint8_t *block, __m256i xq) {
    __m256i codes = lm_block_codes(format, block);
    if (lm_has_minimum(format)) return dot_u8_s8(codes, xq);
    return dot_u8_s8(_mm256_sign_epi8(codes, codes), _mm256_sign_epi8(xq, codes));
}

/// Two rows at a time: each block of activations is loaded once for both, and the two rows'
/// accumulators are independent chains (one chain per row left the loop waiting on FMA latency).
/// Inlined once per format (below), so the block decoding has no branch on the format.
LM_AVX2 LM_INLINE static void rows_q8(int format, const void *w, size_t row_bytes, const int8_t *qx, const float *scales,
                                      const float *sums, float *y, size_t row_start, size_t row_end, size_t columns) {
    size_t blocks = columns / 32, block_bytes = lm_quantized_block_bytes(format);
    int minimum = lm_has_minimum(format);
    size_t r = row_start;
    for (; r + 2 <= row_end; r += 2) {
        const uint8_t *row0 = (const uint8_t *)w + r * row_bytes, *row1 = row0 + row_bytes;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        float min0 = 0, min1 = 0;
        for (size_t b = 0; b < blocks; b++) {
            const uint8_t *block0 = row0 + b * block_bytes, *block1 = row1 + b * block_bytes;
            __m256i xq = _mm256_loadu_si256((const __m256i *)(qx + b * 32));
            float scale = scales[b];
            _mm_prefetch((const char *)(block0 + LM_PREFETCH_ROWS * row_bytes), _MM_HINT_T0);
            _mm_prefetch((const char *)(block1 + LM_PREFETCH_ROWS * row_bytes), _MM_HINT_T0);
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(lm_load_half(block0)) * scale), block_dot_q8(format, block0, xq), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(lm_load_half(block1)) * scale), block_dot_q8(format, block1, xq), acc1);
            if (minimum) {
                min0 += _cvtsh_ss(lm_load_half(block0 + 2)) * sums[b];
                min1 += _cvtsh_ss(lm_load_half(block1 + 2)) * sums[b];
            }
        }
        y[r] = lm_sum8(acc0) + min0;
        y[r + 1] = lm_sum8(acc1) + min1;
    }
    for (; r < row_end; r++) {
        const uint8_t *row = (const uint8_t *)w + r * row_bytes;
        __m256 acc = _mm256_setzero_ps();
        float minimums = 0;
        for (size_t b = 0; b < blocks; b++) {
            const uint8_t *block = row + b * block_bytes;
            __m256i xq = _mm256_loadu_si256((const __m256i *)(qx + b * 32));
            acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(lm_load_half(block)) * scales[b]), block_dot_q8(format, block, xq), acc);
            if (minimum) minimums += _cvtsh_ss(lm_load_half(block + 2)) * sums[b];
        }
        y[r] = lm_sum8(acc) + minimums;
    }
}

LM_AVX2 void lm_quantized_rows_q8(int format, const void *w, size_t row_bytes, const int8_t *qx, const float *scales,
                                  const float *sums, float *y, size_t row_start, size_t row_end, size_t columns) {
    switch (format) {
    case LM_Q8_0: rows_q8(LM_Q8_0, w, row_bytes, qx, scales, sums, y, row_start, row_end, columns); break;
    case LM_Q4_0: rows_q8(LM_Q4_0, w, row_bytes, qx, scales, sums, y, row_start, row_end, columns); break;
    case LM_Q4_1: rows_q8(LM_Q4_1, w, row_bytes, qx, scales, sums, y, row_start, row_end, columns); break;
    case LM_Q5_0: rows_q8(LM_Q5_0, w, row_bytes, qx, scales, sums, y, row_start, row_end, columns); break;
    case LM_Q5_1: rows_q8(LM_Q5_1, w, row_bytes, qx, scales, sums, y, row_start, row_end, columns); break;
    }
}
#else
int lm_quantized_q8_available(int format) { (void)format; return 0; }

void lm_quantized_rows_q8(int format, const void *w, size_t row_bytes, const int8_t *qx, const float *scales,
                          const float *sums, float *y, size_t row_start, size_t row_end, size_t columns) {
    (void)format; (void)w; (void)row_bytes; (void)qx; (void)scales; (void)sums; (void)y; (void)row_start; (void)row_end; (void)columns;
}
#endif
