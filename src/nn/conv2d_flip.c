/* The input gradient of a stride-1 conv as a forward conv of dy, for the
 * implicit-GEMM and Winograd kernels (no column buffer, no col2im, no zeroing
 * of dx):
 *
 *   dx[c, h, w] = sum over o, i, j of W[o, c, i, j] dy[o, h + pt - i*dh, w + pl - j*dw]
 *
 * With i' = kh-1-i this is a forward conv of dy by
 * Wt[c, o, i', j'] = W[o, c, kh-1-i', kw-1-j'] (per group), stride 1, the
 * same dilation, padding (kh-1)*dh - pt on top and (kh-1)*dh - pb at the
 * bottom (likewise for columns), which must not be negative. */
#include "nn/conv_internal.h"

nbi_conv_geom nbi_conv2d_flip_geom(const nbi_conv_geom *g) {
    const int64_t eh = (g->kh - 1) * g->dh, ew = (g->kw - 1) * g->dw;
    return (nbi_conv_geom){.N = g->N, .C = g->O, .H = g->Ho, .W = g->Wo, .O = g->C, .kh = g->kh, .kw = g->kw,
                           .sh = 1, .sw = 1, .pt = eh - g->pt, .pb = eh - g->pb, .pl = ew - g->pl, .pr = ew - g->pr,
                           .dh = g->dh, .dw = g->dw, .groups = g->groups, .Ho = g->H, .Wo = g->W};
}

bool nbi_conv2d_flip_ok(const nbi_conv_geom *g) {
    if (g->sh != 1 || g->sw != 1) return false;
    const nbi_conv_geom t = nbi_conv2d_flip_geom(g);
    return t.pt >= 0 && t.pb >= 0 && t.pl >= 0 && t.pr >= 0;
}

nb_status nbi_conv2d_dx_by_forward(float *dx, const float *dy, const float *w, const nbi_conv_geom *g,
                                   nb_status (*forward)(float *y, const float *x, const float *w, const float *b,
                                                        const nbi_conv_geom *g)) {
    const int64_t G = g->groups, Og = g->O / G, Cg = g->C / G, kk = g->kh * g->kw;
    const size_t bytes = (size_t)(g->C * Og * kk) * sizeof(float);
    float *wt = nbi_alloc(bytes); // wt: (C, O/g, kh, kw)
    if (!wt) return nbi_error(NB_ERR_NOMEM, "conv2d backward: out of memory for a %zu-byte weight buffer", bytes);
    for (int64_t gi = 0; gi < G; gi++)
        for (int64_t o = 0; o < Og; o++)
            for (int64_t c = 0; c < Cg; c++)
                for (int64_t t = 0; t < kk; t++)
                    wt[((gi * Cg + c) * Og + o) * kk + t] = w[((gi * Og + o) * Cg + c) * kk + (kk - 1 - t)];
    const nbi_conv_geom t = nbi_conv2d_flip_geom(g);
    const nb_status st = forward(dx, dy, wt, NULL, &t);
    nbi_free(wt, bytes);
    return st;
}
