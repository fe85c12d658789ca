/* Pointwise activations of torch.nn.functional beyond ReLU and its leaky
 * form: gelu (approximate 'none' and 'tanh'), silu, elu, softplus, hardswish.
 *
 * One family (docs/ops.md): one check, one forward and one backward kernel
 * with the variant as an argument, one grad_fn. The formulas are PyTorch's
 * CPU kernels with its order of operations and its branches (which decide
 * NaN and the gradient at the kinks); where its vectorised loop and its
 * scalar tail disagree (hardswish's gradient at exactly 3), the vectorised
 * one, which computes all but the last few elements of a tensor. Every
 * backward reads the saved input, as PyTorch's do; F.elu's too (only the
 * in-place elu_, which nabla does not have, differentiates through its
 * output). float32 loops use the vectorisable math of tensor/fastmath.h,
 * float64 libm; one thread computes each element, so the bits do not depend
 * on the thread count. */
#include "nn_util.h"
#include "tensor/fastmath.h"

typedef enum { ACT_GELU, ACT_GELU_TANH, ACT_SILU, ACT_ELU, ACT_SOFTPLUS, ACT_HARDSWISH } act_kind;

/* The variant and its parameters: the node's ctx. */
typedef struct {
    act_kind kind;
    double alpha;           /* elu */
    double beta, threshold; /* softplus */
} act_params;

/* PyTorch's names, which are also the grad_fn names. */
static const char *const act_names[] = {"gelu", "gelu", "silu", "elu", "softplus", "hardswish"};

/* ---- checks (the parameter parts are shared with the modules, layers_activation.c) ---- */
bool nbi_activation_check_param(const char *op, const char *name, double value) {
    if (!isfinite(value)) {
        nbi_error(NB_ERR_ARG, "%s: expected a finite %s, but got %g", op, name, value);
        return false;
    }
    return true;
}

bool nbi_gelu_check_approximate(const char *op, nb_gelu_approximate approximate) {
    if (approximate != NB_GELU_NONE && approximate != NB_GELU_TANH) {
        nbi_error(NB_ERR_ARG, "%s: approximate argument must be either none or tanh (NB_GELU_NONE or NB_GELU_TANH), but got %d",
                  op, (int)approximate);
        return false;
    }
    return true;
}

static bool act_check(const nb_tensor *x, const act_params *p) {
    const char *op = act_names[p->kind];
    if (!nbi_check_float(op, "input", x)) return false;
    if (p->kind == ACT_ELU) return nbi_activation_check_param(op, "alpha", p->alpha);
    if (p->kind == ACT_SOFTPLUS)
        return nbi_activation_check_param(op, "beta", p->beta) && nbi_activation_check_param(op, "threshold", p->threshold);
    return true;
}

/* ---- kernels ---- */
#define GELU_ALPHA 0.70710678118654752440  /* 1/sqrt(2) */
#define GELU_PDF 0.39894228040143267794    /* 1/sqrt(2 pi) */
#define GELU_BETA 0.79788456080286535588   /* sqrt(2/pi) */
#define GELU_KAPPA 0.044715

// out: (n), inp: (n)
static void act_forward(const act_params *p, nb_dtype dtype, void *out, const void *inp, int64_t n) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *o = out;
        const T *in = inp;
        const T a = (T)p->alpha, b = (T)p->beta, th = (T)p->threshold;
        const T half = (T)0.5, one = (T)1, three = (T)3, six = (T)6, zero = (T)0;
        const T ka = (T)GELU_ALPHA, kb = (T)GELU_BETA, kk = (T)GELU_KAPPA;
        switch (p->kind) {
        case ACT_GELU: NBI_EW_MAP1(x * half * (one + NBI_T_ERF(x * ka))); break;
        case ACT_GELU_TANH: NBI_EW_MAP1(half * x * (one + NBI_T_TANH(kb * (x + kk * (x * x * x))))); break;
        case ACT_SILU: NBI_EW_MAP1(x / (one + NBI_T_EXP(-x))); break;
        /* both arms computed before the select, so that the float32 loops vectorise (tensor/fastmath.h) */
        case ACT_ELU: NBI_EW_MAP1(({ T neg = NBI_T_EXPM1(x) * a; x <= zero ? neg : x; })); break;
        case ACT_SOFTPLUS: NBI_EW_MAP1(({ T soft = NBI_T_LOG1P(NBI_T_EXP(x * b)) / b; x * b > th ? x : soft; })); break;
        case ACT_HARDSWISH: {
            /* x * min(max(x + 3, 0), 6) / 6 */
            NBI_EW_MAP1(({ T r = x + three; x * (r < zero ? zero : (r > six ? six : r)) / six; }));
            break;
        }
        }
    });
}

// dx: (n), dy: (n), inp: (n) the saved input
static void act_backward(const act_params *p, nb_dtype dtype, void *dx, const void *dy, const void *inp, int64_t n) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *o = dx;
        const T *gp = dy, *sp = inp; /* NBI_EW_MAP2: g the incoming gradient, s the input */
        const T a = (T)p->alpha, b = (T)p->beta, th = (T)p->threshold;
        const T half = (T)0.5, one = (T)1, three = (T)3, zero = (T)0;
        const T ka = (T)GELU_ALPHA, kp = (T)GELU_PDF, kb = (T)GELU_BETA, kk = (T)GELU_KAPPA;
        switch (p->kind) {
        case ACT_GELU:
            /* cdf + x * pdf */
            NBI_EW_MAP2(g * (half * (one + NBI_T_ERF(s * ka)) + s * (kp * NBI_T_EXP(-half * s * s))));
            break;
        case ACT_GELU_TANH:
            /* d/dx of 0.5 x (1 + tanh u), u = kb (x + kk x^3) */
            NBI_EW_MAP2(({
                T t = NBI_T_TANH(kb * (s + kk * (s * s * s)));
                g * (half * (one + t) + half * s * (one - t * t) * (kb * (one + three * kk * (s * s))));
            }));
            break;
        case ACT_SILU:
            NBI_EW_MAP2(({
                T sig = one / (one + NBI_T_EXP(-s));
                g * sig * (one + s * (one - sig));
            }));
            break;
        case ACT_ELU: NBI_EW_MAP2(({ T neg = g * a * NBI_T_EXP(s); s <= zero ? neg : g; })); break;
        case ACT_SOFTPLUS:
            NBI_EW_MAP2(({
                T z = NBI_T_EXP(s * b);
                s * b > th ? g : g * z / (z + one);
            }));
            break;
        case ACT_HARDSWISH:
            /* PyTorch's vectorised branches (its scalar tail takes the middle one at exactly 3) */
            NBI_EW_MAP2(({ T mid = g * (s / three + half); s < -three ? zero : (s < three ? mid : g); }));
            break;
        }
    });
}

/* ---- autograd: ctx is the act_params; saved[0] the contiguous input ---- */
static nb_status act_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    const nb_tensor *x = node->saved[0];
    if (nbi_alloc_grads(node, gin) != NB_OK) return nb_last_status();
    act_backward(node->ctx, x->dtype, nbi_data(gin[0]), nbi_data(gout), nbi_data(x), x->numel);
    return NB_OK;
}

static const nbi_op act_ops[] = {
    {"gelu", act_grad_fn, NULL}, {"gelu", act_grad_fn, NULL},     {"silu", act_grad_fn, NULL},
    {"elu", act_grad_fn, NULL},  {"softplus", act_grad_fn, NULL}, {"hardswish", act_grad_fn, NULL},
};

/* ---- the ops: check, run, record ---- */
static nb_tensor *activation(const act_params *p, const nb_tensor *x) {
    if (!act_check(x, p)) return NULL;
    nb_tensor *xc = nbi_contiguous_data(x);
    nb_tensor *y = xc ? nbi_empty_like(x) : NULL;
    if (y) act_forward(p, x->dtype, nbi_data(y), nbi_data(xc), x->numel);
    return nbi_finish_op(y, &act_ops[p->kind], NBI_INPUTS(x), NBI_SAVED(xc), p, sizeof *p);
}

nb_tensor *nb_gelu(const nb_tensor *x, nb_gelu_approximate approximate) {
    if (!nbi_check_float("gelu", "input", x) || !nbi_gelu_check_approximate("gelu", approximate)) return NULL;
    return activation(&(act_params){.kind = approximate == NB_GELU_TANH ? ACT_GELU_TANH : ACT_GELU}, x);
}
nb_tensor *nb_silu(const nb_tensor *x) { return activation(&(act_params){.kind = ACT_SILU}, x); }
nb_tensor *nb_elu(const nb_tensor *x, double alpha) { return activation(&(act_params){.kind = ACT_ELU, .alpha = alpha}, x); }
nb_tensor *nb_softplus(const nb_tensor *x, double beta, double threshold) {
    return activation(&(act_params){.kind = ACT_SOFTPLUS, .beta = beta, .threshold = threshold}, x);
}
nb_tensor *nb_hardswish(const nb_tensor *x) { return activation(&(act_params){.kind = ACT_HARDSWISH}, x); }
