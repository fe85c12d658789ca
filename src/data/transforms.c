/* transforms.c: the transform values, their checks (a pipeline that knows
 * each stage's shape before any data flows), running a pipeline on one
 * sample, and nb_transforms_apply. Draws follow the order documented in
 * nabla/data.h, so a generator's state decides every parameter. */
#include "data_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

nb_transform nb_normalize(int num_channels, const double *mean, const double *std) {
    nb_transform t = {.kind = NB_TRANSFORM_NORMALIZE};
    t.normalize.num_channels = num_channels;
    for (int c = 0; c < num_channels && c < NB_NORMALIZE_MAX_CHANNELS && mean && std; c++) {
        t.normalize.mean[c] = mean[c];
        t.normalize.std[c] = std[c];
    }
    if (!mean || !std) t.normalize.num_channels = -1; /* reported when used */
    return t;
}

nb_transform nb_random_crop(int64_t height, int64_t width, int64_t padding) {
    nb_transform t = {.kind = NB_TRANSFORM_RANDOM_CROP};
    t.crop.height = height;
    t.crop.width = width;
    for (int k = 0; k < 4; k++) t.crop.padding[k] = padding;
    t.crop.padding_mode = NB_IMAGE_PAD_CONSTANT;
    return t;
}

nb_transform nb_random_horizontal_flip(double p) {
    nb_transform t = {.kind = NB_TRANSFORM_RANDOM_HFLIP};
    t.hflip.p = p;
    return t;
}

nb_transform nb_random_affine(double degrees) {
    nb_transform t = {.kind = NB_TRANSFORM_RANDOM_AFFINE};
    t.affine.degrees[0] = -degrees;
    t.affine.degrees[1] = degrees;
    t.affine.scale[0] = t.affine.scale[1] = 1.0;
    t.affine.interpolation = NB_INTERP_NEAREST;
    return t;
}

bool nbd_check_images(const char *op, const nb_tensor *x, int64_t *N, int64_t *C, int64_t *H, int64_t *W) {
    if (!nbi_check_float(op, "x", x)) return false;
    if (x->ndim != 3 && x->ndim != 4) {
        char s[128];
        nbi_error(NB_ERR_SHAPE, "%s: expected an image (C, H, W) or a batch (N, C, H, W), but got shape %s", op,
                  nb_shape_str(x->ndim, x->shape, s, sizeof s));
        return false;
    }
    const int64_t *d = x->shape + (x->ndim - 3);
    *N = x->ndim == 4 ? x->shape[0] : 1;
    *C = d[0], *H = d[1], *W = d[2];
    return true;
}

/* ---- checks, stage by stage: each one updates shape (C, H, W) ---- */

static nb_status check_normalize(const nb_transform *t, nb_dtype dtype, const int64_t *shape) {
    int n = t->normalize.num_channels;
    if (n < 1 || n > NB_NORMALIZE_MAX_CHANNELS)
        return nbi_error(NB_ERR_ARG, "Normalize: expected 1 to %d mean and std values, but got %d%s",
                         NB_NORMALIZE_MAX_CHANNELS, n, n == -1 ? " (mean or std was NULL)" : "");
    if (n != 1 && n != shape[0])
        return nbi_error(NB_ERR_SHAPE, "Normalize: %d mean and std values cannot apply to an image of %" PRId64
                                       " channels: expected 1 or %" PRId64, n, shape[0], shape[0]);
    for (int c = 0; c < n; c++) {
        double m = t->normalize.mean[c], s = t->normalize.std[c];
        if (!isfinite(m) || !isfinite(s))
            return nbi_error(NB_ERR_ARG, "Normalize: expected finite mean and std, but got mean[%d]=%g std[%d]=%g", c, m,
                             c, s);
        if ((dtype == NB_F32 ? (double)(float)s : s) == 0)
            return nbi_error(NB_ERR_ARG,
                             "Normalize: std evaluated to zero after conversion to %s, leading to division by zero "
                             "(std[%d]=%g)", nb_dtype_name(dtype), c, s);
    }
    return NB_OK;
}

static nb_status check_crop(const nb_transform *t, int64_t *shape, nbd_crop_geometry *g) {
    const int64_t *p = t->crop.padding; /* left, top, right, bottom */
    nb_image_pad_mode mode = t->crop.padding_mode;
    if (t->crop.height < 1 || t->crop.width < 1)
        return nbi_error(NB_ERR_ARG, "RandomCrop: expected a crop size of at least 1 x 1, but got %" PRId64 " x %" PRId64,
                         t->crop.height, t->crop.width);
    if (p[0] < 0 || p[1] < 0 || p[2] < 0 || p[3] < 0)
        return nbi_error(NB_ERR_ARG,
                         "RandomCrop: expected padding >= 0, but got (left %" PRId64 ", top %" PRId64 ", right %" PRId64
                         ", bottom %" PRId64 ")", p[0], p[1], p[2], p[3]);
    if (mode < NB_IMAGE_PAD_CONSTANT || mode > NB_IMAGE_PAD_SYMMETRIC)
        return nbi_error(NB_ERR_ARG, "RandomCrop: unknown padding_mode %d: expected constant, edge, reflect or symmetric",
                         (int)mode);
    if (!isfinite(t->crop.fill)) return nbi_error(NB_ERR_ARG, "RandomCrop: expected a finite fill, but got %g", t->crop.fill);
    int64_t H = shape[1], W = shape[2];
    *g = (nbd_crop_geometry){.size = {H, W}, .pad1 = {p[1], p[0], p[3], p[2]}, .mode = mode, .fill = t->crop.fill};
    /* reflect cannot pad by the size or more (torch's pad), symmetric by more than the size */
    int64_t limit_h = mode == NB_IMAGE_PAD_REFLECT ? H - 1 : mode == NB_IMAGE_PAD_SYMMETRIC ? H : INT64_MAX;
    int64_t limit_w = mode == NB_IMAGE_PAD_REFLECT ? W - 1 : mode == NB_IMAGE_PAD_SYMMETRIC ? W : INT64_MAX;
    const char *mname = mode == NB_IMAGE_PAD_REFLECT ? "reflect" : "symmetric";
    if (p[1] > limit_h || p[3] > limit_h || p[0] > limit_w || p[2] > limit_w)
        return nbi_error(NB_ERR_ARG, "RandomCrop: %s padding (left %" PRId64 ", top %" PRId64 ", right %" PRId64
                                     ", bottom %" PRId64 ") must be at most %" PRId64 " x %" PRId64
                                     " for an image of %" PRId64 " x %" PRId64,
                         mname, p[0], p[1], p[2], p[3], limit_h, limit_w, H, W);
    if (p[1] > INT64_MAX / 4 - H - p[3] || p[0] > INT64_MAX / 4 - W - p[2] || t->crop.height > INT64_MAX / 4 ||
        t->crop.width > INT64_MAX / 4)
        return nbi_error(NB_ERR_ARG, "RandomCrop: padding or crop size too large");
    int64_t H1 = H + p[1] + p[3], W1 = W + p[0] + p[2];
    if (t->crop.pad_if_needed) {
        /* torchvision pads both sides by the missing amount */
        if (W1 < t->crop.width) g->pad2[1] = t->crop.width - W1;
        if (H1 < t->crop.height) g->pad2[0] = t->crop.height - H1;
        if ((mode == NB_IMAGE_PAD_REFLECT && (g->pad2[0] > H1 - 1 || g->pad2[1] > W1 - 1)) ||
            (mode == NB_IMAGE_PAD_SYMMETRIC && (g->pad2[0] > H1 || g->pad2[1] > W1)))
            return nbi_error(NB_ERR_ARG, "RandomCrop: pad_if_needed needs %s padding of %" PRId64 " x %" PRId64
                                         ", more than an image of %" PRId64 " x %" PRId64 " allows",
                             mname, g->pad2[0], g->pad2[1], H1, W1);
    }
    int64_t H2 = H1 + 2 * g->pad2[0], W2 = W1 + 2 * g->pad2[1];
    if (t->crop.height > H2 || t->crop.width > W2)
        return nbi_error(NB_ERR_SHAPE, "RandomCrop: Required crop size (%" PRId64 ", %" PRId64
                                       ") is larger than input image size (%" PRId64 ", %" PRId64 ")",
                         t->crop.height, t->crop.width, H2, W2);
    shape[1] = t->crop.height;
    shape[2] = t->crop.width;
    return NB_OK;
}

static nb_status check_affine(const nb_transform *t) {
    const double *d = t->affine.degrees, *tr = t->affine.translate, *s = t->affine.scale, *sh = t->affine.shear;
    if (!isfinite(d[0]) || !isfinite(d[1]) || d[0] > d[1])
        return nbi_error(NB_ERR_ARG, "RandomAffine: expected finite degrees (min, max) with min <= max, but got (%g, %g)",
                         d[0], d[1]);
    if (!(tr[0] >= 0 && tr[0] <= 1 && tr[1] >= 0 && tr[1] <= 1))
        return nbi_error(NB_ERR_ARG, "RandomAffine: translation values should be between 0 and 1, but got (%g, %g)", tr[0],
                         tr[1]);
    if (!(s[0] > 0 && s[1] > 0) || !isfinite(s[0]) || !isfinite(s[1]) || s[0] > s[1])
        return nbi_error(NB_ERR_ARG, "RandomAffine: scale values should be positive (min <= max), but got (%g, %g)", s[0],
                         s[1]);
    for (int k = 0; k < 4; k += 2)
        if (!isfinite(sh[k]) || !isfinite(sh[k + 1]) || sh[k] > sh[k + 1])
            return nbi_error(NB_ERR_ARG, "RandomAffine: expected finite shear ranges (min <= max), but got (%g, %g, %g, %g)",
                             sh[0], sh[1], sh[2], sh[3]);
    if (t->affine.interpolation != NB_INTERP_NEAREST && t->affine.interpolation != NB_INTERP_BILINEAR)
        return nbi_error(NB_ERR_ARG, "RandomAffine: unknown interpolation %d: expected nearest or bilinear",
                         (int)t->affine.interpolation);
    if (!isfinite(t->affine.fill)) return nbi_error(NB_ERR_ARG, "RandomAffine: expected a finite fill, but got %g", t->affine.fill);
    return NB_OK;
}

static nb_status check_hflip(const nb_transform *t) {
    if (!(t->hflip.p >= 0 && t->hflip.p <= 1))
        return nbi_error(NB_ERR_ARG, "RandomHorizontalFlip: expected p in [0, 1], but got %g", t->hflip.p);
    return NB_OK;
}

nb_status nbd_pipeline_init(nbd_pipeline *p, const char *op, const nb_transform *t, int n, nb_dtype dtype, int ndim,
                            const int64_t *in_shape) {
    memset(p, 0, sizeof *p);
    p->dtype = dtype;
    if (n < 0 || (n > 0 && !t))
        return nbi_error(NB_ERR_ARG, "%s: expected transforms with a count >= 0, but got %s and %d", op,
                         t ? "transforms" : "NULL", n);
    if (n == 0) {
        if (ndim == 3) {
            memcpy(p->in_shape, in_shape, sizeof p->in_shape);
            memcpy(p->out_shape, in_shape, sizeof p->out_shape);
            p->scratch = in_shape[0] * in_shape[1] * in_shape[2];
        }
        return NB_OK;
    }
    if (dtype != NB_F32 && dtype != NB_F64)
        return nbi_error(NB_ERR_DTYPE, "%s: transforms need float32 or float64 samples, but got %s", op,
                         nb_dtype_name(dtype));
    if (ndim != 3) {
        char s[128];
        return nbi_error(NB_ERR_SHAPE, "%s: transforms need (C, H, W) image samples, but got samples of shape %s", op,
                         nb_shape_str(ndim, in_shape, s, sizeof s));
    }
    nbd_stage *stages = nbd_alloc(op, sizeof *stages * (size_t)n);
    if (!stages) return NB_ERR_NOMEM;
    int64_t shape[3] = {in_shape[0], in_shape[1], in_shape[2]};
    int64_t most = shape[0] * shape[1] * shape[2];
    for (int k = 0; k < n; k++) {
        nbd_stage *sg = &stages[k];
        memset(sg, 0, sizeof *sg);
        sg->t = t[k];
        memcpy(sg->in_shape, shape, sizeof shape);
        nb_status st;
        switch (t[k].kind) {
        case NB_TRANSFORM_NORMALIZE: st = check_normalize(&t[k], dtype, shape); break;
        case NB_TRANSFORM_RANDOM_CROP: st = check_crop(&t[k], shape, &sg->crop); break;
        case NB_TRANSFORM_RANDOM_HFLIP: st = check_hflip(&t[k]); break;
        case NB_TRANSFORM_RANDOM_AFFINE: st = check_affine(&t[k]); break;
        default: st = nbi_error(NB_ERR_ARG, "%s: transforms[%d] has unknown kind %d", op, k, (int)t[k].kind);
        }
        if (st == NB_OK && shape[0] > 0 && shape[2] > 0 && shape[1] > INT64_MAX / 8 / shape[0] / shape[2])
            st = nbi_error(NB_ERR_ARG, "%s: transforms[%d] makes images too large", op, k);
        if (st != NB_OK) {
            free(stages);
            return st;
        }
        int64_t numel = shape[0] * shape[1] * shape[2];
        if (numel > most) most = numel;
    }
    p->stages = stages;
    p->n = n;
    memcpy(p->in_shape, in_shape, sizeof p->in_shape);
    memcpy(p->out_shape, shape, sizeof p->out_shape);
    p->scratch = most;
    return NB_OK;
}

void nbd_pipeline_free(nbd_pipeline *p) {
    if (!p) return;
    free(p->stages);
    memset(p, 0, sizeof *p);
}

/* U(lo, hi) from rng (exactly lo when lo == hi). */
static double uniform(nb_rng *rng, double lo, double hi) { return lo + (hi - lo) * nb_rng_uniform(rng); }

void nbd_pipeline_run(const nbd_pipeline *p, void *a, void *b, void *out, nb_rng *rng) {
    void *cur = a, *other = b;
    for (int k = 0; k < p->n; k++) {
        const nbd_stage *sg = &p->stages[k];
        const nb_transform *t = &sg->t;
        int64_t C = sg->in_shape[0], H = sg->in_shape[1], W = sg->in_shape[2];
        switch (t->kind) {
        case NB_TRANSFORM_NORMALIZE:
            nbd_normalize(p->dtype, cur, C, H * W, t->normalize.mean, t->normalize.std, t->normalize.num_channels);
            break;
        case NB_TRANSFORM_RANDOM_HFLIP:
            if (nb_rng_uniform(rng) < t->hflip.p) nbd_hflip(p->dtype, cur, C, H, W);
            break;
        case NB_TRANSFORM_RANDOM_CROP: {
            const nbd_crop_geometry *g = &sg->crop;
            int64_t ph = H + g->pad1[0] + g->pad1[2] + 2 * g->pad2[0], pw = W + g->pad1[1] + g->pad1[3] + 2 * g->pad2[1];
            int64_t oh = t->crop.height, ow = t->crop.width, top = 0, left = 0;
            if (ph != oh || pw != ow) { /* torchvision draws nothing when the sizes agree */
                top = (int64_t)nb_rng_below(rng, (uint64_t)(ph - oh + 1));
                left = (int64_t)nb_rng_below(rng, (uint64_t)(pw - ow + 1));
            }
            nbd_crop(p->dtype, other, cur, C, g, oh, ow, top, left);
            void *s = cur;
            cur = other, other = s;
            break;
        }
        case NB_TRANSFORM_RANDOM_AFFINE: {
            const double *d = t->affine.degrees, *tr = t->affine.translate, *sc = t->affine.scale, *sh = t->affine.shear;
            double angle = uniform(rng, d[0], d[1]);
            double max_dx = tr[0] * (double)W, max_dy = tr[1] * (double)H;
            /* Python's round: half to even, which nearbyint does in the default rounding mode */
            double tx = nearbyint(uniform(rng, -max_dx, max_dx)), ty = nearbyint(uniform(rng, -max_dy, max_dy));
            double scale = uniform(rng, sc[0], sc[1]);
            double shx = uniform(rng, sh[0], sh[1]), shy = uniform(rng, sh[2], sh[3]);
            double m[6];
            nbd_affine_inverse_matrix(angle, tx, ty, scale, shx, shy, m);
            nbd_affine(p->dtype, other, cur, C, H, W, m, t->affine.interpolation, t->affine.fill);
            void *s = cur;
            cur = other, other = s;
            break;
        }
        }
    }
    int64_t numel = p->out_shape[0] * p->out_shape[1] * p->out_shape[2];
    memcpy(out, cur, (size_t)numel * nb_dtype_size(p->dtype));
}

static uint64_t mix64(uint64_t z) { /* splitmix64's finalizer */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void nbd_sample_rng(nb_rng *rng, uint64_t seed, int64_t epoch, int64_t pos) {
    uint64_t h = mix64(seed + 0x9e3779b97f4a7c15ULL);
    h = mix64(h ^ (uint64_t)epoch);
    h = mix64(h ^ (uint64_t)pos);
    nb_rng_seed(rng, h);
}

nb_tensor *nb_transforms_apply(const nb_tensor *x, const nb_transform *transforms, int n, nb_rng *rng) {
    const char *op = "transforms_apply";
    int64_t N, C, H, W;
    if (!nbd_check_images(op, x, &N, &C, &H, &W)) return NULL;
    nbd_pipeline p;
    int64_t in_shape[3] = {C, H, W};
    if (nbd_pipeline_init(&p, op, transforms, n, x->dtype, 3, in_shape) != NB_OK) return NULL;
    if (!rng) rng = nb_default_rng();
    int64_t shape[4] = {N, p.out_shape[0], p.out_shape[1], p.out_shape[2]};
    size_t es = nb_dtype_size(x->dtype);
    nb_tensor *src = nbi_contiguous_data(x);
    nb_tensor *y = src ? nbi_empty_op(op, x->dtype, x->ndim, shape + (x->ndim == 4 ? 0 : 1)) : NULL;
    char *a = y ? nbd_alloc(op, 2 * (size_t)p.scratch * es) : NULL;
    if (a) {
        int64_t in_numel = C * H * W, out_numel = p.out_shape[0] * p.out_shape[1] * p.out_shape[2];
        for (int64_t i = 0; i < N; i++) {
            memcpy(a, (const char *)nbi_data(src) + (size_t)(i * in_numel) * es, (size_t)in_numel * es);
            nbd_pipeline_run(&p, a, a + (size_t)p.scratch * es, (char *)nbi_data(y) + (size_t)(i * out_numel) * es, rng);
        }
    } else {
        nbi_release(y);
        y = NULL;
    }
    free(a);
    nbi_release(src);
    nbd_pipeline_free(&p);
    return nbi_give(y);
}
