/* Unary elementwise ops: neg, exp, log, sqrt, relu, sigmoid, tanh.
 *
 * Forward is a flat loop over a contiguous copy of the input (a view is
 * copied first, outside autograd), OpenMP above NBI_PAR_MIN elements; each
 * element is computed by one thread, so the thread count never changes the
 * bits. The formulas are PyTorch's CPU ones (sigmoid = 1 / (1 + e^-x)).
 *
 * Backward is one fused loop per op, g * f'(...), written in terms of what
 * PyTorch saves: the output for exp, sqrt, relu, sigmoid and tanh (read
 * through node->out, which the node can use for as long as it lives, so
 * nothing extra is kept), the input for log. */
#include "elementwise.h"

#include <math.h>

typedef enum { UN_NEG, UN_EXP, UN_LOG, UN_SQRT, UN_RELU, UN_SIGMOID, UN_TANH } un_kind;

/* Type-generic math for T = float or double; exp and tanh in float32 use the
 * vectorisable versions in elementwise.h. */
#define EXP(x) (sizeof(T) == sizeof(float) ? (T)nbi_expf((float)(x)) : (T)exp((double)(x)))
#define LOG(x) (sizeof(T) == sizeof(float) ? (T)logf((float)(x)) : (T)log((double)(x)))
#define SQRT(x) (sizeof(T) == sizeof(float) ? (T)sqrtf((float)(x)) : (T)sqrt((double)(x)))
#define TANH(x) (sizeof(T) == sizeof(float) ? (T)nbi_tanhf((float)(x)) : (T)tanh((double)(x)))

// out: (n), a: (n), both contiguous
static void unary_forward(un_kind kind, nb_tensor *out, const nb_tensor *a) {
    const int64_t n = out->numel;
    NBI_DISPATCH_FLOAT(out->dtype, {
        T *o = nbi_data(out);
        const T *in = nbi_data(a);
        switch (kind) {
        case UN_NEG: NBI_EW_MAP1(-x); break;
        case UN_EXP: NBI_EW_MAP1(EXP(x)); break;
        case UN_LOG: NBI_EW_MAP1(LOG(x)); break;
        case UN_SQRT: NBI_EW_MAP1(SQRT(x)); break;
        /* x < 0 rather than x > 0 so that NaN passes through, as in PyTorch */
        case UN_RELU: NBI_EW_MAP1(x < 0 ? (T)0 : x); break;
        case UN_SIGMOID: NBI_EW_MAP1((T)1 / ((T)1 + EXP(-x))); break;
        case UN_TANH: NBI_EW_MAP1(TANH(x)); break;
        }
    });
}

// gin: (n) <- gout: (n) and saved: (n) (the output; the input for log; unused for neg), all contiguous
static void unary_backward_kernel(un_kind kind, nb_tensor *gin, const nb_tensor *gout, const nb_tensor *saved) {
    const int64_t n = gin->numel;
    NBI_DISPATCH_FLOAT(gin->dtype, {
        T *o = nbi_data(gin);
        const T *gp = nbi_data(gout), *sp = nbi_data(saved);
        switch (kind) {
        case UN_NEG: NBI_EW_MAP2(-g); break;
        case UN_EXP: NBI_EW_MAP2(g * s); break;
        case UN_LOG: NBI_EW_MAP2(g / s); break;
        case UN_SQRT: NBI_EW_MAP2(g / ((T)2 * s)); break;
        case UN_RELU: NBI_EW_MAP2(s <= 0 ? (T)0 : g); break; /* threshold_backward: 0 where y <= 0 */
        case UN_SIGMOID: NBI_EW_MAP2(g * ((T)1 - s) * s); break;
        case UN_TANH: NBI_EW_MAP2(g * ((T)1 - s * s)); break;
        }
    });
}

static nb_status unary_backward(un_kind kind, nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    if (!nbi_node_needs_grad(node, 0)) return NB_OK;
    const nb_tensor *saved = kind == UN_LOG ? node->inputs[0] : kind == UN_NEG ? gout : node->out;
    nb_tensor *tmp_s, *tmp_g;
    const nb_tensor *s = nbi_ew_contiguous(saved, &tmp_s);
    const nb_tensor *g = s ? nbi_ew_contiguous(gout, &tmp_g) : NULL;
    nb_tensor *r = g ? nbi_empty_like(gout) : NULL;
    if (r) unary_backward_kernel(kind, r, g, s);
    if (s) nb_tensor_release(tmp_g);
    nb_tensor_release(tmp_s);
    if (!r) return nb_last_status();
    gin[0] = r;
    return NB_OK;
}

#define BACKWARD(fn, kind) \
    static nb_status fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) { return unary_backward(kind, node, gout, gin); }
BACKWARD(neg_backward, UN_NEG)
BACKWARD(exp_backward, UN_EXP)
BACKWARD(log_backward, UN_LOG)
BACKWARD(sqrt_backward, UN_SQRT)
BACKWARD(relu_backward, UN_RELU)
BACKWARD(sigmoid_backward, UN_SIGMOID)
BACKWARD(tanh_backward, UN_TANH)
#undef BACKWARD

static const nbi_op neg_op = {"neg", neg_backward, NULL};
static const nbi_op exp_op = {"exp", exp_backward, NULL};
static const nbi_op log_op = {"log", log_backward, NULL};
static const nbi_op sqrt_op = {"sqrt", sqrt_backward, NULL};
static const nbi_op relu_op = {"relu", relu_backward, NULL};
static const nbi_op sigmoid_op = {"sigmoid", sigmoid_backward, NULL};
static const nbi_op tanh_op = {"tanh", tanh_backward, NULL};

static nb_tensor *unary(const nbi_op *op, un_kind kind, const nb_tensor *a) {
    if (!nbi_ew_check_input(op->name, a)) return NULL;
    nb_tensor *tmp;
    const nb_tensor *src = nbi_ew_contiguous(a, &tmp);
    if (!src) return NULL;
    nb_tensor *out = nbi_empty(a->dtype, a->ndim, a->shape);
    if (out) unary_forward(kind, out, src);
    nb_tensor_release(tmp);
    nb_tensor *in = (nb_tensor *)a;
    return nbi_finish(out, op, &in, 1, NULL);
}

nb_tensor *nb_neg(const nb_tensor *a) { return unary(&neg_op, UN_NEG, a); }
nb_tensor *nb_exp(const nb_tensor *a) { return unary(&exp_op, UN_EXP, a); }
nb_tensor *nb_log(const nb_tensor *a) { return unary(&log_op, UN_LOG, a); }
nb_tensor *nb_sqrt(const nb_tensor *a) { return unary(&sqrt_op, UN_SQRT, a); }
nb_tensor *nb_relu(const nb_tensor *a) { return unary(&relu_op, UN_RELU, a); }
nb_tensor *nb_sigmoid(const nb_tensor *a) { return unary(&sigmoid_op, UN_SIGMOID, a); }
nb_tensor *nb_tanh(const nb_tensor *a) { return unary(&tanh_op, UN_TANH, a); }
