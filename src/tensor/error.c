/* Per-thread error messages (see ERRORS in nabla/core.h). */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char last_msg[4096];
static _Thread_local nb_status last_status = NB_OK;

const char *nb_last_error(void) { return last_msg; }
nb_status nb_last_status(void) { return last_status; }

void nb_clear_error(void) {
    last_msg[0] = '\0';
    last_status = NB_OK;
}

static nb_status set_error_v(nb_status status, const char *fmt, va_list ap) {
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    last_status = status;
    return status;
}

nb_status nbi_error(nb_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_error_v(status, fmt, ap);
    va_end(ap);
    return status;
}

nb_status nb_set_error(nb_status status, const char *fmt, ...) {
    if (!fmt) return nbi_error(NB_ERR_ARG, "set_error: fmt is NULL");
    if (status >= NB_OK)
        return nbi_error(NB_ERR_ARG, "set_error: expected a negative nb_status (an error), but got %d", (int)status);
    va_list ap;
    va_start(ap, fmt);
    set_error_v(status, fmt, ap);
    va_end(ap);
    return status;
}

nb_status nbi_null_arg(const char *op, const char *arg) {
    /* A NULL tensor is usually the failed result of an earlier op: keep that
     * op's message, which says what really went wrong. */
    if (last_status != NB_OK && last_msg[0]) return last_status;
    return nbi_error(NB_ERR_ARG, "%s: argument '%s' is NULL", op, arg);
}

bool nbi_check_tensor(const char *op, const char *arg, const nb_tensor *t) {
    if (!t) {
        nbi_null_arg(op, arg);
        return false;
    }
    return true;
}

bool nbi_check_float(const char *op, const char *arg, const nb_tensor *t) {
    if (!nbi_check_tensor(op, arg, t)) return false;
    if (t->dtype != NB_F32 && t->dtype != NB_F64) {
        nbi_error(NB_ERR_DTYPE, "%s: expected '%s' to be float32 or float64, but got %s", op, arg,
                  nb_dtype_name(t->dtype));
        return false;
    }
    return true;
}

bool nbi_check_same_dtype(const char *op, const nb_tensor *a, const nb_tensor *b) {
    if (a->dtype != b->dtype) {
        nbi_error(NB_ERR_DTYPE, "%s: expected both operands to have the same dtype, but got %s and %s", op,
                  nb_dtype_name(a->dtype), nb_dtype_name(b->dtype));
        return false;
    }
    return true;
}

size_t nb_dtype_size(nb_dtype dtype) {
    switch (dtype) {
    case NB_F32: return 4;
    case NB_F64: return 8;
    case NB_I64: return 8;
    }
    return 0;
}

const char *nb_dtype_name(nb_dtype dtype) {
    switch (dtype) {
    case NB_F32: return "float32";
    case NB_F64: return "float64";
    case NB_I64: return "int64";
    }
    return "unknown";
}
