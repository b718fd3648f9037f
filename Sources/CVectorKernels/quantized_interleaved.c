// The decode and prompt products with 8-bit activations over blocks of eight rows stored side by
// side ("interleaved"): one 32-byte load holds four codes of each of the eight rows, and one
// integer dot product (vpdpbusd on AVX-512 VNNI; vpmaddubsw + vpmaddwd on AVX2) multiplies them by
// the same four activation codes and adds the products into eight row sums at once. The
// block-at-a-time loop of quantized_matvec_q8.c spends ~10 instructions per row and block (sign
// tricks, vpmaddubsw, vpmaddwd, a conversion, a scale, an FMA) and reads a Q8_0 head at 9 GB/s;
// here the scales of eight rows are one load and there are no horizontal sums, and on VNNI the
// eight rows of a block cost ~13 instructions in all (the head streams at 26 GB/s). The K-quants,
// which have no 8-bit-activation loop of their own, get one here. The kernels are written once
// (quantized_interleaved_kernels.h) and compiled per path.
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
// codes (on VNNI; the AVX2 path unbiases them), 8 for Q4_0, 16 for Q5_0, 32 for Q6_K, 0 where a minimum is added (Q4_1, Q5_1; Q4_K
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

/// The best path this CPU runs (LM_INTERLEAVED_*), found once.
static int machine_path(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        int vnni = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
                   __builtin_cpu_supports("avx512vnni");
        cached = !lm_quantized_available() ? LM_INTERLEAVED_NONE : vnni ? LM_INTERLEAVED_AVX512_VNNI : LM_INTERLEAVED_AVX2;
    }
    return cached;
}

/// The path taken: the machine's unless lm_interleaved_use_path chose a lesser one.
static int chosen_path = -1;

int lm_interleaved_path(void) { return chosen_path < 0 ? machine_path() : chosen_path; }

int lm_interleaved_use_path(int path) {
    if (path < LM_INTERLEAVED_NONE || path > machine_path()) return 0;
    chosen_path = path;
    return 1;
}

int lm_interleaved_available(int format) { return lm_interleaved_path() != LM_INTERLEAVED_NONE && interleavable(format); }

/// Four activation codes, read as one 32-bit lane and repeated over eight.
LM_AVX2 LM_INLINE static __m256i four_codes(const int8_t *xq) {
    int32_t four;
    memcpy(&four, xq, 4);
    return _mm256_set1_epi32(four);
}

/// Eight halves → eight floats.
LM_AVX2 LM_INLINE static __m256 eight_halves(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

/// Eight unsigned (or signed) bytes → eight floats.
LM_AVX2 LM_INLINE static __m256 eight_bytes(const uint8_t *p) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p))); }
LM_AVX2 LM_INLINE static __m256 eight_signed_bytes(const uint8_t *p) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p))); }

/// Group k (0…7) of a Q6_K half super-block's three chunks at `chunks`, unpacked to the codes
/// 0…63 of its four runs of 32 values (low nibbles of the two nibble chunks, high nibbles, each
/// with its two high bits from the bit chunk).
LM_AVX2 LM_INLINE static void unpack_q6_k(const uint8_t *chunks, __m256i v[4]) {
    const __m256i low4 = _mm256_set1_epi8(0x0F), two = _mm256_set1_epi8(3);
    __m256i a = _mm256_loadu_si256((const __m256i *)chunks), c = _mm256_loadu_si256((const __m256i *)(chunks + 32));
    __m256i bits = _mm256_loadu_si256((const __m256i *)(chunks + 64));
    v[0] = _mm256_or_si256(_mm256_and_si256(a, low4), _mm256_slli_epi16(_mm256_and_si256(bits, two), 4));
    v[1] = _mm256_or_si256(_mm256_and_si256(c, low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bits, 2), two), 4));
    v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a, 4), low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bits, 4), two), 4));
    v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(c, 4), low4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bits, 6), two), 4));
}

/// Prefetches the group block 8 blocks ahead (the stream of groups is contiguous).
LM_AVX2 LM_INLINE static void prefetch_ahead(const uint8_t *block, size_t stride) {
    const char *ahead = (const char *)(block + 8 * stride);
    for (size_t line = 0; line < stride; line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
}

// The AVX-512 VNNI path: vpdpbusd multiplies four unsigned codes by four signed activation codes
// and adds the four products into a 32-bit lane, one instruction for 32 bytes of codes.
#define LM_PATH(name) name##_vnni
#define LM_PATH_TARGET LM_VNNI
#define LM_PATH_Q8_0_BIAS 128
#define LM_PATH_GEMM_ROWS 8
#define LM_PATH_GEMM_Q4_K_ROWS 4
LM_VNNI LM_INLINE static __m256i dot_codes_vnni(__m256i acc, __m256i codes, __m256i x) { return _mm256_dpbusd_epi32(acc, codes, x); }
LM_VNNI LM_INLINE static __m256i dot_q8_0_vnni(__m256i acc, __m256i biased, __m256i x) { return _mm256_dpbusd_epi32(acc, biased, x); }
LM_VNNI LM_INLINE static __m256i add_fifth_bits_vnni(__m256i codes, uint32_t mask) {
    return _mm256_mask_add_epi8(codes, mask, codes, _mm256_set1_epi8(16));
}
LM_VNNI LM_INLINE static __m256i partial_add_vnni(__m256i partial, __m256i codes, __m256i x) { return _mm256_dpbusd_epi32(partial, codes, x); }
LM_VNNI LM_INLINE static __m256i partial_sums_vnni(__m256i partial) { return partial; }
#include "quantized_interleaved_kernels.h"
#undef LM_PATH
#undef LM_PATH_TARGET
#undef LM_PATH_Q8_0_BIAS
#undef LM_PATH_GEMM_ROWS
#undef LM_PATH_GEMM_Q4_K_ROWS

// The AVX2 path: vpmaddubsw multiplies unsigned by signed bytes and adds pairs into 16 bits,
// vpmaddwd adds those pairs into 32 bits. The 16-bit pair sums cannot saturate for codes up to 63
// (2·63·127 < 2¹⁵), but Q8_0's biased codes would (2·255·127): its codes are unbiased and the
// signs moved onto the activations, |q| · sign(q)·x, as ggml does (|−128| = 128 still fits).
#define LM_PATH(name) name##_avx2
#define LM_PATH_TARGET LM_AVX2
#define LM_PATH_Q8_0_BIAS 0
#define LM_PATH_GEMM_ROWS 4
#define LM_PATH_GEMM_Q4_K_ROWS 2
LM_AVX2 LM_INLINE static __m256i dot_codes_avx2(__m256i acc, __m256i codes, __m256i x) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(codes, x), _mm256_set1_epi16(1)));
}
LM_AVX2 LM_INLINE static __m256i dot_q8_0_avx2(__m256i acc, __m256i biased, __m256i x) {
    __m256i q = _mm256_xor_si256(biased, _mm256_set1_epi8((char)0x80));
    return dot_codes_avx2(acc, _mm256_abs_epi8(q), _mm256_sign_epi8(x, q));
}
LM_AVX2 LM_INLINE static __m256i add_fifth_bits_avx2(__m256i codes, uint32_t mask) {
    return _mm256_add_epi8(codes, lm_fifth_bits((const uint8_t *)&mask));
}
LM_AVX2 LM_INLINE static __m256i partial_add_avx2(__m256i partial, __m256i codes, __m256i x) {
    return _mm256_add_epi16(partial, _mm256_maddubs_epi16(codes, x));
}
LM_AVX2 LM_INLINE static __m256i partial_sums_avx2(__m256i partial) { return _mm256_madd_epi16(partial, _mm256_set1_epi16(1)); }
#include "quantized_interleaved_kernels.h"
#undef LM_PATH
#undef LM_PATH_TARGET
#undef LM_PATH_Q8_0_BIAS
#undef LM_PATH_GEMM_ROWS
#undef LM_PATH_GEMM_Q4_K_ROWS

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
    void (*groups)(int, const uint8_t *, size_t, size_t, size_t, const int8_t *, const float *, const float *, const int32_t *,
                   float *) = lm_interleaved_path() == LM_INTERLEAVED_AVX512_VNNI ? groups_vnni : groups_avx2;
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

int lm_interleaved_gemm_available(int format) { return lm_interleaved_available(format); }

void lm_interleaved_gemm_q8(int format, const void *packed, const void *w, size_t row_bytes, size_t rows, const int8_t *qx,
                            const float *scales, const float *sums, const int32_t *code_sums, size_t batch, float *y, size_t ldy,
                            size_t group_start, size_t group_end, size_t columns, int accumulate) {
    size_t blocks = columns / lm_quantized_block_values(format), whole = rows / LM_GROUP_ROWS * LM_GROUP_ROWS;
    if (lm_interleaved_path() == LM_INTERLEAVED_AVX512_VNNI)
        groups_gemm_vnni(format, (const uint8_t *)packed, group_start, group_end, blocks, qx, scales, sums, code_sums, batch, y, ldy, accumulate);
    else
        groups_gemm_avx2(format, (const uint8_t *)packed, group_start, group_end, blocks, qx, scales, sums, code_sums, batch, y, ldy, accumulate);
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
int lm_interleaved_path(void) { return LM_INTERLEAVED_NONE; }

int lm_interleaved_use_path(int path) { return path == LM_INTERLEAVED_NONE; }

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
