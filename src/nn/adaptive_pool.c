/* F.adaptive_avg_pool2d and F.adaptive_max_pool2d over [N, C, H, W] (or
 * [C, H, W]) with torch 1.13's windows, checks and messages. Output (i, j)
 * pools rows [floor(i H / OH), ceil((i + 1) H / OH)) and the same for
 * columns: windows of different sizes that may overlap, covering the input.
 * The average divides the window sum by its height then its width (as
 * PyTorch, whose rounding this keeps); the maximum keeps the first of equal
 * maxima in row-major order, NaN wins, and its flat in-plane index h * W + w
 * is saved for backward (and returned on request). Each (n, c) plane is one
 * thread's, in a fixed order: results do not depend on the thread count. */
#include "nn_util.h"

#include <math.h>

/* ---- check ---- */
typedef struct {
    int64_t planes, H, W, OH, OW;  /* planes = N * C */
} adaptive_geom;

/* PyTorch's start_index / end_index (AdaptivePooling.h): floor(a c / b) and
 * ceil((a + 1) c / b), exactly, for 0 <= a < b. */
static inline int64_t start_index(int64_t a, int64_t b, int64_t c) { return (a / b) * c + ((a % b) * c) / b; }
static inline int64_t end_index(int64_t a, int64_t b, int64_t c) { return 1 + ((a + 1) * c - 1) / b; }

static bool adaptive_check(const char *op, const nb_tensor *x, int64_t out_h, int64_t out_w, bool is_max,
                           adaptive_geom *g) {
    char s[128];
    if (!nbi_check_float(op, "input", x)) return false;
    int nd = x->ndim;
    if (nd != 3 && nd != 4) {
        nbi_error(NB_ERR_SHAPE, "%s(): Expected 3D or 4D tensor, but got %s", op, nnu_shape(x, s, sizeof s));
        return false;
    }
    /* the average accepts no channels, the maximum only an empty batch */
    for (int d = is_max ? 1 : nd - 2; d < nd; d++)
        if (x->shape[d] == 0) {
            nbi_error(NB_ERR_SHAPE,
                      "%s(): Expected input to have non-zero size for non-batch dimensions, but input has sizes %s "
                      "with dimension %d being empty",
                      op, nnu_shape(x, s, sizeof s), d);
            return false;
        }
    int64_t H = x->shape[nd - 2], W = x->shape[nd - 1];
    int64_t OH = out_h == NB_SIZE_NONE ? H : out_h, OW = out_w == NB_SIZE_NONE ? W : out_w;
    if (OH < 0 || OW < 0) {
        nbi_error(NB_ERR_ARG, "%s: elements of output_size must be greater than or equal to 0 but received {%lld, %lld}",
                  op, (long long)out_h, (long long)out_w);
        return false;
    }
    /* untrusted sizes: end_index forms OH * H, and the output must be countable */
    int64_t planes = nbi_numel(nd - 2, x->shape);
    if ((__int128)OH * H > INT64_MAX / 2 || (__int128)OW * W > INT64_MAX / 2 ||
        (__int128)planes * OH * OW > INT64_MAX / 8) {
        nbi_error(NB_ERR_ARG, "%s: output_size (%lld, %lld) is too large for input %s", op, (long long)OH,
                  (long long)OW, nnu_shape(x, s, sizeof s));
        return false;
    }
    *g = (adaptive_geom){planes, H, W, OH, OW};
    return true;
}

static nb_tensor *adaptive_output(const char *op, const nb_tensor *x, nb_dtype dtype, const adaptive_geom *g) {
    int64_t shape[4];
    int nd = x->ndim;
    for (int i = 0; i < nd - 2; i++) shape[i] = x->shape[i];
    shape[nd - 2] = g->OH;
    shape[nd - 1] = g->OW;
    return nbi_empty_op(op, dtype, nd, shape);
}

/* ---- kernels ---- */
// y: (planes, OH, OW), x: (planes, H, W)
static void adaptive_avg_pool2d_forward(nb_dtype dtype, void *y, const void *x, const adaptive_geom *g) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW, planes = g->planes;
    NBI_DISPATCH_FLOAT(dtype, {
        const T *X = x;
        T *Y = y;
        _Pragma("omp parallel for schedule(static) if (planes * H * W > NBI_PAR_MIN)")
        for (int64_t pl = 0; pl < planes; pl++) {
            const T *xp = X + pl * H * W;
            T *yp = Y + pl * OH * OW;
            for (int64_t oh = 0; oh < OH; oh++) {
                int64_t h0 = start_index(oh, OH, H), h1 = end_index(oh, OH, H);
                for (int64_t ow = 0; ow < OW; ow++) {
                    int64_t w0 = start_index(ow, OW, W), w1 = end_index(ow, OW, W);
                    T sum = 0;
                    for (int64_t h = h0; h < h1; h++)
                        for (int64_t w = w0; w < w1; w++) sum += xp[h * W + w];
                    yp[oh * OW + ow] = sum / (T)(h1 - h0) / (T)(w1 - w0);
                }
            }
        }
    });
}

// dx: (planes, H, W), dy: (planes, OH, OW)
static void adaptive_avg_pool2d_backward(nb_dtype dtype, void *dx, const void *dy, const adaptive_geom *g) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW, planes = g->planes;
    NBI_DISPATCH_FLOAT(dtype, {
        T *dX = dx;
        const T *dY = dy;
        _Pragma("omp parallel for schedule(static) if (planes * H * W > NBI_PAR_MIN)")
        for (int64_t pl = 0; pl < planes; pl++) {
            T *dxp = dX + pl * H * W;
            const T *dyp = dY + pl * OH * OW;
            for (int64_t i = 0; i < H * W; i++) dxp[i] = 0;
            for (int64_t oh = 0; oh < OH; oh++) {
                int64_t h0 = start_index(oh, OH, H), h1 = end_index(oh, OH, H);
                for (int64_t ow = 0; ow < OW; ow++) {
                    int64_t w0 = start_index(ow, OW, W), w1 = end_index(ow, OW, W);
                    T d = dyp[oh * OW + ow] / (T)(h1 - h0) / (T)(w1 - w0);
                    for (int64_t h = h0; h < h1; h++)
                        for (int64_t w = w0; w < w1; w++) dxp[h * W + w] += d;
                }
            }
        }
    });
}

/* PyTorch's rule: start at -inf with the window's first index; a strictly
 * larger value or a NaN takes over (branch-free selects). */
// y: (planes, OH, OW), idx: (planes, OH, OW), x: (planes, H, W)
static void adaptive_max_pool2d_forward(nb_dtype dtype, void *y, int64_t *idx, const void *x, const adaptive_geom *g) {
    const int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW, planes = g->planes;
    NBI_DISPATCH_FLOAT(dtype, {
        const T *X = x;
        T *Y = y;
        _Pragma("omp parallel for schedule(static) if (planes * H * W > NBI_PAR_MIN)")
        for (int64_t pl = 0; pl < planes; pl++) {
            const T *xp = X + pl * H * W;
            for (int64_t oh = 0; oh < OH; oh++) {
                int64_t h0 = start_index(oh, OH, H), h1 = end_index(oh, OH, H);
                for (int64_t ow = 0; ow < OW; ow++) {
                    int64_t w0 = start_index(ow, OW, W), w1 = end_index(ow, OW, W);
                    T best = -(T)INFINITY;
                    int64_t bi = h0 * W + w0;
                    for (int64_t h = h0; h < h1; h++)
                        for (int64_t w = w0; w < w1; w++) {
                            T v = xp[h * W + w];
                            bool take = (v > best) | (v != v);
                            best = take ? v : best;
                            bi = take ? h * W + w : bi;
                        }
                    Y[(pl * OH + oh) * OW + ow] = best;
                    idx[(pl * OH + oh) * OW + ow] = bi;
                }
            }
        }
    });
}

/* ---- autograd: ctx is the adaptive_geom; max saves the indices ---- */
static nb_status adaptive_avg_pool2d_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    adaptive_avg_pool2d_backward(gout->dtype, nbi_data(gin[0]), nbi_data(gout), node->ctx);
    return NB_OK;
}

static nb_status adaptive_max_pool2d_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const adaptive_geom *g = node->ctx;
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    nbi_pool_scatter_add(gout->dtype, nbi_data(gin[0]), nbi_data(gout), nbi_data(node->saved[0]), g->planes,
                         g->H * g->W, g->OH * g->OW);
    return NB_OK;
}

static const nbi_op adaptive_avg_pool2d_op = {"adaptive_avg_pool2d", adaptive_avg_pool2d_grad_fn, NULL};
static const nbi_op adaptive_max_pool2d_op = {"adaptive_max_pool2d", adaptive_max_pool2d_grad_fn, NULL};

/* ---- the ops: check, run, record ---- */
nb_tensor *nb_adaptive_avg_pool2d(const nb_tensor *x, int64_t out_h, int64_t out_w) {
    adaptive_geom g;
    if (!adaptive_check("adaptive_avg_pool2d", x, out_h, out_w, false, &g)) return NULL;
    nb_tensor *xc = nbi_contiguous_data(x);
    nb_tensor *y = xc ? adaptive_output("adaptive_avg_pool2d", x, x->dtype, &g) : NULL;
    if (y) adaptive_avg_pool2d_forward(x->dtype, nbi_data(y), nbi_data(xc), &g);
    nbi_release(xc);
    return nbi_finish_op(y, &adaptive_avg_pool2d_op, NBI_INPUTS(x), NULL, 0, &g, sizeof g);
}

nb_tensor *nb_adaptive_max_pool2d(const nb_tensor *x, int64_t out_h, int64_t out_w, nb_tensor **indices) {
    if (indices) *indices = NULL;
    adaptive_geom g;
    if (!adaptive_check("adaptive_max_pool2d", x, out_h, out_w, true, &g)) return NULL;
    nb_tensor *xc = nbi_contiguous_data(x);
    nb_tensor *idx = xc ? adaptive_output("adaptive_max_pool2d", x, NB_I64, &g) : NULL;
    nb_tensor *y = idx ? adaptive_output("adaptive_max_pool2d", x, x->dtype, &g) : NULL;
    if (y) adaptive_max_pool2d_forward(x->dtype, nbi_data(y), nbi_data(idx), nbi_data(xc), &g);
    nbi_release(xc);
    nb_tensor *saved = nbi_retain(idx); /* the node's reference; the caller may release theirs at any time */
    y = nbi_finish_op(y, &adaptive_max_pool2d_op, NBI_INPUTS(x), NBI_SAVED(saved), &g, sizeof g);
    return nnu_give_second(y, idx, indices);
}
