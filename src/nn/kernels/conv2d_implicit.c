/* Float32 Conv2d as implicit GEMM, for one CPU set: the products of
 * conv2d_im2col.c (the derivation is in docs/conv2d.md), but the im2col
 * matrix is never written to memory. nbi_sgemm_packed calls back here to
 * pack its B panels, and we copy the receptive fields straight from the
 * input into the panel layout.
 * That saves writing and re-reading K*L floats per item (7 MB for a 64->64
 * 3x3 conv on 56x56), which cost about a fifth of the forward time.
 *
 *   forward:  y_n,g (Og, L) = W_g (Og, Kg) x col_g(x_n) (Kg, L)      per item
 *   weight:   dW_g (Og, Kg) = dY_g (Og, N*L) x col_g(x)ᵀ (N*L, Kg)   one GEMM
 *   input:    stride 1: dx = conv(dy, W flipped and transposed) with the
 *             complementary padding: a forward of the same kind, no col2im
 *             (conv2d_flip.c).
 *
 * Determinism: each GEMM sums K in one fixed order (nbi_sgemm's contract);
 * the forward splits the batch between threads (each item's output is one
 * thread's); the weight gradient sums a fixed number of batch pieces, one
 * GEMM each, in piece order. Nothing depends on the thread count. */
#include "nn/conv_internal.h"
#include "nn/kernels/conv2d_rows.h"
#include "tensor/kernels/gemm_micro.h"
#include "tensor/kernels/gemm_pack.h"

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* dst[0:n] <- row (c, i, j) of the im2col matrix of one item x: (C, H, W),
 * columns l0 .. l0+n-1 (output pixels in row-major order), zero where the
 * tap falls in the padding. */
static void col_row(float *restrict dst, const float *x, const nbi_conv_geom *g, int64_t c, int64_t i, int64_t j,
                    int64_t l0, int64_t n) {
    const int64_t H = g->H, W = g->W, Wo = g->Wo, sw = g->sw, off = j * g->dw - g->pl;
    const float *xc = x + c * H * W; // xc: (H, W)
    int64_t lo, hi;
    nbi_conv_valid_range(off, sw, W, Wo, &lo, &hi);
    int64_t oh = l0 / Wo, ow = l0 % Wo;
    while (n > 0) {
        const int64_t m = min64(n, Wo - ow), e = ow + m, ih = oh * g->sh - g->pt + i * g->dh;
        if (ih < 0 || ih >= H) {
            for (int64_t t = 0; t < m; t++) dst[t] = 0;
        } else {
            const float *xr = xc + ih * W + off; /* xr[q*sw] in bounds for q in [lo, hi) */
            const int64_t a = clamp64(lo, ow, e), b = clamp64(hi, a, e);
            float *d = dst - ow;
            for (int64_t q = ow; q < a; q++) d[q] = 0;
            if (sw == 1)
                for (int64_t q = a; q < b; q++) d[q] = xr[q];
            else if (sw == 2)
                nbi_copy_stride2_f32(d + a, xr + 2 * a, b - a);
            else
                for (int64_t q = a; q < b; q++) d[q] = xr[q * sw];
            for (int64_t q = b; q < e; q++) d[q] = 0;
        }
        dst += m;
        n -= m;
        oh++;
        ow = 0;
    }
}

/* The B operand of the forward: col_g(x_n) (Kg, L), rows k = (c, i, j)
 * with c counted from the group's first channel c0, read from a zero-padded
 * copy xp of the item, so that every tap is in bounds: row (c, i, j),
 * column l = (oh, ow) is xp[c, oh*sh + i*dh, ow*sw + j*dw]. A panel's
 * columns are runs of consecutive ow (one run per output row it touches);
 * with sw = 1 each run is a contiguous piece of xp, copied by masked vector
 * loads whose masks and offsets are worked out once per panel. */
typedef struct col_ctx {
    const float *xp; // xp: (C, Hp, Wp), one item, padded
    const nbi_conv_geom *g;
    int64_t Hp, Wp, c0;
} col_ctx;

#if defined(NBI_KERNELS_AVX512)
#include <immintrin.h>
/* Pieces one 16-lane vector may hold before we use the scalar path. */
#define MAX_PIECES 4
#endif

static void pack_col_b(float *restrict dst, int w, const void *vctx, int64_t p0, int64_t kc, int64_t j0, int64_t nc) {
    const col_ctx *cx = vctx;
    const nbi_conv_geom *g = cx->g;
    const int64_t kh = g->kh, kw = g->kw, Wo = g->Wo, Wp = cx->Wp, HWp = cx->Hp * Wp;
    for (int64_t s = 0; s < nc; s += w, dst += kc * w) {
        const int nr = (int)min64(w, nc - s);
        int32_t pos[NBI_SGEMM_NR]; // pos[t]: offset in xp's channel of column t's tap (0, 0)
        for (int t = 0; t < nr; t++) {
            const int64_t l = j0 + s + t;
            pos[t] = (int32_t)(l / Wo * g->sh * Wp + l % Wo * g->sw);
        }
        /* first row's (c, i, j), then counted up */
        int64_t r = p0, c = cx->c0 + r / (kh * kw), i = r % (kh * kw) / kw, j = r % kw;
#if defined(NBI_KERNELS_AVX512)
        bool vec = g->sw == 1 && w % 16 == 0;
        __mmask16 pm[NBI_SGEMM_NR / 16][MAX_PIECES];
        int32_t pd[NBI_SGEMM_NR / 16][MAX_PIECES]; // source offset minus lane index
        int np[NBI_SGEMM_NR / 16];
        for (int v = 0; vec && v < w / 16; v++) {
            np[v] = 0;
            for (int t = 16 * v; t < 16 * v + 16 && t < nr; t++) {
                if (t == 16 * v || pos[t] != pos[t - 1] + 1) { /* a new piece */
                    if (np[v] == MAX_PIECES) {
                        vec = false;
                        break;
                    }
                    pm[v][np[v]] = 0;
                    pd[v][np[v]] = pos[t] - t;
                    np[v]++;
                }
                pm[v][np[v] - 1] |= (__mmask16)(1u << (t - 16 * v));
            }
        }
        if (vec) {
            for (int64_t k = 0; k < kc; k++) {
                const float *src = cx->xp + c * HWp + i * g->dh * Wp + j * g->dw;
                for (int v = 0; v < w / 16; v++) {
                    __m512 a = _mm512_setzero_ps();
                    for (int q = 0; q < np[v]; q++)
                        a = _mm512_mask_loadu_ps(a, pm[v][q], src + pd[v][q] + 16 * v);
                    _mm512_store_ps(dst + k * w + 16 * v, a);
                }
                if (++j == kw) {
                    j = 0;
                    if (++i == kh) i = 0, c++;
                }
            }
            continue;
        }
#endif
        for (int64_t k = 0; k < kc; k++) {
            const float *src = cx->xp + c * HWp + i * g->dh * Wp + j * g->dw;
            float *d = dst + k * w;
            for (int t = 0; t < nr; t++) d[t] = src[pos[t]];
            for (int t = nr; t < w; t++) d[t] = 0;
            if (++j == kw) {
                j = 0;
                if (++i == kh) i = 0, c++;
            }
        }
    }
}

/* xp: (C, Hp, Wp) <- x: (C, H, W) with the conv's zero padding around it. */
static void pad_item(float *restrict xp, const float *x, const nbi_conv_geom *g, int64_t Hp, int64_t Wp) {
    const int64_t H = g->H, W = g->W;
    for (int64_t c = 0; c < g->C; c++) {
        float *pc = xp + c * Hp * Wp;
        const float *xc = x + c * H * W;
        for (int64_t r = 0; r < g->pt * Wp; r++) pc[r] = 0;
        for (int64_t h = 0; h < H; h++) {
            float *row = pc + (g->pt + h) * Wp;
            for (int64_t q = 0; q < g->pl; q++) row[q] = 0;
            for (int64_t q = 0; q < W; q++) row[g->pl + q] = xc[h * W + q];
            for (int64_t q = g->pl + W; q < Wp; q++) row[q] = 0;
        }
        for (int64_t r = (g->pt + H) * Wp; r < Hp * Wp; r++) pc[r] = 0;
    }
}

static nb_status forward_implicit(float *y, const float *x, const float *w, const float *b, const nbi_conv_geom *g) {
    const int64_t N = g->N, C = g->C, O = g->O, L = g->Ho * g->Wo, G = g->groups;
    const int64_t Og = O / G, Cg = C / G, Kg = Cg * g->kh * g->kw;
    const int64_t Hp = g->H + g->pt + g->pb, Wp = g->W + g->pl + g->pr;
    const bool padded = Hp != g->H || Wp != g->W;
    const size_t pbytes = (size_t)(C * Hp * Wp) * sizeof(float);
    nb_status st = NB_OK;
    /* Items are independent: each thread writes only its own y[n]. With one
     * item the region is inactive and the GEMM spreads its tiles instead. */
    _Pragma("omp parallel for schedule(static) if (N > 1)")
    for (int64_t n = 0; n < N; n++) {
        const float *xn = x + n * C * g->H * g->W; // xn: (C, H, W)
        float *yn = y + n * O * L;                 // yn: (O, Ho*Wo)
        float *xp = NULL;                          // xp: (C, Hp, Wp)
        if (padded) {
            xp = nbi_alloc(pbytes);
            if (!xp) {
                _Pragma("omp critical(nbi_conv_implicit)") st = NB_ERR_NOMEM;
                continue;
            }
            pad_item(xp, xn, g, Hp, Wp);
        }
        for (int64_t gi = 0; gi < G; gi++) {
            const nbi_smat a = {w + gi * Og * Kg, Kg, false}; // W_g: (Og, Kg)
            const col_ctx bc = {padded ? xp : xn, g, Hp, Wp, gi * Cg};
            nbi_sgemm_packed(Og, L, Kg, nbi_spack_a_mat, &a, pack_col_b, &bc, yn + gi * Og * L, L);
        }
        if (xp) nbi_free(xp, pbytes);
        if (b)
            for (int64_t o = 0; o < O; o++)
                for (int64_t l = 0; l < L; l++) yn[o * L + l] += b[o];
    }
    if (st != NB_OK) return nbi_error(st, "conv2d: out of memory for a %zu-byte padded input", pbytes);
    return NB_OK;
}

/* ---- weight gradient: K runs over (item, output pixel) ---- */

/* The A operand: dY_g (Og, N*L), row o of item n at dy + (n*O + o0 + o)*L. */
typedef struct dy_ctx {
    const float *dy; // dy: (N, O, L)
    int64_t O, L, o0;
} dy_ctx;

static void pack_dy_a(float *restrict dst, int w, const void *vctx, int64_t p0, int64_t kc, int64_t i0, int64_t mc) {
    const dy_ctx *cx = vctx;
    const int64_t L = cx->L;
    for (int64_t r = 0; r < mc; r += w, dst += kc * w) {
        const int64_t mr = min64(w, mc - r);
        for (int64_t k = 0; k < kc;) { /* one piece per item the K slice touches */
            const int64_t n = (p0 + k) / L, l = (p0 + k) % L, cnt = min64(kc - k, L - l);
            nbi_sgemm_pack_a(dst + k * w, false, cx->dy + (n * cx->O + cx->o0) * L, L, i0 + r, mr, l, cnt);
            k += cnt;
        }
    }
}

/* The B operand: col_g(x)ᵀ (N*L, Kg). Its columns are im2col rows, so each
 * panel is built as rows in a buffer (contiguous copies) and transposed by
 * the GEMM's own packer. */
typedef struct colt_ctx {
    const float *x; // x: (N, C, H, W)
    const nbi_conv_geom *g;
    int64_t c0;
} colt_ctx;

static void pack_colt_b(float *restrict dst, int w, const void *vctx, int64_t p0, int64_t kc, int64_t j0, int64_t nc) {
    const colt_ctx *cx = vctx;
    const nbi_conv_geom *g = cx->g;
    const int64_t kk = g->kh * g->kw, L = g->Ho * g->Wo, CHW = g->C * g->H * g->W;
    if (g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 && g->pb == 0 &&
        g->pr == 0) {
        /* pointwise: col_g(x)ᵀ's rows within an item are x_n's columns, so
         * each item's piece of the K slice is a plain transposed operand */
        for (int64_t s = 0; s < nc; s += w, dst += kc * w)
            for (int64_t k = 0; k < kc;) {
                const int64_t n = (p0 + k) / L, l = (p0 + k) % L, cnt = min64(kc - k, L - l);
                nbi_sgemm_pack_b(dst + k * w, w, true, cx->x + n * CHW + cx->c0 * L, L, l, cnt, j0 + s,
                                 min64(w, nc - s));
                k += cnt;
            }
        return;
    }
    _Alignas(64) float rows[NBI_SGEMM_NR * NBI_GEMM_KC]; // rows: (nr, kc), the panel's columns
    for (int64_t s = 0; s < nc; s += w, dst += kc * w) {
        const int64_t nr = min64(w, nc - s);
        for (int64_t q = 0; q < nr; q++) {
            const int64_t r = j0 + s + q, c = cx->c0 + r / kk, i = r % kk / g->kw, j = r % g->kw;
            for (int64_t k = 0; k < kc;) {
                const int64_t n = (p0 + k) / L, l = (p0 + k) % L, cnt = min64(kc - k, L - l);
                col_row(rows + q * kc + k, cx->x + n * CHW, g, c, i, j, l, cnt);
                k += cnt;
            }
        }
        nbi_sgemm_pack_b(dst, w, true, rows, kc, 0, kc, 0, nr);
    }
}

/* The batch is cut into DW_CHUNKS fixed pieces (fewer for small batches or
 * huge weights: a function of the shapes only, never of the thread count).
 * Each piece is one GEMM (K = its items' pixels) into its own partial, run by
 * one thread; the partials are added in piece order. Splitting K this way
 * rather than letting one GEMM split dW's tiles means no thread packs the
 * other's operands: with tiles split, each thread packed all of dY (or all of
 * the columns, when M was split), and tutorial_a's dW (33 x 144: 5 x 3 tiles)
 * could only be split 3:2. */
#define DW_CHUNKS 4
#define DW_PARTIAL_BUDGET ((size_t)64 << 20)

static nb_status dw_implicit(float *dw, const float *dy, const float *x, const nbi_conv_geom *g) {
    const int64_t N = g->N, G = g->groups, Og = g->O / G, Cg = g->C / G, Kg = Cg * g->kh * g->kw, L = g->Ho * g->Wo;
    const int64_t wsize = g->O * Kg, CHW = g->C * g->H * g->W;
    int64_t nchunk = N < DW_CHUNKS ? N : DW_CHUNKS;
    while (nchunk > 1 && (size_t)(nchunk - 1) * (size_t)wsize * sizeof(float) > DW_PARTIAL_BUDGET) nchunk--;
    const size_t pbytes = nchunk > 1 ? (size_t)(nchunk - 1) * (size_t)wsize * sizeof(float) : 0;
    float *part = pbytes ? nbi_alloc(pbytes) : NULL; // part: (nchunk-1, O, Kg)
    if (pbytes && !part)
        return nbi_error(NB_ERR_NOMEM, "conv2d backward: out of memory for %zu bytes of weight partials", pbytes);
    /* With one chunk the region is inactive and the GEMM splits its tiles. */
    _Pragma("omp parallel for schedule(static) if (nchunk > 1)")
    for (int64_t ch = 0; ch < nchunk; ch++) {
        const int64_t n0 = ch * N / nchunk, n1 = (ch + 1) * N / nchunk;
        float *dwc = ch == 0 ? dw : part + (size_t)(ch - 1) * (size_t)wsize; // dwc: (O, Kg)
        for (int64_t gi = 0; gi < G; gi++) {
            const dy_ctx a = {dy + n0 * g->O * L, g->O, L, gi * Og};
            const colt_ctx bc = {x + n0 * CHW, g, gi * Cg};
            nbi_sgemm_packed(Og, Kg, (n1 - n0) * L, pack_dy_a, &a, pack_colt_b, &bc, dwc + gi * Og * Kg, Kg);
        }
    }
    if (part) {
        nbi_conv_add_partials(dw, part, nchunk - 1, wsize);
        nbi_free(part, pbytes);
    }
    return NB_OK;
}

static nb_status dx_implicit(float *dx, const float *dy, const float *w, const nbi_conv_geom *g) {
    return nbi_conv2d_dx_by_forward(dx, dy, w, g, forward_implicit);
}

#if defined(NBI_KERNELS_AVX512)
#define THIS_SET nbi_conv2d_implicit_avx512
#elif defined(NBI_KERNELS_AVX2)
#define THIS_SET nbi_conv2d_implicit_avx2
#else
#define THIS_SET nbi_conv2d_implicit_portable
#endif
const nbi_conv2d_kernels THIS_SET = {.forward = forward_implicit, .dx = dx_implicit, .dw = dw_implicit};
