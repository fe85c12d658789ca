/* fuzz_conv.c: fuzzing the argument checks and kernels of Conv2d,
 * ConvTranspose2d, pooling and padding (src/nn/conv2d*.c, conv_transpose2d.c,
 * layers_conv_transpose.c, pool.c, pad.c).
 *
 * The input is decoded byte by byte (missing bytes read as 0) into one call:
 * byte 0 picks nb_conv2d, nb_max_pool2d, nb_avg_pool2d, nb_pad,
 * nb_conv_output_size or nb_conv_transpose2d (the op, or nn.ConvTranspose2d's
 * forward with or without output_size); the following bytes give small
 * shapes (each dim 0..9), dtypes, and parameters that are usually small
 * (-1..5) but from a byte >= 0xF0 one of the extremes (INT64_MAX, INT64_MIN,
 * 2^62, ...), to reach overflow.
 * Calls whose (exact, 128-bit) output size would be large are skipped, so the
 * fuzzer spends its time on validation rather than on big allocations.
 * Checks: an error leaves a message; a result has the input's rank and
 * nan-free values; backward through a result succeeds; nb_conv_output_size's
 * result matches its documented formula. */
#include "fuzz_entries.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nabla.h"

#define MAX_ELEMS ((__int128)1 << 16) /* skip calls that would touch more */

typedef struct {
    const uint8_t *p;
    size_t n, i;
} reader;

static uint8_t byte(reader *r) { return r->i < r->n ? r->p[r->i++] : 0; }
static int64_t small(reader *r, int64_t lo, int64_t hi) { return lo + byte(r) % (hi - lo + 1); }

/* A parameter: usually in [lo, hi], from bytes >= 0xF0 an extreme value. */
static int64_t param(reader *r, int64_t lo, int64_t hi) {
    static const int64_t extreme[8] = {INT64_MAX, INT64_MIN, INT64_MAX / 2, (int64_t)1 << 62,
                                       -((int64_t)1 << 62), (int64_t)1 << 32, (int64_t)1 << 31, -((int64_t)1 << 31)};
    uint8_t b = byte(r);
    if (b >= 0xF0) return extreme[b & 7];
    return lo + b % (hi - lo + 1);
}

static int fail(const char *what) {
    fprintf(stderr, "fuzz_conv: contract broken: %s (last error: %s)\n", what, nb_last_error());
    return -1;
}

static int check_error(const char *op) {
    const char *m = nb_last_error();
    if (!m || !m[0] || nb_last_status() >= 0) return fail(op);
    return 0;
}

/* Check a result and run backward through it. */
static int check_result(nb_tensor *y, int ndim, bool allow_inf) {
    if (nb_tensor_ndim(y) != ndim) return fail("result has the wrong rank");
    nb_tensor *s = nb_sum(y);
    double v = 0;
    if (!s || nb_tensor_item(s, &v) != NB_OK) return fail("cannot sum the result");
    if (isnan(v) || (!allow_inf && isinf(v))) return fail("result holds NaN or Inf from finite inputs");
    if (nb_tensor_requires_grad(s) && nb_backward(s) != NB_OK) return fail("backward failed on a valid result");
    return 0;
}

/* floor((in + pb + pe - dil * (k - 1) - 1) / s) + 1 exactly, for s >= 1. */
static __int128 out_len(__int128 in, __int128 k, __int128 s, __int128 pb, __int128 pe, __int128 dil) {
    __int128 num = in + pb + pe - dil * (k - 1) - 1;
    __int128 q = num / s;
    if (num % s != 0 && num < 0) q--;
    return q + 1;
}

/* A float tensor of the given rank and shape with fixed uniform values. */
static nb_tensor *make(reader *r, nb_dtype dt, int ndim, const int64_t *shape, bool grad) {
    nb_rng rng;
    nb_rng_seed(&rng, byte(r));
    nb_tensor *t = dt == NB_I64 ? nb_zeros(dt, ndim, shape) : nb_rand_uniform(&rng, dt, ndim, shape, -1.0, 1.0);
    if (t && grad && dt != NB_I64) nb_requires_grad_(t, true);
    return t;
}

static nb_dtype pick_dtype(reader *r) {
    uint8_t b = byte(r) % 8;
    return b < 4 ? NB_F32 : b < 7 ? NB_F64 : NB_I64;
}

/* Rank: 4 or 3 mostly (the valid ones), sometimes 2 or 5. */
static int pick_rank(reader *r) {
    static const int ranks[8] = {4, 4, 4, 3, 3, 3, 2, 5};
    return ranks[byte(r) % 8];
}

static int fuzz_conv2d(reader *r) {
    int nd = pick_rank(r);
    int64_t shape[5];
    for (int i = 0; i < nd; i++) shape[i] = small(r, 0, 6);
    int64_t O = small(r, 0, 4), Cg = small(r, 0, 4), kh = small(r, 0, 4), kw = small(r, 0, 4);
    int wnd = byte(r) % 8 == 0 ? 3 : 4;
    int64_t wshape[4] = {O, Cg, kh, kw};
    nb_dtype dt = pick_dtype(r), wdt = byte(r) % 8 == 0 ? pick_dtype(r) : dt;
    uint8_t bias_kind = byte(r) % 4; /* 0 none, 1-2 [O], 3 [O + 1] */
    bool grad = byte(r) & 1;
    nb_conv2d_params p = nb_conv2d_defaults();
    for (int d = 0; d < 2; d++) {
        p.stride[d] = param(r, -1, 3);
        p.padding[d] = param(r, -1, 3);
        p.dilation[d] = param(r, -1, 3);
    }
    p.groups = param(r, -1, 4);
    p.padding_kind = (nb_padding_kind)(byte(r) % 4);
    p.padding_mode = (nb_padding_mode)(byte(r) % 5);
    bool null_params = byte(r) == 0xFF;

    /* Skip calls whose output or padded input would be large (valid-looking arguments only). */
    if (nd >= 3 && nd <= 4) {
        const int64_t *sp = shape + nd - 2;
        __int128 work = nd == 4 ? shape[0] + 1 : 1;
        work *= (__int128)(O + 1) * (shape[nd - 3] + 1);
        for (int d = 0; d < 2; d++) {
            int64_t k = wshape[2 + d];
            bool valid_looking = p.stride[d] >= 1 && p.dilation[d] >= 1 && p.padding[d] >= 0;
            if (!valid_looking) continue;
            __int128 pad = p.padding_kind == NB_PADDING_EXPLICIT ? p.padding[d] : 0;
            if (p.padding_kind == NB_PADDING_SAME) pad = (__int128)p.dilation[d] * (k > 0 ? k - 1 : 0);
            __int128 padded = sp[d] + 2 * pad, o = out_len(sp[d], k, p.stride[d], pad, pad, p.dilation[d]);
            if (padded > MAX_ELEMS || o > MAX_ELEMS) return 0;
            work *= (padded > o ? padded : o) + 1;
            if (work > MAX_ELEMS * 64) return 0;
        }
    }
    nb_tensor *x = make(r, dt, nd, shape, grad), *w = make(r, wdt, wnd, wshape, grad);
    int64_t bshape[1] = {bias_kind == 3 ? O + 1 : O};
    nb_tensor *b = bias_kind ? make(r, dt, 1, bshape, grad) : NULL;
    if (!x || !w || (bias_kind && !b)) return fail("cannot make the operands");
    nb_clear_error();
    nb_tensor *y = nb_conv2d(x, w, b, null_params ? NULL : &p);
    if (!y) return check_error("conv2d: NULL without a message");
    if (nb_tensor_size(y, nd == 4 ? 1 : 0) != O) return fail("conv2d: result has the wrong channel count");
    return check_result(y, nd, false);
}

static int fuzz_pool(reader *r, bool is_max) {
    int nd = pick_rank(r);
    int64_t shape[5];
    for (int i = 0; i < nd; i++) shape[i] = small(r, 0, 9);
    nb_dtype dt = pick_dtype(r);
    bool grad = byte(r) & 1;
    nb_pool2d_params p = nb_pool2d_defaults(2);
    for (int d = 0; d < 2; d++) {
        p.kernel[d] = param(r, -1, 5);
        p.stride[d] = param(r, -1, 4);
        p.padding[d] = param(r, -1, 3);
        p.dilation[d] = param(r, -1, 3);
    }
    uint8_t flags = byte(r);
    p.ceil_mode = flags & 1;
    p.count_include_pad = flags & 2;
    if (nd >= 3 && nd <= 4) {
        __int128 work = 1;
        for (int i = 0; i < nd - 2; i++) work *= shape[i] + 1;
        for (int d = 0; d < 2; d++) {
            int64_t k = p.kernel[d], s = p.stride[d] ? p.stride[d] : k, dil = p.dilation[d] ? p.dilation[d] : 1;
            if (k < 1 || s < 1 || dil < 1 || p.padding[d] < 0) continue;
            __int128 o = out_len(shape[nd - 2 + d], k, s, p.padding[d], p.padding[d], dil) + (p.ceil_mode ? 1 : 0);
            if (o > MAX_ELEMS) return 0;
            if (o > 0) work *= o + 1; /* o < 1 is for the library to reject */
        }
        if (work > MAX_ELEMS) return 0;
    }
    nb_tensor *x = make(r, dt, nd, shape, grad);
    if (!x) return fail("cannot make the input");
    nb_clear_error();
    nb_tensor *y = is_max ? nb_max_pool2d(x, &p) : nb_avg_pool2d(x, &p);
    if (!y) return check_error(is_max ? "max_pool2d: NULL without a message" : "avg_pool2d: NULL without a message");
    return check_result(y, nd, is_max);
}

static int fuzz_pad(reader *r) {
    int nd = small(r, 0, 5);
    int64_t shape[5];
    for (int i = 0; i < nd; i++) shape[i] = small(r, 0, 5);
    nb_dtype dt = pick_dtype(r);
    bool grad = byte(r) & 1;
    static const int npads[8] = {2, 4, 2, 4, 0, 1, 3, 6};
    int npad = npads[byte(r) % 8];
    int64_t pad[6];
    for (int i = 0; i < 6; i++) pad[i] = param(r, -5, 5);
    nb_padding_mode mode = (nb_padding_mode)(byte(r) % 5);
    double value = (double)(int8_t)byte(r);
    /* Padded sizes: skip if large (negative sizes are for the library to reject). */
    __int128 work = 1;
    for (int i = 0; i < nd; i++) {
        __int128 len = shape[i];
        int k = nd - 1 - i; /* pad[2k], pad[2k+1] apply to dim nd-1-k */
        if (2 * k + 1 < npad) len += (__int128)pad[2 * k] + pad[2 * k + 1];
        if (len > MAX_ELEMS) return 0;
        if (len > 0) work *= len;
    }
    if (work > MAX_ELEMS) return 0;
    nb_tensor *x = make(r, dt, nd, shape, grad);
    if (!x) return fail("cannot make the input");
    nb_clear_error();
    nb_tensor *y = nb_pad(x, pad, npad, mode, value);
    if (!y) return check_error("pad: NULL without a message");
    return check_result(y, nd, false);
}

static int fuzz_output_size(reader *r) {
    int64_t in = param(r, -1, 9), k = param(r, -1, 5), s = param(r, -1, 3), pb = param(r, -1, 3),
            pe = param(r, -1, 3), dil = param(r, -1, 3);
    int64_t out = -12345;
    nb_clear_error();
    nb_status st = nb_conv_output_size(in, k, s, pb, pe, dil, &out);
    if (st != NB_OK) return check_error("conv_output_size: error without a message");
    if (in < 0 || k < 1 || s < 1 || pb < 0 || pe < 0 || dil < 1) return fail("conv_output_size: accepted invalid arguments");
    if ((__int128)out != out_len(in, k, s, pb, pe, dil) || out < 1)
        return fail("conv_output_size: result disagrees with the documented formula");
    return 0;
}

/* (in - 1) * s - 2p + d * (k - 1) + op + 1 exactly, and a bound on the
 * padded extent of the conv it is the adjoint of, (in - 1) * s + d * (k - 1) + s. */
static __int128 convt_len(__int128 in, __int128 k, __int128 s, __int128 p, __int128 op, __int128 dil, __int128 *span) {
    *span = (in - 1) * s + dil * (k - 1) + s;
    return (in - 1) * s - 2 * p + dil * (k - 1) + op + 1;
}

static int fuzz_conv_transpose2d(reader *r) {
    int nd = pick_rank(r);
    int64_t shape[5];
    for (int i = 0; i < nd; i++) shape[i] = small(r, 0, 5);
    int64_t Cin = small(r, 0, 4), Og = small(r, 0, 3), kh = small(r, 0, 4), kw = small(r, 0, 4);
    int64_t mod_out = small(r, 0, 6); /* the module's out_channels */
    int wnd = byte(r) % 8 == 0 ? 3 : 4;
    int64_t wshape[4] = {Cin, Og, kh, kw};
    nb_dtype dt = pick_dtype(r), wdt = byte(r) % 8 == 0 ? pick_dtype(r) : dt;
    uint8_t bias_kind = byte(r) % 4; /* 0 none, 1-2 [Og * groups], 3 one more */
    bool grad = byte(r) & 1;
    nb_conv_transpose2d_params p = nb_conv_transpose2d_defaults();
    for (int d = 0; d < 2; d++) {
        p.stride[d] = param(r, -1, 3);
        p.padding[d] = param(r, -1, 3);
        p.output_padding[d] = param(r, -1, 3);
        p.dilation[d] = param(r, -1, 3);
    }
    p.groups = param(r, -1, 4);
    p.padding_mode = byte(r) % 16 == 0 ? NB_PAD_REFLECT : NB_PAD_ZEROS;
    uint8_t how = byte(r) % 4; /* 0-1: the op; 2: the module's forward; 3: with output_size */
    int os_len = (int)small(r, 0, 4);
    int64_t os[4];
    for (int i = 0; i < 4; i++) os[i] = param(r, -1, 12);
    const bool module = how >= 2;
    const int64_t G = p.groups >= 1 && p.groups <= 4 ? p.groups : 1, Cout = module ? mod_out : Og * G;

    /* Skip valid-looking calls whose output or padded extent would be large
     * but representable (the library rejects what overflows int64). */
    if (nd >= 3 && nd <= 4) {
        const int64_t *sp = shape + nd - 2;
        __int128 work = (nd == 4 ? shape[0] + 1 : 1) * (__int128)(Cin + 1) * (Cout + 1);
        for (int d = 0; d < 2; d++) {
            const int64_t k = module ? (d ? kw : kh) : wshape[2 + d];
            if (p.stride[d] < 1 || p.dilation[d] < 1 || p.padding[d] < 0 || p.output_padding[d] < 0 || k < 1 ||
                sp[d] < 1)
                continue;
            __int128 span, o = convt_len(sp[d], k, p.stride[d], p.padding[d], p.output_padding[d], p.dilation[d], &span);
            if ((o > MAX_ELEMS && o <= INT64_MAX) || (span > MAX_ELEMS && span <= INT64_MAX)) return 0;
            if (o > MAX_ELEMS || span > MAX_ELEMS) continue; /* beyond int64: for the library to reject */
            work *= (span > o ? span : o) + 1;
            if (work > MAX_ELEMS * 64) return 0;
        }
    }
    nb_rng rng;
    nb_rng_seed(&rng, byte(r));
    nb_tensor *x = make(r, dt, nd, shape, grad);
    if (!x) return fail("cannot make the input");
    nb_clear_error();
    nb_tensor *y;
    if (module) {
        nb_module *m = nb_conv_transpose2d_module(Cin, mod_out, kh, kw, &p, bias_kind != 0, &rng);
        if (!m) return check_error("ConvTranspose2d: NULL without a message");
        y = how == 3 ? nb_conv_transpose2d_module_forward(m, x, os_len ? os : NULL, os_len) : nb_module_forward(m, x);
        nb_module_free(m); /* y keeps what its graph needs */
    } else {
        nb_tensor *w = make(r, wdt, wnd, wshape, grad);
        int64_t bshape[1] = {bias_kind == 3 ? Og * G + 1 : Og * G};
        nb_tensor *b = bias_kind ? make(r, dt, 1, bshape, grad) : NULL;
        if (!w || (bias_kind && !b)) return fail("cannot make the operands");
        nb_clear_error();
        y = nb_conv_transpose2d(x, w, b, &p);
    }
    if (!y) return check_error("conv_transpose2d: NULL without a message");
    if (nb_tensor_size(y, nd == 4 ? 1 : 0) != Cout) return fail("conv_transpose2d: result has the wrong channel count");
    return check_result(y, nd, false);
}

int nbf_conv_one(const uint8_t *data, size_t size) {
    reader r = {data, size, 0};
    nb_scope *scope = nb_scope_begin();
    int rc;
    switch (byte(&r) % 6) {
    case 0: rc = fuzz_conv2d(&r); break;
    case 1: rc = fuzz_pool(&r, true); break;
    case 2: rc = fuzz_pool(&r, false); break;
    case 3: rc = fuzz_pad(&r); break;
    case 4: rc = fuzz_output_size(&r); break;
    default: rc = fuzz_conv_transpose2d(&r); break;
    }
    nb_scope_end(scope);
    return rc;
}

#ifdef NBF_LIBFUZZER
#include <stdlib.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (nbf_conv_one(data, size) != 0) abort();
    return 0;
}
#endif
