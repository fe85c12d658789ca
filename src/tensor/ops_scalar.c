/* Elementwise ops of a tensor and a scalar: a + s, a - s, a * s, a / s,
 * s - a, a ^ p.
 *
 * As in PyTorch, the scalar is first rounded to the tensor's dtype and the
 * arithmetic is done in that dtype. pow takes PyTorch's special cases
 * (p = 2, 3, 0.5, -0.5, -1, -2 by multiplication / sqrt) so that its results
 * match, and its backward is PyTorch's g * p * a^(p-1) (zero for p = 0).
 * Forward is a flat loop over a contiguous copy of the input, OpenMP above
 * NBI_PAR_MIN elements, one thread per element. Only the scalar is saved
 * (pow also reads its input, which the node keeps anyway). */
#include "elementwise.h"

#include <math.h>

typedef enum { SC_ADD, SC_SUB, SC_MUL, SC_DIV, SC_RSUB, SC_POW } sc_kind;

typedef struct { double s; } scalar_ctx;

#define SQRT(x) (sizeof(T) == sizeof(float) ? (T)sqrtf((float)(x)) : (T)sqrt((double)(x)))
#define POW(x, y) (sizeof(T) == sizeof(float) ? (T)powf((float)(x), (float)(y)) : (T)pow((double)(x), (double)(y)))

/* o[i] = in[i] ^ p with PyTorch's special cases; T, n, o, in in scope. */
#define POW_MAP(pd)                                                            \
    do {                                                                       \
        const double p_ = (pd);                                                \
        const T pt_ = (T)p_;                                                   \
        if (p_ == 0) NBI_EW_MAP1((T)1);                                          \
        else if (p_ == 1) NBI_EW_MAP1(x);                                      \
        else if (p_ == 2) NBI_EW_MAP1(x * x);                                  \
        else if (p_ == 3) NBI_EW_MAP1(x * x * x);                              \
        else if (p_ == 0.5) NBI_EW_MAP1(SQRT(x));                              \
        else if (p_ == -0.5) NBI_EW_MAP1((T)1 / SQRT(x));                      \
        else if (p_ == -1) NBI_EW_MAP1((T)1 / x);                              \
        else if (p_ == -2) NBI_EW_MAP1((T)1 / (x * x));                        \
        else NBI_EW_MAP1(POW(x, pt_));                                         \
    } while (0)

/* ---- kernels ---- */
// out: (n), inp: (n)
static void scalar_forward(sc_kind kind, nb_dtype dtype, void *out, const void *inp, int64_t n, double sd) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *o = out;
        const T *in = inp;
        const T s = (T)sd;
        switch (kind) {
        case SC_ADD: NBI_EW_MAP1(x + s); break;
        case SC_SUB: NBI_EW_MAP1(x - s); break;
        case SC_MUL: NBI_EW_MAP1(x * s); break;
        case SC_DIV: NBI_EW_MAP1(x / s); break;
        case SC_RSUB: NBI_EW_MAP1(s - x); break;
        case SC_POW: POW_MAP(sd); break;
        }
    });
}

/* dx = dy * (p * x^(p-1)), as PyTorch's pow_backward; zeros when p == 0. */
// dx: (n), dy: (n), inp: (n)
static void pow_scalar_backward(nb_dtype dtype, void *dx, const void *dy, const void *inp, int64_t n, double p) {
    NBI_DISPATCH_FLOAT(dtype, {
        T *o = dx;
        if (p == 0) {
            for (int64_t i = 0; i < n; i++) o[i] = 0;
        } else {
            const T *in = inp;
            POW_MAP(p - 1); /* o = x^(p-1) */
            const T pt = (T)p;
            const T *gp = dy, *sp = o;
            NBI_EW_MAP2(g * (pt * s));
        }
    });
}

/* ---- autograd: ctx is the scalar ---- */
static nb_status identity_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    (void)node;
    gin[0] = nbi_retain((nb_tensor *)gout);
    return NB_OK;
}

static nb_status mul_scalar_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    gin[0] = nbi_own(nb_mul_scalar(gout, ((const scalar_ctx *)node->ctx)->s));
    return gin[0] ? NB_OK : nb_last_status();
}

static nb_status div_scalar_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    gin[0] = nbi_own(nb_div_scalar(gout, ((const scalar_ctx *)node->ctx)->s));
    return gin[0] ? NB_OK : nb_last_status();
}

static nb_status rsub_scalar_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    (void)node;
    gin[0] = nbi_own(nb_neg(gout));
    return gin[0] ? NB_OK : nb_last_status();
}

static nb_status pow_scalar_grad_fn(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    nb_tensor *xc = nbi_contiguous_data(node->inputs[0]);
    nb_status st = xc ? nbi_alloc_grads(node, gin) : nb_last_status();
    if (st == NB_OK)
        pow_scalar_backward(gout->dtype, nbi_data(gin[0]), nbi_data(gout), nbi_data(xc), gout->numel,
                            ((const scalar_ctx *)node->ctx)->s);
    nbi_release(xc);
    return st;
}

static const nbi_op add_scalar_op = {"add_scalar", identity_grad_fn, NULL};
static const nbi_op sub_scalar_op = {"sub_scalar", identity_grad_fn, NULL};
static const nbi_op mul_scalar_op = {"mul_scalar", mul_scalar_grad_fn, NULL};
static const nbi_op div_scalar_op = {"div_scalar", div_scalar_grad_fn, NULL};
static const nbi_op rsub_scalar_op = {"rsub_scalar", rsub_scalar_grad_fn, NULL};
static const nbi_op pow_scalar_op = {"pow_scalar", pow_scalar_grad_fn, NULL};

/* ---- the ops: check, run, record ---- */
static nb_tensor *scalar_op(const nbi_op *op, sc_kind kind, const nb_tensor *x, double s) {
    if (!nbi_ew_check_input(op->name, x)) return NULL;
    nb_tensor *xc = nbi_contiguous_data(x);
    nb_tensor *y = xc ? nbi_empty_like(x) : NULL;
    if (y) scalar_forward(kind, x->dtype, nbi_data(y), nbi_data(xc), x->numel, s);
    nbi_release(xc);
    const scalar_ctx c = {.s = s};
    return nbi_finish_op(y, op, NBI_INPUTS(x), NULL, 0, &c, sizeof c);
}

nb_tensor *nb_add_scalar(const nb_tensor *a, double s) { return scalar_op(&add_scalar_op, SC_ADD, a, s); }
nb_tensor *nb_sub_scalar(const nb_tensor *a, double s) { return scalar_op(&sub_scalar_op, SC_SUB, a, s); }
nb_tensor *nb_mul_scalar(const nb_tensor *a, double s) { return scalar_op(&mul_scalar_op, SC_MUL, a, s); }
nb_tensor *nb_div_scalar(const nb_tensor *a, double s) { return scalar_op(&div_scalar_op, SC_DIV, a, s); }
nb_tensor *nb_rsub_scalar(const nb_tensor *a, double s) { return scalar_op(&rsub_scalar_op, SC_RSUB, a, s); }
nb_tensor *nb_pow_scalar(const nb_tensor *a, double p) { return scalar_op(&pow_scalar_op, SC_POW, a, p); }
