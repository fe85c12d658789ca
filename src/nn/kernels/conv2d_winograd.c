/* Float32 3x3, stride-1 Conv2d by Winograd's F(2x2, 3x3), for one CPU set
 * (its domain and when it is chosen: conv2d_algo.c). Each 2x2 block of
 * output pixels (a tile) comes from a 4x4 input patch d as
 *   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A,  summed over input channels,
 * so the channel sum becomes 16 independent GEMMs (one per element xi of the
 * 4x4 transformed tile), M[xi] (O, tiles) = U[xi] (O, C) x V[xi] (C, tiles),
 * with 16 multiplies per tile and channel pair instead of 36: 2.25x fewer
 * FLOPs than im2col. The transforms' coefficients are 0, ±1 and ±1/2, exact
 * in binary; the result differs from the direct sum by rounding only (about
 * 1e-6 relative, well inside the float32 tolerance against PyTorch).
 *
 *   Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   G  = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   Aᵀ = [1 1 1 0; 0 1 -1 -1]
 *
 * Work is cut into units of one item and a band of tile rows (sized so that
 * a unit's buffers stay near L2). Per unit and input channel, the input
 * transform runs in two vectorisable passes over contiguous arrays: along
 * each input row (d B, from the row split into even and odd columns), then
 * down the tiles (Bᵀ (d B)), written straight in the GEMM micro-kernel's
 * packed B layout. The kernel multiplies by U[xi], packed once per call, and
 * the output transform writes the unit's pixels. Each output pixel belongs
 * to one unit, so threads split the units and the bits do not depend on the
 * thread count. The input gradient is the forward of dy with the flipped
 * kernel (conv2d_flip.c). */
#include "nn/conv_internal.h"
#include "tensor/kernels/gemm_micro.h"

#include <string.h>

#define MR NBI_SGEMM_MR
#define NR NBI_SGEMM_NR
#define KC NBI_GEMM_KC

/* Target floats of one unit's V and M buffers together (about 1 MiB). */
#define UNIT_FLOATS (1 << 18)

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/* up: 16 blocks of ceil(O/MR) A panels (C, MR), block xi holding U[xi] =
 * (G g Gᵀ)[xi] for every (o, c), zero in the rows past O. */
static void pack_weights(float *restrict up, const float *w, int64_t O, int64_t C) {
    const int64_t block = round_up(O, MR) * C;
    memset(up, 0, (size_t)(16 * block) * sizeof(float));
    for (int64_t o = 0; o < O; o++)
        for (int64_t c = 0; c < C; c++) {
            const float *k = w + (o * C + c) * 9; // k: (3, 3)
            float t[4][3];                        // t = G k
            for (int j = 0; j < 3; j++) {
                t[0][j] = k[j];
                t[1][j] = 0.5f * (k[j] + k[3 + j] + k[6 + j]);
                t[2][j] = 0.5f * (k[j] - k[3 + j] + k[6 + j]);
                t[3][j] = k[6 + j];
            }
            for (int i = 0; i < 4; i++) {
                const float u[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]),
                                    0.5f * (t[i][0] - t[i][1] + t[i][2]), t[i][2]}; // (G k Gᵀ)[i, :]
                for (int j = 0; j < 4; j++) up[(i * 4 + j) * block + (o / MR) * C * MR + c * MR + o % MR] = u[j];
            }
        }
}

/* Sizes shared by every unit of a call. */
typedef struct wino {
    const nbi_conv_geom *g;
    int64_t th, tw;  /* tiles per item: rows, columns */
    int64_t band;    /* tile rows per unit */
    int64_t twp;     /* tw rounded up to whole vectors (row passes run this long) */
    int64_t tcp;     /* a unit's tiles rounded up to whole panels of NR */
    int64_t Opad;    /* O rounded up to whole MR tiles */
} wino;

/* ev, od <- the even and odd columns of input row ih, from column iw0 on,
 * n of each, zero outside the image. Split that way, tile j's four columns
 * are ev[j], od[j], ev[j+1], od[j+1]. */
static void split_row(float *restrict ev, float *restrict od, const float *xc, int64_t H, int64_t W, int64_t ih,
                      int64_t iw0, int64_t n) {
    if (ih < 0 || ih >= H) {
        for (int64_t j = 0; j < n; j++) ev[j] = od[j] = 0;
        return;
    }
    const float *xr = xc + ih * W;
    /* j in [lo, hi): both columns iw0 + 2j and iw0 + 2j + 1 inside [0, W) */
    int64_t lo = iw0 >= 0 ? 0 : (1 - iw0) / 2, hi = W - 1 - iw0 <= 0 ? 0 : (W - iw0) / 2;
    hi = min64(hi, n);
    lo = min64(lo, hi);
    for (int64_t j = 0; j < n; j++) {
        if (j == lo) j = hi; /* the middle is copied below */
        if (j >= n) break;
        const int64_t c = iw0 + 2 * j;
        ev[j] = c >= 0 && c < W ? xr[c] : 0;
        od[j] = c + 1 >= 0 && c + 1 < W ? xr[c + 1] : 0;
    }
    const float *xs = xr + iw0;
    for (int64_t j = lo; j < hi; j++) {
        ev[j] = xs[2 * j];
        od[j] = xs[2 * j + 1];
    }
}

/* hb[k*4 + s][t], for tile t = (ti - ti0)*tw + tj of the unit: column s of
 * (row k of tile t's patch) B. Each input row is row k of the patches of
 * tile row (ih + pt - k)/2, for the two k of its parity. A pass writes twp
 * lanes from its tile row's start; the lanes past tw land on the next tile
 * row, written later, or on the padding at the end of hb. */
static void row_pass(float *restrict hb, int64_t hstride, float *restrict ev, float *restrict od, const float *xc,
                     const wino *z, int64_t ti0, int64_t ti1) {
    const nbi_conv_geom *g = z->g;
    const int64_t tw = z->tw, twp = z->twp;
    for (int64_t ih = 2 * ti0 - g->pt; ih < 2 * ti1 - g->pt + 2; ih++) {
        split_row(ev, od, xc, g->H, g->W, ih, -g->pl, twp + 1);
        for (int64_t k = (ih + g->pt) & 1; k < 4; k += 2) {
            const int64_t ti = (ih + g->pt - k) / 2;
            if (ti < ti0 || ti >= ti1) continue;
            float *restrict h0 = hb + (k * 4 + 0) * hstride + (ti - ti0) * tw, *restrict h1 = h0 + hstride,
                            *restrict h2 = h1 + hstride, *restrict h3 = h2 + hstride;
            _Pragma("omp simd") for (int64_t j = 0; j < twp; j++) {
                h0[j] = ev[j] - ev[j + 1];
                h1[j] = od[j] + ev[j + 1];
                h2[j] = ev[j + 1] - od[j];
                h3[j] = od[j] - od[j + 1];
            }
        }
    }
}

/* V[xi] for channel c, from hb: Bᵀ down each column s, for the first
 * `panels` panels of NR tiles. V[xi] starts at vb + xi*vstride; packed: in
 * the micro-kernel's B layout (panels (C, NR)), else as rows (C, tcp). */
static void col_pass(float *restrict vb, int64_t vstride, bool packed, const float *restrict hb, int64_t hstride,
                     int64_t C, int64_t c, int64_t tcp, int64_t panels) {
    for (int64_t p = 0; p < panels; p++)
        for (int s = 0; s < 4; s++) {
            const float *r0 = hb + s * hstride + p * NR, *r1 = r0 + 4 * hstride, *r2 = r1 + 4 * hstride,
                        *r3 = r2 + 4 * hstride;
            const int64_t at = packed ? (p * C + c) * NR : c * tcp + p * NR;
            float *restrict v0 = vb + s * vstride + at, *restrict v1 = v0 + 4 * vstride,
                            *restrict v2 = v1 + 4 * vstride, *restrict v3 = v2 + 4 * vstride;
            _Pragma("omp simd") for (int q = 0; q < NR; q++) {
                v0[q] = r0[q] - r2[q];
                v1[q] = r1[q] + r2[q];
                v2[q] = r2[q] - r1[q];
                v3[q] = r1[q] - r3[q];
            }
        }
}

/* y's pixels of tile rows ti0 .. ti1-1 of item n from mb: M[xi] at
 * mb + xi*Opad*tcp, rows (O, tcp); plus the bias. The Aᵀ M A sums run over
 * whole vectors of tiles into ob; pixels past the output's edge (odd Ho or
 * Wo) are dropped when ob is copied out. */
static void output_transform(float *y, const float *mb, float *restrict ob, const float *b, const wino *z,
                             int64_t n, int64_t ti0, int64_t ti1) {
    const nbi_conv_geom *g = z->g;
    const int64_t O = g->O, Ho = g->Ho, Wo = g->Wo, tw = z->tw, tcp = z->tcp, xs = z->Opad * tcp;
    const int64_t tiles = (ti1 - ti0) * tw, tp = (tiles + NR - 1) / NR * NR; /* the unit's panels */
    float *restrict y00 = ob, *restrict y01 = ob + tcp, *restrict y10 = ob + 2 * tcp, *restrict y11 = ob + 3 * tcp;
    for (int64_t o = 0; o < O; o++) {
        const float *m = mb + o * tcp; // m[xi * xs + t]
        const float bias = b ? b[o] : 0.0f;
        _Pragma("omp simd") for (int64_t t = 0; t < tp; t++) {
            float u[2][4]; // u = Aᵀ M
            for (int j = 0; j < 4; j++) {
                const float m0 = m[(0 + j) * xs + t], m1 = m[(4 + j) * xs + t], m2 = m[(8 + j) * xs + t],
                            m3 = m[(12 + j) * xs + t];
                u[0][j] = m0 + m1 + m2;
                u[1][j] = m1 - m2 - m3;
            }
            y00[t] = u[0][0] + u[0][1] + u[0][2] + bias;
            y01[t] = u[0][1] - u[0][2] - u[0][3] + bias;
            y10[t] = u[1][0] + u[1][1] + u[1][2] + bias;
            y11[t] = u[1][1] - u[1][2] - u[1][3] + bias;
        }
        float *yo = y + (n * O + o) * Ho * Wo;
        for (int64_t t0 = 0; t0 < tiles; t0 += tw) {
            const int64_t oh = 2 * (ti0 + t0 / tw), whole = Wo / 2; // tiles with both columns inside
            float *restrict r0 = yo + oh * Wo, *restrict r1 = r0 + Wo;
            for (int64_t j = 0; j < whole; j++) {
                r0[2 * j] = y00[t0 + j];
                r0[2 * j + 1] = y01[t0 + j];
            }
            if (Wo & 1) r0[Wo - 1] = y00[t0 + whole];
            if (oh + 1 >= Ho) continue;
            for (int64_t j = 0; j < whole; j++) {
                r1[2 * j] = y10[t0 + j];
                r1[2 * j + 1] = y11[t0 + j];
            }
            if (Wo & 1) r1[Wo - 1] = y10[t0 + whole];
        }
    }
}

static wino wino_sizes(const nbi_conv_geom *g) {
    wino z = {.g = g, .th = (g->Ho + 1) / 2, .tw = (g->Wo + 1) / 2, .Opad = round_up(g->O, MR)};
    z.twp = round_up(z.tw, 16);
    z.band = (UNIT_FLOATS / (16 * (g->C + z.Opad))) / z.tw;
    z.band = z.band < 1 ? 1 : z.band > z.th ? z.th : z.band;
    z.tcp = round_up(z.band * z.tw, NR);
    return z;
}

/* One unit: item n, tile rows ti0 .. ti1-1. buf holds hb, ev/od, V, M, ob. */
static void unit(float *y, const float *x, const float *up, const float *b, const wino *z, float *buf, int64_t n,
                 int64_t ti0, int64_t ti1) {
    const nbi_conv_geom *g = z->g;
    const int64_t C = g->C, O = g->O, Opad = z->Opad, tcp = z->tcp, tiles = (ti1 - ti0) * z->tw;
    const int64_t hstride = tcp + z->twp, vstride = tcp * C, ublock = Opad * C;
    float *hb = buf, *ev = hb + 16 * hstride, *od = ev + z->twp + 16, *vb = od + z->twp + 16; // vb 64-byte aligned
    float *mb = vb + 16 * vstride, *ob = mb + 16 * Opad * tcp;
    /* Only the unit's own panels: the last band of an item may be shorter
     * (a 1-row band ran all of tcp's panels, 2.3x the GEMM work, in a 13-row
     * item split 12 + 1). */
    const int64_t panels = (tiles + NR - 1) / NR;
    for (int64_t c = 0; c < C; c++) {
        row_pass(hb, hstride, ev, od, x + (n * C + c) * g->H * g->W, z, ti0, ti1);
        col_pass(vb, vstride, true, hb, hstride, C, c, tcp, panels);
    }
    for (int64_t p = 0; p < panels; p++) {
        const int cnt = (int)min64(NR, tiles - p * NR);
        for (int xi = 0; xi < 16; xi++)
            for (int64_t o0 = 0; o0 < O; o0 += MR)
                for (int64_t c0 = 0; c0 < C; c0 += KC)
                    nbi_sgemm_kernel(min64(KC, C - c0), up + xi * ublock + o0 * C + c0 * MR,
                                     vb + xi * vstride + (p * C + c0) * NR, mb + (xi * Opad + o0) * tcp + p * NR, tcp,
                                     (int)min64(MR, O - o0), cnt, 1.0f, 0.0f, c0 == 0);
    }
    output_transform(y, mb, ob, b, z, n, ti0, ti1);
}

static nb_status forward_winograd(float *y, const float *x, const float *w, const float *b,
                                  const nbi_conv_geom *g) {
    const wino z = wino_sizes(g);
    const int64_t C = g->C, O = g->O, bands = (z.th + z.band - 1) / z.band, units = g->N * bands;
    const size_t ubytes = (size_t)(16 * z.Opad * C) * sizeof(float);
    const size_t bfloats = (size_t)(16 * (z.tcp + z.twp) + 2 * (z.twp + 16) + 16 * z.tcp * (C + z.Opad) + 4 * z.tcp);
    const size_t bbytes = bfloats * sizeof(float);
    float *up = nbi_alloc(ubytes);
    if (!up) return nbi_error(NB_ERR_NOMEM, "conv2d: out of memory for %zu bytes of transformed weights", ubytes);
    pack_weights(up, w, O, C);
    nb_status st = NB_OK;
    _Pragma("omp parallel if (units > 1)") {
        float *buf = nbi_conv_zeroed_buffer(bbytes, &st); /* hb's padding lanes, read by col_pass, must be finite */
        _Pragma("omp for schedule(static)") for (int64_t u = 0; u < units; u++) {
            if (!buf) continue;
            const int64_t n = u / bands, ti0 = u % bands * z.band, ti1 = min64(ti0 + z.band, z.th);
            unit(y, x, up, b, &z, buf, n, ti0, ti1);
        }
        if (buf) nbi_free(buf, bbytes);
    }
    nbi_free(up, ubytes);
    if (st != NB_OK) return nbi_error(st, "conv2d: out of memory for a %zu-byte Winograd buffer", bbytes);
    return NB_OK;
}

/* ---- weight gradient ----
 * Each tile's share of dW is a 3x3 correlation of its input patch d with its
 * 2x2 block of dy, g. Transposing the forward identity
 * (<g, Aᵀ[(G w Gᵀ) ⊙ V]A> = <w, Gᵀ[(A g Aᵀ) ⊙ V]G>) gives
 *   dW[o, c] = Gᵀ [ Σ_tiles (A g Aᵀ)[o] ⊙ V[c] ] G,
 * with V = Bᵀ d B as in the forward: 16 GEMMs S[xi] (O, C) += Z[xi] (O, tiles)
 * x V[xi]ᵀ (tiles, C), K running over the tiles, then Gᵀ S G per (o, c). */

/* z[xi] (O, tcp) rows at zb + xi*zstride: A g Aᵀ of every tile of the unit,
 * g from dy, zero past the output's edge. ev/od: scratch rows. */
static void dy_transform(float *restrict zb, int64_t zstride, float *restrict gb, int64_t hstride, float *ev,
                         float *od, const float *dy, const wino *z, int64_t n, int64_t ti0, int64_t ti1) {
    const nbi_conv_geom *g = z->g;
    const int64_t O = g->O, Ho = g->Ho, Wo = g->Wo, tw = z->tw, twp = z->twp, tcp = z->tcp;
    for (int64_t o = 0; o < O; o++) {
        const float *dyo = dy + (n * O + o) * Ho * Wo;
        /* gb[(a*2 + b) * hstride + t]: g[a][b] of tile t */
        for (int64_t ti = ti0; ti < ti1; ti++)
            for (int a = 0; a < 2; a++) {
                split_row(ev, od, dyo, Ho, Wo, 2 * ti + a, 0, twp);
                float *restrict g0 = gb + (2 * a) * hstride + (ti - ti0) * tw, *restrict g1 = g0 + hstride;
                _Pragma("omp simd") for (int64_t j = 0; j < twp; j++) {
                    g0[j] = ev[j];
                    g1[j] = od[j];
                }
            }
        const float *restrict g00 = gb, *restrict g01 = gb + hstride, *restrict g10 = gb + 2 * hstride,
                              *restrict g11 = gb + 3 * hstride;
        float *restrict zo = zb + o * tcp;
        _Pragma("omp simd") for (int64_t t = 0; t < tcp; t++) {
            /* r_a = (row a of g) Aᵀ = [g0, g0 + g1, g0 - g1, -g1]; then A down the columns */
            const float r0[4] = {g00[t], g00[t] + g01[t], g00[t] - g01[t], -g01[t]};
            const float r1[4] = {g10[t], g10[t] + g11[t], g10[t] - g11[t], -g11[t]};
            for (int j = 0; j < 4; j++) {
                zo[(0 + j) * zstride + t] = r0[j];
                zo[(4 + j) * zstride + t] = r0[j] + r1[j];
                zo[(8 + j) * zstride + t] = r0[j] - r1[j];
                zo[(12 + j) * zstride + t] = -r1[j];
            }
        }
    }
}

/* The batch is cut into this many fixed pieces (fewer for small batches),
 * each summing its units in order into its own S; the pieces are added in
 * order. A function of the shapes only, never of the thread count. */
#define DW_PIECES 4

static nb_status dw_winograd(float *dw, const float *dy, const float *x, const nbi_conv_geom *g) {
    const wino z = wino_sizes(g);
    const int64_t C = g->C, O = g->O, bands = (z.th + z.band - 1) / z.band, units = g->N * bands;
    const int64_t pieces = units < DW_PIECES ? units : DW_PIECES, sfloats = 16 * O * C;
    const int64_t hstride = z.tcp + z.twp, vstride = z.tcp * C, zstride = z.tcp * O;
    const size_t sbytes = (size_t)(pieces * sfloats) * sizeof(float);
    const size_t bfloats = (size_t)(16 * hstride + 2 * (z.twp + 16) + 16 * (vstride + zstride));
    const size_t bbytes = bfloats * sizeof(float);
    float *sp = nbi_alloc(sbytes); // sp: pieces x S, S[xi] (O, C)
    if (!sp) return nbi_error(NB_ERR_NOMEM, "conv2d backward: out of memory for %zu bytes of weight partials", sbytes);
    nb_status st = NB_OK;
    _Pragma("omp parallel if (pieces > 1)") {
        float *buf = nbi_conv_zeroed_buffer(bbytes, &st); /* hb's padding lanes, read by col_pass, must be finite */
        _Pragma("omp for schedule(static)") for (int64_t pc = 0; pc < pieces; pc++) {
            if (!buf) continue;
            float *S = sp + pc * sfloats, *hb = buf, *ev = hb + 16 * hstride, *od = ev + z.twp + 16;
            float *vb = od + z.twp + 16, *zb = vb + 16 * vstride;
            for (int64_t u = pc * units / pieces; u < (pc + 1) * units / pieces; u++) {
                const int64_t n = u / bands, ti0 = u % bands * z.band, ti1 = min64(ti0 + z.band, z.th);
                const int64_t tiles = (ti1 - ti0) * z.tw;
                for (int64_t c = 0; c < C; c++) {
                    row_pass(hb, hstride, ev, od, x + (n * C + c) * g->H * g->W, &z, ti0, ti1);
                    col_pass(vb, vstride, false, hb, hstride, C, c, z.tcp, (tiles + NR - 1) / NR);
                }
                dy_transform(zb, zstride, hb, hstride, ev, od, dy, &z, n, ti0, ti1);
                const bool first = u == pc * units / pieces;
                for (int xi = 0; xi < 16; xi++)
                    nbi_sgemm(false, true, O, C, tiles, 1.0f, zb + xi * zstride, z.tcp, vb + xi * vstride, z.tcp,
                              first ? 0.0f : 1.0f, S + xi * O * C, C);
            }
        }
        if (buf) nbi_free(buf, bbytes);
    }
    if (st != NB_OK) {
        nbi_free(sp, sbytes);
        return nbi_error(st, "conv2d backward: out of memory for a %zu-byte Winograd buffer", bbytes);
    }
    /* S = the pieces in order; dW[o, c] = Gᵀ S G, Gᵀ = [1 ½ ½ 0; 0 ½ -½ 0; 0 ½ ½ 1]. */
    nbi_conv_add_partials(sp, sp + sfloats, pieces - 1, sfloats);
    for (int64_t o = 0; o < O; o++)
        for (int64_t c = 0; c < C; c++) {
            float s4[4][4], t[3][4];
            for (int xi = 0; xi < 16; xi++) s4[xi / 4][xi % 4] = sp[xi * O * C + o * C + c];
            for (int j = 0; j < 4; j++) { // t = Gᵀ s4
                t[0][j] = s4[0][j] + 0.5f * (s4[1][j] + s4[2][j]);
                t[1][j] = 0.5f * (s4[1][j] - s4[2][j]);
                t[2][j] = 0.5f * (s4[1][j] + s4[2][j]) + s4[3][j];
            }
            float *k = dw + (o * C + c) * 9;
            for (int i = 0; i < 3; i++) { // (t G)[i, :]
                k[i * 3 + 0] = t[i][0] + 0.5f * (t[i][1] + t[i][2]);
                k[i * 3 + 1] = 0.5f * (t[i][1] - t[i][2]);
                k[i * 3 + 2] = 0.5f * (t[i][1] + t[i][2]) + t[i][3];
            }
        }
    nbi_free(sp, sbytes);
    return NB_OK;
}

static nb_status dx_winograd(float *dx, const float *dy, const float *w, const nbi_conv_geom *g) {
    return nbi_conv2d_dx_by_forward(dx, dy, w, g, forward_winograd);
}

#if defined(NBI_KERNELS_AVX512)
#define THIS_SET nbi_conv2d_winograd_avx512
#elif defined(NBI_KERNELS_AVX2)
#define THIS_SET nbi_conv2d_winograd_avx2
#else
#define THIS_SET nbi_conv2d_winograd_portable
#endif
const nbi_conv2d_kernels THIS_SET = {.forward = forward_winograd, .dx = dx_winograd, .dw = dw_winograd};
