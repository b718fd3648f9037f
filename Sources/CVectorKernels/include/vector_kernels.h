// Hand-vectorised single-row matrix–vector products for decode (one token at a time).
//
// Why not cblas_sgemv: its row-major no-transpose kernel streams a large matrix from memory more
// slowly than a plain AVX2 loop. The figures, the method and the bench cases that keep measuring
// it (`matvec/ours` against `matvec/sgemv`) are in the README (Decode speed).
#ifndef LM_VECTOR_KERNELS_H
#define LM_VECTOR_KERNELS_H

#include <stddef.h>

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
