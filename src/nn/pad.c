/* nb_pad: F.pad on the last one or two dims, in the four modes (constant,
 * reflect, replicate, circular), with F.pad's rules for sizes and negative
 * (cropping) pads, and its backward.
 *
 * Both directions go through one index map per padded dim: output position o
 * reads input position map[o] (or the constant when map[o] < 0). The backward
 * scatters the gradient through the same map, one (n, c) plane per thread in
 * a fixed order, so it is deterministic. */
#include "nn_util.h"

#include <string.h>

static const char *mode_name(nb_padding_mode m) {
    switch (m) {
    case NB_PAD_ZEROS: return "constant";
    case NB_PAD_REFLECT: return "reflect";
    case NB_PAD_REPLICATE: return "replicate";
    case NB_PAD_CIRCULAR: return "circular";
    }
    return "?";
}

typedef struct pad_geom {
    int64_t P;            /* planes: the product of the unpadded leading dims */
    int64_t H, W, Ho, Wo; /* padded dims before and after (H = Ho = 1 when only W is padded) */
    int64_t t, b, l, r;   /* pads: top, bottom, left, right (negative crops) */
    nb_padding_mode mode;
} pad_geom;

/* Input index read by output index o of a dim of size S padded by (lo, hi). */
static int64_t src_index(int64_t o, int64_t S, int64_t lo, int64_t hi, nb_padding_mode m) {
    /* 128 bits: lo may be near INT64_MIN (a huge crop offset by a huge pad on the other side). */
    __int128 i = (__int128)o - lo;
    switch (m) {
    case NB_PAD_ZEROS: return i >= 0 && i < S ? (int64_t)i : -1;
    case NB_PAD_REFLECT:
        if (i < 0) i = -i;
        if (i >= S) i = 2 * ((__int128)S - 1) - i;
        return (int64_t)i;
    case NB_PAD_REPLICATE: return i < 0 ? 0 : i >= S ? S - 1 : (int64_t)i;
    case NB_PAD_CIRCULAR: {
        /* F.pad crops first (negative pads) and wraps within what is left. */
        int64_t a = lo < 0 ? -lo : 0, n = S - a - (hi < 0 ? -hi : 0);
        return a + (int64_t)((((i - a) % n) + n) % n);
    }
    }
    return -1;
}

/* hmap: (Ho), wmap: (Wo); caller frees the returned block. */
static int64_t *make_maps(const pad_geom *g) {
    /* Padded sizes may be huge (conv2d's 'same' padding with a huge dilation):
     * an overflowing byte count is out of memory, not a short buffer. */
    size_t n, bytes;
    if (__builtin_add_overflow((size_t)g->Ho, (size_t)g->Wo, &n) || __builtin_add_overflow(n, (size_t)1, &n) ||
        __builtin_mul_overflow(n, sizeof(int64_t), &bytes))
        return NULL;
    int64_t *m = malloc(bytes);
    if (!m) return NULL;
    for (int64_t o = 0; o < g->Ho; o++) m[o] = src_index(o, g->H, g->t, g->b, g->mode);
    for (int64_t o = 0; o < g->Wo; o++) m[g->Ho + o] = src_index(o, g->W, g->l, g->r, g->mode);
    return m;
}

/* Checks one padded dim (index d of input t) against F.pad's rules. */
static bool check_dim(const nb_tensor *t, int d, int64_t lo, int64_t hi, nb_padding_mode mode, int64_t *out) {
    char s[160];
    const int64_t S = t->shape[d];
    nb_shape_str(t->ndim, t->shape, s, sizeof s);
    if (mode != NB_PAD_ZEROS && S == 0) {
        nbi_error(NB_ERR_SHAPE, "pad: %s padding expects a non-empty dimension %d, but got input of size %s",
                  mode_name(mode), d, s);
        return false;
    }
    if (mode == NB_PAD_REFLECT && (lo >= S || hi >= S)) {
        nbi_error(NB_ERR_ARG,
                  "pad: Padding size should be less than the corresponding input dimension, but got: padding (%lld, "
                  "%lld) at dimension %d of input %s", (long long)lo, (long long)hi, d, s);
        return false;
    }
    if (mode == NB_PAD_CIRCULAR && (lo > S || hi > S)) {
        nbi_error(NB_ERR_ARG,
                  "pad: Padding value causes wrapping around more than once: padding (%lld, %lld) at dimension %d of "
                  "input %s", (long long)lo, (long long)hi, d, s);
        return false;
    }
    /* In 128 bits: pads are untrusted and may be near INT64_MIN / INT64_MAX. */
    const __int128 size = (__int128)S + lo + hi;
    if (size > INT64_MAX) {
        nbi_error(NB_ERR_ARG, "pad: the input size %lld plus padding %lld and %lld overflows int64 at dimension %d",
                  (long long)S, (long long)lo, (long long)hi, d);
        return false;
    }
    if (size < 0 ||
        (mode == NB_PAD_CIRCULAR && size > 0 && (__int128)S + (lo < 0 ? lo : 0) + (hi < 0 ? hi : 0) < 1)) {
        nbi_error(NB_ERR_SHAPE,
                  "pad: The input size %lld, plus negative padding %lld and %lld resulted in a negative output size, "
                  "which is invalid. Check dimension %d of your input.", (long long)S, (long long)lo, (long long)hi, d);
        return false;
    }
    *out = (int64_t)size;
    return true;
}

/* F.pad's rules for the whole call; the geometry and the output shape. */
static bool pad_check(const nb_tensor *input, const int64_t *pad, int npad, nb_padding_mode mode, pad_geom *g,
                      int64_t *shape) {
    char s[160];
    if (!nbi_check_float("pad", "input", input)) return false;
    if (!pad || (npad != 2 && npad != 4)) {
        nbi_error(NB_ERR_ARG, "pad: expected 2 or 4 padding values (left, right[, top, bottom]), but got %d%s", npad,
                  pad ? "" : " (pad is NULL)");
        return false;
    }
    if (mode < NB_PAD_ZEROS || mode > NB_PAD_CIRCULAR) {
        nbi_error(NB_ERR_ARG, "pad: unknown padding mode %d", (int)mode);
        return false;
    }
    const int nd = input->ndim, pdims = npad / 2;
    /* F.pad: constant mode pads any tensor with enough dims; the other modes
     * pad 1 dim of a 2-d/3-d input or 2 dims of a 3-d/4-d input. */
    bool ok = mode == NB_PAD_ZEROS ? nd >= pdims : (nd == pdims + 1 || nd == pdims + 2);
    if (!ok) {
        nb_shape_str(nd, input->shape, s, sizeof s);
        if (mode == NB_PAD_ZEROS)
            nbi_error(NB_ERR_ARG, "pad: Padding length too large: %d values for input of size %s", npad, s);
        else
            nbi_error(NB_ERR_ARG, "pad: %s padding with %d values expects a %dD or %dD input, but got input of size %s",
                      mode_name(mode), npad, pdims + 1, pdims + 2, s);
        return false;
    }
    *g = (pad_geom){.mode = mode, .l = pad[0], .r = pad[1], .t = npad == 4 ? pad[2] : 0, .b = npad == 4 ? pad[3] : 0,
                    .H = 1, .Ho = 1};
    for (int i = 0; i < nd; i++) shape[i] = input->shape[i];
    if (!check_dim(input, nd - 1, g->l, g->r, mode, &shape[nd - 1])) return false;
    g->W = input->shape[nd - 1];
    g->Wo = shape[nd - 1];
    if (npad == 4) {
        if (!check_dim(input, nd - 2, g->t, g->b, mode, &shape[nd - 2])) return false;
        g->H = input->shape[nd - 2];
        g->Ho = shape[nd - 2];
    }
    g->P = 1;
    for (int i = 0; i < nd - pdims; i++) g->P *= input->shape[i];
    return true;
}

/* ---- kernels: through the index maps hmap (Ho) and wmap (Wo) ---- */
// y: (P, Ho, Wo), x: (P, H, W)
static void pad_forward(nb_dtype dtype, void *y, const void *x, const pad_geom *g, const int64_t *hmap,
                        const int64_t *wmap, double value) {
    const int64_t P = g->P, HW = g->H * g->W, HWo = g->Ho * g->Wo;
    NBI_DISPATCH_FLOAT(dtype, {
        T *Y = y;
        const T *X = x;
        const T v = (T)value;
        _Pragma("omp parallel for schedule(static) if (P * HWo > NBI_PAR_MIN)")
        for (int64_t p = 0; p < P; p++) {
            const T *xp = X + p * HW;
            T *yp = Y + p * HWo;
            for (int64_t oh = 0; oh < g->Ho; oh++) {
                const int64_t ih = hmap[oh];
                T *yr = yp + oh * g->Wo;
                if (ih < 0) {
                    for (int64_t ow = 0; ow < g->Wo; ow++) yr[ow] = v;
                    continue;
                }
                const T *xr = xp + ih * g->W;
                for (int64_t ow = 0; ow < g->Wo; ow++) yr[ow] = wmap[ow] < 0 ? v : xr[wmap[ow]];
            }
        }
    });
}

/* Scatters dy back through the maps, one plane per thread in a fixed order. */
// dx: (P, H, W), dy: (P, Ho, Wo)
static void pad_backward(nb_dtype dtype, void *dx, const void *dy, const pad_geom *g, const int64_t *hmap,
                         const int64_t *wmap) {
    const int64_t P = g->P, HW = g->H * g->W, HWo = g->Ho * g->Wo;
    NBI_DISPATCH_FLOAT(dtype, {
        T *dX = dx;
        const T *dY = dy;
        _Pragma("omp parallel for schedule(static) if (P * HWo > NBI_PAR_MIN)")
        for (int64_t p = 0; p < P; p++) {
            T *d = dX + p * HW;
            const T *s = dY + p * HWo;
            for (int64_t k = 0; k < HW; k++) d[k] = 0;
            for (int64_t oh = 0; oh < g->Ho; oh++) {
                int64_t ih = hmap[oh];
                if (ih < 0) continue;
                for (int64_t ow = 0; ow < g->Wo; ow++)
                    if (wmap[ow] >= 0) d[ih * g->W + wmap[ow]] += s[oh * g->Wo + ow];
            }
        }
    });
}

/* An empty output (no planes, or a dim padded or cropped to 0) has nothing to
 * copy and needs no index maps: the padded sizes alone may be huge when there
 * are no planes. */
static bool pad_empty(const pad_geom *g) { return g->P == 0 || g->Ho == 0 || g->Wo == 0; }

/* ---- autograd: ctx is the pad_geom ---- */
static nb_status pad_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const pad_geom *g = node->ctx;
    int64_t *map = pad_empty(g) ? NULL : make_maps(g);
    if (!pad_empty(g) && !map) return nbi_error(NB_ERR_NOMEM, "pad backward: out of memory");
    nb_status st = nbi_alloc_grads(node, gin);
    if (st == NB_OK && map) pad_backward(gout->dtype, nbi_data(gin[0]), nbi_data(gout), g, map, map + g->Ho);
    else if (st == NB_OK) /* an empty output passes nothing back */
        memset(nbi_data(gin[0]), 0, (size_t)gin[0]->numel * nb_dtype_size(gin[0]->dtype));
    free(map);
    return st;
}

static const nbi_op pad_op = {"pad", pad_grad_fn, NULL};

/* ---- the op: check, run, record ---- */
nb_tensor *nb_pad(const nb_tensor *input, const int64_t *pad, int npad, nb_padding_mode mode, double value) {
    pad_geom g;
    int64_t shape[NB_MAX_DIMS];
    if (!pad_check(input, pad, npad, mode, &g, shape)) return NULL;
    int64_t *map = pad_empty(&g) ? NULL : make_maps(&g);
    if (!pad_empty(&g) && !map) {
        nbi_error(NB_ERR_NOMEM, "pad: out of memory");
        return NULL;
    }
    nb_tensor *xc = nbi_contiguous_data(input);
    nb_tensor *y = xc ? nbi_empty(input->dtype, input->ndim, shape) : NULL;
    if (y && map) pad_forward(input->dtype, nbi_data(y), nbi_data(xc), &g, map, map + g.Ho, value);
    free(map);
    nbi_release(xc);
    return nbi_finish_op(y, &pad_op, NBI_INPUTS(input), NULL, 0, &g, sizeof g);
}
