/* Unary elementwise ops: neg, exp, log, sqrt, relu, sigmoid, tanh, abs.
 *
 * Forward is a flat loop over a contiguous copy of the input (a view is
 * copied first, outside autograd), OpenMP above NBI_PAR_MIN elements; each
 * element is computed by one thread, so the thread count never changes the
 * bits. The formulas are PyTorch's CPU ones (sigmoid = 1 / (1 + e^-x)).
 *
 * Backward is one fused loop per op, g * f'(...), written in terms of what
 * PyTorch saves: the output for exp, sqrt, relu, sigmoid and tanh (read
 * through node->out, which the node can use for as long as it lives, so
 * nothing extra is kept), the input for log and abs (whose gradient is
 * g * sign(x): 0 at 0, and at NaN, as PyTorch's sgn). */
#include "cpu.h"
#include "elementwise.h"
#include "unary.h"

#include <math.h>

typedef nbi_unary_kind un_kind;

/* Type-generic math for T = float or double. float32 runs the per-set kernels
 * (kernels/unary_f32.c); these loops are their plain reference and the float64 path. */
#define EXP(x) (sizeof(T) == sizeof(float) ? (T)nbi_expf((float)(x)) : (T)exp((double)(x)))
#define LOG(x) (sizeof(T) == sizeof(float) ? (T)logf((float)(x)) : (T)log((double)(x)))
#define SQRT(x) (sizeof(T) == sizeof(float) ? (T)sqrtf((float)(x)) : (T)sqrt((double)(x)))
#define FABS(x) (sizeof(T) == sizeof(float) ? (T)fabsf((float)(x)) : (T)fabs((double)(x)))
#define TANH(x) (sizeof(T) == sizeof(float) ? (T)nbi_tanhf((float)(x)) : (T)tanh((double)(x)))

/* ---- kernels ---- */
// out: (n), inp: (n)
static void unary_forward(un_kind kind, nb_dtype dtype, void *out, const void *inp, int64_t n) {
    if (dtype == NB_F32) {
        NBI_CPU_PICK(nbi_unary_f32_portable, nbi_unary_f32_avx2, nbi_unary_f32_avx512)->forward(kind, out, inp, n);
        return;
    }
    NBI_DISPATCH_FLOAT(dtype, {
        T *o = out;
        const T *in = inp;
        switch (kind) {
        case NBI_UN_NEG: NBI_EW_MAP1(-x); break;
        case NBI_UN_EXP: NBI_EW_MAP1(EXP(x)); break;
        case NBI_UN_LOG: NBI_EW_MAP1(LOG(x)); break;
        case NBI_UN_SQRT: NBI_EW_MAP1(SQRT(x)); break;
        /* x < 0 rather than x > 0 so that NaN passes through, as in PyTorch */
        case NBI_UN_RELU: NBI_EW_MAP1(x < 0 ? (T)0 : x); break;
        case NBI_UN_SIGMOID: NBI_EW_MAP1((T)1 / ((T)1 + EXP(-x))); break;
        case NBI_UN_TANH: NBI_EW_MAP1(TANH(x)); break;
        case NBI_UN_ABS: NBI_EW_MAP1(FABS(x)); break;
        }
    });
}

// dx: (n), dy: (n), saved: (n) (the output; the input for log and abs; unused for neg)
static void unary_backward(un_kind kind, nb_dtype dtype, void *dx, const void *dy, const void *saved, int64_t n) {
    if (dtype == NB_F32) {
        NBI_CPU_PICK(nbi_unary_f32_portable, nbi_unary_f32_avx2, nbi_unary_f32_avx512)->backward(kind, dx, dy, saved, n);
        return;
    }
    NBI_DISPATCH_FLOAT(dtype, {
        T *o = dx;
        const T *gp = dy, *sp = saved;
        switch (kind) {
        case NBI_UN_NEG: NBI_EW_MAP2(-g); break;
        case NBI_UN_EXP: NBI_EW_MAP2(g * s); break;
        case NBI_UN_LOG: NBI_EW_MAP2(g / s); break;
        case NBI_UN_SQRT: NBI_EW_MAP2(g / ((T)2 * s)); break;
        case NBI_UN_RELU: NBI_EW_MAP2(s <= 0 ? (T)0 : g); break; /* threshold_backward: 0 where y <= 0 */
        case NBI_UN_SIGMOID: NBI_EW_MAP2(g * ((T)1 - s) * s); break;
        case NBI_UN_TANH: NBI_EW_MAP2(g * ((T)1 - s * s)); break;
        case NBI_UN_ABS: NBI_EW_MAP2(g * (T)((s > 0) - (s < 0))); break;
        }
    });
}

/* ---- autograd ---- */
static nb_status unary_grad_fn(un_kind kind, nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    /* node->out is contiguous (this op made it); log and abs read their input instead */
    const bool reads_input = kind == NBI_UN_LOG || kind == NBI_UN_ABS;
    nb_tensor *xc = reads_input ? nbi_contiguous_data(node->inputs[0]) : NULL;
    if (reads_input && !xc) return nb_last_status();
    nb_status st = nbi_alloc_grads(node, gin);
    if (st == NB_OK)
        unary_backward(kind, gout->dtype, nbi_data(gin[0]), nbi_data(gout), nbi_data(xc ? xc : node->out), gout->numel);
    nbi_release(xc);
    return st;
}

#define GRAD_FN(fn, kind) \
    static nb_status fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) { return unary_grad_fn(kind, node, gout, gin); }
GRAD_FN(neg_grad_fn, NBI_UN_NEG)
GRAD_FN(exp_grad_fn, NBI_UN_EXP)
GRAD_FN(log_grad_fn, NBI_UN_LOG)
GRAD_FN(sqrt_grad_fn, NBI_UN_SQRT)
GRAD_FN(relu_grad_fn, NBI_UN_RELU)
GRAD_FN(sigmoid_grad_fn, NBI_UN_SIGMOID)
GRAD_FN(tanh_grad_fn, NBI_UN_TANH)
GRAD_FN(abs_grad_fn, NBI_UN_ABS)
#undef GRAD_FN

static const nbi_op neg_op = {"neg", neg_grad_fn, NULL};
static const nbi_op exp_op = {"exp", exp_grad_fn, NULL};
static const nbi_op log_op = {"log", log_grad_fn, NULL};
static const nbi_op sqrt_op = {"sqrt", sqrt_grad_fn, NULL};
static const nbi_op relu_op = {"relu", relu_grad_fn, NULL};
static const nbi_op sigmoid_op = {"sigmoid", sigmoid_grad_fn, NULL};
static const nbi_op tanh_op = {"tanh", tanh_grad_fn, NULL};
static const nbi_op abs_op = {"abs", abs_grad_fn, NULL};

/* ---- the ops: check, run, record ---- */
static nb_tensor *unary(const nbi_op *op, un_kind kind, const nb_tensor *x) {
    if (!nbi_ew_check_input(op->name, x)) return NULL;
    nb_tensor *xc = nbi_contiguous_data(x);
    nb_tensor *y = xc ? nbi_empty_like(x) : NULL;
    if (y) unary_forward(kind, x->dtype, nbi_data(y), nbi_data(xc), x->numel);
    nbi_release(xc);
    return nbi_finish_op(y, op, NBI_INPUTS(x), NULL, 0, NULL, 0);
}

nb_tensor *nb_neg(const nb_tensor *a) { return unary(&neg_op, NBI_UN_NEG, a); }
nb_tensor *nb_exp(const nb_tensor *a) { return unary(&exp_op, NBI_UN_EXP, a); }
nb_tensor *nb_log(const nb_tensor *a) { return unary(&log_op, NBI_UN_LOG, a); }
nb_tensor *nb_sqrt(const nb_tensor *a) { return unary(&sqrt_op, NBI_UN_SQRT, a); }
nb_tensor *nb_relu(const nb_tensor *a) { return unary(&relu_op, NBI_UN_RELU, a); }
nb_tensor *nb_sigmoid(const nb_tensor *a) { return unary(&sigmoid_op, NBI_UN_SIGMOID, a); }
nb_tensor *nb_tanh(const nb_tensor *a) { return unary(&tanh_op, NBI_UN_TANH, a); }
nb_tensor *nb_abs(const nb_tensor *a) { return unary(&abs_op, NBI_UN_ABS, a); }
