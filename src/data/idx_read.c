/* idx_read.c: nb_idx_read, any IDX file as a tensor (values converted to
 * the dtype asked for, as torch's .to(dtype) would). */
#include "data_internal.h"

#include <stdlib.h>
#include <string.h>

/* Element i of big-endian IDX data of the given type, as double (exact for
 * every integer type) or int64. */
static double idx_get_f64(int type, const uint8_t *d, int64_t i) {
    const uint8_t *p;
    switch (type) {
    case 0x08: return d[i];
    case 0x09: return (int8_t)d[i];
    case 0x0B: p = d + 2 * i; return (int16_t)(uint16_t)(p[0] << 8 | p[1]);
    case 0x0C: p = d + 4 * i; return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
    case 0x0D: {
        p = d + 4 * i;
        uint32_t u = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    default: { /* 0x0E */
        p = d + 8 * i;
        uint64_t u = 0;
        for (int k = 0; k < 8; k++) u = u << 8 | p[k];
        double v;
        memcpy(&v, &u, 8);
        return v;
    }
    }
}

nb_tensor *nb_idx_read(const char *path, nb_dtype dtype) {
    if (dtype != NB_F32 && dtype != NB_F64 && dtype != NB_I64) {
        nbi_error(NB_ERR_DTYPE, "idx_read: expected dtype float32, float64 or int64, but got %d", (int)dtype);
        return NULL;
    }
    nbd_idx_header h;
    uint8_t *data;
    if (nbd_idx_load("idx_read", path, 0, 0, "file", NULL, &h, &data) != NB_OK) return NULL;
    nb_tensor *t = NULL;
    if (dtype == NB_I64 && (h.type == 0x0D || h.type == 0x0E)) {
        nbi_error(NB_ERR_DTYPE, "idx_read: %s: cannot convert %s data to int64: expected float32 or float64", path,
                  nbd_idx_type_name(h.type));
    } else if ((t = nbi_empty_op("idx_read", dtype, h.ndim, h.dims)) != NULL) {
        void *out = nbi_data(t);
        for (int64_t i = 0; i < h.numel; i++) {
            double v = idx_get_f64(h.type, data, i);
            if (dtype == NB_F32) ((float *)out)[i] = (float)v; /* float64 data: rounds (to inf beyond float's range) */
            else if (dtype == NB_F64) ((double *)out)[i] = v;
            else ((int64_t *)out)[i] = (int64_t)v;              /* integer types only: exact */
        }
    }
    free(data);
    return nbi_give(t);
}
