/* The one place that chooses how a Conv2d is computed, and the entry points
 * that run the choice (conv_internal.h). Each phase (forward, dx, dw) gets
 * its own algorithm from the geometry, the dtype and the CPU set; the table
 * is also in docs/conv2d.md:
 *
 *   float64                      reference, every phase
 *   depthwise (C = groups > 1,   depthwise where its domain allows (padding
 *     not pointwise)             within the dilated kernel, strides <= 4;
 *                                dx: stride 1), else reference
 *   pointwise (1x1, stride 1,    pointwise (the input is the column matrix)
 *     unpadded)                  forward and dx; implicit dw (xᵀ packed
 *                                straight from the input, one GEMM per piece)
 *   3x3, stride 1, dilation 1,   winograd4 (F(4x4, 3x3)) if C*O <= 128*128
 *     groups 1, C, O >= 16       and padding <= 2: every phase (dx as the
 *                                forward's transpose); else winograd
 *                                (F(2x2, 3x3)): forward and dw; dx too when
 *                                the flipped conv has no negative padding
 *   groups 1, stride 1,          rowwise (pixels in the lanes, a padded
 *     C*kh*kw <= 32 (forward),   copy of each item): forward and dw
 *     <= 16 (dw), padded copy
 *     bounded
 *   O/groups <= 16, padded      direct (output channels in the lanes, taps
 *     copy bounded               read in place): forward and dw; dx where
 *                                the dx rule below would say im2col with
 *                                stride 1 and no negative flipped padding
 *   forward, else                implicit, except with a column stride > 1 on
 *                                the AVX-512 set, or when the padded input
 *                                would outgrow im2col's columns: im2col (its
 *                                row copies use stride-2 permutes on AVX-512;
 *                                it reads the input in place)
 *   dw, else                     implicit
 *   dx, else                     stride 1 and no negative flipped padding:
 *                                winograd4 / winograd if the flipped conv
 *                                is one for them (as above),
 *                                implicit if C/groups >= 48, direct as
 *                                above; else im2col
 *
 * The thresholds were measured with the AVX-512 set (bench/README.md) and
 * hold for the other sets until measured otherwise; the strided forward is
 * the one choice that depends on the set. nbi_conv2d_applies says
 * where each algorithm is correct at all, which is wider than where it is
 * chosen: the tests force every algorithm over its whole domain. */
#include "nn/conv_internal.h"
#include "nn/nn_kernels.h"
#include "tensor/cpu.h"

static const char *const algo_names[NBI_CONV_ALGOS] = {"reference", "im2col",    "pointwise", "implicit",
                                                       "winograd",  "depthwise", "winograd4", "direct",
                                                       "rowwise"};

const char *nbi_conv_algo_name(nbi_conv_algo a) {
    return a >= 0 && a < NBI_CONV_ALGOS ? algo_names[a] : "auto";
}

/* ---- domains ---- */

/* A 1x1, stride-1, unpadded conv: the input already is its column matrix. */
static bool is_pointwise(const nbi_conv_geom *g) {
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pb == 0 && g->pl == 0 &&
           g->pr == 0;
}

/* Winograd F(2x2, 3x3) needs a 3x3, stride-1, undilated, ungrouped conv.
 * Its work unit is at least one tile row: for very wide images the unit's
 * buffers (about 16 * tiles * (C + O) floats) would outgrow any cache and
 * maybe memory, so those are left to implicit GEMM. */
static bool winograd_fits(const nbi_conv_geom *g) {
    if (!(g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && g->groups == 1))
        return false;
    const double row_floats = 16.0 * (double)((g->Wo + 1) / 2 + 48) * (double)(g->C + g->O + 8);
    return row_floats <= (double)(16 << 18);
}

/* Winograd F(4x4, 3x3): the same convs, padded by at most 2 (a row or column
 * of outputs that sees only padding is the bias alone, and F(4x4, 3x3)'s
 * error, relative to its tile's other outputs, is 2e-5 of it: the test's
 * 5-item geometry with padding 3); its unit holds at least one row of 4x4
 * tiles, about 36 * tiles * (C + O) floats. */
static bool winograd4_fits(const nbi_conv_geom *g) {
    if (!(g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && g->groups == 1))
        return false;
    if (g->pt > 2 || g->pb > 2 || g->pl > 2 || g->pr > 2) return false;
    const double row_floats = 36.0 * (double)((g->Wo + 3) / 4 + 12) * (double)(g->C + g->O + 32);
    return row_floats <= (double)(16 << 18);
}

/* The depthwise kernels: one input channel per group, padding within the
 * dilated kernel (so the padded plane is barely larger than the input) and a
 * small stride (a row block of 16 outputs spans 16 * sw columns). */
static bool depthwise_fits(const nbi_conv_geom *g) {
    const int64_t eh = (g->kh - 1) * g->dh, ew = (g->kw - 1) * g->dw;
    return g->C == g->groups && g->pt <= eh && g->pb <= eh && g->pl <= ew && g->pr <= ew && g->sw <= 4 &&
           g->sh <= 4;
}

/* Implicit GEMM's forward copies each item into a padded plane (C, Hp, Wp).
 * Padding and dilation far beyond the image only add zeros, and the plane
 * could then dwarf input and output together (a fuzzed padding of 2.3e18
 * with dilation 4.6e18 overflowed its size): implicit applies while the
 * plane is no larger than the input plus im2col's column matrix of an item,
 * and im2col, which reads the input in place, takes the rest. In double: the
 * sizes may not fit in int64. */
static bool padded_plane_fits(const nbi_conv_geom *g) {
    const double C = (double)g->C, Hp = (double)g->H + (double)g->pt + (double)g->pb,
                 Wp = (double)g->W + (double)g->pl + (double)g->pr;
    const double input = C * (double)g->H * (double)g->W,
                 columns = C * (double)g->kh * (double)g->kw * (double)g->Ho * (double)g->Wo;
    return C * Hp * Wp <= input + columns;
}

bool nbi_conv2d_applies(nbi_conv_algo a, nbi_conv_phase ph, const nbi_conv_geom *g, nb_dtype dtype) {
    if (a == NBI_CONV_REFERENCE) return true;
    if (dtype != NB_F32) return false; /* the fast kernels are float32 only */
    switch (a) {
    case NBI_CONV_IM2COL: return true;
    case NBI_CONV_POINTWISE: return is_pointwise(g);
    case NBI_CONV_IMPLICIT:
        if (ph == NBI_CONV_FORWARD) return padded_plane_fits(g);
        return ph != NBI_CONV_DX || nbi_conv2d_flip_ok(g);
    case NBI_CONV_WINOGRAD: {
        if (!winograd_fits(g)) return false;
        if (ph != NBI_CONV_DX) return true;
        if (!nbi_conv2d_flip_ok(g)) return false;
        const nbi_conv_geom t = nbi_conv2d_flip_geom(g);
        return winograd_fits(&t);
    }
    case NBI_CONV_WINOGRAD4: return winograd4_fits(g); /* every phase (dx: the forward's transpose) */
    case NBI_CONV_DEPTHWISE: return depthwise_fits(g) && (ph != NBI_CONV_DX || (g->sh == 1 && g->sw == 1));
    case NBI_CONV_DIRECT: { /* reads a padded copy of an item, like implicit's forward */
        if (ph != NBI_CONV_DX) return padded_plane_fits(g);
        if (!nbi_conv2d_flip_ok(g)) return false;
        const nbi_conv_geom t = nbi_conv2d_flip_geom(g);
        return padded_plane_fits(&t);
    }
    case NBI_CONV_ROWWISE: { /* reads a padded copy of an item's planes, like direct */
        if (g->groups != 1 || g->sh != 1 || g->sw != 1) return false;
        if (ph != NBI_CONV_DX) return padded_plane_fits(g);
        if (!nbi_conv2d_flip_ok(g)) return false;
        const nbi_conv_geom t = nbi_conv2d_flip_geom(g);
        return padded_plane_fits(&t);
    }
    default: return false;
    }
}

/* ---- the heuristic ---- */

/* Below 16 input or output channels Winograd's 16 GEMMs are too thin to beat
 * im2col (the micro-kernel's C stores are amortised over only C multiply-adds). */
#define WINOGRAD_MIN_CHANNELS 16
/* dx as a forward conv has a GEMM of M = C/groups rows: below this the tiles
 * would be mostly padding and col2im is faster (MNIST's conv2, C = 32: 15.8
 * vs 19.6 ms; 64-channel ResNet blocks: 80 vs 95 ms). */
#define IMPLICIT_DX_MIN_CHANNELS 48

/* A forward with strided columns: im2col's row copies use AVX-512 permutes
 * (kernels/conv2d_rows.h) and beat implicit GEMM's element-by-element gather
 * into its panels (tutorial_a, 20x16x50x100 -> 33, 3x3 stride 2: 2.6 vs 2.9
 * ms); in the other sets both gather element by element, and implicit GEMM,
 * which skips the column buffer, was faster (AVX2: 3.3 vs 3.9 ms, portable:
 * 9.5 vs 10.3 ms). Minimum CPU time of 30 runs, one thread, Xeon
 * (Sapphire Rapids). */
static bool strided_forward_by_im2col(void) { return nbi_cpu() == NBI_CPU_AVX512; }

static bool winograd_worth(const nbi_conv_geom *g) {
    return winograd_fits(g) && g->C >= WINOGRAD_MIN_CHANNELS && g->O >= WINOGRAD_MIN_CHANNELS;
}

/* F(4x4, 3x3) instead of F(2x2, 3x3) while its transformed weights, 36*C*O
 * floats, stay about within a core's L2 (2.25 MiB at 128 x 128 channels):
 * each unit of work reads all of them, and beyond that it streams them from
 * L3 for a few tiles. Per phase, median CPU ms, one thread, AVX-512 (Xeon,
 * Sapphire Rapids; bench/conv2d_phase_bench, interleaved): 64 -> 64 on
 * 56x56 forward 22.4 vs 36.7, dw 26.1 vs 51.3; MNIST's conv2 (32 -> 64 on
 * 26x26) 5.2 vs 6.7, dw 6.1 vs 10.2; 128 -> 128 on 28x28 32.4 vs 43.9;
 * but 160 -> 160 on 14x14 17.2 vs 20.6 and dw even, 256 -> 256 on 14x14
 * 75 vs 47. AVX2 and portable gain as much or more, except MNIST's conv2
 * forward on AVX2 (9.2 vs 10.1). Its float32 error is about 10x F(2x2,
 * 3x3)'s, within the PyTorch tolerance (docs/conv2d.md). */
#define WINOGRAD4_MAX_CHANNEL_PRODUCT (128 * 128)

static bool winograd4_worth(const nbi_conv_geom *g) {
    return winograd_worth(g) && winograd4_fits(g) && g->C * g->O <= WINOGRAD4_MAX_CHANNEL_PRODUCT;
}

/* Up to one vector of output channels per group, the GEMM's M is a sliver
 * of its 8-row tiles and packing each pixel's C/g*kh*kw taps for O/g
 * multiply-adds costs more than the products: the direct kernels read the
 * taps in place. LeNet's conv2 (64x6x14x14 -> 16, 5x5), median CPU ms, one
 * thread, AVX-512 (bench/conv2d_phase_bench, interleaved): forward 0.26 vs
 * implicit 0.42, dw 0.25 vs implicit 0.94. With 32 output channels (MNIST's
 * conv1) dw lost (0.81 vs 0.70) and the forward barely won (0.55 vs 0.60). */
#define DIRECT_MAX_CHANNELS 16

static bool direct_worth(const nbi_conv_geom *g) {
    return g->O / g->groups <= DIRECT_MAX_CHANNELS && padded_plane_fits(g);
}

/* A few input taps (C/groups*kh*kw; a network's first layer), stride 1: the
 * GEMM paths multiply only K = taps deep and spend their time packing, the
 * direct kernels broadcast one input value per tap. Median CPU ms, one
 * thread, AVX-512 (bench/conv2d_phase_bench, interleaved): MNIST's conv1
 * (64x1x28x28 -> 32, 3x3) forward 0.51 vs implicit 0.68, dw 0.60 vs 0.77;
 * 128x1x28x28 -> 16 padded forward 0.57 vs direct 0.65, dw 0.66 vs 1.54;
 * 32x3x32x32 -> 32 (27 taps) forward 0.54 vs implicit 0.73 but dw 1.03 vs
 * 0.95; 3 -> 64 5x5 (75 taps) forward even, dw 5.5 vs 3.6. */
#define ROWWISE_MAX_TAPS_FORWARD 32
#define ROWWISE_MAX_TAPS_DW 16

static bool rowwise_worth(const nbi_conv_geom *g, int64_t max_taps) {
    return g->groups == 1 && g->sh == 1 && g->sw == 1 && g->C * g->kh * g->kw <= max_taps && padded_plane_fits(g);
}

/* The Winograd form for this geometry, or REFERENCE if neither is worth it. */
static nbi_conv_algo winograd_choice(const nbi_conv_geom *g) {
    return winograd4_worth(g) ? NBI_CONV_WINOGRAD4 : winograd_worth(g) ? NBI_CONV_WINOGRAD : NBI_CONV_REFERENCE;
}

nbi_conv_plan nbi_conv2d_choose(const nbi_conv_geom *g, nb_dtype dtype) {
    if (dtype != NB_F32) return (nbi_conv_plan){NBI_CONV_REFERENCE, NBI_CONV_REFERENCE, NBI_CONV_REFERENCE};
    if (g->groups > 1 && g->C == g->groups && !is_pointwise(g)) {
        /* depthwise: a GEMM per group would have M = the multiplier, K = kh*kw */
        const nbi_conv_algo fw = depthwise_fits(g) ? NBI_CONV_DEPTHWISE : NBI_CONV_REFERENCE;
        const bool dx = nbi_conv2d_applies(NBI_CONV_DEPTHWISE, NBI_CONV_DX, g, dtype);
        return (nbi_conv_plan){fw, dx ? NBI_CONV_DEPTHWISE : NBI_CONV_REFERENCE, fw};
    }
    /* pointwise dw: implicit's one GEMM per batch piece (K = items * pixels)
     * packs xᵀ straight from the input; the column path built xᵀ element by
     * element per item (pointwise_1x1's dw: 3.5 vs 12.7 ms, one thread) */
    if (is_pointwise(g)) return (nbi_conv_plan){NBI_CONV_POINTWISE, NBI_CONV_POINTWISE, NBI_CONV_IMPLICIT};
    const nbi_conv_algo wino = winograd_choice(g);
    nbi_conv_plan p;
    p.forward = wino != NBI_CONV_REFERENCE                    ? wino
                : rowwise_worth(g, ROWWISE_MAX_TAPS_FORWARD) ? NBI_CONV_ROWWISE
                : direct_worth(g)                            ? NBI_CONV_DIRECT
                : g->sw > 1 && strided_forward_by_im2col()  ? NBI_CONV_IM2COL
                : padded_plane_fits(g)                       ? NBI_CONV_IMPLICIT
                                                            : NBI_CONV_IM2COL;
    p.dw = wino != NBI_CONV_REFERENCE              ? wino
           : rowwise_worth(g, ROWWISE_MAX_TAPS_DW) ? NBI_CONV_ROWWISE
           : direct_worth(g)                       ? NBI_CONV_DIRECT
                                                   : NBI_CONV_IMPLICIT;
    p.dx = NBI_CONV_IM2COL;
    if (wino == NBI_CONV_WINOGRAD4) {
        p.dx = wino; /* the forward's transpose, in one pass over dy with dw and db */
    } else if (nbi_conv2d_flip_ok(g)) {
        const nbi_conv_geom t = nbi_conv2d_flip_geom(g);
        const nbi_conv_algo twino = winograd_choice(&t);
        if (twino != NBI_CONV_REFERENCE) p.dx = twino;
        else if (g->C / g->groups >= IMPLICIT_DX_MIN_CHANNELS) p.dx = NBI_CONV_IMPLICIT;
        else if (direct_worth(g) && nbi_conv2d_applies(NBI_CONV_DIRECT, NBI_CONV_DX, g, dtype))
            p.dx = NBI_CONV_DIRECT;
    }
    return p;
}

/* ---- forcing (tests) and what ran ---- */

static _Thread_local nbi_conv_algo forced = NBI_CONV_AUTO;
static _Thread_local nbi_conv_plan last = {NBI_CONV_AUTO, NBI_CONV_AUTO, NBI_CONV_AUTO};
static _Thread_local nbi_conv_geom last_geom;

void nbi_conv2d_force_algo(nbi_conv_algo a) {
    forced = a;
    last = (nbi_conv_plan){NBI_CONV_AUTO, NBI_CONV_AUTO, NBI_CONV_AUTO};
}

nbi_conv_plan nbi_conv2d_last_plan(void) { return last; }
nbi_conv_geom nbi_conv2d_last_geom(void) { return last_geom; }

static nbi_conv_plan plan(const nbi_conv_geom *g, nb_dtype dtype) {
    nbi_conv_plan p = nbi_conv2d_choose(g, dtype);
    if (forced != NBI_CONV_AUTO) {
        if (nbi_conv2d_applies(forced, NBI_CONV_FORWARD, g, dtype)) p.forward = forced;
        if (nbi_conv2d_applies(forced, NBI_CONV_DX, g, dtype)) p.dx = forced;
        if (nbi_conv2d_applies(forced, NBI_CONV_DW, g, dtype)) p.dw = forced;
    }
    return p;
}

/* The float32 kernels of algorithm a for the CPU set in use. */
static const nbi_conv2d_kernels *kernels(nbi_conv_algo a) {
    switch (a) {
    case NBI_CONV_IM2COL:
        return NBI_CPU_PICK(nbi_conv2d_im2col_portable, nbi_conv2d_im2col_avx2, nbi_conv2d_im2col_avx512);
    case NBI_CONV_POINTWISE:
        return NBI_CPU_PICK(nbi_conv2d_pointwise_portable, nbi_conv2d_pointwise_avx2, nbi_conv2d_pointwise_avx512);
    case NBI_CONV_IMPLICIT:
        return NBI_CPU_PICK(nbi_conv2d_implicit_portable, nbi_conv2d_implicit_avx2, nbi_conv2d_implicit_avx512);
    case NBI_CONV_WINOGRAD:
        return NBI_CPU_PICK(nbi_conv2d_winograd_portable, nbi_conv2d_winograd_avx2, nbi_conv2d_winograd_avx512);
    case NBI_CONV_DEPTHWISE:
        return NBI_CPU_PICK(nbi_conv2d_depthwise_portable, nbi_conv2d_depthwise_avx2, nbi_conv2d_depthwise_avx512);
    case NBI_CONV_WINOGRAD4:
        return NBI_CPU_PICK(nbi_conv2d_winograd4_portable, nbi_conv2d_winograd4_avx2, nbi_conv2d_winograd4_avx512);
    case NBI_CONV_DIRECT:
        return NBI_CPU_PICK(nbi_conv2d_direct_portable, nbi_conv2d_direct_avx2, nbi_conv2d_direct_avx512);
    case NBI_CONV_ROWWISE:
        return NBI_CPU_PICK(nbi_conv2d_rowwise_portable, nbi_conv2d_rowwise_avx2, nbi_conv2d_rowwise_avx512);
    default: return &nbi_conv2d_reference_f32;
    }
}

/* ---- entry points ---- */

static int64_t weight_size(const nbi_conv_geom *g) { return g->O * (g->C / g->groups) * g->kh * g->kw; }

nb_status nbi_conv2d_forward_f32(float *y, const float *x, const float *w, const float *b, const nbi_conv_geom *g) {
    const int64_t L = g->Ho * g->Wo;
    last_geom = *g;
    if (g->N == 0 || g->O == 0 || L == 0) return NB_OK;
    if (g->C == 0) { /* an empty sum plus the bias (x and w hold no data) */
        for (int64_t e = 0; e < g->N * g->O * L; e++) y[e] = b ? b[e / L % g->O] : 0;
        return NB_OK;
    }
    const nbi_conv_plan p = plan(g, NB_F32);
    last.forward = p.forward;
    return kernels(p.forward)->forward(y, x, w, b, g);
}

nb_status nbi_conv2d_forward_f64(double *y, const double *x, const double *w, const double *b,
                                 const nbi_conv_geom *g) {
    last_geom = *g;
    if (g->N == 0 || g->O == 0 || g->Ho * g->Wo == 0) return NB_OK;
    last.forward = NBI_CONV_REFERENCE;
    nbi_conv2d_ref_forward(y, x, w, b, g); /* (C = 0: the bias alone) */
    return NB_OK;
}

nb_status nbi_conv2d_backward_f32(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                                  const nbi_conv_geom *g) {
    const bool empty = g->N == 0 || g->C == 0 || g->O == 0 || g->Ho * g->Wo == 0;
    const nbi_conv_plan p = empty ? (nbi_conv_plan){0} : plan(g, NB_F32);
    const nbi_conv2d_kernels *kw = empty ? NULL : kernels(p.dw);
    if (kw && kw->backward) { /* dw and db (and dx if the same algorithm's) in fewer passes over dy */
        const bool with_dx = p.dx == p.dw;
        if (dx && with_dx) last.dx = p.dx;
        if (dw) last.dw = p.dw;
        nb_status st = dw || db || (dx && with_dx) ? kw->backward(with_dx ? dx : NULL, dw, db, dy, x, w, g) : NB_OK;
        if (st == NB_OK && dx && !with_dx) {
            last.dx = p.dx;
            st = kernels(p.dx)->dx(dx, dy, w, g);
        }
        return st;
    }
    if (db) /* kernels/conv2d_bias.c */
        NBI_CPU_PICK(nbi_conv2d_bias_portable, nbi_conv2d_bias_avx2, nbi_conv2d_bias_avx512)
            ->grad_f32(db, dy, g->N, g->O, g->Ho * g->Wo);
    if (g->N == 0 || g->C == 0 || g->O == 0) { /* some operand holds no data: the sums are empty */
        if (dw)
            for (int64_t e = 0; e < weight_size(g); e++) dw[e] = 0;
        if (dx)
            for (int64_t e = 0; e < g->N * g->C * g->H * g->W; e++) dx[e] = 0;
        return NB_OK;
    }
    nb_status st = NB_OK;
    if (dx && dw && p.dx == NBI_CONV_DEPTHWISE && p.dw == NBI_CONV_DEPTHWISE) { /* one pass for both */
        last.dx = last.dw = NBI_CONV_DEPTHWISE;
        return (*NBI_CPU_PICK(nbi_conv2d_depthwise_dxdw_portable, nbi_conv2d_depthwise_dxdw_avx2,
                              nbi_conv2d_depthwise_dxdw_avx512))(dx, dw, dy, x, w, g);
    }
    if (dw) {
        last.dw = p.dw;
        st = kernels(p.dw)->dw(dw, dy, x, g);
    }
    if (st == NB_OK && dx) {
        last.dx = p.dx;
        st = kernels(p.dx)->dx(dx, dy, w, g);
    }
    return st;
}

/* ---- the fused conv -> relu and conv -> max_pool2d(2) -> relu (conv2d_pool.c) ---- */

nb_status nbi_conv2d_forward_relu_f32(float *y, const float *x, const float *w, const float *b,
                                      const nbi_conv_geom *g) {
    const int64_t n = g->N * g->O * g->Ho * g->Wo;
    if (n > 0 && g->C > 0) {
        const nbi_conv_plan p = plan(g, NB_F32);
        if (kernels(p.forward)->forward_relu) {
            last_geom = *g;
            last.forward = p.forward;
            return kernels(p.forward)->forward_relu(y, x, w, b, g);
        }
    }
    const nb_status st = nbi_conv2d_forward_f32(y, x, w, b, g);
    if (st == NB_OK) {
        _Pragma("omp parallel for schedule(static) if (n > NBI_PAR_MIN)")
        for (int64_t e = 0; e < n; e++) y[e] = y[e] < 0 ? 0.0f : y[e]; /* nb_relu's rule */
    }
    return st;
}

nb_status nbi_conv2d_relu_backward_f32(float *dx, float *dw, float *db, const float *dy, const float *y,
                                       const float *x, const float *w, const nbi_conv_geom *g) {
    const bool empty = g->N == 0 || g->C == 0 || g->O == 0 || g->Ho * g->Wo == 0;
    const nbi_conv_plan p = empty ? (nbi_conv_plan){0} : plan(g, NB_F32);
    const nbi_conv2d_kernels *kw = empty ? NULL : kernels(p.dw);
    if (kw && kw->backward_relu && !dx) { /* relu's gradient read straight from dy and y */
        if (dw) last.dw = p.dw;
        return kw->backward_relu(dw, db, dy, y, x, g);
    }
    const size_t bytes = (size_t)(g->N * g->O * g->Ho * g->Wo) * sizeof(float);
    float *dm = nbi_alloc(bytes ? bytes : 1);
    if (!dm) return nbi_error(NB_ERR_NOMEM, "conv2d backward: out of memory for %zu bytes of relu's gradient", bytes);
    /* nbi_conv2d_backward_f32 sums db in conv2d_bias.c unless the dw algorithm's backward does */
    float *db_here = kw && kw->backward ? NULL : db;
    NBI_CPU_PICK(nbi_conv2d_bias_portable, nbi_conv2d_bias_avx2, nbi_conv2d_bias_avx512)
        ->relu_grad_f32(dm, db_here, dy, y, g->N, g->O, g->Ho * g->Wo);
    nb_status st = NB_OK;
    if (dx || dw || (db && !db_here)) st = nbi_conv2d_backward_f32(dx, dw, db_here ? NULL : db, dm, x, w, g);
    nbi_free(dm, bytes ? bytes : 1);
    return st;
}

nbi_conv_algo nbi_conv2d_pool_algo(const nbi_conv_geom *g, nb_dtype dtype) {
    if (dtype != NB_F32 || g->N == 0 || g->C == 0 || g->O == 0 || g->Ho < 2 || g->Wo < 2) return NBI_CONV_AUTO;
    const nbi_conv_plan p = plan(g, dtype);
    const bool fuses = p.forward == p.dx && p.dx == p.dw && kernels(p.forward)->forward_pool;
    return fuses ? p.forward : NBI_CONV_AUTO;
}

nb_status nbi_conv2d_pool_forward_f32(nbi_conv_algo a, float *y, uint8_t *tap, const float *x, const float *w,
                                      const float *b, const nbi_conv_geom *g, bool relu) {
    last_geom = *g;
    last.forward = a;
    return kernels(a)->forward_pool(y, tap, x, w, b, g, relu);
}

nb_status nbi_conv2d_pool_backward_f32(nbi_conv_algo a, float *dx, float *dw, float *db, const float *dy,
                                       const uint8_t *tap, const float *y, const float *x, const float *w,
                                       const nbi_conv_geom *g) {
    if (dx) last.dx = a;
    if (dw) last.dw = a;
    return kernels(a)->backward_pool(dx, dw, db, dy, tap, y, x, w, g);
}

nb_status nbi_conv2d_backward_f64(double *dx, double *dw, double *db, const double *dy, const double *x,
                                  const double *w, const nbi_conv_geom *g) {
    /* the reference handles every size, empty ones included */
    if (db) nbi_conv2d_ref_db(db, dy, g);
    if (dw) {
        last.dw = NBI_CONV_REFERENCE;
        nbi_conv2d_ref_dw(dw, dy, x, g);
    }
    if (dx) {
        last.dx = NBI_CONV_REFERENCE;
        nbi_conv2d_ref_dx(dx, dy, w, g);
    }
    return NB_OK;
}
