// Hand-vectorised single-row matrix–vector products for decode (one token at a time).
//
// Why not cblas_sgemv: its row-major no-transpose kernel streams a large matrix from memory more
// slowly than a plain AVX2 loop. The figures, the method and the bench cases that keep measuring
// it (`matvec/ours` against `matvec/sgemv`) are in the README (Decode speed).
#ifndef LM_VECTOR_KERNELS_H
#define LM_VECTOR_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when this CPU runs the AVX2+FMA kernels (checked once at run time), else 0: callers then
/// use cblas_sgemv instead.
int lm_matvec_available(void);

/// Rows `row_start..<row_end` of `y = alpha · W · x + beta · y`, with `W` row-major, row
/// stride `ldw` floats, `columns` floats per row, one row at a time. When `beta == 0`, `y` is
/// not read. Must only be called when lm_matvec_available() is 1.
void lm_matvec_rows(const float *w, size_t ldw, const float *x, float *y,
                    size_t row_start, size_t row_end, size_t columns,
                    float alpha, float beta);

/// ggml block formats kept quantized (quantized_*.c), by ggml's type numbers: 32 values per
/// block, 256 per super-block for the K-quants.
enum { LM_Q4_0 = 2, LM_Q4_1 = 3, LM_Q5_0 = 6, LM_Q5_1 = 7, LM_Q8_0 = 8, LM_Q4_K = 12, LM_Q5_K = 13, LM_Q6_K = 14 };

/// Bytes per block of `format` (34 for Q8_0, 144 for Q4_K, …), 0 for an unknown format.
size_t lm_quantized_block_bytes(int format);

/// Values per block of `format`: 32, or 256 for a K-quant; 0 for an unknown format.
size_t lm_quantized_block_values(int format);

/// 1 when this CPU runs the AVX2+FMA+F16C quantized kernels, else 0 (the portable loop runs).
int lm_quantized_available(void);

/// Rows `row_start..<row_end` of `y = W · x` for `W` in `format` blocks, `row_bytes` per row,
/// `columns` values per row (a multiple of the block's values). The AVX2 loop when available,
/// else the portable one. Equals decoding W to Float32 and multiplying, up to the order of the
/// Float32 sums.
void lm_quantized_rows(int format, const void *w, size_t row_bytes, const float *x, float *y,
                       size_t row_start, size_t row_end, size_t columns);

/// The same product by the portable loop, whatever the CPU (tests compare the two).
void lm_quantized_rows_portable(int format, const void *w, size_t row_bytes, const float *x, float *y,
                                size_t row_start, size_t row_end, size_t columns);

/// Rows `row_start..<row_end` of `W` decoded to Float32 into `out` (row stride `ldo`), each
/// value rounded as ggml's scalar decoder rounds it.
void lm_quantized_dequantize_rows(int format, const void *w, size_t row_bytes, float *out, size_t ldo,
                                  size_t row_start, size_t row_end, size_t columns);

/// The same decoding by the portable loop, whatever the CPU.
void lm_quantized_dequantize_rows_portable(int format, const void *w, size_t row_bytes, float *out, size_t ldo,
                                           size_t row_start, size_t row_end, size_t columns);

/// Most activation rows ``lm_quantized_rows_batched`` takes in one call.
enum { LM_BATCH_MAX = 64 };

/// Rows `row_start..<row_end` of `Y = X · Wᵀ` for `batch` (1…LM_BATCH_MAX) activation rows, row
/// `b` of X at `x + b · ldx` and of Y at `y + b · ldy` (added to Y with `accumulate`): a batched
/// decode step. Each weight row is decoded once for all the activation rows. Batch-invariant:
/// `y_b[r]` is the same bits whatever the other rows, the batch size, the row range split.
void lm_quantized_rows_batched(int format, const void *w, size_t row_bytes, const float *x, size_t ldx, size_t batch,
                               float *y, size_t ldy, size_t row_start, size_t row_end, size_t columns, int accumulate);

/// Each block of 32 values of `x` as int8 codes `qx` with a scale (`scales[b]`, x ≈ scale · q)
/// and the block's exact sum (`sums[b]`): the activations of ``lm_quantized_rows_q8``.
void lm_quantize_activations(const float *x, size_t columns, int8_t *qx, float *scales, float *sums);

/// 1 when lm_quantized_rows_q8 takes `format` on this CPU (the 32-value formats, with AVX2).
int lm_quantized_q8_available(int format);

/// Rows `row_start..<row_end` of `y = W · x` with `x` quantized by lm_quantize_activations:
/// integer dot products per block (ggml's design). Only when lm_quantized_q8_available(format).
void lm_quantized_rows_q8(int format, const void *w, size_t row_bytes, const int8_t *qx, const float *scales,
                          const float *sums, float *y, size_t row_start, size_t row_end, size_t columns);

/// The instruction paths of the interleaved products: none, AVX2 (vpmaddubsw + vpmaddwd; with FMA
/// and F16C), AVX-512 VNNI (vpdpbusd; with F/BW/VL). Both give the same bits.
enum { LM_INTERLEAVED_NONE = 0, LM_INTERLEAVED_AVX2 = 1, LM_INTERLEAVED_AVX512_VNNI = 2 };

/// The path the interleaved products take: the best this CPU runs, unless lm_interleaved_use_path
/// chose a lesser one.
int lm_interleaved_path(void);

/// Takes `path` (one this CPU runs) from now on, for tests and benchmarks that compare paths on one
/// machine; 1 when taken, 0 (nothing changed) when this CPU cannot run it.
int lm_interleaved_use_path(int path);

/// 1 when ``lm_interleaved_rows_q8`` runs on `format` (a path other than none; every format but
/// Q5_K), else 0.
int lm_interleaved_available(int format);

/// Bytes of the interleaved copy of a `[rows, columns]` matrix in `format`: its whole groups of 8
/// rows (the last `rows % 8` rows are not copied; the products read them from `w`). 0 for a format
/// that has no interleaved layout.
size_t lm_interleaved_bytes(int format, size_t rows, size_t columns);

/// Groups `group_start..<group_end` (rows 8·g…8·g+7) of `w` copied into `packed` in the
/// interleaved layout of quantized_interleaved.c. Any CPU; groups can be copied by several threads.
void lm_interleave_rows(int format, const void *w, size_t row_bytes, size_t columns, size_t group_start, size_t group_end,
                        void *packed);

/// Rows `row_start..<row_end` of `y = W · x` for the `[rows, columns]` matrix `w` with `x`
/// quantized by lm_quantize_activations, read from its interleaved copy `packed`: 8 rows per
/// integer dot product. The rows past the last whole group are read from `w`. Each row is the same bits
/// however a product's rows are split into ranges. Only when lm_interleaved_available(format).
void lm_interleaved_rows_q8(int format, const void *packed, const void *w, size_t row_bytes, size_t rows, const int8_t *qx,
                            const float *scales, const float *sums, float *y, size_t row_start, size_t row_end, size_t columns);

/// Rows `0..<batch` of `x` (row stride `ldx`) quantized as lm_quantize_activations does, row i's
/// codes at `qx + i · columns`, scales and sums at `+ i · columns / 32`, and Σ codes per 16 at
/// `code_sums + i · columns / 16`: the activations of ``lm_interleaved_gemm_q8``.
void lm_quantize_activation_rows(const float *x, size_t ldx, size_t batch, size_t columns, int8_t *qx, float *scales, float *sums,
                                 int32_t *code_sums);

/// 1 when ``lm_interleaved_gemm_q8`` runs on `format` (as lm_interleaved_available).
int lm_interleaved_gemm_available(int format);

/// `Y[i, r] (+)= W[r] · x_i` for the `batch` activation rows quantized by
/// lm_quantize_activation_rows and the weight rows of groups `group_start..<group_end` (rows
/// 8·g…8·g+7; the range that ends at the last whole group also takes the rows past it), row i of Y
/// at `y + i · ldy`: a prompt's product, each chunk of codes read (and unpacked) once for up to
/// eight activation rows (four on AVX2). Row for row the bits of ``lm_interleaved_rows_q8``.
void lm_interleaved_gemm_q8(int format, const void *packed, const void *w, size_t row_bytes, size_t rows, const int8_t *qx,
                            const float *scales, const float *sums, const int32_t *code_sums, size_t batch, float *y, size_t ldy,
                            size_t group_start, size_t group_end, size_t columns, int accumulate);

/// 1 when this CPU runs the decode attention kernels below for heads of `head_dim` (AVX2+FMA;
/// a multiple of 8, at most 128), else 0.
int lm_decode_attention_available(size_t head_dim);

/// `scores[g · scores_stride + t] = alpha · q_g · k_t` for the `group` query heads sharing one
/// key/value head (`q_g` at `q + g · head_dim`) and keys `t < keys` (row stride `k_stride`):
/// each key row is read once for the whole group (decode_attention.c).
void lm_attention_scores(const float *q, size_t group, size_t head_dim, const float *k, size_t k_stride, size_t keys,
                         float alpha, float *scores, size_t scores_stride);

/// `out_g = Σ_t p[g · p_stride + t] · v_t` over `keys` value rows (row stride `v_stride`), for
/// the group's heads (`out_g` at `out + g · out_stride`): each value row read once for the group.
void lm_attention_values(const float *p, size_t p_stride, size_t group, size_t keys, const float *v, size_t v_stride,
                         size_t head_dim, float *out, size_t out_stride);

/// The tiles of the long-context attention kernels (flash_attention.c): query rows per block,
/// keys per tile, and the largest head size they take.
enum { LM_FLASH_QUERY_BLOCK = 192, LM_FLASH_KEY_BLOCK = 128, LM_FLASH_MAX_HEAD = 256 };

/// 1 when this CPU runs the flash attention blocks below for heads of `head_dim` (AVX2+FMA; a
/// multiple of 16, at most LM_FLASH_MAX_HEAD), else 0: callers then use the cblas_sgemm tiles.
int lm_flash_attention_available(size_t head_dim);

/// Floats of `work` one call of either block function needs.
size_t lm_flash_attention_workspace(void);

/// Rows `0 ..< rows` of `x` (row stride `ldx`, `d` values each, d a multiple of 8) copied to
/// `packed` (row stride `d`): the blocks read one head's keys and values contiguous, which keeps
/// a tile in L1 whatever the stride of the rows they come from (a QKV projection's is often a
/// large power of two).
void lm_flash_pack_rows(const float *x, size_t ldx, size_t rows, size_t d, float *packed);

/// `y[r · ldy + c] += packed[r · d + c]` for rows `0 ..< rows`: packed gradients back.
void lm_flash_add_rows(const float *packed, size_t rows, size_t d, float *y, size_t ldy);

/// Causal attention of one head for one block of `rows` (≤ LM_FLASH_QUERY_BLOCK) query rows:
/// query row r (at `q + r · ldq`, `d` values) sees key/value rows `0 ..< seen + r` of the
/// head's packed keys and values (`k`/`v + j · d`). Writes `out` rows (stride `ldo`) and
/// `lse[r]`, the natural log-sum-exp of row r's scaled scores. `scale` multiplies the scores
/// (1/√d for attention).
void lm_flash_forward_block(const float *q, size_t ldq, const float *k, const float *v,
                            float *out, size_t ldo, float *lse, size_t rows, size_t d, size_t seen,
                            float scale, float *work);

/// The gradients of lm_flash_forward_block for the same block: from the forward's `out`, `lse`
/// and the output gradient `dout` (stride `ldo`), adds into `dq` (stride `ldq`) and into the
/// packed `dk`, `dv` (stride `d`, rows `0 ..< seen + rows − 1`). P is recomputed from q, k and lse.
void lm_flash_backward_block(const float *q, size_t ldq, const float *k, const float *v,
                             const float *out, const float *dout, size_t ldo, const float *lse,
                             float *dq, float *dk, float *dv, size_t rows, size_t d, size_t seen,
                             float scale, float *work);

/// A spin-wait hint to the CPU (x86 `pause`): lets the sibling hyper-thread run and saves power
/// while a worker thread polls for its next task.
static inline void lm_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#ifdef __cplusplus
}
#endif

#endif
