// The decode product with 8-bit activations on CPUs with AVX-512 VNNI: the blocks of eight rows
// stored side by side ("interleaved"), so one 32-byte load holds four codes of each of the eight
// rows and one vpdpbusd multiplies them by the same four activation codes and adds the products
// into eight row sums at once. The block-at-a-time loop of quantized_matvec_q8.c spends ~10
// instructions per row and block (sign tricks, vpmaddubsw, vpmaddwd, a conversion, a scale, an
// FMA) and reads a Q8_0 head at 9 GB/s; here the eight rows of a block cost ~13 instructions in
// all, the scales of eight rows are one load, and the head streams at 26 GB/s. The K-quants,
// which have no 8-bit-activation loop of their own, get one here.
//
// Layout of one group of eight rows, block by block (blocks of 32 values, super-blocks of 256):
//   Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (the bytes of eight of the format's blocks):
//     d[8]      the rows' scales, halves                                         16 bytes
//     m[8]      Q4_1/Q5_1: the rows' minimums, halves                            16 bytes
//     codes     Q8_0: 8 chunks of 32 bytes; chunk k holds codes 4k…4k+3 of row 0, then of row 1,
//               …, each stored as q + 128 (vpdpbusd's unsigned operand).       256 bytes
//               4- and 5-bit: 4 chunks of 32 bytes; chunk k holds bytes 4k…4k+3 of each row's
//               nibbles: its low nibbles are values 4k…4k+3, its high nibbles values
//               16+4k…16+4k+3 of the eight rows.                                 128 bytes
//     masks     Q5_0/Q5_1: the fifth bits, a 32-bit mask per (chunk k, half h) at 4·(2k + h):
//               bit 4r + i is bit 4 of value 16h + 4k + i of row r.               32 bytes
//   Q4_K (148 bytes a row where the format has 144: the 6-bit scales unpacked):
//     d[8], dmin[8] halves; scales[8 sub-blocks][8 rows], mins[8][8] bytes; then per pass p of 64
//     values, 8 chunks of 32 bytes: chunk k holds bytes 4k…4k+3 of each row's pass, whose low
//     nibbles are values 4k… of sub-block 2p and high nibbles values 4k… of sub-block 2p + 1.
//   Q6_K (210 bytes a row, as the format): d[8] halves; scales[16][8] signed bytes; per half h of
//     128 values, 8 groups of three chunks (k = 0…7): the low-nibble bytes 4k…4k+3 and
//     32+4k…32+4k+3 of the half, and its high-bit bytes 4k…4k+3, each for the eight rows.
// A row is Σ over blocks of d·dx·(Σ q·xq − offset·Σ xq) (+ m·Σ x): offset 128 for the biased Q8_0
// codes, 8 for Q4_0, 16 for Q5_0, 32 for Q6_K, 0 where a minimum is added (Q4_1, Q5_1; Q4_K
// subtracts dmin·m·Σ x per sub-block of 32, with d·scale as its d; Q6_K's scales cover 16 values).
#include "quantized_blocks.h"

/// Rows per interleaved group.
#define LM_GROUP_ROWS 8

static int interleavable(int format) { return lm_quantized_block_bytes(format) != 0 && format != LM_Q5_K; }

/// Bytes one row of a block takes in the interleaved layout (Q4_K: its scales unpacked).
static size_t row_block_bytes(int format) { return format == LM_Q4_K ? 148 : lm_quantized_block_bytes(format); }

/// Bytes of one block of a group of eight rows.
static size_t group_block_bytes(int format) { return LM_GROUP_ROWS * row_block_bytes(format); }

/// Where the codes of a 32-value format's group block start: after the scales (and minimums).
static size_t codes_offset(int format) { return format == LM_Q4_1 || format == LM_Q5_1 ? 32 : 16; }

/// Where one row's nibbles start in a block of a 4- or 5-bit format (its fifth bits, 4 bytes before).
static size_t nibbles_offset(int format) {
    switch (format) {
    case LM_Q4_0: return 2;
    case LM_Q4_1: return 4;
    case LM_Q5_0: return 6;
    default: return 8;  // Q5_1
    }
}

static int is_five_bit(int format) { return format == LM_Q5_0 || format == LM_Q5_1; }

/// The value subtracted from every code of a 32-value format (see the layout above).
static int code_offset(int format) {
    switch (format) {
    case LM_Q8_0: return 128;
    case LM_Q4_0: return 8;
    case LM_Q5_0: return 16;
    default: return 0;
    }
}

size_t lm_interleaved_bytes(int format, size_t rows, size_t columns) {
    if (!interleavable(format)) return 0;
    return rows / LM_GROUP_ROWS * (columns / lm_quantized_block_values(format)) * group_block_bytes(format);
}

/// Row `r` of the group's block of a 32-value format, from the format's block `block`.
static void interleave_block(int format, const uint8_t *block, int r, uint8_t *out) {
    size_t codes = codes_offset(format);
    memcpy(out + 2 * r, block, 2);
    if (codes == 32) memcpy(out + 16 + 2 * r, block + 2, 2);
    if (format == LM_Q8_0) {
        for (int k = 0; k < 8; k++) {
            uint32_t four;
            memcpy(&four, block + 2 + 4 * k, 4);
            four ^= 0x80808080u;
            memcpy(out + codes + 32 * k + 4 * r, &four, 4);
        }
        return;
    }
    const uint8_t *nibbles = block + nibbles_offset(format);
    for (int k = 0; k < 4; k++) memcpy(out + codes + 32 * k + 4 * r, nibbles + 4 * k, 4);
    if (!is_five_bit(format)) return;
    uint32_t fifth = lm_load_u32(nibbles - 4);
    uint8_t *masks = out + codes + 128;
    for (int k = 0; k < 4; k++) {
        for (int h = 0; h < 2; h++) {
            // Row r's four bits of this (chunk, half) form one nibble of the 32-bit mask.
            uint8_t bits = (uint8_t)(fifth >> (16 * h + 4 * k) & 0x0F);
            uint8_t *byte = masks + 4 * (2 * k + h) + r / 2;
            *byte = (uint8_t)(r % 2 ? (*byte & 0x0F) | bits << 4 : (*byte & 0xF0) | bits);
        }
    }
}

/// Row `r` of the group's super-block of Q4_K, from the format's super-block.
static void interleave_q4_k(const uint8_t *block, int r, uint8_t *out) {
    memcpy(out + 2 * r, block, 2);
    memcpy(out + 16 + 2 * r, block + 2, 2);
    for (int j = 0; j < 8; j++) {
        float scale, minimum;
        lm_scale_min_k4(j, block + 4, &scale, &minimum);
        out[32 + 8 * j + r] = (uint8_t)scale;
        out[96 + 8 * j + r] = (uint8_t)minimum;
    }
    for (int p = 0; p < 4; p++) {
        for (int k = 0; k < 8; k++) memcpy(out + 160 + 256 * p + 32 * k + 4 * r, block + 16 + 32 * p + 4 * k, 4);
    }
}

/// Row `r` of the group's super-block of Q6_K, from the format's super-block.
static void interleave_q6_k(const uint8_t *block, int r, uint8_t *out) {
    memcpy(out + 2 * r, block + 208, 2);
    for (int i = 0; i < 16; i++) out[16 + 8 * i + r] = block[192 + i];
    for (int h = 0; h < 2; h++) {
        for (int k = 0; k < 8; k++) {
            uint8_t *chunks = out + 144 + 768 * h + 96 * k + 4 * r;
            memcpy(chunks, block + 64 * h + 4 * k, 4);
            memcpy(chunks + 32, block + 64 * h + 32 + 4 * k, 4);
            memcpy(chunks + 64, block + 128 + 32 * h + 4 * k, 4);
        }
    }
}

void lm_interleave_rows(int format, const void *w, size_t row_bytes, size_t columns, size_t group_start, size_t group_end,
                        void *packed) {
    size_t blocks = columns / lm_quantized_block_values(format), block_bytes = lm_quantized_block_bytes(format);
    size_t stride = group_block_bytes(format);
    for (size_t g = group_start; g < group_end; g++) {
        for (size_t b = 0; b < blocks; b++) {
            uint8_t *out = (uint8_t *)packed + (g * blocks + b) * stride;
            for (int r = 0; r < LM_GROUP_ROWS; r++) {
                const uint8_t *block = (const uint8_t *)w + (g * LM_GROUP_ROWS + r) * row_bytes + b * block_bytes;
                if (format == LM_Q4_K) interleave_q4_k(block, r, out);
                else if (format == LM_Q6_K) interleave_q6_k(block, r, out);
                else interleave_block(format, block, r, out);
            }
        }
    }
}

/// Rows `r0..<r1` of the product by decoding each block to floats and multiplying with the
/// rounded activations (Q4_K's minimum term too, where the group kernel takes the exact sums):
/// the rows past the last whole group of a K-quant, which no other 8-bit loop takes.
static void rows_q8_decoded(int format, const uint8_t *w, size_t row_bytes, const int8_t *qx, const float *scales,
                            float *y, size_t r0, size_t r1, size_t columns) {
    size_t values = lm_quantized_block_values(format), block_bytes = lm_quantized_block_bytes(format);
    float decoded[256];
    for (size_t r = r0; r < r1; r++) {
        float total = 0;
        for (size_t b = 0; b < columns / values; b++) {
            lm_decode_block_portable(format, w + r * row_bytes + b * block_bytes, decoded);
            for (size_t j = 0; j < values; j++) total += decoded[j] * scales[(b * values + j) / 32] * (float)qx[b * values + j];
        }
        y[r] = total;
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

/// Eight halves → eight floats.
LM_VNNI LM_INLINE static __m256 eight_halves(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

/// Eight unsigned (or signed) bytes → eight floats.
LM_VNNI LM_INLINE static __m256 eight_bytes(const uint8_t *p) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p))); }
LM_VNNI LM_INLINE static __m256 eight_signed_bytes(const uint8_t *p) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p))); }

/// Prefetches the group block 8 blocks ahead (the stream of groups is contiguous).
LM_VNNI LM_INLINE static void prefetch_ahead(const uint8_t *block, size_t stride) {
    const char *ahead = (const char *)(block + 8 * stride);
    for (size_t line = 0; line < stride; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
}

/// One group's eight rows of a 32-value format over every block, into y[0…7].
LM_VNNI LM_INLINE static void group_q8(int format, const uint8_t *group, size_t blocks, const int8_t *qx, const float *scales,
                                       const float *sums, const int32_t *code_sums, float *y) {
    const size_t stride = group_block_bytes(format), codes = codes_offset(format);
    const int offset = code_offset(format);
    const __m256i low4 = _mm256_set1_epi8(0x0F), sixteen = _mm256_set1_epi8(16);
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *block = group + b * stride;
        const int8_t *xs = qx + 32 * b;
        prefetch_ahead(block, stride);
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
        if (offset) dots = _mm256_sub_epi32(dots, _mm256_set1_epi32(offset * code_sums[2 * b] + offset * code_sums[2 * b + 1]));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots), _mm256_mul_ps(eight_halves(block), _mm256_set1_ps(scales[b])), acc);
        if (codes == 32) acc = _mm256_fmadd_ps(eight_halves(block + 16), _mm256_set1_ps(sums[b]), acc);
    }
    _mm256_storeu_ps(y, acc);
}

/// One group's eight rows of Q4_K over every super-block, into y[0…7].
LM_VNNI LM_INLINE static void group_q4_k(const uint8_t *group, size_t blocks, const int8_t *qx, const float *scales, const float *sums,
                                         float *y) {
    const size_t stride = group_block_bytes(LM_Q4_K);
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps(), minimums = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *block = group + b * stride;
        prefetch_ahead(block, stride);
        __m256 d = eight_halves(block), dmin = eight_halves(block + 16);
        for (int p = 0; p < 4; p++) {
            const int8_t *xs = qx + 256 * b + 64 * p;
            __m256i low = _mm256_setzero_si256(), high = _mm256_setzero_si256();
            for (int k = 0; k < 8; k++) {
                __m256i packed = _mm256_loadu_si256((const __m256i *)(block + 160 + 256 * p + 32 * k));
                low = _mm256_dpbusd_epi32(low, _mm256_and_si256(packed, low4), four_codes(xs + 4 * k));
                high = _mm256_dpbusd_epi32(high, _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4), four_codes(xs + 32 + 4 * k));
            }
            __m256i dots[2] = {low, high};
            for (int s = 0; s < 2; s++) {
                int j = 2 * p + s;
                size_t x_block = 8 * b + (size_t)j;
                __m256 scale = _mm256_mul_ps(_mm256_mul_ps(d, eight_bytes(block + 32 + 8 * j)), _mm256_set1_ps(scales[x_block]));
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots[s]), scale, acc);
                minimums = _mm256_fmadd_ps(_mm256_mul_ps(dmin, eight_bytes(block + 96 + 8 * j)), _mm256_set1_ps(sums[x_block]), minimums);
            }
        }
    }
    _mm256_storeu_ps(y, _mm256_sub_ps(acc, minimums));
}

/// One group's eight rows of Q6_K over every super-block, into y[0…7]. `code_sums` holds Σ xq
/// per 16 activations (Q6_K's scale blocks).
LM_VNNI LM_INLINE static void group_q6_k(const uint8_t *group, size_t blocks, const int8_t *qx, const float *scales,
                                         const int32_t *code_sums, float *y) {
    const size_t stride = group_block_bytes(LM_Q6_K);
    const __m256i low4 = _mm256_set1_epi8(0x0F), two = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *block = group + b * stride;
        prefetch_ahead(block, stride);
        __m256 d = eight_halves(block);
        for (int h = 0; h < 2; h++) {
            const int8_t *xs = qx + 256 * b + 128 * h;
            // dots[q][s]: values 32q + 16s … of the half, one scale each.
            __m256i dots[4][2];
            for (int q = 0; q < 4; q++) dots[q][0] = dots[q][1] = _mm256_setzero_si256();
            for (int k = 0; k < 8; k++) {
                const uint8_t *chunks = block + 144 + 768 * h + 96 * k;
                __m256i a = _mm256_loadu_si256((const __m256i *)chunks), c = _mm256_loadu_si256((const __m256i *)(chunks + 32));
                __m256i bits = _mm256_loadu_si256((const __m256i *)(chunks + 64));
                __m256i v[4] = {
                    _mm256_or_si256(_mm256_and_si256(a, low4), _mm256_slli_epi16(_mm256_and_si256(bits, two), 4)),
                    _mm256_or_si256(_mm256_and_si256(c, low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bits, 2), two), 4)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bits, 4), two), 4)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 4), low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bits, 6), two), 4)),
                };
                int s = k / 4;
                for (int q = 0; q < 4; q++) dots[q][s] = _mm256_dpbusd_epi32(dots[q][s], v[q], four_codes(xs + 32 * q + 4 * k));
            }
            for (int q = 0; q < 4; q++) {
                size_t x_block = 8 * b + 4 * (size_t)h + (size_t)q;
                __m256 dx = _mm256_mul_ps(d, _mm256_set1_ps(scales[x_block]));
                for (int s = 0; s < 2; s++) {
                    __m256i centred = _mm256_sub_epi32(dots[q][s], _mm256_set1_epi32(32 * code_sums[2 * x_block + (size_t)s]));
                    __m256 scale = _mm256_mul_ps(dx, eight_signed_bytes(block + 16 + 8 * (8 * h + 2 * q + s)));
                    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(centred), scale, acc);
                }
            }
        }
    }
    _mm256_storeu_ps(y, acc);
}

/// Groups `g0..<g1` into `out` (group g's rows at out + 8·(g − g0)), specialised per format.
LM_VNNI static void groups(int format, const uint8_t *packed, size_t g0, size_t g1, size_t blocks, const int8_t *qx,
                           const float *scales, const float *sums, const int32_t *code_sums, float *out) {
    size_t stride = blocks * group_block_bytes(format);
    for (size_t g = g0; g < g1; g++) {
        const uint8_t *group = packed + g * stride;
        float *rows = out + LM_GROUP_ROWS * (g - g0);
        switch (format) {
        case LM_Q8_0: group_q8(LM_Q8_0, group, blocks, qx, scales, sums, code_sums, rows); break;
        case LM_Q4_0: group_q8(LM_Q4_0, group, blocks, qx, scales, sums, code_sums, rows); break;
        case LM_Q4_1: group_q8(LM_Q4_1, group, blocks, qx, scales, sums, code_sums, rows); break;
        case LM_Q5_0: group_q8(LM_Q5_0, group, blocks, qx, scales, sums, code_sums, rows); break;
        case LM_Q5_1: group_q8(LM_Q5_1, group, blocks, qx, scales, sums, code_sums, rows); break;
        case LM_Q4_K: group_q4_k(group, blocks, qx, scales, sums, rows); break;
        case LM_Q6_K: group_q6_k(group, blocks, qx, scales, code_sums, rows); break;
        }
    }
}

void lm_interleaved_rows_q8(int format, const void *packed, const void *w, size_t row_bytes, size_t rows, const int8_t *qx,
                            const float *scales, const float *sums, float *y, size_t row_start, size_t row_end, size_t columns) {
    size_t blocks = columns / lm_quantized_block_values(format), whole = rows / LM_GROUP_ROWS * LM_GROUP_ROWS;
    // The rows past the last whole group: the format's own layout.
    if (row_end > whole) {
        size_t from = row_start > whole ? row_start : whole;
        if (lm_is_super_block(format)) rows_q8_decoded(format, (const uint8_t *)w, row_bytes, qx, scales, y, from, row_end, columns);
        else lm_quantized_rows_q8(format, w, row_bytes, qx, scales, sums, y, from, row_end, columns);
        if (row_start >= whole) return;
        row_end = whole;
    }
    int32_t code_sums[columns / 16];  // Σ xq per 16 activations
    for (size_t c = 0; c < columns / 16; c++) {
        int32_t sum = 0;
        for (int j = 0; j < 16; j++) sum += qx[16 * c + j];
        code_sums[c] = sum;
    }
    // A group the range covers only in part is computed whole into `partial` and its rows in the
    // range copied: every row is then the same bits however the rows are split among threads.
    size_t g0 = row_start / LM_GROUP_ROWS, g1 = (row_end + LM_GROUP_ROWS - 1) / LM_GROUP_ROWS;
    float partial[LM_GROUP_ROWS];
    const uint8_t *p = (const uint8_t *)packed;
    if (row_start % LM_GROUP_ROWS) {
        groups(format, p, g0, g0 + 1, blocks, qx, scales, sums, code_sums, partial);
        size_t end = (g0 + 1) * LM_GROUP_ROWS < row_end ? (g0 + 1) * LM_GROUP_ROWS : row_end;
        for (size_t r = row_start; r < end; r++) y[r] = partial[r - g0 * LM_GROUP_ROWS];
        g0++;
    }
    if (g0 < g1 && row_end % LM_GROUP_ROWS) {
        groups(format, p, g1 - 1, g1, blocks, qx, scales, sums, code_sums, partial);
        for (size_t r = (g1 - 1) * LM_GROUP_ROWS; r < row_end; r++) y[r] = partial[r - (g1 - 1) * LM_GROUP_ROWS];
        g1--;
    }
    if (g0 < g1) groups(format, p, g0, g1, blocks, qx, scales, sums, code_sums, y + LM_GROUP_ROWS * g0);
}

/// Most activation rows one pass over a group's blocks takes: their accumulators and the group's
/// codes fit the 32 vector registers.
#define LM_GEMM_ROWS 8

/// `count` (≤ LM_GEMM_ROWS) activation rows times one group's eight weight rows of a 32-value
/// format: each chunk of codes is loaded (and unpacked) once for all the activation rows. Row i's
/// codes at qx + i·columns, its scales and sums at + i·blocks, its Σ xq per 16 at code_sums +
/// i·2·blocks; its outputs at y + i·ldy (added to with `accumulate`).
LM_VNNI LM_INLINE static void group_gemm_q8(int format, int count, const uint8_t *group, size_t blocks, const int8_t *qx,
                                            const float *scales, const float *sums, const int32_t *code_sums, float *y, size_t ldy,
                                            int accumulate) {
    const size_t stride = group_block_bytes(format), codes = codes_offset(format), columns = 32 * blocks;
    const int offset = code_offset(format);
    const __m256i low4 = _mm256_set1_epi8(0x0F), sixteen = _mm256_set1_epi8(16);
    __m256 acc[LM_GEMM_ROWS];
    for (int i = 0; i < count; i++) acc[i] = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *block = group + b * stride;
        __m256i dots[LM_GEMM_ROWS];
        for (int i = 0; i < count; i++) dots[i] = _mm256_setzero_si256();
        if (format == LM_Q8_0) {
            for (int k = 0; k < 8; k++) {
                __m256i chunk = _mm256_loadu_si256((const __m256i *)(block + codes + 32 * k));
                for (int i = 0; i < count; i++) dots[i] = _mm256_dpbusd_epi32(dots[i], chunk, four_codes(qx + i * columns + 32 * b + 4 * k));
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
                for (int i = 0; i < count; i++) {
                    const int8_t *xs = qx + i * columns + 32 * b;
                    dots[i] = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(dots[i], low, four_codes(xs + 4 * k)), high, four_codes(xs + 16 + 4 * k));
                }
            }
        }
        __m256 d = eight_halves(block), m = codes == 32 ? eight_halves(block + 16) : _mm256_setzero_ps();
        for (int i = 0; i < count; i++) {
            __m256i centred = dots[i];
            const int32_t *cs = code_sums + i * 2 * blocks;
            if (offset) centred = _mm256_sub_epi32(centred, _mm256_set1_epi32(offset * (cs[2 * b] + cs[2 * b + 1])));
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(centred), _mm256_mul_ps(d, _mm256_set1_ps(scales[i * blocks + b])), acc[i]);
            if (codes == 32) acc[i] = _mm256_fmadd_ps(m, _mm256_set1_ps(sums[i * blocks + b]), acc[i]);
        }
    }
    for (int i = 0; i < count; i++) {
        float *out = y + i * ldy;
        _mm256_storeu_ps(out, accumulate ? _mm256_add_ps(_mm256_loadu_ps(out), acc[i]) : acc[i]);
    }
}

/// Activation rows a pass for Q4_K (its per-pass sums need more registers), and for Q6_K (whose
/// codes are unpacked once a pass, its rows' sums kept on the stack).
#define LM_GEMM_Q4_K_ROWS 4
#define LM_GEMM_Q6_K_ROWS 256

/// group_q4_k for `count` (≤ LM_GEMM_Q4_K_ROWS) activation rows at once, each row's operations in
/// group_q4_k's order (so the same bits).
LM_VNNI LM_INLINE static void group_gemm_q4_k(int count, const uint8_t *group, size_t blocks, const int8_t *qx, const float *scales,
                                              const float *sums, float *y, size_t ldy, int accumulate) {
    const size_t stride = group_block_bytes(LM_Q4_K), columns = 256 * blocks;
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    __m256 acc[LM_GEMM_Q4_K_ROWS], minimums[LM_GEMM_Q4_K_ROWS];
    for (int i = 0; i < count; i++) acc[i] = minimums[i] = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *block = group + b * stride;
        __m256 d = eight_halves(block), dmin = eight_halves(block + 16);
        for (int p = 0; p < 4; p++) {
            __m256i low[LM_GEMM_Q4_K_ROWS], high[LM_GEMM_Q4_K_ROWS];
            for (int i = 0; i < count; i++) low[i] = high[i] = _mm256_setzero_si256();
            for (int k = 0; k < 8; k++) {
                __m256i packed = _mm256_loadu_si256((const __m256i *)(block + 160 + 256 * p + 32 * k));
                __m256i lows = _mm256_and_si256(packed, low4), highs = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4);
                for (int i = 0; i < count; i++) {
                    const int8_t *xs = qx + i * columns + 256 * b + 64 * p;
                    low[i] = _mm256_dpbusd_epi32(low[i], lows, four_codes(xs + 4 * k));
                    high[i] = _mm256_dpbusd_epi32(high[i], highs, four_codes(xs + 32 + 4 * k));
                }
            }
            for (int s = 0; s < 2; s++) {
                int j = 2 * p + s;
                __m256 ds = _mm256_mul_ps(d, eight_bytes(block + 32 + 8 * j)), ms = _mm256_mul_ps(dmin, eight_bytes(block + 96 + 8 * j));
                for (int i = 0; i < count; i++) {
                    size_t x_block = (size_t)i * 8 * blocks + 8 * b + (size_t)j;
                    acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s ? high[i] : low[i]), _mm256_mul_ps(ds, _mm256_set1_ps(scales[x_block])), acc[i]);
                    minimums[i] = _mm256_fmadd_ps(ms, _mm256_set1_ps(sums[x_block]), minimums[i]);
                }
            }
        }
    }
    for (int i = 0; i < count; i++) {
        float *out = y + i * ldy;
        __m256 result = _mm256_sub_ps(acc[i], minimums[i]);
        _mm256_storeu_ps(out, accumulate ? _mm256_add_ps(_mm256_loadu_ps(out), result) : result);
    }
}

/// group_q6_k for all `batch` activation rows: each half super-block's codes unpacked once into
/// `codes` (32 vectors, L1) for every row, since the unpacking costs more than the products; each
/// row's operations in group_q6_k's order (so the same bits). `acc` holds 8 floats per row.
LM_VNNI LM_INLINE static void group_gemm_q6_k(size_t batch, const uint8_t *group, size_t blocks, const int8_t *qx, const float *scales,
                                              const int32_t *code_sums, float *y, size_t ldy, int accumulate, __m256 *acc) {
    const size_t stride = group_block_bytes(LM_Q6_K), columns = 256 * blocks;
    const __m256i low4 = _mm256_set1_epi8(0x0F), two = _mm256_set1_epi8(3);
    __m256i codes[8][4];
    for (size_t i = 0; i < batch; i++) acc[i] = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *block = group + b * stride;
        __m256 d = eight_halves(block);
        for (int h = 0; h < 2; h++) {
            for (int k = 0; k < 8; k++) {
                const uint8_t *chunks = block + 144 + 768 * h + 96 * k;
                __m256i a = _mm256_loadu_si256((const __m256i *)chunks), c = _mm256_loadu_si256((const __m256i *)(chunks + 32));
                __m256i bits = _mm256_loadu_si256((const __m256i *)(chunks + 64));
                codes[k][0] = _mm256_or_si256(_mm256_and_si256(a, low4), _mm256_slli_epi16(_mm256_and_si256(bits, two), 4));
                codes[k][1] = _mm256_or_si256(_mm256_and_si256(c, low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bits, 2), two), 4));
                codes[k][2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bits, 4), two), 4));
                codes[k][3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 4), low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bits, 6), two), 4));
            }
            for (size_t i = 0; i < batch; i++) {
                const int8_t *xs = qx + i * columns + 256 * b + 128 * h;
                __m256 sum = acc[i];
                for (int q = 0; q < 4; q++) {
                    size_t x_block = 8 * b + 4 * (size_t)h + (size_t)q;
                    __m256 dx = _mm256_mul_ps(d, _mm256_set1_ps(scales[i * 8 * blocks + x_block]));
                    for (int s = 0; s < 2; s++) {
                        __m256i dot = _mm256_setzero_si256();
                        for (int k = 4 * s; k < 4 * s + 4; k++) dot = _mm256_dpbusd_epi32(dot, codes[k][q], four_codes(xs + 32 * q + 4 * k));
                        __m256i centred = _mm256_sub_epi32(dot, _mm256_set1_epi32(32 * code_sums[i * 16 * blocks + 2 * x_block + (size_t)s]));
                        __m256 scale = _mm256_mul_ps(dx, eight_signed_bytes(block + 16 + 8 * (8 * h + 2 * q + s)));
                        sum = _mm256_fmadd_ps(_mm256_cvtepi32_ps(centred), scale, sum);
                    }
                }
                acc[i] = sum;
            }
        }
    }
    for (size_t i = 0; i < batch; i++) {
        float *out = y + i * ldy;
        _mm256_storeu_ps(out, accumulate ? _mm256_add_ps(_mm256_loadu_ps(out), acc[i]) : acc[i]);
    }
}

/// Every activation row against groups `g0..<g1`, LM_GEMM_ROWS rows a pass, specialised per
/// format and row count.
LM_VNNI static void groups_gemm(int format, const uint8_t *packed, size_t g0, size_t g1, size_t blocks, const int8_t *qx,
                                const float *scales, const float *sums, const int32_t *code_sums, size_t batch, float *y, size_t ldy,
                                int accumulate) {
    size_t stride = blocks * group_block_bytes(format), columns = lm_quantized_block_values(format) * blocks;
    __m256 q6_k_sums[LM_GEMM_Q6_K_ROWS];
    for (size_t g = g0; g < g1; g++) {
        const uint8_t *group = packed + g * stride;
        if (format == LM_Q6_K) {  // every row against the group's unpacked codes, LM_GEMM_Q6_K_ROWS at a time
            for (size_t i = 0; i < batch; i += LM_GEMM_Q6_K_ROWS) {
                size_t count = batch - i < LM_GEMM_Q6_K_ROWS ? batch - i : LM_GEMM_Q6_K_ROWS;
                group_gemm_q6_k(count, group, blocks, qx + i * columns, scales + i * (columns / 32), code_sums + i * (columns / 16),
                                y + i * ldy + LM_GROUP_ROWS * g, ldy, accumulate, q6_k_sums);
            }
            continue;
        }
        size_t pass = format == LM_Q4_K ? LM_GEMM_Q4_K_ROWS : LM_GEMM_ROWS;
        for (size_t i = 0; i < batch; i += pass) {
            int count = batch - i < pass ? (int)(batch - i) : (int)pass;
            const int8_t *q = qx + i * columns;
            const float *s = scales + i * (columns / 32), *m = sums + i * (columns / 32);
            const int32_t *c = code_sums + i * (columns / 16);
            float *out = y + i * ldy + LM_GROUP_ROWS * g;
            if (format == LM_Q4_K) {
                switch (count) {
                case 1: group_gemm_q4_k(1, group, blocks, q, s, m, out, ldy, accumulate); break;
                case 2: group_gemm_q4_k(2, group, blocks, q, s, m, out, ldy, accumulate); break;
                case 3: group_gemm_q4_k(3, group, blocks, q, s, m, out, ldy, accumulate); break;
                default: group_gemm_q4_k(4, group, blocks, q, s, m, out, ldy, accumulate); break;
                }
                continue;
            }

#define LM_GEMM_CASE(F, N) group_gemm_q8(F, N, group, blocks, q, s, m, c, out, ldy, accumulate)
#define LM_GEMM_FORMAT(F) \
            switch (count) { case 1: LM_GEMM_CASE(F, 1); break; case 2: LM_GEMM_CASE(F, 2); break; \
                             case 3: LM_GEMM_CASE(F, 3); break; case 4: LM_GEMM_CASE(F, 4); break; \
                             case 5: LM_GEMM_CASE(F, 5); break; case 6: LM_GEMM_CASE(F, 6); break; \
                             case 7: LM_GEMM_CASE(F, 7); break; default: LM_GEMM_CASE(F, 8); break; }
            switch (format) {
            case LM_Q8_0: LM_GEMM_FORMAT(LM_Q8_0) break;
            case LM_Q4_0: LM_GEMM_FORMAT(LM_Q4_0) break;
            case LM_Q4_1: LM_GEMM_FORMAT(LM_Q4_1) break;
            case LM_Q5_0: LM_GEMM_FORMAT(LM_Q5_0) break;
            case LM_Q5_1: LM_GEMM_FORMAT(LM_Q5_1) break;
            }
#undef LM_GEMM_FORMAT
#undef LM_GEMM_CASE
        }
    }
}

int lm_interleaved_gemm_available(int format) { return lm_interleaved_available(format); }

void lm_interleaved_gemm_q8(int format, const void *packed, const void *w, size_t row_bytes, size_t rows, const int8_t *qx,
                            const float *scales, const float *sums, const int32_t *code_sums, size_t batch, float *y, size_t ldy,
                            size_t group_start, size_t group_end, size_t columns, int accumulate) {
    size_t blocks = columns / lm_quantized_block_values(format), whole = rows / LM_GROUP_ROWS * LM_GROUP_ROWS;
    groups_gemm(format, (const uint8_t *)packed, group_start, group_end, blocks, qx, scales, sums, code_sums, batch, y, ldy, accumulate);
    if (group_end * LM_GROUP_ROWS != whole || rows == whole) return;
    // The rows past the last whole group, one activation row at a time on the format's own layout.
    float tail[LM_GROUP_ROWS];
    const uint8_t *last = (const uint8_t *)w + whole * row_bytes;
    for (size_t i = 0; i < batch; i++) {
        const int8_t *codes = qx + i * columns;
        const float *s = scales + i * (columns / 32), *m = sums + i * (columns / 32);
        if (lm_is_super_block(format)) rows_q8_decoded(format, last, row_bytes, codes, s, tail, 0, rows - whole, columns);
        else lm_quantized_rows_q8(format, last, row_bytes, codes, s, m, tail, 0, rows - whole, columns);
        for (size_t r = whole; r < rows; r++) {
            float *out = y + i * ldy + r;
            *out = accumulate ? *out + tail[r - whole] : tail[r - whole];
        }
    }
}
#else
int lm_interleaved_available(int format) { (void)format; return 0; }

int lm_interleaved_gemm_available(int format) { (void)format; return 0; }

void lm_interleaved_gemm_q8(int format, const void *packed, const void *w, size_t row_bytes, size_t rows, const int8_t *qx,
                            const float *scales, const float *sums, const int32_t *code_sums, size_t batch, float *y, size_t ldy,
                            size_t group_start, size_t group_end, size_t columns, int accumulate) {
    (void)format; (void)packed; (void)w; (void)row_bytes; (void)rows; (void)qx; (void)scales; (void)sums; (void)code_sums;
    (void)batch; (void)y; (void)ldy; (void)group_start; (void)group_end; (void)columns; (void)accumulate;
}

void lm_interleaved_rows_q8(int format, const void *packed, const void *w, size_t row_bytes, size_t rows, const int8_t *qx,
                            const float *scales, const float *sums, float *y, size_t row_start, size_t row_end, size_t columns) {
    (void)packed; (void)rows;
    if (lm_is_super_block(format)) rows_q8_decoded(format, (const uint8_t *)w, row_bytes, qx, scales, y, row_start, row_end, columns);
    else lm_quantized_rows_q8(format, w, row_bytes, qx, scales, sums, y, row_start, row_end, columns);
}
#endif
