/* Thread count for OpenMP kernels. */
#include "internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

nb_status nb_set_num_threads(int n) {
    if (n < 1) return nbi_error(NB_ERR_ARG, "set_num_threads: expected a positive number of threads, but got %d", n);
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    return NB_OK;
}

int nb_get_num_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
