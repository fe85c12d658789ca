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
#include <stdlib.h>

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

// out: (n) <- a: (n), both contiguous
static void scalar_forward(sc_kind kind, nb_tensor *out, const nb_tensor *a, double sd) {
    const int64_t n = out->numel;
    NBI_DISPATCH_FLOAT(out->dtype, {
        T *o = nbi_data(out);
        const T *in = nbi_data(a);
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

/* ---- backward ---- */
static nb_status identity_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    if (nbi_node_needs_grad(node, 0)) gin[0] = nb_tensor_retain((nb_tensor *)gout);
    return NB_OK;
}

static nb_status mul_scalar_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    if (!nbi_node_needs_grad(node, 0)) return NB_OK;
    gin[0] = nb_mul_scalar(gout, ((const scalar_ctx *)node->ctx)->s);
    return gin[0] ? NB_OK : nb_last_status();
}

static nb_status div_scalar_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    if (!nbi_node_needs_grad(node, 0)) return NB_OK;
    gin[0] = nb_div_scalar(gout, ((const scalar_ctx *)node->ctx)->s);
    return gin[0] ? NB_OK : nb_last_status();
}

static nb_status rsub_scalar_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    if (!nbi_node_needs_grad(node, 0)) return NB_OK;
    gin[0] = nb_neg(gout);
    return gin[0] ? NB_OK : nb_last_status();
}

/* g * (p * a^(p-1)), as PyTorch's pow_backward; zeros when p == 0. */
static nb_status pow_scalar_backward(nbi_node *node, const nb_tensor *gout, nb_tensor **gin) {
    if (!nbi_node_needs_grad(node, 0)) return NB_OK;
    const double p = ((const scalar_ctx *)node->ctx)->s;
    if (p == 0) {
        gin[0] = nb_zeros_like(gout);
        return gin[0] ? NB_OK : nb_last_status();
    }
    nb_tensor *tmp_a, *tmp_g = NULL;
    const nb_tensor *a = nbi_ew_contiguous(node->inputs[0], &tmp_a);
    const nb_tensor *gc = a ? nbi_ew_contiguous(gout, &tmp_g) : NULL;
    nb_tensor *r = gc ? nbi_empty_like(gout) : NULL;
    if (r) {
        const int64_t n = r->numel;
        NBI_DISPATCH_FLOAT(r->dtype, {
            T *o = nbi_data(r);
            const T *in = nbi_data(a);
            POW_MAP(p - 1); /* o = a^(p-1) */
            const T pt = (T)p;
            const T *gp = nbi_data(gc), *sp = o;
            NBI_EW_MAP2(g * (pt * s));
        });
    }
    nb_tensor_release(tmp_g);
    nb_tensor_release(tmp_a);
    if (!r) return nb_last_status();
    gin[0] = r;
    return NB_OK;
}

static const nbi_op add_scalar_op = {"add_scalar", identity_backward, NULL};
static const nbi_op sub_scalar_op = {"sub_scalar", identity_backward, NULL};
static const nbi_op mul_scalar_op = {"mul_scalar", mul_scalar_backward, NULL};
static const nbi_op div_scalar_op = {"div_scalar", div_scalar_backward, NULL};
static const nbi_op rsub_scalar_op = {"rsub_scalar", rsub_scalar_backward, NULL};
static const nbi_op pow_scalar_op = {"pow_scalar", pow_scalar_backward, NULL};

static nb_tensor *scalar_op(const nbi_op *op, sc_kind kind, const nb_tensor *a, double s) {
    if (!nbi_ew_check_input(op->name, a)) return NULL;
    nb_tensor *tmp;
    const nb_tensor *src = nbi_ew_contiguous(a, &tmp);
    if (!src) return NULL;
    nb_tensor *out = nbi_empty(a->dtype, a->ndim, a->shape);
    if (out) scalar_forward(kind, out, src, s);
    nb_tensor_release(tmp);
    nb_tensor *in = (nb_tensor *)a;
    const scalar_ctx sc = {.s = s};
    return nbi_finish_copy(out, op, &in, 1, &sc, sizeof sc, op->name);
}

nb_tensor *nb_add_scalar(const nb_tensor *a, double s) { return scalar_op(&add_scalar_op, SC_ADD, a, s); }
nb_tensor *nb_sub_scalar(const nb_tensor *a, double s) { return scalar_op(&sub_scalar_op, SC_SUB, a, s); }
nb_tensor *nb_mul_scalar(const nb_tensor *a, double s) { return scalar_op(&mul_scalar_op, SC_MUL, a, s); }
nb_tensor *nb_div_scalar(const nb_tensor *a, double s) { return scalar_op(&div_scalar_op, SC_DIV, a, s); }
nb_tensor *nb_rsub_scalar(const nb_tensor *a, double s) { return scalar_op(&rsub_scalar_op, SC_RSUB, a, s); }
nb_tensor *nb_pow_scalar(const nb_tensor *a, double p) { return scalar_op(&pow_scalar_op, SC_POW, a, p); }
