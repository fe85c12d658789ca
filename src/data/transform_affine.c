/* transform_affine.c: torchvision's affine transform of a tensor image
 * (torchvision.transforms.functional.affine: _get_inverse_affine_matrix,
 * _gen_affine_grid, then grid_sample with align_corners=False and padding
 * zeros, and the fill mask of _apply_grid_transform), folded into one pass:
 * output pixel (i, j), centred as x = j - W/2 + 0.5, y = i - H/2 + 0.5, reads
 * the input at column m0 x + m1 y + m2 + (W - 1)/2 and row
 * m3 x + m4 y + m5 + (H - 1)/2 (the grid's normalisation by W/2 and
 * grid_sample's unnormalisation cancel). */
#include "data_internal.h"

#include <math.h>

void nbd_affine_inverse_matrix(double angle, double tx, double ty, double scale, double shear_x, double shear_y,
                               double *m) {
    const double deg = 3.141592653589793 / 180.0; /* Python's math.radians: x * (pi / 180) */
    double rot = angle * deg, sx = shear_x * deg, sy = shear_y * deg;
    /* RotateScaleShear without the scale; its determinant is 1 */
    double a = cos(rot - sy) / cos(sy);
    double b = -cos(rot - sy) * tan(sx) / cos(sy) - sin(rot);
    double c = sin(rot - sy) / cos(sy);
    double d = -sin(rot - sy) * tan(sx) / cos(sy) + cos(rot);
    /* inverse, divided by the scale, then the inverse translation (center (0, 0) in tensor coordinates) */
    m[0] = d / scale, m[1] = -b / scale, m[3] = -c / scale, m[4] = a / scale;
    m[2] = m[0] * -tx + m[1] * -ty;
    m[5] = m[3] * -tx + m[4] * -ty;
}

void nbd_affine(nb_dtype dtype, void *y, const void *x, int64_t C, int64_t H, int64_t W, const double *m,
                nb_interpolation interp, double fill) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *out = y;      // (C, H, W)
        const T *in = x; // (C, H, W)
        for (int64_t i = 0; i < H; i++) {
            double yc = (double)i - (double)H * 0.5 + 0.5;
            for (int64_t j = 0; j < W; j++) {
                double xc = (double)j - (double)W * 0.5 + 0.5;
                double sx = m[0] * xc + m[1] * yc + m[2] + ((double)W - 1) * 0.5;
                double sy = m[3] * xc + m[4] * yc + m[5] + ((double)H - 1) * 0.5;
                if (interp == NB_INTERP_NEAREST) {
                    /* grid_sample's nearest: round half to even, then zero outside;
                     * torchvision's mask replaces outside by fill */
                    double rx = nearbyint(sx), ry = nearbyint(sy);
                    bool inside = rx >= 0 && rx < (double)W && ry >= 0 && ry < (double)H;
                    int64_t k = inside ? (int64_t)ry * W + (int64_t)rx : 0;
                    for (int64_t c = 0; c < C; c++) out[(c * H + i) * W + j] = inside ? in[c * H * W + k] : (T)fill;
                    continue;
                }
                /* bilinear over the four neighbours that lie inside; mask is
                 * the sampled coverage (grid_sample of an all-ones image) */
                double x0 = floor(sx), y0 = floor(sy);
                double fx = sx - x0, fy = sy - y0;
                double w[4] = {(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy};
                double cx[4] = {x0, x0 + 1, x0, x0 + 1}, cy[4] = {y0, y0, y0 + 1, y0 + 1};
                int64_t idx[4];
                double mask = 0;
                for (int q = 0; q < 4; q++) {
                    bool inside = cx[q] >= 0 && cx[q] < (double)W && cy[q] >= 0 && cy[q] < (double)H;
                    idx[q] = inside ? (int64_t)cy[q] * W + (int64_t)cx[q] : -1;
                    if (inside) mask += w[q];
                }
                for (int64_t c = 0; c < C; c++) {
                    const T *plane = in + c * H * W;
                    double v = 0;
                    for (int q = 0; q < 4; q++)
                        if (idx[q] >= 0) v += (double)plane[idx[q]] * w[q];
                    out[(c * H + i) * W + j] = (T)(v * mask + (1.0 - mask) * fill);
                }
            }
        }
    });
}

nb_tensor *nb_image_affine(const nb_tensor *x, double angle, double tx, double ty, double scale, double shear_x,
                           double shear_y, nb_interpolation interpolation, double fill) {
    const char *op = "image_affine";
    int64_t N, C, H, W;
    if (!nbd_check_images(op, x, &N, &C, &H, &W)) return NULL;
    if (!isfinite(angle) || !isfinite(tx) || !isfinite(ty) || !isfinite(shear_x) || !isfinite(shear_y) ||
        !isfinite(fill)) {
        nbi_error(NB_ERR_ARG, "%s: expected finite angle, translation, shear and fill, but got angle=%g tx=%g ty=%g "
                              "shear=(%g, %g) fill=%g", op, angle, tx, ty, shear_x, shear_y, fill);
        return NULL;
    }
    if (!(scale > 0) || !isfinite(scale)) {
        nbi_error(NB_ERR_ARG, "%s: Argument scale should be positive, but got %g", op, scale);
        return NULL;
    }
    if (interpolation != NB_INTERP_NEAREST && interpolation != NB_INTERP_BILINEAR) {
        nbi_error(NB_ERR_ARG, "%s: unknown interpolation %d: expected NB_INTERP_NEAREST or NB_INTERP_BILINEAR", op,
                  (int)interpolation);
        return NULL;
    }
    nb_tensor *src = nbi_contiguous_data(x);
    nb_tensor *y = src ? nbi_empty_op(op, x->dtype, x->ndim, x->shape) : NULL;
    if (y) {
        double m[6];
        nbd_affine_inverse_matrix(angle, tx, ty, scale, shear_x, shear_y, m);
        size_t plane = (size_t)(C * H * W) * nb_dtype_size(x->dtype);
        for (int64_t n = 0; n < N; n++)
            nbd_affine(x->dtype, (char *)nbi_data(y) + n * plane, (const char *)nbi_data(src) + n * plane, C, H, W, m,
                       interpolation, fill);
    }
    nbi_release(src);
    return nbi_give(y);
}
