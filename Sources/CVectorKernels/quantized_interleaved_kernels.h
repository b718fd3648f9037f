// The interleaved-block kernels of quantized_interleaved.c, written once and compiled once per
// path (included there twice). A path defines:
//   LM_PATH(name)           the name with the path's suffix (name_vnni, name_avx2)
//   LM_PATH_TARGET          its target attribute
//   LM_PATH(dot_codes)      acc + Σ over each four bytes of (unsigned codes 0…63) × (signed activations)
//   LM_PATH(dot_q8_0)       the same for Q8_0's codes as stored (q + 128)
//   LM_PATH_Q8_0_BIAS       what dot_q8_0 adds per activation code (128 · Σ xq removed after)
//   LM_PATH(add_fifth_bits) 16 added to the bytes whose bit is set in a 32-bit mask
//   LM_PATH(partial_add), LM_PATH(partial_sums)  dot_codes in two steps, for sums of at most 8
//                           chunks of 4-bit codes or 4 of 5-bit ones: AVX2 keeps them in 16-bit
//                           lanes (8·2·15·127 and 4·2·31·127 < 2¹⁵) and widens once at the end
//   LM_PATH_GEMM_ROWS, LM_PATH_GEMM_Q4_K_ROWS  activation rows a GEMM pass takes (accumulators and
//                           codes in the path's vector registers)
// Every sum of codes is an exact integer on each path, and the floating-point operations are the
// same in the same order, so the paths give the same bits.

/// Chunk `k` of a 4- or 5-bit group block's codes (starting at `codes`): the low nibbles (values
/// 4k… of each row) and the high ones (16 + 4k…), with the fifth bits added for Q5_0/Q5_1.
LM_PATH_TARGET LM_INLINE static void LM_PATH(nibble_chunk)(int format, const uint8_t *codes, const uint32_t *masks, int k,
                                                          __m256i *low, __m256i *high) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    __m256i packed = _mm256_loadu_si256((const __m256i *)(codes + 32 * k));
    *low = _mm256_and_si256(packed, low4);
    *high = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4);
    if (is_five_bit(format)) {
        *low = LM_PATH(add_fifth_bits)(*low, masks[2 * k]);
        *high = LM_PATH(add_fifth_bits)(*high, masks[2 * k + 1]);
    }
}

/// One group's eight rows of a 32-value format over every block, into y[0…7].
LM_PATH_TARGET LM_INLINE static void LM_PATH(group_q8)(int format, const uint8_t *group, size_t blocks, const int8_t *qx, const float *scales,
                                       const float *sums, const int32_t *code_sums, float *y) {
    const size_t stride = group_block_bytes(format), codes = codes_offset(format);
    const int offset = format == LM_Q8_0 ? LM_PATH_Q8_0_BIAS : code_offset(format);
    __m256 acc = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *block = group + b * stride;
        const int8_t *xs = qx + 32 * b;
        prefetch_ahead(block, stride);
        // Two independent sums, so the dot-product latency chains are half as long.
        __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();
        if (format == LM_Q8_0) {
            for (int k = 0; k < 8; k += 2) {
                even = LM_PATH(dot_q8_0)(even, _mm256_loadu_si256((const __m256i *)(block + codes + 32 * k)), four_codes(xs + 4 * k));
                odd = LM_PATH(dot_q8_0)(odd, _mm256_loadu_si256((const __m256i *)(block + codes + 32 * k + 32)), four_codes(xs + 4 * k + 4));
            }
        } else {
            uint32_t masks[8];
            if (is_five_bit(format)) memcpy(masks, block + codes + 128, sizeof masks);
            for (int k = 0; k < 4; k++) {
                __m256i low, high;
                LM_PATH(nibble_chunk)(format, block + codes, masks, k, &low, &high);
                even = LM_PATH(partial_add)(even, low, four_codes(xs + 4 * k));
                odd = LM_PATH(partial_add)(odd, high, four_codes(xs + 16 + 4 * k));
            }
            even = LM_PATH(partial_sums)(even);
            odd = LM_PATH(partial_sums)(odd);
        }
        __m256i dots = _mm256_add_epi32(even, odd);
        if (offset) dots = _mm256_sub_epi32(dots, _mm256_set1_epi32(offset * code_sums[2 * b] + offset * code_sums[2 * b + 1]));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots), _mm256_mul_ps(eight_halves(block), _mm256_set1_ps(scales[b])), acc);
        if (codes == 32) acc = _mm256_fmadd_ps(eight_halves(block + 16), _mm256_set1_ps(sums[b]), acc);
    }
    _mm256_storeu_ps(y, acc);
}

/// One group's eight rows of Q4_K over every super-block, into y[0…7].
LM_PATH_TARGET LM_INLINE static void LM_PATH(group_q4_k)(const uint8_t *group, size_t blocks, const int8_t *qx, const float *scales, const float *sums,
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
                low = LM_PATH(partial_add)(low, _mm256_and_si256(packed, low4), four_codes(xs + 4 * k));
                high = LM_PATH(partial_add)(high, _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4), four_codes(xs + 32 + 4 * k));
            }
            __m256i dots[2] = {LM_PATH(partial_sums)(low), LM_PATH(partial_sums)(high)};
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
LM_PATH_TARGET LM_INLINE static void LM_PATH(group_q6_k)(const uint8_t *group, size_t blocks, const int8_t *qx, const float *scales,
                                         const int32_t *code_sums, float *y) {
    const size_t stride = group_block_bytes(LM_Q6_K);
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
                __m256i v[4];
                unpack_q6_k(chunks, v);
                int s = k / 4;
                for (int q = 0; q < 4; q++) dots[q][s] = LM_PATH(dot_codes)(dots[q][s], v[q], four_codes(xs + 32 * q + 4 * k));
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
LM_PATH_TARGET static void LM_PATH(groups)(int format, const uint8_t *packed, size_t g0, size_t g1, size_t blocks, const int8_t *qx,
                           const float *scales, const float *sums, const int32_t *code_sums, float *out) {
    size_t stride = blocks * group_block_bytes(format);
    for (size_t g = g0; g < g1; g++) {
        const uint8_t *group = packed + g * stride;
        float *rows = out + LM_GROUP_ROWS * (g - g0);
        switch (format) {
        case LM_Q8_0: LM_PATH(group_q8)(LM_Q8_0, group, blocks, qx, scales, sums, code_sums, rows); break;
        case LM_Q4_0: LM_PATH(group_q8)(LM_Q4_0, group, blocks, qx, scales, sums, code_sums, rows); break;
        case LM_Q4_1: LM_PATH(group_q8)(LM_Q4_1, group, blocks, qx, scales, sums, code_sums, rows); break;
        case LM_Q5_0: LM_PATH(group_q8)(LM_Q5_0, group, blocks, qx, scales, sums, code_sums, rows); break;
        case LM_Q5_1: LM_PATH(group_q8)(LM_Q5_1, group, blocks, qx, scales, sums, code_sums, rows); break;
        case LM_Q4_K: LM_PATH(group_q4_k)(group, blocks, qx, scales, sums, rows); break;
        case LM_Q6_K: LM_PATH(group_q6_k)(group, blocks, qx, scales, code_sums, rows); break;
        }
    }
}

/// `count` (≤ LM_PATH_GEMM_ROWS) activation rows times one group's eight weight rows of a 32-value
/// format: each chunk of codes is loaded (and unpacked) once for all the activation rows. Row i's
/// codes at qx + i·columns, its scales and sums at + i·blocks, its Σ xq per 16 at code_sums +
/// i·2·blocks; its outputs at y + i·ldy (added to with `accumulate`).
LM_PATH_TARGET LM_INLINE static void LM_PATH(group_gemm_q8)(int format, int count, const uint8_t *group, size_t blocks, const int8_t *qx,
                                            const float *scales, const float *sums, const int32_t *code_sums, float *y, size_t ldy,
                                            int accumulate) {
    const size_t stride = group_block_bytes(format), codes = codes_offset(format), columns = 32 * blocks;
    const int offset = format == LM_Q8_0 ? LM_PATH_Q8_0_BIAS : code_offset(format);
    __m256 acc[LM_PATH_GEMM_ROWS];
    for (int i = 0; i < count; i++) acc[i] = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *block = group + b * stride;
        // `highs`: the 5-bit formats' high halves, summed apart (8 chunks of 5-bit codes would
        // overflow AVX2's 16-bit partial sums, 4 do not).
        __m256i dots[LM_PATH_GEMM_ROWS], highs[LM_PATH_GEMM_ROWS];
        for (int i = 0; i < count; i++) dots[i] = highs[i] = _mm256_setzero_si256();
        if (format == LM_Q8_0) {
            for (int k = 0; k < 8; k++) {
                __m256i chunk = _mm256_loadu_si256((const __m256i *)(block + codes + 32 * k));
                for (int i = 0; i < count; i++) dots[i] = LM_PATH(dot_q8_0)(dots[i], chunk, four_codes(qx + i * columns + 32 * b + 4 * k));
            }
        } else {
            uint32_t masks[8];
            if (is_five_bit(format)) memcpy(masks, block + codes + 128, sizeof masks);
            for (int k = 0; k < 4; k++) {
                __m256i low, high;
                LM_PATH(nibble_chunk)(format, block + codes, masks, k, &low, &high);
                for (int i = 0; i < count; i++) {
                    const int8_t *xs = qx + i * columns + 32 * b;
                    dots[i] = LM_PATH(partial_add)(dots[i], low, four_codes(xs + 4 * k));
                    if (is_five_bit(format)) highs[i] = LM_PATH(partial_add)(highs[i], high, four_codes(xs + 16 + 4 * k));
                    else dots[i] = LM_PATH(partial_add)(dots[i], high, four_codes(xs + 16 + 4 * k));
                }
            }
            for (int i = 0; i < count; i++) {
                dots[i] = LM_PATH(partial_sums)(dots[i]);
                if (is_five_bit(format)) dots[i] = _mm256_add_epi32(dots[i], LM_PATH(partial_sums)(highs[i]));
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

/// Activation rows a pass for Q6_K, whose codes are unpacked once a pass (its rows' sums kept on
/// the stack).
#define LM_GEMM_Q6_K_ROWS 256

/// group_q4_k for `count` (≤ LM_PATH_GEMM_Q4_K_ROWS) activation rows at once, each row's operations in
/// group_q4_k's order (so the same bits).
LM_PATH_TARGET LM_INLINE static void LM_PATH(group_gemm_q4_k)(int count, const uint8_t *group, size_t blocks, const int8_t *qx, const float *scales,
                                              const float *sums, float *y, size_t ldy, int accumulate) {
    const size_t stride = group_block_bytes(LM_Q4_K), columns = 256 * blocks;
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    __m256 acc[LM_PATH_GEMM_Q4_K_ROWS], minimums[LM_PATH_GEMM_Q4_K_ROWS];
    for (int i = 0; i < count; i++) acc[i] = minimums[i] = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *block = group + b * stride;
        __m256 d = eight_halves(block), dmin = eight_halves(block + 16);
        for (int p = 0; p < 4; p++) {
            __m256i low[LM_PATH_GEMM_Q4_K_ROWS], high[LM_PATH_GEMM_Q4_K_ROWS];
            for (int i = 0; i < count; i++) low[i] = high[i] = _mm256_setzero_si256();
            for (int k = 0; k < 8; k++) {
                __m256i packed = _mm256_loadu_si256((const __m256i *)(block + 160 + 256 * p + 32 * k));
                __m256i lows = _mm256_and_si256(packed, low4), highs = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4);
                for (int i = 0; i < count; i++) {
                    const int8_t *xs = qx + i * columns + 256 * b + 64 * p;
                    low[i] = LM_PATH(partial_add)(low[i], lows, four_codes(xs + 4 * k));
                    high[i] = LM_PATH(partial_add)(high[i], highs, four_codes(xs + 32 + 4 * k));
                }
            }
            for (int i = 0; i < count; i++) {
                low[i] = LM_PATH(partial_sums)(low[i]);
                high[i] = LM_PATH(partial_sums)(high[i]);
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
LM_PATH_TARGET LM_INLINE static void LM_PATH(group_gemm_q6_k)(size_t batch, const uint8_t *group, size_t blocks, const int8_t *qx, const float *scales,
                                              const int32_t *code_sums, float *y, size_t ldy, int accumulate, __m256 *acc) {
    const size_t stride = group_block_bytes(LM_Q6_K), columns = 256 * blocks;
    __m256i codes[8][4];
    for (size_t i = 0; i < batch; i++) acc[i] = _mm256_setzero_ps();
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *block = group + b * stride;
        __m256 d = eight_halves(block);
        for (int h = 0; h < 2; h++) {
            for (int k = 0; k < 8; k++) {
                const uint8_t *chunks = block + 144 + 768 * h + 96 * k;
                unpack_q6_k(chunks, codes[k]);
            }
            for (size_t i = 0; i < batch; i++) {
                const int8_t *xs = qx + i * columns + 256 * b + 128 * h;
                __m256 sum = acc[i];
                for (int q = 0; q < 4; q++) {
                    size_t x_block = 8 * b + 4 * (size_t)h + (size_t)q;
                    __m256 dx = _mm256_mul_ps(d, _mm256_set1_ps(scales[i * 8 * blocks + x_block]));
                    for (int s = 0; s < 2; s++) {
                        __m256i dot = _mm256_setzero_si256();
                        for (int k = 4 * s; k < 4 * s + 4; k++) dot = LM_PATH(dot_codes)(dot, codes[k][q], four_codes(xs + 32 * q + 4 * k));
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

/// Every activation row against groups `g0..<g1`, LM_PATH_GEMM_ROWS rows a pass, specialised per
/// format and row count.
LM_PATH_TARGET static void LM_PATH(groups_gemm)(int format, const uint8_t *packed, size_t g0, size_t g1, size_t blocks, const int8_t *qx,
                                const float *scales, const float *sums, const int32_t *code_sums, size_t batch, float *y, size_t ldy,
                                int accumulate) {
    size_t stride = blocks * group_block_bytes(format), columns = lm_quantized_block_values(format) * blocks;
    __m256 q6_k_sums[LM_GEMM_Q6_K_ROWS];
    for (size_t g = g0; g < g1; g++) {
        const uint8_t *group = packed + g * stride;
        if (format == LM_Q6_K) {  // every row against the group's unpacked codes, LM_GEMM_Q6_K_ROWS at a time
            for (size_t i = 0; i < batch; i += LM_GEMM_Q6_K_ROWS) {
                size_t count = batch - i < LM_GEMM_Q6_K_ROWS ? batch - i : LM_GEMM_Q6_K_ROWS;
                LM_PATH(group_gemm_q6_k)(count, group, blocks, qx + i * columns, scales + i * (columns / 32), code_sums + i * (columns / 16),
                                y + i * ldy + LM_GROUP_ROWS * g, ldy, accumulate, q6_k_sums);
            }
            continue;
        }
        size_t pass = format == LM_Q4_K ? LM_PATH_GEMM_Q4_K_ROWS : LM_PATH_GEMM_ROWS;
        for (size_t i = 0; i < batch; i += pass) {
            int count = batch - i < pass ? (int)(batch - i) : (int)pass;
            const int8_t *q = qx + i * columns;
            const float *s = scales + i * (columns / 32), *m = sums + i * (columns / 32);
            const int32_t *c = code_sums + i * (columns / 16);
            float *out = y + i * ldy + LM_GROUP_ROWS * g;
            if (format == LM_Q4_K) {
#define LM_GEMM_Q4_K_CASE(N) \
                case N: if (N <= LM_PATH_GEMM_Q4_K_ROWS) LM_PATH(group_gemm_q4_k)(N, group, blocks, q, s, m, out, ldy, accumulate); break;
                switch (count) { LM_GEMM_Q4_K_CASE(1) LM_GEMM_Q4_K_CASE(2) LM_GEMM_Q4_K_CASE(3) LM_GEMM_Q4_K_CASE(4) }
#undef LM_GEMM_Q4_K_CASE
                continue;
            }

// One case per row count up to the path's LM_PATH_GEMM_ROWS, so each is compiled with its count a
// constant (the accumulators then live in registers).
#define LM_GEMM_CASE(F, N) \
            case N: if (N <= LM_PATH_GEMM_ROWS) LM_PATH(group_gemm_q8)(F, N, group, blocks, q, s, m, c, out, ldy, accumulate); break;
#define LM_GEMM_FORMAT(F) \
            switch (count) { LM_GEMM_CASE(F, 1) LM_GEMM_CASE(F, 2) LM_GEMM_CASE(F, 3) LM_GEMM_CASE(F, 4) \
                             LM_GEMM_CASE(F, 5) LM_GEMM_CASE(F, 6) LM_GEMM_CASE(F, 7) LM_GEMM_CASE(F, 8) }
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

