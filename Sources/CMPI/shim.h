// MPI's C API (Open MPI's mpi.h, found through pkg-config's ompi-c). Open MPI defines its
// predefined handles as macros that cast the address of a global (MPI_COMM_WORLD is
// `((MPI_Comm)&ompi_mpi_comm_world)`), which Swift cannot import; these functions return them.
#include <mpi.h>

static inline MPI_Comm lm_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm lm_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype lm_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype lm_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype lm_mpi_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Datatype lm_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op lm_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op lm_mpi_max(void) { return MPI_MAX; }
static inline MPI_Info lm_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline void *lm_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Status *lm_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Errhandler lm_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int lm_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
