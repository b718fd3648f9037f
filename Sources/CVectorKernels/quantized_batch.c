// The products of a batched decode step: a few activation rows (one per sequence) times a
// block-quantized weight. Each weight row is decoded to Float32 once, a chunk at a time into
// L1, and multiplied with every activation row there, so DRAM is read once for the whole batch
// and the decoding is shared.
//
// Batch invariance: y_b[r] is computed by the same operations in the same order whatever the
// batch holds (the chunking is fixed, each (row, activation row) pair has accumulators of its
// own, and rows are never split), so a sequence's logits do not depend on which other sequences
// share its step, nor on the thread count.
#include "quantized_blocks.h"
#include "avx2_sum.h"

/// Values of a weight row decoded at a time: a multiple of every block size (32, 256), and two
/// rows of it (8 KiB) stay in L1.
#define LM_BATCH_CHUNK 1024

/// Both rows of the pair `w0`, `w1` (`len` decoded values each) against `x`, into the pair's
/// running sums: the portable loop, four partial sums a row (the AVX2 loop's lane structure is
/// not reproduced; each path is batch-invariant on its own).
static void pair_portable(const float *w0, const float *w1, const float *x, size_t len, float sums[2][4]) {
    for (size_t j = 0; j < len; j += 4) {
        for (int lane = 0; lane < 4; lane++) {
            sums[0][lane] += w0[j + lane] * x[j + lane];
            sums[1][lane] += w1[j + lane] * x[j + lane];
        }
    }
}

static void batched_portable(int format, const uint8_t *w, size_t row_bytes, const float *x, size_t ldx, size_t batch,
                             float *y, size_t ldy, size_t r0, size_t r1, size_t columns, int accumulate) {
    size_t values = lm_quantized_block_values(format), block_bytes = lm_quantized_block_bytes(format);
    float decoded[2][LM_BATCH_CHUNK];
    float sums[LM_BATCH_MAX][2][4];
    for (size_t r = r0; r < r1; r += 2) {
        // A lone last row is paired with itself, so it runs exactly the code a paired row runs.
        size_t second = r + 1 < r1 ? r + 1 : r;
        for (size_t b = 0; b < batch; b++) for (int i = 0; i < 2; i++) for (int l = 0; l < 4; l++) sums[b][i][l] = 0;
        for (size_t start = 0; start < columns; start += LM_BATCH_CHUNK) {
            size_t len = columns - start < LM_BATCH_CHUNK ? columns - start : LM_BATCH_CHUNK;
            const uint8_t *from = w + start / values * block_bytes;
            lm_quantized_dequantize_rows_portable(format, from + r * row_bytes, row_bytes, decoded[0], LM_BATCH_CHUNK, 0, 1, len);
            lm_quantized_dequantize_rows_portable(format, from + second * row_bytes, row_bytes, decoded[1], LM_BATCH_CHUNK, 0, 1, len);
            for (size_t b = 0; b < batch; b++) pair_portable(decoded[0], decoded[1], x + b * ldx + start, len, sums[b]);
        }
        for (size_t b = 0; b < batch; b++) {
            float first = (sums[b][0][0] + sums[b][0][1]) + (sums[b][0][2] + sums[b][0][3]);
            float other = (sums[b][1][0] + sums[b][1][1]) + (sums[b][1][2] + sums[b][1][3]);
            y[b * ldy + r] = accumulate ? y[b * ldy + r] + first : first;
            if (second != r) y[b * ldy + second] = accumulate ? y[b * ldy + second] + other : other;
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)
/// Four decoded rows against two activation rows over one chunk: eight accumulators, one per
/// (row, activation row), each a single chain of FMAs over the columns in order. Eight chains
/// keep both FMA ports busy, and each column slice loads four weight vectors and two
/// activation vectors for eight FMAs.
LM_AVX2 LM_INLINE static void quad_avx2(const float *w, const float *x0, const float *x1, size_t len, __m256 acc[2][4]) {
    __m256 a00 = acc[0][0], a01 = acc[0][1], a02 = acc[0][2], a03 = acc[0][3];
    __m256 a10 = acc[1][0], a11 = acc[1][1], a12 = acc[1][2], a13 = acc[1][3];
    const float *w0 = w, *w1 = w + LM_BATCH_CHUNK, *w2 = w + 2 * LM_BATCH_CHUNK, *w3 = w + 3 * LM_BATCH_CHUNK;
    for (size_t j = 0; j < len; j += 8) {
        __m256 u = _mm256_loadu_ps(x0 + j), v = _mm256_loadu_ps(x1 + j);
        __m256 r0 = _mm256_load_ps(w0 + j), r1 = _mm256_load_ps(w1 + j), r2 = _mm256_load_ps(w2 + j), r3 = _mm256_load_ps(w3 + j);
        a00 = _mm256_fmadd_ps(r0, u, a00);
        a01 = _mm256_fmadd_ps(r1, u, a01);
        a02 = _mm256_fmadd_ps(r2, u, a02);
        a03 = _mm256_fmadd_ps(r3, u, a03);
        a10 = _mm256_fmadd_ps(r0, v, a10);
        a11 = _mm256_fmadd_ps(r1, v, a11);
        a12 = _mm256_fmadd_ps(r2, v, a12);
        a13 = _mm256_fmadd_ps(r3, v, a13);
    }
    acc[0][0] = a00; acc[0][1] = a01; acc[0][2] = a02; acc[0][3] = a03;
    acc[1][0] = a10; acc[1][1] = a11; acc[1][2] = a12; acc[1][3] = a13;
}

LM_AVX2 static void batched_avx2(int format, const uint8_t *w, size_t row_bytes, const float *x, size_t ldx, size_t batch,
                                 float *y, size_t ldy, size_t r0, size_t r1, size_t columns, int accumulate) {
    size_t values = lm_quantized_block_values(format), block_bytes = lm_quantized_block_bytes(format);
    float decoded[4 * LM_BATCH_CHUNK] __attribute__((aligned(32)));
    // acc[b][row]: activation row b against weight row `row` of the group of four.
    __m256 acc[LM_BATCH_MAX + 1][4];
    for (size_t r = r0; r < r1; r += 4) {
        // A short last group repeats its last row, so every row runs the code a full group runs.
        size_t rows[4];
        for (int i = 0; i < 4; i++) rows[i] = r + i < r1 ? r + i : r1 - 1;
        for (size_t b = 0; b < batch + 1; b++) for (int i = 0; i < 4; i++) acc[b][i] = _mm256_setzero_ps();
        if (r + 4 + LM_PREFETCH_ROWS < r1) {
            const uint8_t *ahead = w + (r + 4 + LM_PREFETCH_ROWS) * row_bytes;
            for (size_t offset = 0; offset < 4 * row_bytes; offset += 64) _mm_prefetch((const char *)ahead + offset, _MM_HINT_T0);
        }
        for (size_t start = 0; start < columns; start += LM_BATCH_CHUNK) {
            size_t len = columns - start < LM_BATCH_CHUNK ? columns - start : LM_BATCH_CHUNK;
            const uint8_t *from = w + start / values * block_bytes;
            for (int i = 0; i < 4; i++) {
                lm_quantized_dequantize_rows(format, from + rows[i] * row_bytes, row_bytes, decoded + i * LM_BATCH_CHUNK, LM_BATCH_CHUNK, 0, 1, len);
            }
            // Activation rows in pairs; an odd last one is paired with itself (and the copy's
            // sums go to the spare accumulators at acc[batch]).
            for (size_t b = 0; b < batch; b += 2) {
                size_t other = b + 1 < batch ? b + 1 : b;
                __m256 pair[2][4];
                for (int i = 0; i < 4; i++) { pair[0][i] = acc[b][i]; pair[1][i] = acc[b + 1 < batch ? b + 1 : batch][i]; }
                quad_avx2(decoded, x + b * ldx + start, x + other * ldx + start, len, pair);
                for (int i = 0; i < 4; i++) { acc[b][i] = pair[0][i]; acc[b + 1 < batch ? b + 1 : batch][i] = pair[1][i]; }
            }
        }
        for (size_t b = 0; b < batch; b++) {
            for (int i = 0; i < 4; i++) {
                if (i > 0 && rows[i] == rows[i - 1]) break;
                float sum = lm_sum8(acc[b][i]);
                float *out = y + b * ldy + rows[i];
                *out = accumulate ? *out + sum : sum;
            }
        }
    }
}
#endif

void lm_quantized_rows_batched(int format, const void *w, size_t row_bytes, const float *x, size_t ldx, size_t batch,
                               float *y, size_t ldy, size_t row_start, size_t row_end, size_t columns, int accumulate) {
    if (batch == 0 || batch > LM_BATCH_MAX) return;
#if defined(__x86_64__) || defined(__i386__)
    if (lm_quantized_available()) {
        batched_avx2(format, (const uint8_t *)w, row_bytes, x, ldx, batch, y, ldy, row_start, row_end, columns, accumulate);
        return;
    }
#endif
    batched_portable(format, (const uint8_t *)w, row_bytes, x, ldx, batch, y, ldy, row_start, row_end, columns, accumulate);
}
