/* nb_conv_transpose2d (F.conv_transpose2d): the adjoint of Conv2d, computed
 * with Conv2d's kernels through the entry points of conv2d_algo.c, so that
 * every algorithm (reference, im2col, implicit GEMM, Winograd, depthwise)
 * serves it where its domain allows.
 *
 * The transposed conv of x by w is the input gradient of the conv whose
 * input has the transposed conv's output size and whose output has x's
 * size, by the same weight ((C_in, C_out/g, kh, kw) is Conv2d's (O, C/g, kh,
 * kw) with O = C_in): its forward is that conv's dx, its input gradient is
 * that conv's forward of dy, its weight gradient is that conv's dw with x in
 * the place of dy and dy in the place of the conv's input, and its bias
 * gradient is dy summed per channel.
 *
 * The conv has top padding `padding` and a bottom padding chosen so that its
 * usual size rule (floor((H + pt + pb - d*(k-1) - 1) / s) + 1 outputs, pt, pb
 * >= 0) gives exactly x's size, as every kernel expects (per dim; rows stand
 * for rows and columns alike; op is output_padding, p padding):
 *   op <= p:          the conv's input is the whole output, pb = p - op;
 *   0 < op - p < s:   the whole output, pb = 0 (the conv's floor leaves the
 *                     last op - p rows out, as in any strided conv);
 *   op - p >= s:      (only when op >= stride, i.e. op < dilation) the last
 *                     rows are past every kernel window: the conv's input is
 *                     the (H_in - 1)*s + d*(k - 1) + 1 - p rows that some
 *                     window reaches, pb = 0; the rows past them get only the
 *                     bias, and their gradient is cropped off before the conv.
 * When no row (or column) is reached at all, the output is the bias alone. */
#include "nabla/conv.h"
#include "nn/conv_internal.h"
#include "nn/nn_util.h"

#include <stdio.h>
#include <string.h>

nb_conv_transpose2d_params nb_conv_transpose2d_defaults(void) {
    return (nb_conv_transpose2d_params){.stride = {1, 1}, .padding = {0, 0}, .output_padding = {0, 0}, .groups = 1,
                                        .dilation = {1, 1}, .padding_mode = NB_PAD_ZEROS};
}

/* ---- sizes of one spatial dim ---- */

/* The output length and the conv geometry of one dim (see the top of the
 * file), exact in 128 bits: *out = (in-1)*s - 2p + d*(k-1) + op + 1, *len
 * the conv input's length (<= *out; < 1: no row is reached), *pe its end
 * padding. Arguments already validated (in, k, s, d >= 1, p, op >= 0). */
typedef struct convt_dim {
    __int128 out, len, pe, span; /* span: len + p + pe, the conv's padded length */
} convt_dim;

static convt_dim convt_dim_sizes(int64_t in, int64_t k, int64_t s, int64_t p, int64_t op, int64_t d) {
    const __int128 ext = (__int128)d * (k - 1), reach = (__int128)(in - 1) * s + ext + 1 - p;
    convt_dim r = {.out = reach - p + op};
    if (op <= p) r.len = r.out, r.pe = p - op;
    else if (op - p < s) r.len = r.out, r.pe = 0;
    else r.len = reach, r.pe = 0;
    r.span = r.len + p + r.pe;
    return r;
}

/* "-18446744073709551615" and so on: a value of convt_dim_sizes for a message. */
static const char *i128_str(__int128 v, char *buf, size_t size) {
    if (v >= INT64_MIN && v <= INT64_MAX) snprintf(buf, size, "%lld", (long long)v);
    else if (v < 0 && -v <= (__int128)UINT64_MAX) snprintf(buf, size, "-%llu", (unsigned long long)-v);
    else snprintf(buf, size, "%s", v < 0 ? "(below -2^64)" : "(above 2^63)");
    return buf;
}

/* (in, op) valid for stride s and dilation d: output padding must be smaller than either. */
static bool output_padding_ok(const int64_t *op, const int64_t *s, const int64_t *d) {
    return (op[0] < s[0] || op[0] < d[0]) && (op[1] < s[1] || op[1] < d[1]);
}

nb_status nb_conv_transpose_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t padding,
                                        int64_t output_padding, int64_t dilation, int64_t *out) {
    const char *op = "conv_transpose_output_size";
    if (!out) return nbi_error(NB_ERR_ARG, "%s: out is NULL", op);
    if (in < 1) return nbi_error(NB_ERR_ARG, "%s: expected a positive input size, but got %lld", op, (long long)in);
    if (kernel < 1)
        return nbi_error(NB_ERR_ARG, "%s: expected a positive kernel size, but got %lld", op, (long long)kernel);
    if (padding < 0)
        return nbi_error(NB_ERR_ARG, "%s: negative padding is not supported (got %lld)", op, (long long)padding);
    if (output_padding < 0)
        return nbi_error(NB_ERR_ARG, "%s: negative output_padding is not supported (got %lld)", op,
                         (long long)output_padding);
    if (stride < 1)
        return nbi_error(NB_ERR_ARG, "%s: non-positive stride is not supported (got %lld)", op, (long long)stride);
    if (dilation < 1)
        return nbi_error(NB_ERR_ARG, "%s: dilation should be greater than zero (got %lld)", op, (long long)dilation);
    if (output_padding >= stride && output_padding >= dilation)
        return nbi_error(NB_ERR_ARG,
                         "%s: output padding must be smaller than either stride or dilation, but got output_padding: "
                         "%lld stride: %lld dilation: %lld",
                         op, (long long)output_padding, (long long)stride, (long long)dilation);
    const convt_dim r = convt_dim_sizes(in, kernel, stride, padding, output_padding, dilation);
    char b[48];
    if (r.out > INT64_MAX) return nbi_error(NB_ERR_ARG, "%s: output size %s overflows int64", op, i128_str(r.out, b, sizeof b));
    if (r.out < 1)
        return nbi_error(NB_ERR_SHAPE, "%s: Given input size: %lld. Calculated output size: %s. Output size is too small",
                         op, (long long)in, i128_str(r.out, b, sizeof b));
    *out = (int64_t)r.out;
    return NB_OK;
}

/* ---- checks: the parameters (shared with ConvTranspose2d's constructor), then the tensors ---- */

bool nbi_conv_transpose2d_check_params(const char *op, const nb_conv_transpose2d_params *p) {
    if (p->padding_mode != NB_PAD_ZEROS) {
        nbi_error(NB_ERR_ARG, "%s: Only \"zeros\" padding mode is supported for ConvTranspose2d, but got padding_mode=%d",
                  op, (int)p->padding_mode);
        return false;
    }
    if (p->groups < 1) {
        nbi_error(NB_ERR_ARG, "%s: non-positive groups is not supported, but got groups=%lld", op, (long long)p->groups);
        return false;
    }
    const struct { const int64_t *v; const char *what; int64_t min; } rules[3] = {
        {p->padding, "negative padding is not supported, but got padding", 0},
        {p->output_padding, "negative output_padding is not supported, but got output_padding", 0},
        {p->stride, "non-positive stride is not supported, but got stride", 1},
    };
    for (int r = 0; r < 3; r++)
        if (rules[r].v[0] < rules[r].min || rules[r].v[1] < rules[r].min) {
            nbi_error(NB_ERR_ARG, "%s: %s=(%lld, %lld)", op, rules[r].what, (long long)rules[r].v[0],
                      (long long)rules[r].v[1]);
            return false;
        }
    if (p->dilation[0] < 1 || p->dilation[1] < 1) {
        nbi_error(NB_ERR_ARG, "%s: dilation should be greater than zero, but got dilation_height: %lld, dilation_width: %lld",
                  op, (long long)p->dilation[0], (long long)p->dilation[1]);
        return false;
    }
    return true;
}

/* What one call computes: the conv it is the input gradient of (g), and the
 * output plane (H, W), which may extend past the conv's input (g.H <= H,
 * g.W <= W) by rows and columns that only get the bias. */
typedef struct convt_geom {
    nbi_conv_geom g;
    int64_t H, W;
    bool reached; /* some output pixel is reached (g.H, g.W >= 1); else the output is the bias alone */
} convt_geom;

static bool convt_check(const nb_tensor *input, const nb_tensor *weight, const nb_tensor *bias,
                        const nb_conv_transpose2d_params *pp, convt_geom *geo) {
    const char *op = "conv_transpose2d";
    char si[160], sw[160], sb[160];
    if (!nbi_check_float(op, "input", input) || !nbi_check_float(op, "weight", weight)) return false;
    if (bias && !nbi_check_float(op, "bias", bias)) return false;
    const nb_conv_transpose2d_params p = pp ? *pp : nb_conv_transpose2d_defaults();
    nnu_shape(input, si, sizeof si);
    nnu_shape(weight, sw, sizeof sw);
    if (input->ndim != 3 && input->ndim != 4) {
        nbi_error(NB_ERR_SHAPE, "%s: Expected 3D (unbatched) or 4D (batched) input to conv_transpose2d, but got input of size: %s",
                  op, si);
        return false;
    }
    if (weight->ndim != 4) {
        nbi_error(NB_ERR_SHAPE,
                  "%s: expected a 4-dimensional weight (in_channels, out_channels/groups, kH, kW), but got weight of size %s",
                  op, sw);
        return false;
    }
    const nb_tensor *other[2] = {weight, bias};
    for (int i = 0; i < 2; i++)
        if (other[i] && other[i]->dtype != input->dtype) {
            nbi_error(NB_ERR_DTYPE, "%s: Input type (%s) and %s type (%s) should be the same", op,
                      nb_dtype_name(input->dtype), i ? "bias" : "weight", nb_dtype_name(other[i]->dtype));
            return false;
        }
    if (!nbi_conv_transpose2d_check_params(op, &p)) return false;

    const int64_t G = p.groups, Cin = weight->shape[0];
    if (Cin < G || Cin % G) {
        nbi_error(NB_ERR_SHAPE, "%s: Given groups=%lld, expected weight to be %s %lld at dimension 0, but got weight of size %s instead",
                  op, (long long)G, Cin < G ? "at least" : "divisible by", (long long)G, sw);
        return false;
    }
    const int64_t Cout = weight->shape[1] * G; /* <= weight dims 0 * 1: no overflow */
    /* Messages show the input as batched, as PyTorch's do for 3-d inputs. */
    const bool unbatched = input->ndim == 3;
    const int64_t *s = input->shape + (unbatched ? 0 : 1); /* C, H, W */
    const int64_t N = unbatched ? 1 : input->shape[0], C = s[0], H = s[1], W = s[2];
    nb_shape_str(4, (const int64_t[]){N, C, H, W}, si, sizeof si);
    if (C != Cin) {
        nbi_error(NB_ERR_SHAPE, "%s: Given transposed=1, weight of size %s, expected input%s to have %lld channels, but got %lld channels instead",
                  op, sw, si, (long long)Cin, (long long)C);
        return false;
    }
    if (bias && (bias->ndim != 1 || bias->shape[0] != Cout)) {
        nnu_shape(bias, sb, sizeof sb);
        nbi_error(NB_ERR_SHAPE, "%s: Given transposed=1, weight of size %s, expected bias to be 1-dimensional with %lld elements, but got bias of size %s instead",
                  op, sw, (long long)Cout, sb);
        return false;
    }
    if (H == 0 || W == 0) {
        nbi_error(NB_ERR_SHAPE, "%s: Only zero batch or zero channel inputs are supported, but got input shape: %s", op, si);
        return false;
    }
    const int64_t kh = weight->shape[2], kw = weight->shape[3];
    if (kh < 1 || kw < 1) {
        nbi_error(NB_ERR_SHAPE, "%s: kernel size should be greater than zero, but got kernel_height: %lld kernel_width: %lld",
                  op, (long long)kh, (long long)kw);
        return false;
    }
    if (!output_padding_ok(p.output_padding, p.stride, p.dilation)) {
        nbi_error(NB_ERR_ARG, "%s: output padding must be smaller than either stride or dilation, but got output_padding_height: %lld "
                  "output_padding_width: %lld stride_height: %lld stride_width: %lld dilation_height: %lld dilation_width: %lld",
                  op, (long long)p.output_padding[0], (long long)p.output_padding[1], (long long)p.stride[0],
                  (long long)p.stride[1], (long long)p.dilation[0], (long long)p.dilation[1]);
        return false;
    }
    if (Cout == 0) {
        nbi_error(NB_ERR_SHAPE, "%s: non-empty 2D or 4D weight tensor expected, but got: %s", op, sw);
        return false;
    }
    const convt_dim dh = convt_dim_sizes(H, kh, p.stride[0], p.padding[0], p.output_padding[0], p.dilation[0]);
    const convt_dim dw = convt_dim_sizes(W, kw, p.stride[1], p.padding[1], p.output_padding[1], p.dilation[1]);
    char a[48], b[48];
    if (dh.out < 1 || dw.out < 1) {
        nbi_error(NB_ERR_SHAPE, "%s: Given input size per channel: (%lld x %lld). Calculated output size per channel: (%s x %s). Output size is too small",
                  op, (long long)H, (long long)W, i128_str(dh.out, a, sizeof a), i128_str(dw.out, b, sizeof b));
        return false;
    }
    /* The conv's padded extent bounds every index its kernels form: it must
     * fit in int64 (huge strides, dilations or paddings are untrusted). */
    if (dh.out > INT64_MAX || dw.out > INT64_MAX || dh.span > INT64_MAX || dw.span > INT64_MAX) {
        nbi_error(NB_ERR_ARG, "%s: output size (%s x %s) or its padded extent overflows int64 (stride=(%lld, %lld), "
                  "padding=(%lld, %lld), dilation=(%lld, %lld))",
                  op, i128_str(dh.out, a, sizeof a), i128_str(dw.out, b, sizeof b), (long long)p.stride[0],
                  (long long)p.stride[1], (long long)p.padding[0], (long long)p.padding[1], (long long)p.dilation[0],
                  (long long)p.dilation[1]);
        return false;
    }
    *geo = (convt_geom){
        .g = {.N = N, .C = Cout, .H = dh.len > 0 ? (int64_t)dh.len : 0, .W = dw.len > 0 ? (int64_t)dw.len : 0, .O = Cin, .kh = kh, .kw = kw,
              .sh = p.stride[0], .sw = p.stride[1], .pt = p.padding[0], .pb = (int64_t)dh.pe, .pl = p.padding[1],
              .pr = (int64_t)dw.pe, .dh = p.dilation[0], .dw = p.dilation[1], .groups = G, .Ho = H, .Wo = W},
        .H = (int64_t)dh.out, .W = (int64_t)dw.out, .reached = dh.len >= 1 && dw.len >= 1};
    return true;
}

/* ---- kernels: the conv's entry points, and the copies around them ---- */

static nb_status conv_forward(nb_dtype dt, void *y, const void *x, const void *w, const nbi_conv_geom *g) {
    return dt == NB_F32 ? nbi_conv2d_forward_f32(y, x, w, NULL, g) : nbi_conv2d_forward_f64(y, x, w, NULL, g);
}

static nb_status conv_backward(nb_dtype dt, void *dx, void *dw, void *db, const void *dy, const void *x,
                               const void *w, const nbi_conv_geom *g) {
    return dt == NB_F32 ? nbi_conv2d_backward_f32(dx, dw, db, dy, x, w, g)
                        : nbi_conv2d_backward_f64(dx, dw, db, dy, x, w, g);
}

/* y: (N, C, H, W) <- t: (N, C, h, w) at the top left (t may be y itself when
 * h = H and w = W; NULL: zeros), zeros elsewhere, plus b: (C) or NULL. */
static void place_plus_bias(nb_dtype dtype, void *y, const void *t, const void *b, int64_t N, int64_t C, int64_t H,
                            int64_t W, int64_t h, int64_t w) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *Y = y;
        const T *S = t, *B = b;
        _Pragma("omp parallel for schedule(static) if (N * C * H * W > NBI_PAR_MIN)")
        for (int64_t pl = 0; pl < N * C; pl++) {
            const T bias = B ? B[pl % C] : 0;
            T *yp = Y + pl * H * W;
            const T *sp = S ? S + pl * h * w : NULL;
            for (int64_t r = 0; r < H; r++)
                for (int64_t q = 0; q < W; q++) yp[r * W + q] = (sp && r < h && q < w ? sp[r * w + q] : 0) + bias;
        }
    });
}

/* t: (planes, h, w) <- the top-left corner of s: (planes, H, W). */
static void crop(nb_dtype dtype, void *t, const void *s, int64_t planes, int64_t H, int64_t W, int64_t h, int64_t w) {
    const size_t es = nb_dtype_size(dtype);
    _Pragma("omp parallel for schedule(static) if (planes * h * w > NBI_PAR_MIN)")
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t r = 0; r < h; r++)
            memcpy((char *)t + (size_t)((pl * h + r) * w) * es, (const char *)s + (size_t)((pl * H + r) * W) * es,
                   (size_t)w * es);
}

/* A pool buffer for the conv's input-sized array when the output plane is
 * larger (NULL and *bytes 0 when it is not, or when it holds nothing). */
static nb_status crop_buffer(nb_dtype dt, const convt_geom *c, void **buf, size_t *bytes) {
    const nbi_conv_geom *g = &c->g;
    *buf = NULL;
    *bytes = 0;
    if (!c->reached || (g->H == c->H && g->W == c->W) || g->N == 0) return NB_OK;
    *bytes = (size_t)(g->N * g->C * g->H * g->W) * nb_dtype_size(dt);
    *buf = nbi_alloc(*bytes);
    return *buf ? NB_OK
                : nbi_error(NB_ERR_NOMEM, "conv_transpose2d: out of memory for a %zu-byte buffer of the reached rows", *bytes);
}

// y: (N, C_out, H, W), x: (N, C_in, Ho, Wo) of c->g, w: (C_in, C_out/g, kh, kw), b: (C_out) or NULL
static nb_status conv_transpose2d_forward(nb_dtype dt, void *y, const void *x, const void *w, const void *b,
                                          const convt_geom *c) {
    const nbi_conv_geom *g = &c->g;
    void *t;
    size_t bytes;
    nb_status st = crop_buffer(dt, c, &t, &bytes);
    if (st == NB_OK && c->reached) st = conv_backward(dt, t ? t : y, NULL, NULL, x, NULL, w, g);
    if (st == NB_OK) place_plus_bias(dt, y, c->reached ? (t ? t : y) : NULL, b, g->N, g->C, c->H, c->W, g->H, g->W);
    if (t) nbi_free(t, bytes);
    return st;
}

/* The 1x1 depthwise identity conv whose output has dy's shape (N, C, H, W):
 * its bias gradient (dy summed per channel) is the transposed conv's. */
static nbi_conv_geom bias_geom(const convt_geom *c) {
    const int64_t N = c->g.N, C = c->g.C;
    return (nbi_conv_geom){.N = N, .C = C, .H = c->H, .W = c->W, .O = C, .kh = 1, .kw = 1, .sh = 1, .sw = 1,
                           .dh = 1, .dw = 1, .groups = C, .Ho = c->H, .Wo = c->W};
}

// dx: (N, C_in, Ho, Wo), dw: (C_in, C_out/g, kh, kw), db: (C_out), each NULL when not wanted; dy: (N, C_out, H, W)
static nb_status conv_transpose2d_backward(nb_dtype dt, void *dx, void *dw, void *db, const void *dy, const void *x,
                                           const void *w, const convt_geom *c) {
    const nbi_conv_geom *g = &c->g;
    nb_status st = NB_OK;
    if (db) {
        const nbi_conv_geom gb = bias_geom(c);
        st = conv_backward(dt, NULL, NULL, db, dy, NULL, NULL, &gb);
    }
    if (st != NB_OK || (!dx && !dw)) return st;
    if (!c->reached) { /* nothing of x or w reaches the output */
        if (dx) memset(dx, 0, (size_t)(g->N * g->O * g->Ho * g->Wo) * nb_dtype_size(dt));
        if (dw) memset(dw, 0, (size_t)(g->O * (g->C / g->groups) * g->kh * g->kw) * nb_dtype_size(dt));
        return NB_OK;
    }
    void *t;
    size_t bytes;
    st = crop_buffer(dt, c, &t, &bytes);
    if (t) crop(dt, t, dy, g->N * g->C, c->H, c->W, g->H, g->W);
    const void *dyc = t ? t : dy; // dyc: (N, C_out, g->H, g->W), the conv's input gradient
    if (st == NB_OK && dx) st = conv_forward(dt, dx, dyc, w, g);
    if (st == NB_OK && dw) st = conv_backward(dt, NULL, dw, NULL, x, dyc, NULL, g);
    if (t) nbi_free(t, bytes);
    return st;
}

/* ---- autograd: ctx is the convt_geom; saved: input and weight (contiguous) ---- */
static nb_status conv_transpose2d_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const convt_geom *c = node->ctx;
    const nb_tensor *x = node->saved[0], *w = node->saved[1];
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    return conv_transpose2d_backward(x->dtype, nbi_data_or_null(gin[0]), nbi_data_or_null(gin[1]),
                                     nbi_data_or_null(gin[2]), nbi_data(gout), nbi_data(x), nbi_data(w), c);
}

static const nbi_op conv_transpose2d_op = {"conv_transpose2d", conv_transpose2d_grad_fn, NULL};

/* ---- the op: check, run, record ---- */
nb_tensor *nb_conv_transpose2d(const nb_tensor *input, const nb_tensor *weight, const nb_tensor *bias,
                               const nb_conv_transpose2d_params *p) {
    convt_geom c;
    if (!convt_check(input, weight, bias, p, &c)) return NULL;
    nb_tensor *xc = nbi_contiguous_data(input), *wc = xc ? nbi_contiguous_data(weight) : NULL;
    nb_tensor *bc = wc && bias ? nbi_contiguous_data(bias) : NULL;
    const int64_t shape[4] = {c.g.N, c.g.C, c.H, c.W};
    const bool unbatched = input->ndim == 3;
    nb_tensor *y = wc && (bc || !bias) ? nbi_empty_op("conv_transpose2d", input->dtype, unbatched ? 3 : 4,
                                                      unbatched ? shape + 1 : shape)
                                       : NULL;
    if (y && conv_transpose2d_forward(input->dtype, nbi_data(y), nbi_data(xc), nbi_data(wc), nbi_data_or_null(bc), &c) !=
                 NB_OK) {
        nbi_release(y);
        y = NULL;
    }
    nbi_release(bc);
    return nbi_finish_op(y, &conv_transpose2d_op, NBI_INPUTS(input, weight, bias), NBI_SAVED(xc, wc), &c, sizeof c);
}
