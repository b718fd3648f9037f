// Causal attention tiles for long contexts (FlashAttention-2's scheme), hand-vectorised.
//
// Why not cblas_sgemm per tile: a tile's Q·Kᵀ has an inner dimension of only the head size
// (32–64), so OpenBLAS spends as long packing operands and scaling C as multiplying, and the
// softmax then needs separate passes over the tile. The measurements are in the README
// ("Long contexts"); the bench's attention_long/ cases keep measuring both paths.
//
// The layout trick: a block of LM_FLASH_QUERY_BLOCK query rows is held transposed, so that
// the vector lanes are query rows. The scores tile is then stored as Sᵀ[key][row], and every
// per-row quantity of the online softmax (maximum, sum, correction, log-sum-exp) is a vector
// operation across lanes, with no horizontal reductions. The products take their other operand
// (K, V, dO, Q) straight from its row-major rows by broadcasting one value at a time, so nothing
// but the query block is ever packed.
//
// Scores carry scale·log2(e) (folded into the packed queries), so the exponentials are 2^x.
#include "vector_kernels.h"

#include <math.h>

int lm_flash_attention_available(size_t head_dim) {
    return lm_matvec_available() && head_dim >= 16 && head_dim % 16 == 0 && head_dim <= LM_FLASH_MAX_HEAD;
}

size_t lm_flash_attention_workspace(void) {
    // Forward: Qᵀ, Oᵀ, the scores tile, four row vectors. Backward: Qᵀ, dOᵀ, dQᵀ, Q and dO
    // rows, two tiles, three row vectors: the larger. Plus an alignment pad.
    return 5 * (size_t)LM_FLASH_MAX_HEAD * LM_FLASH_QUERY_BLOCK + 2 * (size_t)LM_FLASH_KEY_BLOCK * LM_FLASH_QUERY_BLOCK
        + 4 * (size_t)LM_FLASH_QUERY_BLOCK + 16;
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

enum { QB = LM_FLASH_QUERY_BLOCK, KB = LM_FLASH_KEY_BLOCK, LANES = 48 };
static const float LOG2E = 1.44269504088896341f, LN2 = 0.69314718055994531f;

/// 2^x lane-wise for x ≤ 0 (Cephes' exp2f: 2^n·2^f, f in [−½, ½], degree-6 polynomial,
/// relative error about 2e-7), exactly 0 below −126.5, so masked scores (−∞) give
/// probabilities of 0. Adding 1.5·2²³ + 127 rounds x to an integer n and leaves n + 127 in the
/// low mantissa bits, which one shift moves into the exponent field (n = −127 makes 0).
__attribute__((target("avx2,fma")))
static inline __m256 exp2_lanes(__m256 x) {
    const __m256 magic = _mm256_set1_ps(12582912.0f + 127.0f);
    x = _mm256_max_ps(x, _mm256_set1_ps(-127.0f));
    __m256 biased = _mm256_add_ps(x, magic);
    __m256 f = _mm256_sub_ps(x, _mm256_sub_ps(biased, magic));
    __m256 p = _mm256_set1_ps(1.535336188319500e-4f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.339887440266574e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.618437357674640e-3f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550332471162809e-2f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402264791363012e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931472028550421e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(biased), 23)));
}

/// Lane r of the result: r + first, as floats (exact for any block).
__attribute__((target("avx2,fma")))
static inline __m256 lane_indices(int first) {
    return _mm256_add_ps(_mm256_set1_ps((float)first), _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7));
}

/// Query rows `rows` of `x` (row stride `ldx`, `d` columns), times `factor`, transposed into
/// `xt[c · QB + r]`; lanes past `rows` are 0.
static void pack_transposed(const float *x, size_t ldx, size_t rows, size_t d, float factor, float *xt) {
    for (size_t c = 0; c < d; c++) {
        float *column = xt + c * QB;
        for (size_t r = 0; r < rows; r++) column[r] = factor * x[r * ldx + c];
        for (size_t r = rows; r < QB; r++) column[r] = 0;
    }
}

// The micro-kernels below hold twelve accumulators: two broadcast values by six vectors of
// lanes. With the two broadcasts and one loaded vector that is fifteen of the sixteen AVX
// registers, so neither GCC nor Clang spills inside the loops (four by three, the other
// twelve-accumulator shape, needs all sixteen, and Clang spills one).

/// T[j0 + jj][r0 …] = Σ_c B[jj][c] · Aᵀ[c][r0 …] for two keys (rows `b0`, `b1` of B) and the
/// 48 lanes `at` points at (lane stride QB), stored to the rows of `t` (lane stride QB). With
/// `top`, its 48 lanes become the maximum of themselves and the two keys' scores.
__attribute__((target("avx2,fma")))
static inline void score_micro(const float *at, const float *b0, const float *b1, size_t d, float *t, float *top) {
    __m256 s00 = _mm256_setzero_ps(), s01 = s00, s02 = s00, s03 = s00, s04 = s00, s05 = s00;
    __m256 s10 = s00, s11 = s00, s12 = s00, s13 = s00, s14 = s00, s15 = s00;
    for (size_t c = 0; c < d; c++) {
        const float *column = at + c * QB;
        __m256 w0 = _mm256_broadcast_ss(b0 + c), w1 = _mm256_broadcast_ss(b1 + c), a;
        a = _mm256_loadu_ps(column);      s00 = _mm256_fmadd_ps(w0, a, s00); s10 = _mm256_fmadd_ps(w1, a, s10);
        a = _mm256_loadu_ps(column + 8);  s01 = _mm256_fmadd_ps(w0, a, s01); s11 = _mm256_fmadd_ps(w1, a, s11);
        a = _mm256_loadu_ps(column + 16); s02 = _mm256_fmadd_ps(w0, a, s02); s12 = _mm256_fmadd_ps(w1, a, s12);
        a = _mm256_loadu_ps(column + 24); s03 = _mm256_fmadd_ps(w0, a, s03); s13 = _mm256_fmadd_ps(w1, a, s13);
        a = _mm256_loadu_ps(column + 32); s04 = _mm256_fmadd_ps(w0, a, s04); s14 = _mm256_fmadd_ps(w1, a, s14);
        a = _mm256_loadu_ps(column + 40); s05 = _mm256_fmadd_ps(w0, a, s05); s15 = _mm256_fmadd_ps(w1, a, s15);
    }
    _mm256_storeu_ps(t, s00); _mm256_storeu_ps(t + 8, s01); _mm256_storeu_ps(t + 16, s02);
    _mm256_storeu_ps(t + 24, s03); _mm256_storeu_ps(t + 32, s04); _mm256_storeu_ps(t + 40, s05);
    _mm256_storeu_ps(t + QB, s10); _mm256_storeu_ps(t + QB + 8, s11); _mm256_storeu_ps(t + QB + 16, s12);
    _mm256_storeu_ps(t + QB + 24, s13); _mm256_storeu_ps(t + QB + 32, s14); _mm256_storeu_ps(t + QB + 40, s15);
    if (top) {
        // The running maximum, while the scores are still in registers.
        _mm256_storeu_ps(top, _mm256_max_ps(_mm256_loadu_ps(top), _mm256_max_ps(s00, s10)));
        _mm256_storeu_ps(top + 8, _mm256_max_ps(_mm256_loadu_ps(top + 8), _mm256_max_ps(s01, s11)));
        _mm256_storeu_ps(top + 16, _mm256_max_ps(_mm256_loadu_ps(top + 16), _mm256_max_ps(s02, s12)));
        _mm256_storeu_ps(top + 24, _mm256_max_ps(_mm256_loadu_ps(top + 24), _mm256_max_ps(s03, s13)));
        _mm256_storeu_ps(top + 32, _mm256_max_ps(_mm256_loadu_ps(top + 32), _mm256_max_ps(s04, s14)));
        _mm256_storeu_ps(top + 40, _mm256_max_ps(_mm256_loadu_ps(top + 40), _mm256_max_ps(s05, s15)));
    }
}

/// `t[(j0 + jj) · QB + r0 …]` for the two keys j0, j0+1 of a tile of `keys` keys, rows of B
/// from `b` (row stride `ldb`); a key past `keys` repeats the last one (the caller masks it).
__attribute__((target("avx2,fma")))
static inline void score_keys(const float *at, const float *b, size_t ldb, size_t d, size_t j0, size_t keys, float *t,
                              float *top) {
    size_t second = j0 + 1 < keys ? j0 + 1 : keys - 1;
    score_micro(at, b + j0 * ldb, b + second * ldb, d, t + j0 * QB, top);
}

/// Rows `0 ..< rows` of `x` (row stride `ldx`, `d` values each) copied to `packed` (row stride
/// `d`).
__attribute__((target("avx2,fma")))
static void pack_rows(const float *x, size_t ldx, size_t rows, size_t d, float *packed) {
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < d; c += 8) _mm256_storeu_ps(packed + r * d + c, _mm256_loadu_ps(x + r * ldx + c));
    }
}

void lm_flash_pack_rows(const float *x, size_t ldx, size_t rows, size_t d, float *packed) { pack_rows(x, ldx, rows, d, packed); }

__attribute__((target("avx2,fma")))
void lm_flash_add_rows(const float *packed, size_t rows, size_t d, float *y, size_t ldy) {
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < d; c += 8) {
            float *yr = y + r * ldy + c;
            _mm256_storeu_ps(yr, _mm256_add_ps(_mm256_loadu_ps(yr), _mm256_loadu_ps(packed + r * d + c)));
        }
    }
}

/// Keys per tile for heads of `d`: a tile of K (or V) of 8 KiB, a multiple of four keys, so that
/// the query block's lanes, the scores tile and the key tile stay in L1 together.
static inline size_t tile_keys(size_t d) {
    size_t keys = 2048 / d / 4 * 4;
    return keys > KB ? KB : keys;
}

/// `work` rounded up to a 64-byte boundary, so the packed lanes load without splitting lines.
static inline float *aligned_work(float *work) {
    return (float *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
}

/// Scores of one tile into `s[j · QB + r]` for keys `key…key+keys−1`: −∞ where a query row may
/// not see the key (row r sees keys below `seen + r`) and past `keys`; `block_max[r]` becomes
/// the largest score of row r in the tile.
__attribute__((target("avx2,fma")))
static void score_tile(const float *qt, const float *k, size_t ldk, size_t d, size_t key, size_t keys, size_t lanes,
                       size_t seen, float *s, float *block_max) {
    // `k` holds the tile's rows (key `key` first); `key` places them for the mask.
    const __m256 minus_infinity = _mm256_set1_ps(-INFINITY);
    size_t padded = (keys + 1) / 2 * 2;
    int masked = key + keys > seen;  // some row of the block cannot see some key of the tile
    for (size_t r0 = 0; r0 < lanes; r0 += LANES) {
        float *top = block_max + r0;
        for (int w = 0; w < LANES / 8; w++) _mm256_storeu_ps(top + 8 * w, minus_infinity);
        if (!masked && keys % 2 == 0) {
            for (size_t j0 = 0; j0 < keys; j0 += 2) score_keys(qt + r0, k, ldk, d, j0, keys, s + r0, top);
            continue;
        }
        // The diagonal tile (or an odd one): scores, then the mask and the maximum in a pass.
        for (size_t j0 = 0; j0 < keys; j0 += 2) score_keys(qt + r0, k, ldk, d, j0, keys, s + r0, NULL);
        for (size_t j = 0; j < padded; j++) {
            // Row r sees key (key + j) when key + j < seen + r, i.e. r > key + j − seen.
            __m256 hidden = _mm256_set1_ps(j >= keys ? (float)QB : (float)((long)(key + j) - (long)seen));
            for (int w = 0; w < LANES / 8; w++) {
                float *lanes8 = s + j * QB + r0 + 8 * w;
                __m256 seen_lanes = _mm256_cmp_ps(lane_indices((int)r0 + 8 * w), hidden, _CMP_GT_OQ);
                __m256 x = _mm256_blendv_ps(minus_infinity, _mm256_loadu_ps(lanes8), seen_lanes);
                _mm256_storeu_ps(lanes8, x);
                _mm256_storeu_ps(top + 8 * w, _mm256_max_ps(_mm256_loadu_ps(top + 8 * w), x));
            }
        }
    }
}

/// Xᵀ[c][r] = correction[r] · Xᵀ[c][r] + Σ_{j<keys} B[j][c] · Tᵀ[j][r]: `xt` and `t` packed
/// (lane stride QB), `b` row-major (row stride `ldb`); `correction` may be NULL (no scaling).
/// Two columns by 48 lanes at a time, in registers across the keys.
__attribute__((target("avx2,fma")))
static void accumulate_transposed(float *xt, const float *correction, const float *b, size_t ldb, size_t d,
                                  const float *t, size_t keys, size_t lanes) {
    for (size_t r0 = 0; r0 < lanes; r0 += LANES) {
        for (size_t c0 = 0; c0 < d; c0 += 2) {
            float *x0 = xt + c0 * QB + r0, *x1 = x0 + QB;
            __m256 y00, y01, y02, y03, y04, y05, y10, y11, y12, y13, y14, y15;
            if (correction) {
                const float *f = correction + r0;
                __m256 g;
                g = _mm256_loadu_ps(f);      y00 = _mm256_mul_ps(g, _mm256_loadu_ps(x0));      y10 = _mm256_mul_ps(g, _mm256_loadu_ps(x1));
                g = _mm256_loadu_ps(f + 8);  y01 = _mm256_mul_ps(g, _mm256_loadu_ps(x0 + 8));  y11 = _mm256_mul_ps(g, _mm256_loadu_ps(x1 + 8));
                g = _mm256_loadu_ps(f + 16); y02 = _mm256_mul_ps(g, _mm256_loadu_ps(x0 + 16)); y12 = _mm256_mul_ps(g, _mm256_loadu_ps(x1 + 16));
                g = _mm256_loadu_ps(f + 24); y03 = _mm256_mul_ps(g, _mm256_loadu_ps(x0 + 24)); y13 = _mm256_mul_ps(g, _mm256_loadu_ps(x1 + 24));
                g = _mm256_loadu_ps(f + 32); y04 = _mm256_mul_ps(g, _mm256_loadu_ps(x0 + 32)); y14 = _mm256_mul_ps(g, _mm256_loadu_ps(x1 + 32));
                g = _mm256_loadu_ps(f + 40); y05 = _mm256_mul_ps(g, _mm256_loadu_ps(x0 + 40)); y15 = _mm256_mul_ps(g, _mm256_loadu_ps(x1 + 40));
            } else {
                y00 = _mm256_loadu_ps(x0); y01 = _mm256_loadu_ps(x0 + 8); y02 = _mm256_loadu_ps(x0 + 16);
                y03 = _mm256_loadu_ps(x0 + 24); y04 = _mm256_loadu_ps(x0 + 32); y05 = _mm256_loadu_ps(x0 + 40);
                y10 = _mm256_loadu_ps(x1); y11 = _mm256_loadu_ps(x1 + 8); y12 = _mm256_loadu_ps(x1 + 16);
                y13 = _mm256_loadu_ps(x1 + 24); y14 = _mm256_loadu_ps(x1 + 32); y15 = _mm256_loadu_ps(x1 + 40);
            }
            const float *tj = t + r0, *bj = b + c0;
            for (size_t j = 0; j < keys; j++, tj += QB, bj += ldb) {
                __m256 w0 = _mm256_broadcast_ss(bj), w1 = _mm256_broadcast_ss(bj + 1), a;
                a = _mm256_loadu_ps(tj);      y00 = _mm256_fmadd_ps(w0, a, y00); y10 = _mm256_fmadd_ps(w1, a, y10);
                a = _mm256_loadu_ps(tj + 8);  y01 = _mm256_fmadd_ps(w0, a, y01); y11 = _mm256_fmadd_ps(w1, a, y11);
                a = _mm256_loadu_ps(tj + 16); y02 = _mm256_fmadd_ps(w0, a, y02); y12 = _mm256_fmadd_ps(w1, a, y12);
                a = _mm256_loadu_ps(tj + 24); y03 = _mm256_fmadd_ps(w0, a, y03); y13 = _mm256_fmadd_ps(w1, a, y13);
                a = _mm256_loadu_ps(tj + 32); y04 = _mm256_fmadd_ps(w0, a, y04); y14 = _mm256_fmadd_ps(w1, a, y14);
                a = _mm256_loadu_ps(tj + 40); y05 = _mm256_fmadd_ps(w0, a, y05); y15 = _mm256_fmadd_ps(w1, a, y15);
            }
            _mm256_storeu_ps(x0, y00); _mm256_storeu_ps(x0 + 8, y01); _mm256_storeu_ps(x0 + 16, y02);
            _mm256_storeu_ps(x0 + 24, y03); _mm256_storeu_ps(x0 + 32, y04); _mm256_storeu_ps(x0 + 40, y05);
            _mm256_storeu_ps(x1, y10); _mm256_storeu_ps(x1 + 8, y11); _mm256_storeu_ps(x1 + 16, y12);
            _mm256_storeu_ps(x1 + 24, y13); _mm256_storeu_ps(x1 + 32, y14); _mm256_storeu_ps(x1 + 40, y15);
        }
    }
}

/// Y[j][c] += Σ_{r<rows} Tᵀ[j][r] · X[r][c] for keys j < keys: `t` packed (lane stride QB),
/// `x` and `y` row-major (row strides `ldx`, `ldy`), six keys by sixteen columns at a time.
__attribute__((target("avx2,fma")))
static void accumulate_rows(float *y, size_t ldy, const float *t, const float *x, size_t ldx, size_t d,
                            size_t keys, size_t rows) {
    for (size_t j0 = 0; j0 < keys; j0 += 6) {
        size_t count = keys - j0 < 6 ? keys - j0 : 6, last = count - 1;
        const float *t0 = t + j0 * QB, *t1 = t0 + (1 < last ? 1 : last) * QB, *t2 = t0 + (2 < last ? 2 : last) * QB;
        const float *t3 = t0 + (3 < last ? 3 : last) * QB, *t4 = t0 + (4 < last ? 4 : last) * QB, *t5 = t0 + last * QB;
        for (size_t c0 = 0; c0 < d; c0 += 16) {
            __m256 y00 = _mm256_setzero_ps(), y01 = y00, y10 = y00, y11 = y00, y20 = y00, y21 = y00;
            __m256 y30 = y00, y31 = y00, y40 = y00, y41 = y00, y50 = y00, y51 = y00;
            const float *xr = x + c0;
            for (size_t r = 0; r < rows; r++, xr += ldx) {
                __m256 x0 = _mm256_loadu_ps(xr), x1 = _mm256_loadu_ps(xr + 8);
                __m256 w = _mm256_broadcast_ss(t0 + r);
                y00 = _mm256_fmadd_ps(w, x0, y00); y01 = _mm256_fmadd_ps(w, x1, y01);
                w = _mm256_broadcast_ss(t1 + r);
                y10 = _mm256_fmadd_ps(w, x0, y10); y11 = _mm256_fmadd_ps(w, x1, y11);
                w = _mm256_broadcast_ss(t2 + r);
                y20 = _mm256_fmadd_ps(w, x0, y20); y21 = _mm256_fmadd_ps(w, x1, y21);
                w = _mm256_broadcast_ss(t3 + r);
                y30 = _mm256_fmadd_ps(w, x0, y30); y31 = _mm256_fmadd_ps(w, x1, y31);
                w = _mm256_broadcast_ss(t4 + r);
                y40 = _mm256_fmadd_ps(w, x0, y40); y41 = _mm256_fmadd_ps(w, x1, y41);
                w = _mm256_broadcast_ss(t5 + r);
                y50 = _mm256_fmadd_ps(w, x0, y50); y51 = _mm256_fmadd_ps(w, x1, y51);
            }
            float *yj = y + j0 * ldy + c0;
#define ADD_ROW(jj, a, b)                                                                 \
            if (jj < count) {                                                             \
                float *row = yj + (jj) * ldy;                                             \
                _mm256_storeu_ps(row, _mm256_add_ps(_mm256_loadu_ps(row), a));            \
                _mm256_storeu_ps(row + 8, _mm256_add_ps(_mm256_loadu_ps(row + 8), b));    \
            }
            ADD_ROW(0, y00, y01) ADD_ROW(1, y10, y11) ADD_ROW(2, y20, y21)
            ADD_ROW(3, y30, y31) ADD_ROW(4, y40, y41) ADD_ROW(5, y50, y51)
#undef ADD_ROW
        }
    }
}

__attribute__((target("avx2,fma")))
void lm_flash_forward_block(const float *q, size_t ldq, const float *k, const float *v,
                            float *out, size_t ldo, float *lse, size_t rows, size_t d, size_t seen,
                            float scale, float *work) {
    float *qt = aligned_work(work), *ot = qt + d * QB, *s = ot + d * QB;
    float *maxima = s + KB * QB, *sums = maxima + QB, *block_max = sums + QB, *correction = block_max + QB;
    size_t step = tile_keys(d);
    size_t lanes = (rows + LANES - 1) / LANES * LANES;  // rows rounded up to whole micro-tiles
    pack_transposed(q, ldq, rows, d, scale * LOG2E, qt);
    for (size_t i = 0; i < d * QB; i++) ot[i] = 0;
    for (size_t r = 0; r < QB; r++) { maxima[r] = -INFINITY; sums[r] = 0; }
    size_t visible = seen + rows - 1;  // keys the block's last row sees
    for (size_t key = 0; key < visible; key += step) {
        size_t keys = visible - key < step ? visible - key : step;
        score_tile(qt, k + key * d, d, d, key, keys, lanes, seen, s, block_max);
        // The online softmax, eight lanes of rows at a time: new maxima, the correction of
        // what was accumulated so far, and the tile's probabilities and their sums.
        for (size_t r = 0; r < lanes; r += 8) {
            __m256 old = _mm256_loadu_ps(maxima + r), top = _mm256_max_ps(old, _mm256_loadu_ps(block_max + r));
            _mm256_storeu_ps(correction + r, exp2_lanes(_mm256_sub_ps(old, top)));
            _mm256_storeu_ps(maxima + r, top);
        }
        for (size_t r = 0; r < lanes; r += 8) {
            __m256 top = _mm256_loadu_ps(maxima + r), total = _mm256_setzero_ps();
            for (size_t j = 0; j < keys; j++) {
                float *lanes8 = s + j * QB + r;
                __m256 p = exp2_lanes(_mm256_sub_ps(_mm256_loadu_ps(lanes8), top));
                total = _mm256_add_ps(total, p);
                _mm256_storeu_ps(lanes8, p);
            }
            _mm256_storeu_ps(sums + r, _mm256_fmadd_ps(_mm256_loadu_ps(sums + r), _mm256_loadu_ps(correction + r), total));
        }
        accumulate_transposed(ot, correction, v + key * d, d, d, s, keys, lanes);
    }
    for (size_t r = 0; r < rows; r++) {
        float inverse = 1 / sums[r];
        for (size_t c = 0; c < d; c++) out[r * ldo + c] = ot[c * QB + r] * inverse;
        lse[r] = (maxima[r] + log2f(sums[r])) * LN2;
    }
}

__attribute__((target("avx2,fma")))
void lm_flash_backward_block(const float *q, size_t ldq, const float *k, const float *v,
                             const float *out, const float *dout, size_t ldo, const float *lse,
                             float *dq, float *dk, float *dv, size_t rows, size_t d, size_t seen,
                             float scale, float *work) {
    float *qt = aligned_work(work), *dot = qt + d * QB, *dqt = dot + d * QB, *qr = dqt + d * QB, *dor = qr + d * QB;
    float *p = dor + d * QB, *ds = p + KB * QB;
    float *row_lse = ds + KB * QB, *inner = row_lse + QB, *block_max = inner + QB;
    size_t step = tile_keys(d);
    pack_rows(q, ldq, rows, d, qr);
    pack_rows(dout, ldo, rows, d, dor);
    size_t lanes = (rows + LANES - 1) / LANES * LANES;
    pack_transposed(q, ldq, rows, d, scale * LOG2E, qt);
    pack_transposed(dout, ldo, rows, d, 1, dot);
    for (size_t i = 0; i < d * QB; i++) dqt[i] = 0;
    for (size_t r = 0; r < QB; r++) {
        row_lse[r] = r < rows ? lse[r] * LOG2E : 0;
        // D = rowsum(dO ⊙ O), the softmax backward's inner product.
        float sum = 0;
        if (r < rows) for (size_t c = 0; c < d; c++) sum += dout[r * ldo + c] * out[r * ldo + c];
        inner[r] = sum;
    }
    size_t visible = seen + rows - 1;
    for (size_t key = 0; key < visible; key += step) {
        size_t keys = visible - key < step ? visible - key : step;
        const float *kp = k + key * d, *vp = v + key * d;
        // P = 2^(S' − L·log2 e), 0 where masked.
        score_tile(qt, kp, d, d, key, keys, lanes, seen, p, block_max);
        for (size_t j = 0; j < keys; j++) {
            for (size_t r = 0; r < lanes; r += 8) {
                float *pr = p + j * QB + r;
                _mm256_storeu_ps(pr, exp2_lanes(_mm256_sub_ps(_mm256_loadu_ps(pr), _mm256_loadu_ps(row_lse + r))));
            }
        }
        // dPᵀ = V·dOᵀ, then dSᵀ = Pᵀ ⊙ (dPᵀ − D) · scale in place.
        const __m256 lanes_scale = _mm256_set1_ps(scale);
        for (size_t r0 = 0; r0 < lanes; r0 += LANES) {
            for (size_t j0 = 0; j0 < keys; j0 += 2) score_keys(dot + r0, vp, d, d, j0, keys, ds + r0, NULL);
        }
        for (size_t j = 0; j < keys; j++) {
            for (size_t r = 0; r < lanes; r += 8) {
                size_t at = j * QB + r;
                __m256 g = _mm256_sub_ps(_mm256_loadu_ps(ds + at), _mm256_loadu_ps(inner + r));
                _mm256_storeu_ps(ds + at, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(p + at), g), lanes_scale));
            }
        }
        accumulate_rows(dv + key * d, d, p, dor, d, d, keys, rows);  // dV_J += Pᵀ · dO_B
        accumulate_transposed(dqt, NULL, kp, d, d, ds, keys, lanes);      // dQ_Bᵀ += (dS · K_J)ᵀ
        accumulate_rows(dk + key * d, d, ds, qr, d, d, keys, rows);   // dK_J += dSᵀ · Q_B
    }
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < d; c++) dq[r * ldq + c] += dqt[c * QB + r];
    }
}
#else
void lm_flash_pack_rows(const float *x, size_t ldx, size_t rows, size_t d, float *packed) {
    (void)x; (void)ldx; (void)rows; (void)d; (void)packed;
}
void lm_flash_add_rows(const float *packed, size_t rows, size_t d, float *y, size_t ldy) {
    (void)packed; (void)rows; (void)d; (void)y; (void)ldy;
}
void lm_flash_forward_block(const float *q, size_t ldq, const float *k, const float *v,
                            float *out, size_t ldo, float *lse, size_t rows, size_t d, size_t seen,
                            float scale, float *work) {
    (void)q; (void)ldq; (void)k; (void)v; (void)out; (void)ldo; (void)lse; (void)rows; (void)d;
    (void)seen; (void)scale; (void)work;
}
void lm_flash_backward_block(const float *q, size_t ldq, const float *k, const float *v,
                             const float *out, const float *dout, size_t ldo, const float *lse,
                             float *dq, float *dk, float *dv, size_t rows, size_t d, size_t seen,
                             float scale, float *work) {
    (void)q; (void)ldq; (void)k; (void)v; (void)out; (void)dout; (void)ldo; (void)lse; (void)dq;
    (void)dk; (void)dv; (void)rows; (void)d; (void)seen; (void)scale; (void)work;
}
#endif
