/* torch.nn.init: each function checks its arguments in PyTorch's order and
 * words, computes PyTorch's bound or standard deviation by its formula (same
 * expression, same rounding), and fills the tensor through one kernel over a
 * contiguous row-major array: the tensor's own data, or a scratch buffer then
 * copied into a strided view. Nothing is recorded by autograd. */
#include "nabla/init.h"
#include "nn_util.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <string.h>

/* ---- kernels: x: (n,) row-major ---- */
typedef void (*fill_fn)(nb_dtype dtype, void *x, const nb_tensor *t, const void *ctx);

/* Run fn on t's elements as one contiguous array (op names t's owner in messages). */
static nb_status fill(const char *op, nb_tensor *t, fill_fn fn, const void *ctx) {
    if (nbi_is_contiguous(t)) {
        fn(t->dtype, nbi_data(t), t, ctx);
        return NB_OK;
    }
    nb_tensor *tmp = nbi_empty_op(op, t->dtype, t->ndim, t->shape);
    if (!tmp) return nb_last_status();
    fn(t->dtype, nbi_data(tmp), t, ctx);
    nb_status st = nb_tensor_copy_(t, tmp);
    nbi_release(tmp);
    return st;
}

typedef struct { nb_rng *rng; double a, b; bool normal; } random_ctx;

static void random_kernel(nb_dtype dtype, void *x, const nb_tensor *t, const void *ctx) {
    const random_ctx *c = ctx;
    nbi_rng_fill(dtype, x, t->numel, c->rng, c->a, c->b, c->normal);
}

/* erfinv in double: Giles' single-precision approximation (2010), then two
 * Newton steps on erf(x) = y. */
static double erfinv(double y) {
    if (!(y > -1 && y < 1)) return y == -1 ? -INFINITY : y == 1 ? INFINITY : NAN;
    double w = -log((1.0 - y) * (1.0 + y)), x;
    if (w < 5.0) {
        w -= 2.5;
        x = 2.81022636e-08;
        x = 3.43273939e-07 + x * w, x = -3.5233877e-06 + x * w, x = -4.39150654e-06 + x * w;
        x = 0.00021858087 + x * w, x = -0.00125372503 + x * w, x = -0.00417768164 + x * w;
        x = 0.246640727 + x * w, x = 1.50140941 + x * w;
    } else {
        w = sqrt(w) - 3.0;
        x = -0.000200214257;
        x = 0.000100950558 + x * w, x = 0.00134934322 + x * w, x = -0.00367342844 + x * w;
        x = 0.00573950773 + x * w, x = -0.0076224613 + x * w, x = 0.00943887047 + x * w;
        x = 1.00167406 + x * w, x = 2.83297682 + x * w;
    }
    x *= y;
    for (int k = 0; k < 2; k++) x -= (erf(x) - y) / (M_2_SQRTPI * exp(-x * x));
    return x;
}

typedef struct { nb_rng *rng; double lo, hi, mean, std, a, b; } trunc_ctx;

/* PyTorch's _no_grad_trunc_normal_: u ~ U(2l - 1, 2u - 1), then
 * erfinv(u) * std * sqrt(2) + mean, clamped to [a, b] (in double, rounded once). */
static void trunc_normal_kernel(nb_dtype dtype, void *x, const nb_tensor *t, const void *ctx) {
    const trunc_ctx *c = ctx;
    nb_rng *rng = c->rng ? c->rng : nb_default_rng();
    const int64_t n = t->numel;
    NBI_DISPATCH_FLOAT(dtype, {
        T *p = x; // p: (n,)
        const T a = (T)c->a, b = (T)c->b;
        for (int64_t i = 0; i < n; i++) {
            const double u = c->lo + (c->hi - c->lo) * nb_rng_uniform(rng);
            T v = (T)(erfinv(u) * (c->std * sqrt(2.)) + c->mean);
            p[i] = v < a ? a : v > b ? b : v;
        }
    });
}

/* Element i of a row-major array of dtype set to v (any dtype: fill_'s conversion). */
static void store(nb_dtype dtype, void *x, int64_t i, double v) {
    if (dtype == NB_F32) ((float *)x)[i] = (float)v;
    else if (dtype == NB_F64) ((double *)x)[i] = v;
    else ((int64_t *)x)[i] = (int64_t)v;
}

static void zero(nb_dtype dtype, void *x, int64_t n) { memset(x, 0, (size_t)n * nb_dtype_size(dtype)); }

// x: (rows, cols)
static void eye_kernel(nb_dtype dtype, void *x, const nb_tensor *t, const void *ctx) {
    (void)ctx;
    const int64_t rows = t->shape[0], cols = t->shape[1];
    zero(dtype, x, t->numel);
    for (int64_t i = 0; i < rows && i < cols; i++) store(dtype, x, i * cols + i, 1.0);
}

// x: (out, in, k1[, k2[, k3]])
static void dirac_kernel(nb_dtype dtype, void *x, const nb_tensor *t, const void *ctx) {
    const int64_t groups = *(const int64_t *)ctx, out_per_group = t->shape[0] / groups;
    const int64_t min_dim = out_per_group < t->shape[1] ? out_per_group : t->shape[1];
    int64_t centre = 0, ksize = 1; /* the offset of the kernel's centre (size // 2 per dim) in one kernel */
    for (int d = 2; d < t->ndim; d++) {
        centre = centre * t->shape[d] + t->shape[d] / 2;
        ksize *= t->shape[d];
    }
    zero(dtype, x, t->numel);
    for (int64_t g = 0; g < groups; g++)
        for (int64_t d = 0; d < min_dim; d++)
            store(dtype, x, ((g * out_per_group + d) * t->shape[1] + d) * ksize + centre, 1.0);
}

/* ---- checks, in PyTorch's words ---- */
/* uniform_'s bounds: finite in the dtype, from <= to, to - from representable. */
static bool check_uniform(const char *op, nb_dtype dtype, double from, double to) {
    const double lim = dtype == NB_F32 ? FLT_MAX : DBL_MAX;
    const char *name = dtype == NB_F32 ? "float" : "double", *Name = dtype == NB_F32 ? "Float" : "Double";
    if (!(from >= -lim && from <= lim)) nbi_error(NB_ERR_ARG, "%s: from is out of bounds for %s", op, name);
    else if (!(to >= -lim && to <= lim)) nbi_error(NB_ERR_ARG, "%s: to is out of bounds for %s", op, name);
    else if (from > to)
        nbi_error(NB_ERR_ARG, "%s: uniform_ expects to return a [from, to) range, but found from=%g > to=%g", op, from,
                  to);
    else if (!(to - from <= lim))
        nbi_error(NB_ERR_ARG, "%s: uniform_ expects to-from <= std::numeric_limits<%s>::max(), but found to=%g and "
                              "from=%g which result in to-from to exceed the limit", op, Name, to, from);
    else return true;
    return false;
}

static nb_status fill_uniform(const char *op, nb_tensor *t, double a, double b, nb_rng *rng) {
    if (!check_uniform(op, t->dtype, a, b)) return nb_last_status();
    return fill(op, t, random_kernel, &(random_ctx){rng, a, b, false});
}

static nb_status fill_normal(const char *op, nb_tensor *t, double mean, double std, nb_rng *rng) {
    if (!(std >= 0.0)) return nbi_error(NB_ERR_ARG, "%s: normal expects std >= 0.0, but found std %g", op, std);
    return fill(op, t, random_kernel, &(random_ctx){rng, mean, std, true});
}

static bool fans(const char *op, const nb_tensor *t, int64_t *fan_in, int64_t *fan_out) {
    if (t->ndim < 2) {
        nbi_error(NB_ERR_ARG, "%s: Fan in and fan out can not be computed for tensor with fewer than 2 dimensions", op);
        return false;
    }
    int64_t rf = 1;
    bool overflow = false;
    for (int d = 2; d < t->ndim; d++) overflow |= __builtin_mul_overflow(rf, t->shape[d], &rf);
    /* Both products are computed (not short-circuited): each output is set. */
    overflow |= __builtin_mul_overflow(t->shape[1], rf, fan_in);
    overflow |= __builtin_mul_overflow(t->shape[0], rf, fan_out);
    if (overflow) nbi_error(NB_ERR_ARG, "%s: fan_in or fan_out of a tensor with no elements overflows int64", op);
    return !overflow;
}

static double gain(const char *op, const char *nonlinearity, double param) {
    static const char *const gain1[] = {"linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                                        "conv_transpose2d", "conv_transpose3d", "sigmoid"};
    if (!nonlinearity) {
        nbi_error(NB_ERR_ARG, "%s: argument 'nonlinearity' is NULL", op);
        return NAN;
    }
    for (size_t i = 0; i < sizeof gain1 / sizeof *gain1; i++)
        if (strcmp(nonlinearity, gain1[i]) == 0) return 1;
    if (strcmp(nonlinearity, "tanh") == 0) return 5.0 / 3;
    if (strcmp(nonlinearity, "relu") == 0) return sqrt(2.0);
    if (strcmp(nonlinearity, "leaky_relu") == 0) {
        const double negative_slope = isnan(param) ? 0.01 : param;
        return sqrt(2.0 / (1 + pow(negative_slope, 2)));
    }
    if (strcmp(nonlinearity, "selu") == 0) return 3.0 / 4;
    nbi_error(NB_ERR_ARG, "%s: Unsupported nonlinearity %s", op, nonlinearity);
    return NAN;
}

/* ---- public functions ---- */
double nb_init_calculate_gain(const char *nonlinearity, double param) {
    return gain("calculate_gain", nonlinearity, param);
}

nb_status nb_init_calculate_fan_in_and_fan_out(const nb_tensor *t, int64_t *fan_in, int64_t *fan_out) {
    const char *op = "calculate_fan_in_and_fan_out";
    int64_t in, out;
    if (!nbi_check_tensor(op, "tensor", t) || !fans(op, t, &in, &out)) return nb_last_status();
    if (fan_in) *fan_in = in;
    if (fan_out) *fan_out = out;
    return NB_OK;
}

nb_status nb_init_uniform_(nb_tensor *t, double a, double b, nb_rng *rng) {
    if (!nbi_check_float("uniform_", "tensor", t)) return nb_last_status();
    return fill_uniform("uniform_", t, a, b, rng);
}

nb_status nb_init_normal_(nb_tensor *t, double mean, double std, nb_rng *rng) {
    if (!nbi_check_float("normal_", "tensor", t)) return nb_last_status();
    return fill_normal("normal_", t, mean, std, rng);
}

nb_status nb_init_trunc_normal_(nb_tensor *t, double mean, double std, double a, double b, nb_rng *rng) {
    const char *op = "trunc_normal_";
    if (!nbi_check_float(op, "tensor", t)) return nb_last_status();
    if (!(std > 0) || !isfinite(std) || !isfinite(mean))
        return nbi_error(NB_ERR_ARG, "%s: expected a finite mean and std > 0, but got mean=%g std=%g", op, mean, std);
    if (!(a <= b)) return nbi_error(NB_ERR_ARG, "%s: expected a <= b, but got a=%g b=%g", op, a, b);
    const double l = (1. + erf((a - mean) / std / sqrt(2.))) / 2., u = (1. + erf((b - mean) / std / sqrt(2.))) / 2.;
    return fill(op, t, trunc_normal_kernel, &(trunc_ctx){rng, 2 * l - 1, 2 * u - 1, mean, std, a, b});
}

nb_status nb_init_constant_(nb_tensor *t, double val) {
    if (!nbi_check_tensor("constant_", "tensor", t)) return nb_last_status();
    return nb_tensor_fill_(t, val);
}

nb_status nb_init_ones_(nb_tensor *t) {
    if (!nbi_check_tensor("ones_", "tensor", t)) return nb_last_status();
    return nb_tensor_fill_(t, 1.0);
}

nb_status nb_init_zeros_(nb_tensor *t) {
    if (!nbi_check_tensor("zeros_", "tensor", t)) return nb_last_status();
    return nb_tensor_fill_(t, 0.0);
}

nb_status nb_init_eye_(nb_tensor *t) {
    if (!nbi_check_tensor("eye_", "tensor", t)) return nb_last_status();
    if (t->ndim != 2) return nbi_error(NB_ERR_ARG, "eye_: Only tensors with 2 dimensions are supported");
    return fill("eye_", t, eye_kernel, NULL);
}

nb_status nb_init_dirac_(nb_tensor *t, int64_t groups) {
    if (!nbi_check_tensor("dirac_", "tensor", t)) return nb_last_status();
    if (t->ndim < 3 || t->ndim > 5)
        return nbi_error(NB_ERR_ARG, "dirac_: Only tensors with 3, 4, or 5 dimensions are supported");
    if (groups < 1) return nbi_error(NB_ERR_ARG, "dirac_: expected groups >= 1, but got %lld", (long long)groups);
    if (t->shape[0] % groups != 0)
        return nbi_error(NB_ERR_ARG, "dirac_: dim 0 must be divisible by groups (%lld channels, %lld groups)",
                         (long long)t->shape[0], (long long)groups);
    return fill("dirac_", t, dirac_kernel, &groups);
}

/* xavier's std: gain * sqrt(2 / (fan_in + fan_out)). */
static bool xavier_std(const char *op, const nb_tensor *t, double g, double *std) {
    int64_t in, out;
    if (!nbi_check_float(op, "tensor", t) || !fans(op, t, &in, &out)) return false;
    if (in + out == 0) {
        nbi_error(NB_ERR_ARG, "%s: float division by zero (fan_in + fan_out = 0)", op);
        return false;
    }
    *std = g * sqrt(2.0 / (double)(in + out));
    return true;
}

nb_status nb_init_xavier_uniform_(nb_tensor *t, double gain, nb_rng *rng) {
    double std;
    if (!xavier_std("xavier_uniform_", t, gain, &std)) return nb_last_status();
    const double a = sqrt(3.0) * std;
    return fill_uniform("xavier_uniform_", t, -a, a, rng);
}

nb_status nb_init_xavier_normal_(nb_tensor *t, double gain, nb_rng *rng) {
    double std;
    if (!xavier_std("xavier_normal_", t, gain, &std)) return nb_last_status();
    return fill_normal("xavier_normal_", t, 0., std, rng);
}

/* kaiming's std: gain / sqrt(fan); *empty when t has no elements (a no-op, as PyTorch's). */
static bool kaiming_std(const char *op, const nb_tensor *t, double a, const char *mode, const char *nonlinearity,
                        double *std, bool *empty) {
    if (!nbi_check_float(op, "tensor", t)) return false;
    if ((*empty = t->numel == 0)) return true;
    char m[16] = "fan_in";
    if (mode) {
        size_t i = 0;
        for (; mode[i] && i < sizeof m - 1; i++) m[i] = (char)tolower((unsigned char)mode[i]);
        m[i] = '\0';
    }
    const bool fan_in = strcmp(m, "fan_in") == 0;
    if (!fan_in && (strcmp(m, "fan_out") != 0 || strlen(mode) >= sizeof m)) {
        nbi_error(NB_ERR_ARG, "%s: Mode %s not supported, please use one of ['fan_in', 'fan_out']", op, m);
        return false;
    }
    int64_t in, out;
    if (!fans(op, t, &in, &out)) return false;
    const double g = gain(op, nonlinearity ? nonlinearity : "leaky_relu", a);
    if (isnan(g)) return false;
    *std = g / sqrt((double)(fan_in ? in : out));
    return true;
}

nb_status nb_init_kaiming_uniform_(nb_tensor *t, double a, const char *mode, const char *nonlinearity, nb_rng *rng) {
    double std;
    bool empty;
    if (!kaiming_std("kaiming_uniform_", t, a, mode, nonlinearity, &std, &empty)) return nb_last_status();
    if (empty) return NB_OK;
    const double bound = sqrt(3.0) * std;
    return fill_uniform("kaiming_uniform_", t, -bound, bound, rng);
}

nb_status nb_init_kaiming_normal_(nb_tensor *t, double a, const char *mode, const char *nonlinearity, nb_rng *rng) {
    double std;
    bool empty;
    if (!kaiming_std("kaiming_normal_", t, a, mode, nonlinearity, &std, &empty)) return nb_last_status();
    if (empty) return NB_OK;
    return fill_normal("kaiming_normal_", t, 0, std, rng);
}
