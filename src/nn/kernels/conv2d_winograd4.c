/* Float32 3x3, stride-1 Conv2d by Winograd's F(4x4, 3x3), for one CPU set
 * (its domain and when it is chosen: conv2d_algo.c; the method and its
 * accuracy: docs/conv2d.md). Each 4x4 block of output pixels (a tile) comes
 * from a 6x6 input patch d as
 *   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A,  summed over input channels,
 * so the channel sum is 36 independent products, one per element xi of the
 * 6x6 transformed tile: 36 multiplies per tile and channel pair where the
 * direct sum takes 144 (4x fewer; F(2x2, 3x3) in conv2d_winograd.c saves
 * 2.25x). The interpolation points are 0, 1, -1, 1/2, -2 (and infinity):
 * with Lavin's 0, ±1, ±2 the float32 error reached 1.5e-6 of the sum of
 * |terms|, with these about 5e-7 (measured against float64, docs/conv2d.md).
 *
 *   Bᵀ = [1 -3/2 -2  3/2 1 0; 0 -1 1/2 5/2 1 0; 0 1 -5/2 1/2 1 0;
 *         0 -2 -1 2 1 0; 0 1/2 -1 -1/2 1 0; 0 1 -3/2 -2 3/2 1]
 *   G  = [1 0 0; 1/3 1/3 1/3; -1/3 1/3 -1/3; -16/15 -8/15 -4/15;
 *         1/15 -2/15 4/15; 0 0 1]
 *   Aᵀ = [1 1 1 1 1 0; 0 1 -1 1/2 -2 0; 0 1 1 1/4 4 0; 0 1 -1 1/8 -8 1]
 *
 * Every transform runs vectorised over channels (VL of them per vector),
 * never along rows of an image (MNIST's rows are 6 tiles wide): a unit of
 * work (one item, a band of tile rows) first copies its input rows into a
 * channels-last buffer (VL x VL transposes), so a patch pixel of VL channels
 * is one vector load; the input transform writes V[xi] as (tiles, C) rows,
 * which the product reads directly as its broadcast operand:
 *   M[xi] (tiles, O) = V[xi] (tiles, C) x U[xi] (C, O),  U = G g Gᵀ,
 * and the output transform reads VL output channels of a tile per vector,
 * transposes them back to pixels and stores rows of 4. The products use a
 * register tile of MR tiles x NV vectors of output channels (kernels below).
 * The weight gradient uses the transposed identity,
 *   dW[o, c] = Gᵀ [ Σ_tiles (A g Aᵀ)[o] ⊙ V[c] ] G,
 * g the tile's 4x4 block of dy: 36 products S[xi] (C, O) += V[xi]ᵀ Z[xi]
 * over the tiles, Z = A g Aᵀ, in a fixed number of batch pieces summed in
 * order. The input gradient is the forward's transpose, in the same pass
 * over dy (w4_backward below). For conv2d_pool.c's fused conv -> 2x2
 * max-pool -> relu, the output transform pools the rows it has staged
 * (w4_pool_rows) and the backward builds dy's channels-last rows from the
 * pooled gradient (w4_unpool_channels_last). Each output pixel belongs to
 * one unit and each unit to one thread, so the bits do not depend on the
 * thread count. */
#include "nn/conv_internal.h"
#include "nn/nn_kernels.h"
#include "tensor/cpu.h"

#include <string.h>

#if defined(NBI_KERNELS_AVX512)
#include <immintrin.h>
#include "tensor/kernels/gemm_pack.h" /* nbi_transpose16 */
#define VL 16    /* floats per vector */
#define ACC 24   /* accumulator vectors of a register tile (32 zmm) */
#define NVMAX 4  /* output-channel vectors of a register tile */
#elif defined(NBI_KERNELS_AVX2)
#include <immintrin.h>
#define VL 8
#define ACC 12 /* (16 ymm) */
#define NVMAX 2
#else
#define VL 4
#define ACC 8
#define NVMAX 2
#endif
/* tile rows of a register tile with nv vectors of columns */
#define MR_OF(nv) ((nv) == 1 ? ACC / 2 : ACC / (nv))
#define MRMAX (ACC / 2)

typedef float vf __attribute__((vector_size(VL * sizeof(float))));

/* max_pool2d(x, 2)'s row kernels of this set (maxpool2x2.c), for the fused
 * pooling: the unfused op's own code, so the same bits */
#if defined(NBI_KERNELS_AVX512)
#define POOL_SET nbi_maxpool2x2_avx512
#elif defined(NBI_KERNELS_AVX2)
#define POOL_SET nbi_maxpool2x2_avx2
#else
#define POOL_SET nbi_maxpool2x2_portable
#endif

static inline vf vload(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/* ---- the 1-D transforms, on VL channels at once ---- */

/* o = Bᵀ z */
static inline __attribute__((always_inline)) void w4_bt(const vf z[6], vf o[6]) {
    const vf a = z[3] - z[1], b = z[4] - z[2];
    o[0] = z[0] + (z[4] - 2.0f * z[2]) + 1.5f * a;
    o[1] = (z[4] + 0.5f * z[2]) + (2.5f * z[3] - z[1]);
    o[2] = (z[4] + 0.5f * z[3]) + (z[1] - 2.5f * z[2]);
    o[3] = 2.0f * a + b;
    o[4] = b - 0.5f * a;
    o[5] = z[5] + (z[1] - 2.0f * z[3]) + 1.5f * b;
}

/* o = B z, the transpose of w4_bt: the input transform's gradient */
static inline __attribute__((always_inline)) void w4_b(const vf z[6], vf o[6]) {
    o[0] = z[0];
    o[1] = (z[2] - z[1]) + (z[5] - 1.5f * z[0]) + (0.5f * z[4] - 2.0f * z[3]);
    o[2] = (0.5f * z[1] - 2.5f * z[2]) - (2.0f * z[0] + 1.5f * z[5]) - (z[3] + z[4]);
    o[3] = (1.5f * z[0] + 2.5f * z[1]) + (0.5f * z[2] + 2.0f * z[3]) - (0.5f * z[4] + 2.0f * z[5]);
    o[4] = (z[0] + z[1]) + (z[2] + z[3]) + (z[4] + 1.5f * z[5]);
    o[5] = z[5];
}

/* o = Aᵀ m (6 -> 4) */
static inline __attribute__((always_inline)) void w4_at(const vf m[6], vf o[4]) {
    const vf s = m[1] + m[2], d = m[1] - m[2];
    o[0] = m[0] + s + (m[3] + m[4]);
    o[1] = d + 0.5f * m[3] - 2.0f * m[4];
    o[2] = s + 0.25f * m[3] + 4.0f * m[4];
    o[3] = d + 0.125f * m[3] - 8.0f * m[4] + m[5];
}

/* z = A g (4 -> 6), A = (Aᵀ)ᵀ */
static inline __attribute__((always_inline)) void w4_a(const vf g[4], vf z[6]) {
    const vf e = g[0] + g[2], o = g[1] + g[3];
    z[0] = g[0];
    z[1] = e + o;
    z[2] = e - o;
    z[3] = (g[0] + 0.25f * g[2]) + (0.5f * g[1] + 0.125f * g[3]);
    z[4] = (g[0] + 4.0f * g[2]) - (2.0f * g[1] + 8.0f * g[3]);
    z[5] = g[3];
}

/* G, in double: the weight transforms are computed in double and rounded once. */
static const double w4_G[6][3] = {{1, 0, 0},
                                  {1.0 / 3, 1.0 / 3, 1.0 / 3},
                                  {-1.0 / 3, 1.0 / 3, -1.0 / 3},
                                  {-16.0 / 15, -8.0 / 15, -4.0 / 15},
                                  {1.0 / 15, -2.0 / 15, 4.0 / 15},
                                  {0, 0, 1}};

/* ---- VL x VL transposes ---- */

/* r[i] := column i of the VL x VL matrix whose rows were r[0..VL-1]. */
static inline __attribute__((always_inline)) void w4_transpose(vf r[VL]) {
#if defined(NBI_KERNELS_AVX512)
    __m512 m[16];
    for (int i = 0; i < 16; i++) m[i] = (__m512)r[i];
    nbi_transpose16(m);
    for (int i = 0; i < 16; i++) r[i] = (vf)m[i];
#elif defined(NBI_KERNELS_AVX2)
    __m256 t[8], s[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps((__m256)r[2 * i], (__m256)r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps((__m256)r[2 * i], (__m256)r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        s[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        s[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        s[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        s[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = (vf)_mm256_permute2f128_ps(s[i], s[4 + i], 0x20);
        r[4 + i] = (vf)_mm256_permute2f128_ps(s[i], s[4 + i], 0x31);
    }
#else
    float a[VL][VL];
    for (int i = 0; i < VL; i++) memcpy(a[i], &r[i], sizeof r[i]);
    for (int i = 0; i < VL; i++)
        for (int j = 0; j < VL; j++) r[i][j] = a[j][i];
#endif
}

/* ---- sizes ---- */

/* Target floats of one unit's transformed input and output (V and M, or V
 * and Z): about 768 KiB, within a core's L2 next to the weights. */
#define UNIT_FLOATS (3 << 16)

typedef struct w4 {
    const nbi_conv_geom *g;
    int64_t th, tw;      /* tiles per item: rows, columns */
    int64_t band, bands; /* tile rows per unit, units per item */
    int64_t Cp, Op;      /* C and O rounded up to whole vectors */
    int64_t Tr;          /* rows per xi of a unit's V, M and Z: band*tw rounded up to a register tile */
    int64_t Rb, Wbp;     /* a unit's channels-last input: rows (4*band + 2), columns (4*tw + 2, whole vectors) */
} w4;

static w4 w4_sizes(const nbi_conv_geom *g, int64_t C, int64_t O) {
    w4 z = {.g = g, .th = (g->Ho + 3) / 4, .tw = (g->Wo + 3) / 4, .Cp = round_up(C, VL), .Op = round_up(O, VL)};
    z.band = UNIT_FLOATS / (36 * (z.Cp + z.Op)) / z.tw;
    z.band = z.band < 1 ? 1 : z.band > z.th ? z.th : z.band;
    z.bands = (z.th + z.band - 1) / z.band;
    z.Tr = round_up(z.band * z.tw, MRMAX);
    z.Rb = 4 * z.band + 2;
    z.Wbp = round_up(4 * z.tw + 2, VL);
    return z;
}

/* ---- channels-last copies ---- */

/* Of the VL columns iw .. iw+VL-1, those in [*lo, *hi) lie inside a row of W
 * (an empty range when none do). */
static inline void w4_inside(int64_t iw, int64_t W, int64_t *lo, int64_t *hi) {
    *lo = iw < 0 ? -iw : 0;
    *hi = W - iw < VL ? (W - iw < 0 ? 0 : W - iw) : VL;
}

/* The lanes lo .. hi-1 as a mask (none when lo >= hi). */
#if defined(NBI_KERNELS_AVX512)
static inline __mmask16 w4_lanes(int64_t lo, int64_t hi) {
    return lo >= hi ? 0 : (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}
#elif defined(NBI_KERNELS_AVX2)
static inline __m256i w4_lanes(int64_t lo, int64_t hi) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), lane),
                            _mm256_cmpgt_epi32(lane, _mm256_set1_epi32((int)lo - 1)));
}
#endif

/* xt (rows, Wbp, Cp) <- rows ih0 .. ih0+rows-1 and columns iw0 .. iw0+Wbp-1
 * of one item's planes x (C, H, W), zero outside them and past channel C.
 * One block of VL channels at a time, so that the reads are VL sequential
 * streams (all C planes at once were 25% of the time on ResNet's 64
 * channels: more streams than the prefetchers follow). */
static void w4_channels_last(float *restrict xt, const float *x, int64_t C, int64_t H, int64_t W, int64_t ih0,
                             int64_t rows, int64_t iw0, int64_t Wbp, int64_t Cp) {
    for (int64_t r = 0; r < rows; r++)
        if (ih0 + r < 0 || ih0 + r >= H) memset(xt + r * Wbp * Cp, 0, (size_t)(Wbp * Cp) * sizeof(float));
    for (int64_t cb = 0; cb < Cp; cb += VL)
        for (int64_t r = 0; r < rows; r++) {
            const int64_t ih = ih0 + r;
            if (ih < 0 || ih >= H) continue;
            float *xr = xt + r * Wbp * Cp;
            for (int64_t q = 0; q < Wbp; q += VL) {
                const int64_t iw = iw0 + q; /* columns iw .. iw+VL-1 */
                int64_t lo, hi;
                w4_inside(iw, W, &lo, &hi);
                vf v[VL];
#if defined(NBI_KERNELS_AVX512)
                const __mmask16 m = w4_lanes(lo, hi);
                for (int l = 0; l < VL; l++) {
                    const int64_t c = cb + l;
                    if (c >= C || !m) {
                        v[l] = (vf){0};
                    } else if (lo == 0) {
                        v[l] = (vf)_mm512_maskz_loadu_ps(m, x + (c * H + ih) * W + iw);
                    } else { /* left padding: lanes lo.. take columns 0.. */
                        v[l] = (vf)_mm512_maskz_expandloadu_ps(m, x + (c * H + ih) * W);
                    }
                }
#elif defined(NBI_KERNELS_AVX2)
                /* lanes lo .. hi-1 take columns iw+lo .. iw+hi-1: a masked load
                 * of hi-lo columns from iw+lo, moved up lo lanes (the scalar
                 * loop below was a quarter of this set's instructions) */
                const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
                const __m256i in = w4_lanes(lo, hi);
                const __m256i first = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(hi - lo)), lane);
                const __m256i shift = _mm256_sub_epi32(lane, _mm256_set1_epi32((int)lo));
                for (int l = 0; l < VL; l++) {
                    const int64_t c = cb + l;
                    if (c >= C || lo >= hi) {
                        v[l] = (vf){0};
                        continue;
                    }
                    __m256 a = _mm256_maskload_ps(x + (c * H + ih) * W + iw + lo, first);
                    if (lo > 0) a = _mm256_permutevar8x32_ps(a, shift);
                    v[l] = (vf)_mm256_and_ps(a, _mm256_castsi256_ps(in));
                }
#else
                for (int l = 0; l < VL; l++) {
                    const int64_t c = cb + l;
                    const float *xr = c < C ? x + (c * H + ih) * W : NULL;
                    for (int p = 0; p < VL; p++) v[l][p] = xr && p >= lo && p < hi ? xr[iw + p] : 0.0f;
                }
#endif
                w4_transpose(v);
                const int64_t np = min64(VL, Wbp - q);
                for (int p = 0; p < np; p++) vstore(xr + (q + p) * Cp + cb, v[p]);
            }
        }
}

/* ---- transforms of a unit ---- */

/* V[xi] rows t (xi*Tr + t, Cp floats each) <- Bᵀ d B for the unit's tiles
 * t < ntiles, d their 6x6 patches in xt (rows from the unit's first tile row). */
static void w4_input_transform(float *restrict vb, const float *restrict xt, const w4 *z, int64_t ntiles) {
    const int64_t Cp = z->Cp, Wbp = z->Wbp, Tr = z->Tr;
    for (int64_t t = 0; t < ntiles; t++) {
        const float *base = xt + (4 * (t / z->tw) * Wbp + 4 * (t % z->tw)) * Cp;
        for (int64_t cb = 0; cb < Cp; cb += VL) {
            vf tmp[6][6];
            for (int j = 0; j < 6; j++) { /* Bᵀ down column j of the patch */
                vf d[6], o[6];
                for (int i = 0; i < 6; i++) d[i] = vload(base + (i * Wbp + j) * Cp + cb);
                w4_bt(d, o);
                for (int i = 0; i < 6; i++) tmp[i][j] = o[i];
            }
            for (int i = 0; i < 6; i++) { /* then along each row: (Bᵀ d) B */
                vf o[6];
                w4_bt(tmp[i], o);
                for (int j = 0; j < 6; j++) vstore(vb + ((i * 6 + j) * Tr + t) * Cp + cb, o[j]);
            }
        }
    }
}

/* Z[xi] rows t (xi*Tr + t, Op floats each) <- A g Aᵀ for the unit's tiles,
 * g their 4x4 blocks of dy in gt (channels-last, rows from the unit's first
 * tile row, Wbp columns, zero past the output). */
static void w4_dy_transform(float *restrict zb, const float *restrict gt, const w4 *z, int64_t ntiles) {
    const int64_t Op = z->Op, Wbp = z->Wbp, Tr = z->Tr;
    for (int64_t t = 0; t < ntiles; t++) {
        const float *base = gt + (4 * (t / z->tw) * Wbp + 4 * (t % z->tw)) * Op;
        for (int64_t ob = 0; ob < Op; ob += VL) {
            vf tmp[6][4];
            for (int b = 0; b < 4; b++) { /* A down column b */
                vf gv[4], o[6];
                for (int a = 0; a < 4; a++) gv[a] = vload(base + (a * Wbp + b) * Op + ob);
                w4_a(gv, o);
                for (int i = 0; i < 6; i++) tmp[i][b] = o[i];
            }
            for (int i = 0; i < 6; i++) { /* then along each row: (A g) Aᵀ */
                vf o[6];
                w4_a(tmp[i], o);
                for (int j = 0; j < 6; j++) vstore(zb + ((i * 6 + j) * Tr + t) * Op + ob, o[j]);
            }
        }
    }
}

/* y's pixels of the unit's tiles (item n, tile rows from ti0) <- Aᵀ M A +
 * bias, M[xi] rows t at mb + (xi*Tr + t)*Op; bp: the bias padded to Op.
 * Per block of VL channels and tile row, the pixels go to st (VL channels x
 * 4 rows x 4*tw columns, in L1) and then out as whole rows of y: stored
 * straight from the tiles, 4 pixels of a row at a time into VL*4 different
 * rows, they were 60% of this transform (ResNet's 56x56, 64 channels). */
static void w4_pool_rows(float *yp, uint8_t *tap, bool relu, const float *restrict st, int64_t sw, int64_t nch,
                         int64_t plane0, int64_t ph0, int64_t Hp, int64_t Wp);

static void w4_output_transform(float *y, uint8_t *tap, bool relu, const float *restrict mb, const float *bp,
                                float *restrict st, const w4 *z, int64_t O, int64_t n, int64_t ti0, int64_t ntiles) {
    const nbi_conv_geom *g = z->g;
    const int64_t Op = z->Op, Tr = z->Tr, Ho = g->Ho, Wo = g->Wo, tw = z->tw, sw = 4 * tw;
    for (int64_t ob = 0; ob < Op; ob += VL) {
        const vf bias = vload(bp + ob);
        const int64_t nch = min64(VL, O - ob);
        for (int64_t t0 = 0; t0 < ntiles; t0 += tw) {
            for (int64_t tj = 0; tj < tw; tj++) {
                const int64_t t = t0 + tj;
                vf tmp[4][6], px[16]; /* px[4a + b]: output pixel (a, b) of VL channels */
                for (int j = 0; j < 6; j++) { /* Aᵀ down column j */
                    vf m[6], o[4];
                    for (int i = 0; i < 6; i++) m[i] = vload(mb + ((i * 6 + j) * Tr + t) * Op + ob);
                    w4_at(m, o);
                    for (int a = 0; a < 4; a++) tmp[a][j] = o[a];
                }
                for (int a = 0; a < 4; a++) { /* then along each row */
                    vf o[4];
                    w4_at(tmp[a], o);
                    for (int b = 0; b < 4; b++) px[4 * a + b] = o[b] + bias;
                }
                /* each group of VL pixels (VL/4 rows): channels in lanes ->
                 * pixels in lanes; px[q + l] holds channel l's pixels q.. */
                for (int q = 0; q < 16; q += VL) {
                    w4_transpose(px + q);
                    for (int l = 0; l < VL; l++) {
                        float pix[VL];
                        vstore(pix, px[q + l]);
                        for (int a = q / 4; a < (q + VL) / 4; a++)
                            memcpy(st + (l * 4 + a) * sw + 4 * tj, pix + 4 * (a - q / 4), 4 * sizeof(float));
                    }
                }
            }
            const int64_t oh = 4 * (ti0 + t0 / tw), rows = min64(4, Ho - oh);
            if (tap) { /* fused max-pool: only the pooled rows leave */
                w4_pool_rows(y, tap, relu, st, sw, nch, n * O + ob, oh / 2, Ho / 2, Wo / 2);
                continue;
            }
            for (int64_t l = 0; l < nch; l++)
                if (sw == Wo) /* the rows are contiguous in st and in y: one copy (a copy per row was 6% of an MNIST step) */
                    memcpy(y + ((n * O + ob + l) * Ho + oh) * Wo, st + l * 4 * sw, (size_t)(rows * Wo) * sizeof(float));
                else
                    for (int64_t a = 0; a < rows; a++)
                        memcpy(y + ((n * O + ob + l) * Ho + oh + a) * Wo, st + (l * 4 + a) * sw,
                               (size_t)Wo * sizeof(float));
        }
    }
}

/* The fused F.max_pool2d(., 2) (then relu) of a tile row's 4 output rows of
 * nch channels in st (rows sw floats apart, channel l's first at l*4*sw):
 * pooled rows ph0, ph0+1 (those < Hp) of the planes plane0.. of yp and tap
 * (Hp, Wp each), as max_pool2d's 2x2 path and nb_relu compute them. */
static void w4_pool_rows(float *yp, uint8_t *tap, bool relu, const float *restrict st, int64_t sw, int64_t nch,
                         int64_t plane0, int64_t ph0, int64_t Hp, int64_t Wp) {
    for (int64_t l = 0; l < nch; l++)
        for (int64_t a = 0; a < 2 && ph0 + a < Hp; a++) {
            const int64_t o = ((plane0 + l) * Hp + ph0 + a) * Wp;
            const float *r0 = st + (l * 4 + 2 * a) * sw;
            /* relu in the row kernel: as a loop over yp after the row's masked
             * stores it was 20% of this transform (store-forwarding stalls) */
            POOL_SET.pool_row_f32(yp + o, tap + o, r0, r0 + sw, Wp, relu);
        }
}

/* ---- the products: register tiles of MR rows x NV vectors ----
 * c[i][j] (i < m, j < NV*VL, rows ldc apart) <- (acc ? c : 0) +
 * sum over k < K of a(i, k) b[k*ldb + j], in increasing k, with
 * a(i, k) = a[i*lda + k] (the forward: V's rows) or a[k*lda + i] (kmajor,
 * the weight gradient: V[xi] read down its columns). Rows i >= m are
 * computed from whatever a holds there (in bounds) and not stored. */
static inline __attribute__((always_inline)) void w4_tile(const int MR, const int NV, const bool kmajor, int64_t K,
                                                          const float *restrict a, int64_t lda,
                                                          const float *restrict b, int64_t ldb, float *restrict c,
                                                          int64_t ldc, int m, bool acc) {
    vf s[MRMAX][NVMAX];
    _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) s[i][v] = acc && i < m ? vload(c + i * ldc + v * VL)
                                                                                  : (vf){0};
    for (int64_t k = 0; k < K; k++) {
        vf bv[NVMAX];
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) bv[v] = vload(b + k * ldb + v * VL);
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {
            const float ai = kmajor ? a[k * lda + i] : a[i * lda + k];
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) s[i][v] += ai * bv[v];
        }
    }
    _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {
        if (i >= m) break;
        _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) vstore(c + i * ldc + v * VL, s[i][v]);
    }
}

/* The register tiles, one function each (MR_OF(nv) x nv vectors; rows: the
 * forward's, kmaj: the weight gradient's). */
#define W4_TILE_ARGS                                                                                                   \
    int64_t K, const float *restrict a, int64_t lda, const float *restrict b, int64_t ldb, float *restrict c,         \
        int64_t ldc, int m, bool acc
static void w4_rows_nv1(W4_TILE_ARGS) { w4_tile(MR_OF(1), 1, false, K, a, lda, b, ldb, c, ldc, m, acc); }
static void w4_rows_nv2(W4_TILE_ARGS) { w4_tile(MR_OF(2), 2, false, K, a, lda, b, ldb, c, ldc, m, acc); }
static void w4_kmaj_nv1(W4_TILE_ARGS) { w4_tile(MR_OF(1), 1, true, K, a, lda, b, ldb, c, ldc, m, acc); }
static void w4_kmaj_nv2(W4_TILE_ARGS) { w4_tile(MR_OF(2), 2, true, K, a, lda, b, ldb, c, ldc, m, acc); }
#if NVMAX >= 4
static void w4_rows_nv3(W4_TILE_ARGS) { w4_tile(MR_OF(3), 3, false, K, a, lda, b, ldb, c, ldc, m, acc); }
static void w4_rows_nv4(W4_TILE_ARGS) { w4_tile(MR_OF(4), 4, false, K, a, lda, b, ldb, c, ldc, m, acc); }
static void w4_kmaj_nv3(W4_TILE_ARGS) { w4_tile(MR_OF(3), 3, true, K, a, lda, b, ldb, c, ldc, m, acc); }
static void w4_kmaj_nv4(W4_TILE_ARGS) { w4_tile(MR_OF(4), 4, true, K, a, lda, b, ldb, c, ldc, m, acc); }
#endif

/* Short tiles, MR_SHORT rows, for a last block of at most that many rows
 * (the input gradient's 49 tiles per item in the MNIST net left one row in
 * a block of 12). Each element is the same FMAs in the same order as in a
 * full tile, so the bits do not depend on which tile computed it. */
#define MR_SHORT 4
static void w4_rows_nv1_short(W4_TILE_ARGS) { w4_tile(MR_SHORT, 1, false, K, a, lda, b, ldb, c, ldc, m, acc); }
static void w4_rows_nv2_short(W4_TILE_ARGS) { w4_tile(MR_SHORT, 2, false, K, a, lda, b, ldb, c, ldc, m, acc); }
static void w4_kmaj_nv1_short(W4_TILE_ARGS) { w4_tile(MR_SHORT, 1, true, K, a, lda, b, ldb, c, ldc, m, acc); }
static void w4_kmaj_nv2_short(W4_TILE_ARGS) { w4_tile(MR_SHORT, 2, true, K, a, lda, b, ldb, c, ldc, m, acc); }
#if NVMAX >= 4
static void w4_rows_nv3_short(W4_TILE_ARGS) { w4_tile(MR_SHORT, 3, false, K, a, lda, b, ldb, c, ldc, m, acc); }
static void w4_rows_nv4_short(W4_TILE_ARGS) { w4_tile(MR_SHORT, 4, false, K, a, lda, b, ldb, c, ldc, m, acc); }
static void w4_kmaj_nv3_short(W4_TILE_ARGS) { w4_tile(MR_SHORT, 3, true, K, a, lda, b, ldb, c, ldc, m, acc); }
static void w4_kmaj_nv4_short(W4_TILE_ARGS) { w4_tile(MR_SHORT, 4, true, K, a, lda, b, ldb, c, ldc, m, acc); }
#endif

typedef void (*w4_kernel_fn)(W4_TILE_ARGS);

static w4_kernel_fn w4_kernel_short(int nv, bool kmajor) {
#if NVMAX >= 4
    if (nv == 4) return kmajor ? w4_kmaj_nv4_short : w4_rows_nv4_short;
    if (nv == 3) return kmajor ? w4_kmaj_nv3_short : w4_rows_nv3_short;
#endif
    if (nv == 2) return kmajor ? w4_kmaj_nv2_short : w4_rows_nv2_short;
    return kmajor ? w4_kmaj_nv1_short : w4_rows_nv1_short;
}

static w4_kernel_fn w4_kernel(int nv, bool kmajor) {
#if NVMAX >= 4
    if (nv == 4) return kmajor ? w4_kmaj_nv4 : w4_rows_nv4;
    if (nv == 3) return kmajor ? w4_kmaj_nv3 : w4_rows_nv3;
#endif
    if (nv == 2) return kmajor ? w4_kmaj_nv2 : w4_rows_nv2;
    return kmajor ? w4_kmaj_nv1 : w4_rows_nv1;
}

/* C (rows, cols) (+)= op(A) (rows, K) x B (K, cols), cols a whole number of
 * vectors, in register tiles: column blocks of NVMAX vectors (the last one
 * narrower), rows in blocks of MR_OF(nv). A is read up to a whole block of
 * rows past `rows` (the caller pads it). */
static void w4_product(int64_t rows, int64_t cols, int64_t K, const float *a, int64_t lda, bool kmajor,
                       const float *b, int64_t ldb, float *c, int64_t ldc, bool acc) {
    for (int64_t j0 = 0; j0 < cols; j0 += NVMAX * VL) {
        const int nv = (int)min64(NVMAX, (cols - j0) / VL), mr = MR_OF(nv);
        const w4_kernel_fn kern = w4_kernel(nv, kmajor);
        const w4_kernel_fn kern_short = mr > MR_SHORT ? w4_kernel_short(nv, kmajor) : kern;
        for (int64_t i0 = 0; i0 < rows; i0 += mr) {
            const int m = (int)min64(mr, rows - i0);
            (m <= MR_SHORT ? kern_short : kern)(K, kmajor ? a + i0 : a + i0 * lda, lda, b + j0, ldb,
                                                 c + i0 * ldc + j0, ldc, m, acc);
        }
    }
}

/* ---- forward ---- */

/* u[xi] = (G k Gᵀ)[xi] for one 3x3 kernel k, computed in double and rounded once. */
static void w4_weight_tile(const float *k, float u[36]) {
    double t[6][3]; // t = G k
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 3; j++) t[i][j] = w4_G[i][0] * k[j] + w4_G[i][1] * k[3 + j] + w4_G[i][2] * k[6 + j];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++)
            u[i * 6 + j] = (float)(t[i][0] * w4_G[j][0] + t[i][1] * w4_G[j][1] + t[i][2] * w4_G[j][2]);
}

/* up: U[xi] (C, Op) at up + xi*C*Op, U[xi][c][o] = (G w[o, c] Gᵀ)[xi], zero
 * past O. Called by every thread of a team, which share the output channels
 * (run serially before the team, it was ~1% of a 1-thread MNIST step that a
 * second thread could not share); ends with the omp for's barrier. */
static void w4_pack_weights(float *restrict up, const float *w, int64_t C, int64_t O, int64_t Op) {
    _Pragma("omp for schedule(static)") for (int64_t o = 0; o < Op; o++)
        for (int64_t c = 0; c < C; c++) {
            float u[36] = {0};
            if (o < O) w4_weight_tile(w + (o * C + c) * 9, u); // w: (O, C, 3, 3)
            for (int xi = 0; xi < 36; xi++) up[(xi * C + c) * Op + o] = u[xi];
        }
}

/* The input gradient's operand: Uᵀ[xi] (O, Cp) at ut + xi*O*Cp, zero past C;
 * shared by a team as w4_pack_weights. */
static void w4_pack_weights_t(float *restrict ut, const float *w, int64_t C, int64_t O, int64_t Cp) {
    _Pragma("omp for schedule(static)") for (int64_t o = 0; o < O; o++)
        for (int64_t c = 0; c < Cp; c++) {
            float u[36] = {0};
            if (c < C) w4_weight_tile(w + (o * C + c) * 9, u);
            for (int xi = 0; xi < 36; xi++) ut[(xi * O + o) * Cp + c] = u[xi];
        }
}

/* y <- the conv, or with tap its 2x2 max-pool (then relu): forward_pool. */
static nb_status w4_forward_any(float *y, uint8_t *tap, bool relu, const float *x, const float *w, const float *b,
                                const nbi_conv_geom *g) {
    const int64_t C = g->C, O = g->O;
    const w4 z = w4_sizes(g, C, O);
    const int64_t units = g->N * z.bands;
    const size_t ubytes = (size_t)(36 * C * z.Op + z.Op) * sizeof(float);
    const size_t xfloats = (size_t)(z.Rb * z.Wbp * z.Cp), vfloats = (size_t)(36 * z.Tr * z.Cp + MRMAX * z.Cp);
    const size_t sfloats = (size_t)(VL * 16 * z.tw); // the output transform's staged rows
    const size_t bbytes = (xfloats + vfloats + (size_t)(36 * z.Tr * z.Op) + sfloats) * sizeof(float);
    float *up = nbi_alloc(ubytes); // U, then the bias padded to Op
    if (!up) return nbi_error(NB_ERR_NOMEM, "conv2d: out of memory for %zu bytes of transformed weights", ubytes);
    float *bp = up + 36 * C * z.Op;
    for (int64_t o = 0; o < z.Op; o++) bp[o] = b && o < O ? b[o] : 0.0f;
    nb_status st = NB_OK;
    _Pragma("omp parallel if (units > 1)") {
        w4_pack_weights(up, w, C, O, z.Op);
        float *buf = nbi_conv_zeroed_buffer(bbytes, &st); /* V's rows past a unit's tiles are read: finite */
        float *xt = buf, *vb = buf + xfloats, *mb = vb + vfloats, *st = mb + 36 * z.Tr * z.Op;
        _Pragma("omp for schedule(static)") for (int64_t u = 0; u < units; u++) {
            if (!buf) continue;
            const int64_t n = u / z.bands, ti0 = u % z.bands * z.band, ti1 = min64(ti0 + z.band, z.th);
            const int64_t ntiles = (ti1 - ti0) * z.tw;
            w4_channels_last(xt, x + n * C * g->H * g->W, C, g->H, g->W, 4 * ti0 - g->pt, 4 * (ti1 - ti0) + 2,
                             -g->pl, z.Wbp, z.Cp);
            w4_input_transform(vb, xt, &z, ntiles);
            for (int xi = 0; xi < 36; xi++)
                w4_product(ntiles, z.Op, C, vb + xi * z.Tr * z.Cp, z.Cp, false, up + xi * C * z.Op, z.Op,
                           mb + xi * z.Tr * z.Op, z.Op, false);
            w4_output_transform(y, tap, relu, mb, bp, st, &z, O, n, ti0, ntiles);
        }
        if (buf) nbi_free(buf, bbytes);
    }
    nbi_free(up, ubytes);
    if (st != NB_OK) return nbi_error(st, "conv2d: out of memory for a %zu-byte Winograd buffer", bbytes);
    return NB_OK;
}

static nb_status w4_forward(float *y, const float *x, const float *w, const float *b, const nbi_conv_geom *g) {
    return w4_forward_any(y, NULL, false, x, w, b, g);
}

static nb_status w4_forward_pool(float *y, uint8_t *tap, const float *x, const float *w, const float *b,
                                 const nbi_conv_geom *g, bool relu) {
    return w4_forward_any(y, tap, relu, x, w, b, g);
}

/* ---- the gradients, in one pass over dy ----
 * Per unit, dy's channels-last rows feed three things: the bias gradient
 * (row sums), Z = A g Aᵀ for the weight gradient (S[xi] += V[xi]ᵀ Z[xi], V
 * the input's transform as in the forward) and the input gradient, the
 * forward's transpose: dV[xi] (tiles, C) = Z[xi] (tiles, O) x Uᵀ[xi] (O, C),
 * then dd = B dV Bᵀ, each tile's 6x6 patch added into a channels-last
 * buffer of the unit's input rows (patches overlap by 2 rows and columns).
 * This is 36 tiles x 36 x C x O multiply-adds per 24x24 output where the
 * forward of the flipped kernel over the padded dy took 49 tiles, and dy is
 * read once for all three (it was read three times: bias, dw, dx). */

/* part[r*Op + o] <- sum over the columns ow < Wo of row r of gt (channels-
 * last, Wbp columns of Op floats), in double, ow in order, for r < rows. The
 * lanes are channels, so the order of each sum does not depend on VL. */
typedef double vd __attribute__((vector_size(VL * sizeof(double))));
/* (In halves of VL lanes: one vd accumulator of 16 doubles went through the
 * stack every column, store-forwarding latency bound: 3% of an MNIST step.) */
typedef float vfh __attribute__((vector_size(VL / 2 * sizeof(float))));
typedef double vdh __attribute__((vector_size(VL / 2 * sizeof(double))));
static void w4_bias_rows(double *restrict part, const float *restrict gt, int64_t rows, int64_t Wo, int64_t Wbp,
                         int64_t Op) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t ob = 0; ob < Op; ob += VL) {
            vdh lo = {0}, hi = {0};
            for (int64_t q = 0; q < Wo; q++) {
                const float *p = gt + (r * Wbp + q) * Op + ob;
                vfh a, b;
                memcpy(&a, p, sizeof a);
                memcpy(&b, p + VL / 2, sizeof b);
                lo += __builtin_convertvector(a, vdh);
                hi += __builtin_convertvector(b, vdh);
            }
            memcpy(part + r * Op + ob, &lo, sizeof lo);
            memcpy(part + r * Op + ob + VL / 2, &hi, sizeof hi);
        }
}

/* dxt (rows from the unit's first patch row, Wbp columns, Cp) += B dV Bᵀ for
 * the unit's tiles t < ntiles in order, dV[xi] rows t at mb + (xi*Tr + t)*Cp. */
static void w4_grad_input_transform(float *restrict dxt, const float *restrict mb, const w4 *z, int64_t ntiles) {
    const int64_t Cp = z->Cp, Wbp = z->Wbp, Tr = z->Tr;
    for (int64_t t = 0; t < ntiles; t++) {
        float *base = dxt + (4 * (t / z->tw) * Wbp + 4 * (t % z->tw)) * Cp;
        for (int64_t cb = 0; cb < Cp; cb += VL) {
            vf tmp[6][6];
            for (int j = 0; j < 6; j++) { /* B down column j of dV */
                vf m[6], o[6];
                for (int i = 0; i < 6; i++) m[i] = vload(mb + ((i * 6 + j) * Tr + t) * Cp + cb);
                w4_b(m, o);
                for (int i = 0; i < 6; i++) tmp[i][j] = o[i];
            }
            for (int i = 0; i < 6; i++) { /* then along each row, added into the patch */
                vf o[6];
                w4_b(tmp[i], o);
                for (int j = 0; j < 6; j++) {
                    float *p = base + (i * Wbp + j) * Cp + cb;
                    vstore(p, vload(p) + o[j]);
                }
            }
        }
    }
}

/* Rows ih0 .. ih0+rows-1 and columns iw0 .. iw0+Wbp-1 of one item's planes
 * dx (C, H, W) <- dxt (rows, Wbp, Cp), only the pixels inside the planes:
 * w4_channels_last's inverse. Per block of VL channels the rows go first to
 * stg (VL planes of the rows, W columns; VL floats before it may be
 * addressed, never written) through lane-masked stores, then out as one
 * copy per channel: stored straight into dx, 64 bytes at a time into VL
 * planes, they took 15% of ResNet's 3x3 conv. */
static void w4_planar(float *dx, const float *restrict dxt, float *restrict stg, int64_t C, int64_t H, int64_t W,
                      int64_t ih0, int64_t rows, int64_t iw0, int64_t Wbp, int64_t Cp) {
    const int64_t r0 = ih0 < 0 ? -ih0 : 0, r1 = min64(rows, H - ih0), nr = r1 - r0;
    if (nr <= 0) return;
    for (int64_t cb = 0; cb < C; cb += VL) {
        const int64_t nch = min64(VL, C - cb);
        for (int64_t r = r0; r < r1; r++)
            for (int64_t q = 0; q < Wbp; q += VL) {
                const int64_t iw = iw0 + q; /* columns iw .. iw+VL-1 */
                int64_t lo, hi;
                w4_inside(iw, W, &lo, &hi);
                if (lo >= hi) continue;
                vf v[VL];
                const int64_t np = min64(VL, Wbp - q);
                for (int p = 0; p < VL; p++) v[p] = p < np ? vload(dxt + (r * Wbp + q + p) * Cp + cb) : (vf){0};
                w4_transpose(v); /* v[l]: channel cb+l's pixels */
                for (int64_t l = 0; l < nch; l++) {
                    float *dst = stg + (l * nr + r - r0) * W + iw; /* lanes lo .. hi-1 land in the row */
#if defined(NBI_KERNELS_AVX512)
                    _mm512_mask_storeu_ps(dst, w4_lanes(lo, hi), (__m512)v[l]);
#elif defined(NBI_KERNELS_AVX2)
                    _mm256_maskstore_ps(dst, w4_lanes(lo, hi), (__m256)v[l]);
#else
                    for (int64_t p = lo; p < hi; p++) dst[p] = v[l][p];
#endif
                }
            }
        for (int64_t l = 0; l < nch; l++)
            memcpy(dx + ((cb + l) * H + ih0 + r0) * W, stg + l * nr * W, (size_t)(nr * W) * sizeof(float));
    }
}

/* v <- the first n (<= VL) floats at p, zero in the other lanes. */
static inline __attribute__((always_inline)) vf w4_load_first(const float *p, int64_t n) {
#if defined(NBI_KERNELS_AVX512)
    return (vf)_mm512_maskz_loadu_ps(w4_lanes(0, n), p);
#elif defined(NBI_KERNELS_AVX2)
    return (vf)_mm256_maskload_ps(p, w4_lanes(0, n));
#else
    vf v = {0};
    for (int64_t i = 0; i < n; i++) v[i] = p[i];
    return v;
#endif
}

/* The first n (<= VL) bytes at p as the int32 lanes of a vf, zero in the others. */
typedef int32_t vi __attribute__((vector_size(VL * sizeof(int32_t))));
static inline __attribute__((always_inline)) vf w4_load_taps(const uint8_t *p, int64_t n) {
#if defined(NBI_KERNELS_AVX512)
    return (vf)_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(w4_lanes(0, n), p));
#else
    vi t = {0};
    for (int64_t i = 0; i < n; i++) t[i] = p[i];
    return (vf)t;
#endif
}

/* gt (rows, Wbp, Op), channels-last as w4_channels_last would copy it <-
 * output rows r0 .. r0+rows-1 (r0 even) of item n's gradient before a fused
 * 2x2 max-pool (then relu), from dy (N, O, Hp, Wp) after it: relu's gradient
 * (0 where y <= 0, y the pooled output; y NULL: no relu), then max_pool2d's
 * (dy at each window's winner, 0 at the others and outside every window,
 * rows past Ho and columns past Wo included), as the unfused ops would write
 * it. VL channels x VL windows of a pooled row at a time: loaded, turned
 * channels-last, and each window's value stored at its winner's pixel, 0 at
 * the other three. */
static void w4_unpool_channels_last(float *restrict gt, const float *dy, const uint8_t *tap, const float *y,
                                    int64_t O, int64_t n, int64_t r0, int64_t rows, int64_t Hp, int64_t Wp,
                                    int64_t Wbp, int64_t Op) {
    const int64_t ph0 = r0 / 2, ph1 = min64(Hp, (r0 + rows) / 2), rowfloats = Wbp * Op;
    const int64_t done = ph1 > ph0 ? 2 * (ph1 - ph0) : 0; /* rows with windows */
    for (int64_t r = 0; r < done; r++) /* the columns past the windows */
        memset(gt + (r * Wbp + 2 * Wp) * Op, 0, (size_t)((Wbp - 2 * Wp) * Op) * sizeof(float));
    if (done < rows) memset(gt + done * rowfloats, 0, (size_t)((rows - done) * rowfloats) * sizeof(float));
    for (int64_t cb = 0; cb < Op; cb += VL)
        for (int64_t ph = ph0; ph < ph1; ph++)
            for (int64_t q = 0; q < Wp; q += VL) {
                const int64_t nw = min64(VL, Wp - q);
                vf v[VL], t[VL];
                for (int l = 0; l < VL; l++) {
                    if (cb + l >= O) {
                        v[l] = t[l] = (vf){0};
                        continue;
                    }
                    const int64_t e = ((n * O + cb + l) * Hp + ph) * Wp + q;
                    v[l] = w4_load_first(dy + e, nw);
                    if (y) v[l] = (vf)((vi)v[l] & ~(w4_load_first(y + e, nw) <= 0)); /* relu's rule: NaN passes */
                    t[l] = w4_load_taps(tap + e, nw);
                }
                w4_transpose(v); /* v[p]: window q+p's values of VL channels */
                w4_transpose(t);
                for (int64_t p = 0; p < nw; p++)
                    for (int k = 0; k < 4; k++) { /* tap k: pixel (2 ph + k/2, 2 (q+p) + k%2) */
                        const int64_t r = 2 * ph + k / 2 - r0, c = 2 * (q + p) + k % 2;
                        vstore(gt + (r * Wbp + c) * Op + cb, (vf)((vi)v[p] & ((vi)t[p] == k)));
                    }
            }
}

/* The batch is cut into this many fixed pieces of items (fewer for small
 * batches), each summing its items' S in order into its own S; the pieces
 * are added in order. A function of the shapes only, never of the thread
 * count; without dw every item is a piece. */
#define DW_PIECES 4

/* dx, dw and db, any of them NULL (dx needs w, dw needs x). Each unit of
 * work is one item, its bands of tile rows in order, so that the rows two
 * bands' patches share are added in tile order whatever the band size. With
 * tap, dy is the gradient after a fused 2x2 max-pool (and relu if y):
 * backward_pool. */
static nb_status w4_backward_any(float *dx, float *dw, float *db, const float *dy, const uint8_t *tap,
                                 const float *y, const float *x, const float *w, const nbi_conv_geom *g) {
    const int64_t C = g->C, O = g->O, N = g->N;
    const w4 z = w4_sizes(g, C, O);
    const int64_t pieces = dw ? (N < DW_PIECES ? N : DW_PIECES) : N;
    const int64_t sfloats = dw ? 36 * z.Cp * z.Op : 0; // S[xi] (Cp, Op) per piece
    const size_t ubytes = dx ? (size_t)(36 * O * z.Cp) * sizeof(float) : 0;
    const size_t sbytes = (size_t)(pieces * sfloats) * sizeof(float);
    const size_t pbytes = db ? (size_t)(N * g->Ho * z.Op) * sizeof(double) : 0;
    /* a thread's buffers: dy's rows and Z always; x's rows and V for dw; dV
     * and the input-gradient rows for dx (V and Z are read a register tile
     * of rows past the unit's tiles) */
    const size_t cfloats = (size_t)(z.Rb * z.Wbp * z.Cp), gfloats = (size_t)(4 * z.band * z.Wbp * z.Op);
    const size_t zfloats = (size_t)(36 * z.Tr * z.Op + MRMAX * z.Op);
    const size_t vfloats = dw ? (size_t)(36 * z.Tr * z.Cp + MRMAX * z.Cp) : 0;
    const size_t mfloats = dx ? (size_t)(36 * z.Tr * z.Cp) : 0;
    const size_t stfloats = dx ? (size_t)(VL + VL * z.Rb * g->W) : 0; // w4_planar's staged planes
    const int64_t Hp = g->Ho / 2, Wp = g->Wo / 2;
    const size_t bbytes =
        (gfloats + zfloats + (dw ? cfloats : 0) + vfloats + mfloats + (dx ? cfloats : 0) + stfloats) * sizeof(float);
    float *ut = ubytes ? nbi_alloc(ubytes) : NULL, *sp = sbytes ? nbi_alloc(sbytes) : NULL;
    double *part = pbytes ? nbi_alloc(pbytes) : NULL; // part: (N, Ho, Op), the bias gradient's row sums
    if ((ubytes && !ut) || (sbytes && !sp) || (pbytes && !part)) {
        nbi_free(ut, ubytes);
        nbi_free(sp, sbytes);
        nbi_free(part, pbytes);
        return nbi_error(NB_ERR_NOMEM, "conv2d backward: out of memory for %zu bytes of Winograd partials",
                         ubytes + sbytes + pbytes);
    }
    nb_status st = NB_OK;
    _Pragma("omp parallel if (pieces > 1)") {
        if (dx) w4_pack_weights_t(ut, w, C, O, z.Cp);
        float *buf = nbi_conv_zeroed_buffer(bbytes, &st); /* V's rows past a unit's tiles are read: finite */
        float *gt = buf, *zb = gt + gfloats, *xt = zb + zfloats, *vb = xt + (dw ? cfloats : 0);
        float *mb = vb + vfloats, *dxt = mb + mfloats, *stg = dxt + (dx ? cfloats : 0) + VL;
        _Pragma("omp for schedule(static)") for (int64_t pc = 0; pc < pieces; pc++) {
            if (!buf) continue;
            float *S = dw ? sp + pc * sfloats : NULL;
            const int64_t n0 = pc * N / pieces, n1 = (pc + 1) * N / pieces;
            for (int64_t n = n0; n < n1; n++) {
                if (dx) memset(dxt, 0, cfloats * sizeof(float));
                for (int64_t ti0 = 0; ti0 < z.th; ti0 += z.band) {
                    const int64_t ti1 = min64(ti0 + z.band, z.th), ntiles = (ti1 - ti0) * z.tw;
                    const int64_t rows = 4 * (ti1 - ti0); /* dy rows of the unit */
                    if (tap) { /* dy's rows as the unfused max-pool's (and relu's) backward would give them */
                        w4_unpool_channels_last(gt, dy, tap, y, O, n, 4 * ti0, rows, Hp, Wp, z.Wbp, z.Op);
                    } else {
                        w4_channels_last(gt, dy + n * O * g->Ho * g->Wo, O, g->Ho, g->Wo, 4 * ti0, rows, 0, z.Wbp,
                                         z.Op);
                    }
                    if (db) w4_bias_rows(part + (n * g->Ho + 4 * ti0) * z.Op, gt, min64(rows, g->Ho - 4 * ti0), g->Wo,
                                         z.Wbp, z.Op);
                    w4_dy_transform(zb, gt, &z, ntiles);
                    if (dw) {
                        w4_channels_last(xt, x + n * C * g->H * g->W, C, g->H, g->W, 4 * ti0 - g->pt, rows + 2,
                                         -g->pl, z.Wbp, z.Cp);
                        w4_input_transform(vb, xt, &z, ntiles);
                        for (int xi = 0; xi < 36; xi++) /* S[xi] (C, Op) += V[xi]ᵀ Z[xi] */
                            w4_product(C, z.Op, ntiles, vb + xi * z.Tr * z.Cp, z.Cp, true, zb + xi * z.Tr * z.Op,
                                       z.Op, S + xi * z.Cp * z.Op, z.Op, n > n0 || ti0 > 0);
                    }
                    if (dx) {
                        for (int xi = 0; xi < 36; xi++) /* dV[xi] (tiles, Cp) = Z[xi] Uᵀ[xi] */
                            w4_product(ntiles, z.Cp, O, zb + xi * z.Tr * z.Op, z.Op, false, ut + xi * O * z.Cp, z.Cp,
                                       mb + xi * z.Tr * z.Cp, z.Cp, false);
                        w4_grad_input_transform(dxt, mb, &z, ntiles);
                        /* rows below the last 2 are complete; those 2 go on into the next band's patches */
                        const bool last = ti1 == z.th;
                        const int64_t done = last ? rows + 2 : rows, rowfloats = z.Wbp * z.Cp;
                        w4_planar(dx + n * C * g->H * g->W, dxt, stg, C, g->H, g->W, 4 * ti0 - g->pt, done, -g->pl,
                                  z.Wbp, z.Cp);
                        if (!last) {
                            memmove(dxt, dxt + rows * rowfloats, (size_t)(2 * rowfloats) * sizeof(float));
                            memset(dxt + 2 * rowfloats, 0, (size_t)((z.Rb - 2) * rowfloats) * sizeof(float));
                        }
                    }
                }
            }
        }
        if (buf) nbi_free(buf, bbytes);
    }
    nbi_free(ut, ubytes);
    if (st != NB_OK) {
        nbi_free(sp, sbytes);
        nbi_free(part, pbytes);
        return nbi_error(st, "conv2d backward: out of memory for a %zu-byte Winograd buffer", bbytes);
    }
    if (db) { /* the row sums of every item in order, added into the first row (read once, in order) */
        for (int64_t r = 1; r < N * g->Ho; r++)
            for (int64_t o = 0; o < O; o++) part[o] += part[r * z.Op + o];
        for (int64_t o = 0; o < O; o++) db[o] = (float)part[o];
        nbi_free(part, pbytes);
    }
    if (!dw) return NB_OK;
    /* S = the pieces in order (as nbi_conv_add_partials); dW[o, c] = Gᵀ S[c, o] G
     * in double, VL output channels at a time in the lanes (S's rows are
     * channels-last; one filter at a time, the loads went VL-strided) */
    _Pragma("omp parallel for collapse(2) schedule(static) if (O * C >= 64)")
    for (int64_t ob = 0; ob < z.Op; ob += VL)
        for (int64_t c = 0; c < C; c++) {
            vd s6[6][6], t[3][6];
            for (int xi = 0; xi < 36; xi++) {
                const int64_t e = (xi * z.Cp + c) * z.Op + ob;
                vf s = vload(sp + e);
                for (int64_t pc = 1; pc < pieces; pc++) s += vload(sp + pc * sfloats + e);
                s6[xi / 6][xi % 6] = __builtin_convertvector(s, vd);
            }
            for (int i = 0; i < 3; i++) // t = Gᵀ s6
                for (int j = 0; j < 6; j++) {
                    vd a = {0};
                    for (int r = 0; r < 6; r++) a += w4_G[r][i] * s6[r][j];
                    t[i][j] = a;
                }
            for (int i = 0; i < 3; i++) // (t G)[i, :]
                for (int j = 0; j < 3; j++) {
                    vd a = {0};
                    for (int r = 0; r < 6; r++) a += t[i][r] * w4_G[r][j];
                    for (int64_t l = 0; l < VL && ob + l < O; l++) dw[((ob + l) * C + c) * 9 + i * 3 + j] = (float)a[l];
                }
        }
    nbi_free(sp, sbytes);
    return NB_OK;
}

static nb_status w4_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                             const nbi_conv_geom *g) {
    return w4_backward_any(dx, dw, db, dy, NULL, NULL, x, w, g);
}

static nb_status w4_backward_pool(float *dx, float *dw, float *db, const float *dy, const uint8_t *tap,
                                  const float *y, const float *x, const float *w, const nbi_conv_geom *g) {
    return w4_backward_any(dx, dw, db, dy, tap, y, x, w, g);
}

static nb_status w4_dx(float *dx, const float *dy, const float *w, const nbi_conv_geom *g) {
    return w4_backward(dx, NULL, NULL, dy, NULL, w, g);
}

static nb_status w4_dw(float *dw, const float *dy, const float *x, const nbi_conv_geom *g) {
    return w4_backward(NULL, dw, NULL, dy, x, NULL, g);
}

#if defined(NBI_KERNELS_AVX512)
#define THIS_SET nbi_conv2d_winograd4_avx512
#elif defined(NBI_KERNELS_AVX2)
#define THIS_SET nbi_conv2d_winograd4_avx2
#else
#define THIS_SET nbi_conv2d_winograd4_portable
#endif
const nbi_conv2d_kernels THIS_SET = {.forward = w4_forward,
                                     .dx = w4_dx,
                                     .dw = w4_dw,
                                     .backward = w4_backward,
                                     .forward_pool = w4_forward_pool,
                                     .backward_pool = w4_backward_pool};
