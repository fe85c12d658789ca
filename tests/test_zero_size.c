/* Empty batches (N = 0) and other zero-size dims through every op, loss and
 * module, forward and backward, in float32 and float64, against PyTorch: the
 * twin tests/pytorch/zero_size_reference.py writes the inputs, outputs and
 * gradients (and running statistics after the forward) of each case below,
 * under the same name. Outputs are often empty, but not always: a reduction
 * over nothing (0 for sum, NaN for mean), a linear layer without input
 * features (the bias), the weight gradient of an empty batch (zeros). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_ nbt_data_path("zero_size.h5")

/* in: the case's inputs in the order of `kinds` (see the twin); arg: a reduction. */
typedef nb_tensor *(*case_fn)(nb_tensor *const *in, int arg);
typedef struct {
    const char *name;
    const char *kinds; /* per input: f float requiring grad, r float (running statistic), i int64 */
    case_fn f;
    int arg;
} zcase;

static nb_pool2d_params pool(int64_t k, int64_t s, int64_t p) {
    nb_pool2d_params q = nb_pool2d_defaults(k);
    q.stride[0] = q.stride[1] = s;
    q.padding[0] = q.padding[1] = p;
    return q;
}

static nb_tensor *bn_train_empty_batch(nb_tensor *const *in, int a) {
    (void)a;
    return nb_batch_norm(in[0], in[1], in[2], NULL, NULL, true, 0.3, 1e-3);
}
static nb_tensor *bn_train_affine(nb_tensor *const *in, int a) {
    (void)a;
    return nb_batch_norm(in[0], in[3], in[4], in[1], in[2], true, 0.1, 1e-5);
}
static nb_tensor *bn_eval(nb_tensor *const *in, int a) {
    (void)a;
    return nb_batch_norm(in[0], in[3], in[4], in[1], in[2], false, 0.1, 1e-5);
}
static nb_tensor *bn_train_nostats(nb_tensor *const *in, int a) {
    (void)a;
    return nb_batch_norm(in[0], NULL, NULL, NULL, NULL, true, 0.1, 1e-5);
}
static nb_tensor *bn_train_2d(nb_tensor *const *in, int a) {
    (void)a;
    return nb_batch_norm(in[0], in[1], in[2], NULL, NULL, true, 0.1, 1e-5);
}
static nb_tensor *matmul(nb_tensor *const *in, int a) {
    (void)a;
    return nb_matmul(in[0], in[1]);
}
static nb_tensor *conv2d(nb_tensor *const *in, int a) {
    (void)a;
    return nb_conv2d(in[0], in[1], in[2], NULL);
}
static nb_tensor *conv2d_pad_stride_groups(nb_tensor *const *in, int a) {
    (void)a;
    nb_conv2d_params p = nb_conv2d_defaults();
    p.stride[0] = p.stride[1] = 2;
    p.padding[0] = p.padding[1] = 1;
    p.groups = 2;
    return nb_conv2d(in[0], in[1], NULL, &p);
}
static nb_tensor *conv2d_reflect(nb_tensor *const *in, int a) {
    (void)a;
    nb_conv2d_params p = nb_conv2d_defaults();
    p.padding[0] = p.padding[1] = 1;
    p.padding_mode = NB_PAD_REFLECT;
    return nb_conv2d(in[0], in[1], in[2], &p);
}
static nb_tensor *conv_transpose2d_s2_op1(nb_tensor *const *in, int a) {
    (void)a;
    nb_conv_transpose2d_params p = nb_conv_transpose2d_defaults();
    p.stride[0] = p.stride[1] = 2;
    p.padding[0] = p.padding[1] = 1;
    p.output_padding[0] = p.output_padding[1] = 1;
    return nb_conv_transpose2d(in[0], in[1], in[2], &p);
}
static nb_tensor *conv_transpose2d_groups(nb_tensor *const *in, int a) {
    (void)a;
    nb_conv_transpose2d_params p = nb_conv_transpose2d_defaults();
    p.groups = 2;
    p.dilation[0] = p.dilation[1] = 2;
    p.output_padding[0] = p.output_padding[1] = 1;
    return nb_conv_transpose2d(in[0], in[1], NULL, &p);
}
static nb_tensor *max_pool_2(nb_tensor *const *in, int a) {
    (void)a;
    nb_pool2d_params p = pool(2, 2, 0);
    return nb_max_pool2d(in[0], &p);
}
static nb_tensor *max_pool_3_1_1(nb_tensor *const *in, int a) {
    (void)a;
    nb_pool2d_params p = pool(3, 1, 1);
    return nb_max_pool2d(in[0], &p);
}
static nb_tensor *avg_pool_2(nb_tensor *const *in, int a) {
    (void)a;
    nb_pool2d_params p = pool(2, 2, 0);
    return nb_avg_pool2d(in[0], &p);
}
static nb_tensor *pad_mode(nb_tensor *const *in, int mode) {
    return nb_pad(in[0], (const int64_t[]){1, 1, 1, 1}, 4, (nb_padding_mode)mode, 0.5);
}
static nb_tensor *pad_height(nb_tensor *const *in, int a) {
    (void)a;
    return nb_pad(in[0], (const int64_t[]){1, 2, 1, 1}, 4, NB_PAD_ZEROS, -1.0);
}
static nb_tensor *linear(nb_tensor *const *in, int a) {
    (void)a;
    return nb_linear(in[0], in[1], in[2]);
}
static nb_tensor *dropout(nb_tensor *const *in, int a) {
    (void)a;
    return nb_dropout(in[0], 0.5, true, NULL);
}
static nb_tensor *leaky_relu(nb_tensor *const *in, int a) {
    (void)a;
    return nb_leaky_relu(in[0], 0.1);
}
static nb_tensor *relu(nb_tensor *const *in, int a) {
    (void)a;
    return nb_relu(in[0]);
}
static nb_tensor *sigmoid(nb_tensor *const *in, int a) {
    (void)a;
    return nb_sigmoid(in[0]);
}
static nb_tensor *tanh_(nb_tensor *const *in, int a) {
    (void)a;
    return nb_tanh(in[0]);
}
static nb_tensor *exp_(nb_tensor *const *in, int a) {
    (void)a;
    return nb_exp(in[0]);
}
static nb_tensor *log_softmax1(nb_tensor *const *in, int a) {
    (void)a;
    return nb_log_softmax(in[0], 1);
}
static nb_tensor *add(nb_tensor *const *in, int a) {
    (void)a;
    return nb_add(in[0], in[1]);
}
static nb_tensor *mul(nb_tensor *const *in, int a) {
    (void)a;
    return nb_mul(in[0], in[1]);
}
static nb_tensor *div_(nb_tensor *const *in, int a) {
    (void)a;
    return nb_div(in[0], in[1]);
}
static nb_tensor *cube(nb_tensor *const *in, int a) {
    (void)a;
    return nb_pow_scalar(in[0], 3);
}
static nb_tensor *sum(nb_tensor *const *in, int a) {
    (void)a;
    return nb_sum(in[0]);
}
static nb_tensor *mean(nb_tensor *const *in, int a) {
    (void)a;
    return nb_mean(in[0]);
}
static nb_tensor *sum_dim(nb_tensor *const *in, int dim) { return nb_sum_dim(in[0], dim, false); }
static nb_tensor *mean_dim(nb_tensor *const *in, int dim) { return nb_mean_dim(in[0], dim, false); }
static nb_tensor *max_dim(nb_tensor *const *in, int dim) { return nb_max_dim(in[0], dim, false, NULL); }
static nb_tensor *cat0(nb_tensor *const *in, int a) {
    (void)a;
    return nb_cat((const nb_tensor *const *)in, 2, 0);
}
static nb_tensor *flatten1(nb_tensor *const *in, int a) {
    (void)a;
    return nb_flatten(in[0], 1, -1);
}
static nb_tensor *transpose_contiguous(nb_tensor *const *in, int a) {
    (void)a;
    nb_tensor *t = nb_transpose(in[0], 0, 1);
    nb_tensor *c = nb_contiguous(t);
    nb_tensor_release(t);
    return c;
}
static nb_tensor *abs_(nb_tensor *const *in, int a) {
    (void)a;
    return nb_abs(in[0]);
}
static nb_tensor *clamp(nb_tensor *const *in, int a) {
    (void)a;
    return nb_clamp(in[0], -0.5, 0.5);
}
static nb_tensor *clamp_tensor(nb_tensor *const *in, int a) {
    (void)a;
    return nb_clamp_tensor(in[0], in[1], in[2]);
}
static nb_tensor *add_alpha2(nb_tensor *const *in, int a) {
    (void)a;
    return nb_add_alpha(in[0], in[1], 2.0);
}
static nb_tensor *maximum(nb_tensor *const *in, int a) {
    (void)a;
    return nb_maximum(in[0], in[1]);
}
static nb_tensor *where(nb_tensor *const *in, int a) {
    (void)a;
    return nb_where(in[0], in[1], in[2]);
}
static nb_tensor *gather1(nb_tensor *const *in, int a) {
    (void)a;
    return nb_gather(in[0], 1, in[1]);
}
static nb_tensor *stack1(nb_tensor *const *in, int a) {
    (void)a;
    return nb_stack((const nb_tensor *const *)in, 2, 1);
}
static nb_tensor *sum_dims02(nb_tensor *const *in, int a) {
    (void)a;
    return nb_sum_dims(in[0], (const int[]){0, 2}, 2, false);
}
static nb_tensor *mean_dims02(nb_tensor *const *in, int a) {
    (void)a;
    return nb_mean_dims(in[0], (const int[]){0, 2}, 2, false);
}
static nb_tensor *amax1(nb_tensor *const *in, int a) {
    (void)a;
    return nb_amax(in[0], (const int[]){1}, 1, false);
}
static nb_tensor *min_dim(nb_tensor *const *in, int dim) { return nb_min_dim(in[0], dim, false, NULL); }
static nb_tensor *mse(nb_tensor *const *in, int r) { return nb_mse_loss(in[0], in[1], (nb_reduction)r); }
static nb_tensor *cross_entropy(nb_tensor *const *in, int r) { return nb_cross_entropy(in[0], in[1], (nb_reduction)r); }
static nb_tensor *nll(nb_tensor *const *in, int r) { return nb_nll_loss(in[0], in[1], (nb_reduction)r); }

static nb_tensor *adaptive_avg_2_3(nb_tensor *const *in, int a) {
    (void)a;
    return nb_adaptive_avg_pool2d(in[0], 2, 3);
}
static nb_tensor *adaptive_avg_0_3(nb_tensor *const *in, int a) {
    (void)a;
    return nb_adaptive_avg_pool2d(in[0], 0, 3);
}
static nb_tensor *adaptive_max_2_3(nb_tensor *const *in, int a) {
    (void)a;
    return nb_adaptive_max_pool2d(in[0], 2, 3, NULL);
}
static nb_tensor *max_pool_indices_3_1_1(nb_tensor *const *in, int a) {
    (void)a;
    nb_pool2d_params p = pool(3, 1, 1);
    nb_tensor *idx = NULL, *y = nb_max_pool2d_with_indices(in[0], &p, &idx);
    nb_tensor_release(idx);
    return y;
}
static nb_tensor *max_unpool_2(nb_tensor *const *in, int a) {
    (void)a;
    nb_pool2d_params p = pool(2, 2, 0);
    return nb_max_unpool2d(in[0], in[1], &p, NULL, 0);
}
static nb_tensor *avg_pool_divisor(nb_tensor *const *in, int a) {
    (void)a;
    nb_pool2d_params p = pool(2, 2, 0);
    p.divisor_override = 3;
    return nb_avg_pool2d(in[0], &p);
}
static nb_tensor *dropout2d(nb_tensor *const *in, int a) {
    (void)a;
    return nb_dropout2d(in[0], 0.5, true, NULL);
}
static nb_tensor *group_norm(nb_tensor *const *in, int groups) {
    return nb_group_norm(in[0], groups, groups > 1 ? in[1] : NULL, groups > 1 ? in[2] : NULL, 1e-5);
}
static nb_tensor *layer_norm_last(nb_tensor *const *in, int a) {
    (void)a;
    return nb_layer_norm(in[0], 1, nb_tensor_shape(in[0]) + 1, in[1], in[2], 1e-5);
}
static nb_tensor *interpolate_nearest(nb_tensor *const *in, int a) {
    (void)a;
    nb_interpolate_params p = {.size = {7, 10}};
    return nb_interpolate(in[0], &p);
}
static nb_tensor *interpolate_bilinear(nb_tensor *const *in, int a) {
    (void)a;
    nb_interpolate_params p = {.scale_factor = {2, 2}, .mode = NB_INTERPOLATE_BILINEAR, .align_corners = true};
    return nb_interpolate(in[0], &p);
}
static nb_tensor *embedding(nb_tensor *const *in, int padding_idx) { return nb_embedding(in[0], in[1], padding_idx, false); }
static nb_tensor *embedding_nopad(nb_tensor *const *in, int a) {
    (void)a;
    return nb_embedding(in[0], in[1], NB_NO_PADDING_IDX, false);
}

static nb_tensor *gelu(nb_tensor *const *in, int approximate) { return nb_gelu(in[0], (nb_gelu_approximate)approximate); }
static nb_tensor *silu(nb_tensor *const *in, int a) {
    (void)a;
    return nb_silu(in[0]);
}
static nb_tensor *elu(nb_tensor *const *in, int a) {
    (void)a;
    return nb_elu(in[0], 0.5);
}
static nb_tensor *softplus(nb_tensor *const *in, int a) {
    (void)a;
    return nb_softplus(in[0], 2.0, 10.0);
}
static nb_tensor *hardswish(nb_tensor *const *in, int a) {
    (void)a;
    return nb_hardswish(in[0]);
}
static nb_tensor *softmax1(nb_tensor *const *in, int a) {
    (void)a;
    return nb_softmax(in[0], 1);
}
static nb_tensor *l1(nb_tensor *const *in, int r) { return nb_l1_loss(in[0], in[1], (nb_reduction)r); }
static nb_tensor *smooth_l1(nb_tensor *const *in, int r) { return nb_smooth_l1_loss(in[0], in[1], (nb_reduction)r, 0.5); }
static nb_tensor *huber(nb_tensor *const *in, int r) { return nb_huber_loss(in[0], in[1], (nb_reduction)r, 2.0); }
static nb_tensor *bce(nb_tensor *const *in, int r) {
    nb_tensor *p = nb_sigmoid(in[0]), *y = nb_binary_cross_entropy(p, in[1], NULL, (nb_reduction)r);
    nb_tensor_release(p);
    return y;
}
static nb_tensor *bce_logits(nb_tensor *const *in, int r) {
    return nb_binary_cross_entropy_with_logits(in[0], in[1], NULL, NULL, (nb_reduction)r);
}
static nb_tensor *cross_entropy_probs(nb_tensor *const *in, int r) {
    nb_class_loss_options o = nb_class_loss_defaults();
    o.reduction = (nb_reduction)r;
    return nb_cross_entropy_ex(in[0], in[1], &o);
}
static nb_tensor *cross_entropy_weight_ls(nb_tensor *const *in, int r) {
    nb_class_loss_options o = nb_class_loss_defaults();
    o.reduction = (nb_reduction)r;
    o.weight = in[2];
    o.label_smoothing = 0.2;
    o.ignore_index = 1;
    return nb_cross_entropy_ex(in[0], in[1], &o);
}

#define MEAN NB_REDUCTION_MEAN
#define SUM NB_REDUCTION_SUM
#define NONE NB_REDUCTION_NONE

/* The twin's CASES, in its order. */
static const zcase cases[] = {
    {"bn_train_empty_batch", "frr", bn_train_empty_batch, 0},
    {"bn_train_affine_empty", "fffrr", bn_train_affine, 0},
    {"bn_eval_empty_batch", "fffrr", bn_eval, 0},
    {"bn_train_empty_spatial", "f", bn_train_nostats, 0},
    {"bn_train_empty_2d", "frr", bn_train_2d, 0},
    {"bn_train_no_channels", "f", bn_train_nostats, 0},
    {"matmul_00_500", "ff", matmul, 0},
    {"matmul_30_04", "ff", matmul, 0},
    {"matmul_203_34", "ff", matmul, 0},
    {"matmul_0_0", "ff", matmul, 0},
    {"matmul_502_2", "ff", matmul, 0},
    {"matmul_0_203", "ff", matmul, 0},
    {"matmul_batch0", "ff", matmul, 0},
    {"conv2d_empty_batch", "fff", conv2d, 0},
    {"conv2d_empty_batch_pad_stride", "ff", conv2d_pad_stride_groups, 0},
    {"conv2d_empty_batch_reflect", "fff", conv2d_reflect, 0},
    {"conv2d_no_channels", "fff", conv2d, 0},
    {"conv_transpose2d_empty_batch", "fff", conv_transpose2d_s2_op1, 0},
    {"conv_transpose2d_empty_batch_groups", "ff", conv_transpose2d_groups, 0},
    {"max_pool2d_empty_batch", "f", max_pool_2, 0},
    {"max_pool2d_empty_batch_k3p1", "f", max_pool_3_1_1, 0},
    {"avg_pool2d_empty_batch", "f", avg_pool_2, 0},
    {"pad_empty_batch_constant", "f", pad_mode, NB_PAD_ZEROS},
    {"pad_empty_batch_reflect", "f", pad_mode, NB_PAD_REFLECT},
    {"pad_empty_batch_replicate", "f", pad_mode, NB_PAD_REPLICATE},
    {"pad_empty_batch_circular", "f", pad_mode, NB_PAD_CIRCULAR},
    {"pad_empty_height_constant", "f", pad_height, 0},
    {"linear_empty_batch", "fff", linear, 0},
    {"linear_empty_batch_3d", "fff", linear, 0},
    {"linear_no_in_features", "fff", linear, 0},
    {"linear_no_out_features", "fff", linear, 0},
    {"dropout_empty_batch", "f", dropout, 0},
    {"leaky_relu_empty_batch", "f", leaky_relu, 0},
    {"relu_empty", "f", relu, 0},
    {"sigmoid_empty", "f", sigmoid, 0},
    {"tanh_empty", "f", tanh_, 0},
    {"exp_empty", "f", exp_, 0},
    {"log_softmax_empty_batch", "f", log_softmax1, 0},
    {"log_softmax_no_classes", "f", log_softmax1, 0},
    {"add_broadcast_empty", "ff", add, 0},
    {"mul_broadcast_empty", "ff", mul, 0},
    {"div_broadcast_empty", "ff", div_, 0},
    {"pow_scalar_empty", "f", cube, 0},
    {"sum_empty", "f", sum, 0},
    {"mean_empty", "f", mean, 0},
    {"sum_dim0_empty", "f", sum_dim, 0},
    {"mean_dim0_empty", "f", mean_dim, 0},
    {"mean_dim1_empty", "f", mean_dim, 1},
    {"max_dim1_empty", "f", max_dim, 1},
    {"cat_empty_first", "ff", cat0, 0},
    {"flatten_empty", "f", flatten1, 0},
    {"transpose_contiguous_empty", "f", transpose_contiguous, 0},
    {"abs_empty", "f", abs_, 0},
    {"clamp_empty", "f", clamp, 0},
    {"clamp_tensor_empty", "fff", clamp_tensor, 0},
    {"add_alpha_broadcast_empty", "ff", add_alpha2, 0},
    {"maximum_broadcast_empty", "ff", maximum, 0},
    {"where_broadcast_empty", "iff", where, 0},
    {"gather_empty_index", "fi", gather1, 0},
    {"gather_empty_batch", "fi", gather1, 0},
    {"stack_empty_batch", "ff", stack1, 0},
    {"sum_dims_empty", "f", sum_dims02, 0},
    {"mean_dims_empty", "f", mean_dims02, 0},
    {"amax_empty_batch", "f", amax1, 0},
    {"min_dim1_empty_batch", "f", min_dim, 1},
    {"adaptive_avg_pool2d_empty_batch", "f", adaptive_avg_2_3, 0},
    {"adaptive_avg_pool2d_no_channels", "f", adaptive_avg_2_3, 0},
    {"adaptive_avg_pool2d_output_0", "f", adaptive_avg_0_3, 0},
    {"adaptive_max_pool2d_empty_batch", "f", adaptive_max_2_3, 0},
    {"adaptive_max_pool2d_unbatched_no_channels", "f", adaptive_max_2_3, 0},
    {"max_pool2d_indices_empty_batch", "f", max_pool_indices_3_1_1, 0},
    {"max_unpool2d_empty_batch", "fi", max_unpool_2, 0},
    {"avg_pool2d_divisor_empty_batch", "f", avg_pool_divisor, 0},
    {"dropout2d_empty_batch", "f", dropout2d, 0},
    {"group_norm_empty_batch", "fff", group_norm, 3},
    {"group_norm_empty_spatial", "fff", group_norm, 3},
    {"group_norm_no_channels", "f", group_norm, 1},
    {"layer_norm_empty_batch", "fff", layer_norm_last, 0},
    {"layer_norm_empty_rows", "fff", layer_norm_last, 0},
    {"interpolate_nearest_empty_batch", "f", interpolate_nearest, 0},
    {"interpolate_bilinear_empty_batch", "f", interpolate_bilinear, 0},
    {"embedding_empty_input", "if", embedding, 1},
    {"embedding_no_dim", "if", embedding_nopad, 0},
    {"mse_loss_empty_mean", "ff", mse, MEAN},
    {"cross_entropy_empty_mean", "fi", cross_entropy, MEAN},
    {"cross_entropy_empty_4d_mean", "fi", cross_entropy, MEAN},
    {"nll_loss_empty_mean", "fi", nll, MEAN},
    {"mse_loss_empty_sum", "ff", mse, SUM},
    {"cross_entropy_empty_sum", "fi", cross_entropy, SUM},
    {"cross_entropy_empty_4d_sum", "fi", cross_entropy, SUM},
    {"nll_loss_empty_sum", "fi", nll, SUM},
    {"mse_loss_empty_none", "ff", mse, NONE},
    {"cross_entropy_empty_none", "fi", cross_entropy, NONE},
    {"cross_entropy_empty_4d_none", "fi", cross_entropy, NONE},
    {"nll_loss_empty_none", "fi", nll, NONE},
    {"gelu_empty", "f", gelu, NB_GELU_NONE},
    {"gelu_tanh_empty", "f", gelu, NB_GELU_TANH},
    {"silu_empty", "f", silu, 0},
    {"elu_empty", "f", elu, 0},
    {"softplus_empty", "f", softplus, 0},
    {"hardswish_empty", "f", hardswish, 0},
    {"softmax_empty_batch", "f", softmax1, 0},
    {"softmax_no_classes", "f", softmax1, 0},
    {"l1_loss_broadcast_empty_mean", "ff", l1, MEAN},
    {"smooth_l1_loss_empty_mean", "ff", smooth_l1, MEAN},
    {"huber_loss_empty_mean", "ff", huber, MEAN},
    {"bce_empty_mean", "ff", bce, MEAN},
    {"bce_logits_empty_mean", "ff", bce_logits, MEAN},
    {"cross_entropy_probs_empty_mean", "ff", cross_entropy_probs, MEAN},
    {"cross_entropy_weight_ls_empty_mean", "fir", cross_entropy_weight_ls, MEAN},
    {"l1_loss_broadcast_empty_sum", "ff", l1, SUM},
    {"smooth_l1_loss_empty_sum", "ff", smooth_l1, SUM},
    {"huber_loss_empty_sum", "ff", huber, SUM},
    {"bce_empty_sum", "ff", bce, SUM},
    {"bce_logits_empty_sum", "ff", bce_logits, SUM},
    {"cross_entropy_probs_empty_sum", "ff", cross_entropy_probs, SUM},
    {"cross_entropy_weight_ls_empty_sum", "fir", cross_entropy_weight_ls, SUM},
    {"l1_loss_broadcast_empty_none", "ff", l1, NONE},
    {"smooth_l1_loss_empty_none", "ff", smooth_l1, NONE},
    {"huber_loss_empty_none", "ff", huber, NONE},
    {"bce_empty_none", "ff", bce, NONE},
    {"bce_logits_empty_none", "ff", bce_logits, NONE},
    {"cross_entropy_probs_empty_none", "ff", cross_entropy_probs, NONE},
    {"cross_entropy_weight_ls_empty_none", "fir", cross_entropy_weight_ls, NONE},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* got against PyTorch's tensor: same shape, values within tolerance (NaN matches NaN). */
static void assert_like(const nb_tensor *got, const nb_tensor *want, double tol, const char *what) {
    ck_assert_msg(got != NULL, "%s: missing", what);
    char a[128], b[128];
    bool same = nb_tensor_ndim(got) == nb_tensor_ndim(want) &&
                memcmp(nb_tensor_shape(got), nb_tensor_shape(want), sizeof(int64_t) * (size_t)nb_tensor_ndim(want)) == 0;
    ck_assert_msg(same, "%s: shape %s, PyTorch %s", what, nb_shape_str(nb_tensor_ndim(got), nb_tensor_shape(got), a, sizeof a),
                  nb_shape_str(nb_tensor_ndim(want), nb_tensor_shape(want), b, sizeof b));
    int64_t n = nb_tensor_numel(want);
    double *e = malloc((size_t)(n ? n : 1) * sizeof *e);
    ck_assert_int_eq(nb_tensor_copy_out(want, e, NB_F64), NB_OK);
    nbt_assert_values(got, e, n, tol, tol);
    free(e);
}

static void run_case(const zcase *c, nb_dtype dt) {
    const char *dname = dt == NB_F32 ? "f32" : "f64";
    const double tol = dt == NB_F32 ? 1e-5 : 1e-12;
    char path[256], what[320];
    nb_scope *sc = nb_scope_begin();
    const int n = (int)strlen(c->kinds);
    nb_tensor *in[8];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s/in%d", c->name, dname, i);
        in[i] = nbt_h5_read(FILE_, path, c->kinds[i] == 'i' ? NB_I64 : dt);
        if (c->kinds[i] == 'f') NBT_OK(nb_requires_grad_(in[i], true));
    }
    nb_clear_error();
    nb_tensor *y = c->f(in, c->arg);
    ck_assert_msg(y != NULL, "%s %s: %s", c->name, dname, nb_last_error());
    snprintf(path, sizeof path, "%s/%s/y", c->name, dname);
    snprintf(what, sizeof what, "%s %s: output", c->name, dname);
    assert_like(y, nbt_h5_read(FILE_, path, dt), tol, what);
    snprintf(path, sizeof path, "%s/%s/go", c->name, dname);
    nb_status st = nb_backward_ex(y, nbt_h5_read(FILE_, path, dt), false);
    ck_assert_msg(st == NB_OK, "%s %s: backward: %s", c->name, dname, nb_last_error());
    for (int i = 0; i < n; i++) {
        if (c->kinds[i] == 'i') continue;
        bool grad = c->kinds[i] == 'f';
        snprintf(path, sizeof path, "%s/%s/%s%d", c->name, dname, grad ? "g" : "after", i);
        snprintf(what, sizeof what, "%s %s: %s of input %d", c->name, dname, grad ? "gradient" : "value after", i);
        assert_like(grad ? nb_tensor_grad(in[i]) : in[i], nbt_h5_read(FILE_, path, dt), tol, what);
    }
    nb_scope_end(sc);
}

/* The table and the twin list the same cases. */
START_TEST(test_cases_match_the_twin) {
    double n = -1;
    ck_assert(nbt_h5_read_scalar(FILE_, "ncases", &n));
    ck_assert_msg((int)n == NCASES, "the twin has %d cases, the table %d", (int)n, NCASES);
    for (int k = 0; k < NCASES; k++) {
        char path[256];
        snprintf(path, sizeof path, "%s/f32/y", cases[k].name);
        ck_assert_msg(nbt_h5_exists(FILE_, path), "case %s is not in the twin's file", cases[k].name);
    }
}
END_TEST

START_TEST(test_ops_float32) {
    for (int k = 0; k < NCASES; k++) run_case(&cases[k], NB_F32);
}
END_TEST

START_TEST(test_ops_float64) {
    for (int k = 0; k < NCASES; k++) run_case(&cases[k], NB_F64);
}
END_TEST

/* ---- modules ---- */
static nb_tensor *empty_input(int64_t c, int64_t h, int64_t w) {
    nb_tensor *x = nb_zeros(NB_F32, NB_SHAPE(0, c, h, w));
    NBT_OK(nb_requires_grad_(x, true));
    return x;
}

static int load_state(const char *name, nb_tensor *t, bool is_parameter, void *ctx) {
    (void)is_parameter;
    char path[256];
    snprintf(path, sizeof path, "%s/%s", (const char *)ctx, name);
    nb_tensor *v = nbt_h5_read(FILE_, path, nb_tensor_dtype(t));
    NBT_OK(nb_tensor_copy_(t, v));
    nb_tensor_release(v);
    return 0;
}

static int compare_state(const char *name, nb_tensor *t, bool is_parameter, void *ctx) {
    (void)is_parameter;
    char path[256];
    snprintf(path, sizeof path, "%s/%s", (const char *)ctx, name);
    nb_tensor *v = nbt_h5_read(FILE_, path, nb_tensor_dtype(t));
    assert_like(t, v, 1e-6, path);
    nb_tensor_release(v);
    return 0;
}

static int compare_grad(const char *name, nb_tensor *t, bool is_parameter, void *ctx) {
    (void)is_parameter;
    char path[256];
    snprintf(path, sizeof path, "%s/%s", (const char *)ctx, name);
    nb_tensor *v = nbt_h5_read(FILE_, path, NB_F32);
    assert_like(nb_tensor_grad(t), v, 1e-6, path);
    nb_tensor_release(v);
    return 0;
}

/* BatchNorm2d(5, eps=1e-3, momentum=0.3, affine=False) training on [0, 5, 2, 2]:
 * an empty output, running statistics unchanged, the batch counted. */
START_TEST(test_batch_norm2d_module) {
    nb_scope *sc = nb_scope_begin();
    nb_module *bn = nb_batch_norm2d_module(5, 1e-3, 0.3, false, true);
    ck_assert_ptr_nonnull(bn);
    nb_module_train(bn, true);
    nb_tensor *x = empty_input(5, 2, 2);
    nb_tensor *y = nb_module_forward(bn, x);
    ck_assert_msg(y != NULL, "%s", nb_last_error());
    assert_like(y, nbt_h5_read(FILE_, "module/bn/y", NB_F32), 0, "BatchNorm2d output");
    NBT_OK(nb_backward_ex(y, nb_zeros(NB_F32, nb_tensor_ndim(y), nb_tensor_shape(y)), false));
    assert_like(nb_tensor_grad(x), nbt_h5_read(FILE_, "module/bn/gx", NB_F32), 0, "BatchNorm2d input gradient");
    NBT_OK(nb_module_visit_state(bn, compare_state, "module/bn/state"));
    nb_module_free(bn);
    nb_scope_end(sc);
}
END_TEST

/* Every layer type in a Sequential, an empty batch in training mode: an empty
 * output, a zero loss, zero gradients for every parameter. */
START_TEST(test_sequential_net) {
    nb_scope *sc = nb_scope_begin();
    nb_conv2d_params reflect = nb_conv2d_defaults(), pad1 = nb_conv2d_defaults();
    pad1.padding[0] = pad1.padding[1] = 1;
    reflect.padding[0] = reflect.padding[1] = 1;
    reflect.padding_mode = NB_PAD_REFLECT;
    nb_pool2d_params p2 = nb_pool2d_defaults(2);
    nb_module *net = nb_sequential_module(NB_MODULES(
        nb_conv2d_module(1, 4, 3, 3, &pad1, true, NULL), nb_batch_norm2d_module(4, 1e-5, 0.1, true, true),
        nb_relu_module(), nb_max_pool2d_module(&p2), nb_conv2d_module(4, 6, 3, 3, &reflect, true, NULL),
        nb_leaky_relu_module(0.1), nb_avg_pool2d_module(&p2), nb_dropout_module(0.5, NULL), nb_flatten_module(1, -1),
        nb_linear_module(24, 5, true, NULL), nb_tanh_module(), nb_linear_module(5, 3, true, NULL), nb_sigmoid_module(),
        nb_log_softmax_module(1)));
    ck_assert_msg(net != NULL, "%s", nb_last_error());
    NBT_OK(nb_module_visit_state(net, load_state, "module/net/state"));
    nb_module_train(net, true);
    nb_tensor *x = empty_input(1, 8, 8);
    nb_tensor *y = nb_module_forward(net, x);
    ck_assert_msg(y != NULL, "%s", nb_last_error());
    assert_like(y, nbt_h5_read(FILE_, "module/net/y", NB_F32), 0, "net output");
    nb_tensor *loss = nb_cross_entropy(y, nb_zeros(NB_I64, NB_SHAPE(0)), NB_REDUCTION_SUM);
    ck_assert_msg(loss != NULL, "%s", nb_last_error());
    assert_like(loss, nbt_h5_read(FILE_, "module/net/loss", NB_F32), 0, "net loss");
    NBT_OK(nb_backward(loss));
    assert_like(nb_tensor_grad(x), nbt_h5_read(FILE_, "module/net/gx", NB_F32), 0, "net input gradient");
    NBT_OK(nb_module_visit_parameters(net, compare_grad, "module/net/grad"));
    NBT_OK(nb_module_visit_state(net, compare_state, "module/net/after")); /* num_batches_tracked: 1 */
    nb_module_free(net);
    nb_scope_end(sc);
}
END_TEST

int main(void) {
    Suite *s = suite_create("zero_size");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_cases_match_the_twin);
    tcase_add_test(tc, test_ops_float32);
    tcase_add_test(tc, test_ops_float64);
    tcase_add_test(tc, test_batch_norm2d_module);
    tcase_add_test(tc, test_sequential_net);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
