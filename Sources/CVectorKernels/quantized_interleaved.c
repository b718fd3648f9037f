// The decode product with 8-bit activations on CPUs with AVX-512 VNNI: the blocks of eight rows
// stored side by side ("interleaved"), so one 32-byte load holds four codes of each of the eight
// rows and one vpdpbusd multiplies them by the same four activation codes and adds the products
// into eight row sums at once. The block-at-a-time loop of quantized_matvec_q8.c spends ~10
// instructions per row and block (sign tricks, vpmaddubsw, vpmaddwd, a conversion, a scale, an
// FMA) and reads a Q8_0 head at 9 GB/s; here the eight rows of a block cost ~13 instructions in
// all, and the scales of eight rows are one 16-byte load. Same rounding of the activations, same
// integer dot products: the results equal lm_quantized_rows_q8's up to the order of the Float32
// sums over blocks.
//
// Layout of one group of eight rows, block by block (b = 0 ..< columns / 32), the same bytes per
// block as the format's own (8 × 34 for Q8_0, …):
//   d[8]       the rows' scales, halves                                        16 bytes
//   m[8]       Q4_1/Q5_1: the rows' minimums, halves                           16 bytes
//   codes      Q8_0: 8 chunks of 32 bytes; chunk k holds codes 4k…4k+3 of row 0, then of row
//              1, …, each stored as q + 128 (vpdpbusd's unsigned operand).    256 bytes
//              4- and 5-bit formats: 4 chunks of 32 bytes; chunk k holds bytes 4k…4k+3 of each
//              row's nibbles, so its low nibbles are values 4k…4k+3 and its high nibbles values
//              16+4k…16+4k+3 of the eight rows.                                128 bytes
//   masks[8]   Q5_0/Q5_1: the fifth bits, as a 32-bit mask per (chunk k, half h) at 4·(2k + h):
//              bit 4r + i is bit 4 of value 16h + 4k + i of row r.              32 bytes
// A row holds Σ_b d·dx_b·(Σ_j q_j·xq_j − offset·Σ_j xq_j) (+ m·Σ_j x_j), offset 128 for the biased
// Q8_0 codes, 8 for Q4_0, 16 for Q5_0, 0 for the formats with a minimum.
#include "quantized_blocks.h"

/// Rows per interleaved group.
#define LM_GROUP_ROWS 8

/// Bytes of one block of a group: the format's block, eight times.
static size_t group_block_bytes(int format) { return LM_GROUP_ROWS * lm_quantized_block_bytes(format); }

/// Where the codes of a group's block start: after the scales (and minimums).
static size_t codes_offset(int format) { return format == LM_Q4_1 || format == LM_Q5_1 ? 32 : 16; }

/// Bytes of one row's nibbles (4-bit codes) in a block of `format`, and where they start.
static size_t nibbles_offset(int format) {
    switch (format) {
    case LM_Q4_0: return 2;
    case LM_Q4_1: return 4;
    case LM_Q5_0: return 6;
    default: return 8;  // Q5_1
    }
}

static int is_five_bit(int format) { return format == LM_Q5_0 || format == LM_Q5_1; }

/// The value subtracted from every code of `format` (see the layout above).
static int code_offset(int format) {
    switch (format) {
    case LM_Q8_0: return 128;
    case LM_Q4_0: return 8;
    case LM_Q5_0: return 16;
    default: return 0;
    }
}

static int interleavable(int format) {
    return format == LM_Q8_0 || format == LM_Q4_0 || format == LM_Q4_1 || format == LM_Q5_0 || format == LM_Q5_1;
}

size_t lm_interleaved_bytes(int format, size_t rows, size_t columns) {
    if (!interleavable(format)) return 0;
    return rows / LM_GROUP_ROWS * (columns / 32) * group_block_bytes(format);
}

void lm_interleave_rows(int format, const void *w, size_t row_bytes, size_t columns, size_t group_start, size_t group_end,
                        void *packed) {
    size_t blocks = columns / 32, block_bytes = lm_quantized_block_bytes(format), stride = group_block_bytes(format);
    size_t codes = codes_offset(format);
    for (size_t g = group_start; g < group_end; g++) {
        for (size_t b = 0; b < blocks; b++) {
            uint8_t *out = (uint8_t *)packed + (g * blocks + b) * stride;
            for (int r = 0; r < LM_GROUP_ROWS; r++) {
                const uint8_t *block = (const uint8_t *)w + (g * LM_GROUP_ROWS + r) * row_bytes + b * block_bytes;
                memcpy(out + 2 * r, block, 2);
                if (codes == 32) memcpy(out + 16 + 2 * r, block + 2, 2);
                if (format == LM_Q8_0) {
                    for (int k = 0; k < 8; k++) {
                        for (int i = 0; i < 4; i++) out[codes + 32 * k + 4 * r + i] = (uint8_t)(block[2 + 4 * k + i] ^ 0x80);
                    }
                    continue;
                }
                const uint8_t *nibbles = block + nibbles_offset(format);
                for (int k = 0; k < 4; k++) memcpy(out + codes + 32 * k + 4 * r, nibbles + 4 * k, 4);
                if (!is_five_bit(format)) continue;
                uint32_t fifth = lm_load_u32(block + nibbles_offset(format) - 4);
                uint8_t *masks = out + codes + 128;
                for (int k = 0; k < 4; k++) {
                    for (int h = 0; h < 2; h++) {
                        uint8_t *mask = masks + 4 * (2 * k + h);
                        for (int i = 0; i < 4; i++) {
                            int bit = 4 * r + i;
                            if (fifth >> (16 * h + 4 * k + i) & 1) mask[bit / 8] |= (uint8_t)(1 << (bit % 8));
                            else mask[bit / 8] &= (uint8_t)~(1 << (bit % 8));
                        }
                    }
                }
            }
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)
#define LM_VNNI __attribute__((target("avx512f,avx512vl,avx512bw,avx512vnni,avx2,fma,f16c")))

int lm_interleaved_available(int format) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = lm_quantized_available() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                 __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
    }
    return cached && interleavable(format);
}

/// Four activation codes, read as one 32-bit lane and repeated over eight.
LM_VNNI LM_INLINE static __m256i four_codes(const int8_t *xq) {
    int32_t four;
    memcpy(&four, xq, 4);
    return _mm256_set1_epi32(four);
}

/// One group's eight rows over every block, into y[0…7]. Inlined once per format.
LM_VNNI LM_INLINE static void group_q8(int format, const uint8_t *group, size_t blocks, const int8_t *qx, const float *scales,
                                       const float *sums, const int32_t *code_sums, float *y) {
    const size_t stride = group_block_bytes(format), codes = codes_offset(format);
    const int offset = code_offset(format);
    const __m256i low4 = _mm256_set1_epi8(0x0F), sixteen = _mm256_set1_epi8(16);
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *block = group + b * stride;
        const int8_t *xs = qx + 32 * b;
        _mm_prefetch((const char *)(block + 8 * stride), _MM_HINT_T0);
        _mm_prefetch((const char *)(block + 8 * stride + 64), _MM_HINT_T0);
        _mm_prefetch((const char *)(block + 8 * stride + 128), _MM_HINT_T0);
        _mm_prefetch((const char *)(block + 8 * stride + stride - 1), _MM_HINT_T0);
        // Two independent sums, so the vpdpbusd latency chains are half as long.
        __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();
        if (format == LM_Q8_0) {
            for (int k = 0; k < 8; k += 2) {
                even = _mm256_dpbusd_epi32(even, _mm256_loadu_si256((const __m256i *)(block + codes + 32 * k)), four_codes(xs + 4 * k));
                odd = _mm256_dpbusd_epi32(odd, _mm256_loadu_si256((const __m256i *)(block + codes + 32 * k + 32)), four_codes(xs + 4 * k + 4));
            }
        } else {
            uint32_t masks[8];
            if (is_five_bit(format)) memcpy(masks, block + codes + 128, sizeof masks);
            for (int k = 0; k < 4; k++) {
                __m256i packed = _mm256_loadu_si256((const __m256i *)(block + codes + 32 * k));
                __m256i low = _mm256_and_si256(packed, low4), high = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4);
                if (is_five_bit(format)) {
                    low = _mm256_mask_add_epi8(low, masks[2 * k], low, sixteen);
                    high = _mm256_mask_add_epi8(high, masks[2 * k + 1], high, sixteen);
                }
                even = _mm256_dpbusd_epi32(even, low, four_codes(xs + 4 * k));
                odd = _mm256_dpbusd_epi32(odd, high, four_codes(xs + 16 + 4 * k));
            }
        }
        __m256i dots = _mm256_add_epi32(even, odd);
        if (offset) dots = _mm256_sub_epi32(dots, _mm256_set1_epi32(offset * code_sums[b]));
        __m256 d = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)block)), _mm256_set1_ps(scales[b]));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots), d, acc);
        if (codes == 32) acc = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(block + 16))), _mm256_set1_ps(sums[b]), acc);
    }
    _mm256_storeu_ps(y, acc);
}

LM_VNNI LM_INLINE static void groups_q8(int format, const uint8_t *packed, size_t g0, size_t g1, size_t blocks, const int8_t *qx,
                                        const float *scales, const float *sums, const int32_t *code_sums, float *y) {
    size_t stride = blocks * group_block_bytes(format);
    for (size_t g = g0; g < g1; g++) group_q8(format, packed + g * stride, blocks, qx, scales, sums, code_sums, y + LM_GROUP_ROWS * g);
}

static void groups_by_format(int format, const uint8_t *p, size_t g0, size_t g1, size_t blocks, const int8_t *qx,
                             const float *scales, const float *sums, const int32_t *code_sums, float *y);

void lm_interleaved_rows_q8(int format, const void *packed, const void *w, size_t row_bytes, const int8_t *qx, const float *scales,
                            const float *sums, float *y, size_t row_start, size_t row_end, size_t columns) {
    size_t blocks = columns / 32;
    size_t g0 = (row_start + LM_GROUP_ROWS - 1) / LM_GROUP_ROWS, g1 = row_end / LM_GROUP_ROWS;
    if (g0 >= g1) {  // no whole group in the range
        lm_quantized_rows_q8(format, w, row_bytes, qx, scales, sums, y, row_start, row_end, columns);
        return;
    }
    // The rows of partial groups at either end, block by block on the format's own layout.
    if (row_start < g0 * LM_GROUP_ROWS) lm_quantized_rows_q8(format, w, row_bytes, qx, scales, sums, y, row_start, g0 * LM_GROUP_ROWS, columns);
    if (g1 * LM_GROUP_ROWS < row_end) lm_quantized_rows_q8(format, w, row_bytes, qx, scales, sums, y, g1 * LM_GROUP_ROWS, row_end, columns);
    int32_t code_sums[blocks];
    for (size_t b = 0; b < blocks; b++) {
        int32_t sum = 0;
        for (int j = 0; j < 32; j++) sum += qx[32 * b + j];
        code_sums[b] = sum;
    }
    groups_by_format(format, (const uint8_t *)packed, g0, g1, blocks, qx, scales, sums, code_sums, y);
}

/// One copy of the loop per format, so the block decoding has no branch on the format.
LM_VNNI static void groups_by_format(int format, const uint8_t *p, size_t g0, size_t g1, size_t blocks, const int8_t *qx,
                                     const float *scales, const float *sums, const int32_t *code_sums, float *y) {
    switch (format) {
    case LM_Q8_0: groups_q8(LM_Q8_0, p, g0, g1, blocks, qx, scales, sums, code_sums, y); break;
    case LM_Q4_0: groups_q8(LM_Q4_0, p, g0, g1, blocks, qx, scales, sums, code_sums, y); break;
    case LM_Q4_1: groups_q8(LM_Q4_1, p, g0, g1, blocks, qx, scales, sums, code_sums, y); break;
    case LM_Q5_0: groups_q8(LM_Q5_0, p, g0, g1, blocks, qx, scales, sums, code_sums, y); break;
    case LM_Q5_1: groups_q8(LM_Q5_1, p, g0, g1, blocks, qx, scales, sums, code_sums, y); break;
    }
}
#else
int lm_interleaved_available(int format) { (void)format; return 0; }

void lm_interleaved_rows_q8(int format, const void *packed, const void *w, size_t row_bytes, const int8_t *qx, const float *scales,
                            const float *sums, float *y, size_t row_start, size_t row_end, size_t columns) {
    (void)packed;
    lm_quantized_rows_q8(format, w, row_bytes, qx, scales, sums, y, row_start, row_end, columns);
}
#endif
