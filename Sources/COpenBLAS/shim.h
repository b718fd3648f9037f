// CBLAS as shipped by OpenBLAS; pkg-config's cflags put the OpenBLAS flavour's include
// directory first, so this is OpenBLAS's header (with openblas_set_num_threads).
#include <cblas.h>
