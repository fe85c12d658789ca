/* nabla/nn.h: modules, as torch.nn.Module: named parameters and buffers,
 * child modules, train/eval mode and a forward function; the standard layers
 * (Linear, Conv2d, ConvTranspose2d, BatchNorm1d/2d, GroupNorm, LayerNorm, pooling (max, average,
 * adaptive, unpooling), Upsample, Embedding, activations, Dropout, Dropout2d,
 * Flatten, LogSoftmax), Sequential, and user-defined modules with their own
 * forward.
 * Ownership and errors: nabla/core.h, plus the module rules below.
 *
 * A PyTorch model and its nabla twin:
 *
 *   class Net(nn.Module):                       static nb_tensor *net_forward(nb_module *self,
 *       def __init__(self):                                                    const nb_tensor *x, void *ctx) {
 *           super().__init__()                      nb_tensor *h = nb_module_call(self, "conv1", x);
 *           self.conv1 = nn.Conv2d(1, 32, 3)        ... each step releases what it no longer needs ...
 *           self.fc = nn.Linear(..., 10)            return y;
 *       def forward(self, x):                   }
 *           ...                                 nb_module *net = nb_module_new("Net", net_forward, NULL, NULL);
 *                                               nb_module_add_child(net, "conv1", nb_conv2d_module(1, 32, 3, 3, NULL, true, rng));
 *                                               nb_module_add_child(net, "fc", nb_linear_module(..., 10, true, rng));
 *                                               nb_tensor *y = nb_module_forward(net, x);
 *                                               nb_module_free(net);
 *
 * MODULE OWNERSHIP. nb_module is not reference counted: it is a tree.
 *  - Every constructor returns a module the caller owns; nb_module_free()
 *    frees it with its whole subtree, parameters and buffers.
 *  - nb_module_add_child() and the Sequential constructors TAKE OVER the
 *    child modules given to them (even when they fail, when the child is
 *    freed), so a constructor call can be passed directly. A module can have
 *    one parent only.
 *  - Registered tensors are retained by the module (the caller keeps its own
 *    reference). Accessors (nb_module_child, nb_module_param, nb_module_state,
 *    nb_module_parameters) return BORROWED pointers, valid while the module
 *    lives.
 *  - nb_module_forward() returns a new tensor reference, as every op does.
 * A NULL module argument (say, a failed constructor) makes the call fail
 * keeping the earlier message, as NULL tensors do for ops.
 *
 * NAMES AND ORDER follow PyTorch's state_dict: a parameter `weight` of child
 * `conv1` of child `block` is "block.conv1.weight"; Sequential children are
 * named "0", "1", ... The state order is, for each module, its own
 * parameters (in registration order), then its own buffers, then each child
 * recursively (in the order added). Parameters alone keep that order without
 * the buffers (named_parameters()). A tensor registered as a parameter in
 * several places (tied weights) is one parameter: the parameter functions
 * below list and count it once, at its first place, as PyTorch's
 * parameters() does; the state (state_dict) keeps every name.
 *
 * INITIALISATION is PyTorch's default: Linear and Conv2d weights and biases
 * are U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform_ with a = sqrt(5)),
 * fan_in = in_features or in_channels / groups * kH * kW (ConvTranspose2d:
 * out_channels / groups * kH * kW); BatchNorm,
 * GroupNorm and LayerNorm weight 1, bias 0; Embedding weight N(0, 1). Draws come from the rng given (NULL: nb_default_rng()), weight
 * first then bias, so a seed reproduces a model. Parameters are float32 leaves
 * that require grad; nb_module_to_dtype makes a model float64 (to gradcheck it).
 */
#ifndef NABLA_NN_H
#define NABLA_NN_H

#include "nabla/conv.h"
#include "nabla/functional.h"
#include "nabla/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_module nb_module;

/* A module's computation: return a new reference (or NULL with an error). */
typedef nb_tensor *(*nb_forward_fn)(nb_module *self, const nb_tensor *x, void *ctx);

/* ---- building a module ---- */
/* A new empty module (PyTorch: a subclass of nn.Module). type_name names it in
 * messages ("Net"); forward is called by nb_module_forward with ctx;
 * free_ctx (may be NULL) is called on ctx when the module is freed. */
NB_API nb_module *nb_module_new(const char *type_name, nb_forward_fn forward, void *ctx, void (*free_ctx)(void *ctx));
/* Free m, its children, parameters and buffers (NULL is ignored). Only a
 * root is freed: for a module that has a parent it does nothing but set an error. */
NB_API void nb_module_free(nb_module *m);
/* Add child under name (self.name = child). Takes over child, even on
 * failure, except when child already has a parent or is m or an ancestor of m
 * (then it is left as it was). */
NB_API nb_status nb_module_add_child(nb_module *m, const char *name, nb_module *child);
/* Register a float leaf as parameter name of m (nn.Parameter); sets requires_grad. m retains t. */
NB_API nb_status nb_module_register_parameter(nb_module *m, const char *name, nb_tensor *t);
/* Register a buffer (register_buffer): saved in the state but not a parameter. m retains t. */
NB_API nb_status nb_module_register_buffer(nb_module *m, const char *name, nb_tensor *t);

/* ---- using a module ---- */
/* Run m's forward on x (m(x)); returns a new reference. */
NB_API nb_tensor *nb_module_forward(nb_module *m, const nb_tensor *x);
/* Forward of m's child `name` (self.name(x) inside a forward); a new reference. */
NB_API nb_tensor *nb_module_call(nb_module *m, const char *name, const nb_tensor *x);
/* Set training mode on m and all its descendants (module.train(mode)). Modules start in training mode. */
NB_API void nb_module_train(nb_module *m, bool mode);
/* Same as nb_module_train(m, false). */
NB_API void nb_module_eval(nb_module *m);
/* Whether m is in training mode (module.training); false for NULL. */
NB_API bool nb_module_is_training(const nb_module *m);
/* Drop the gradient of every parameter (zero_grad(set_to_none=True)). */
NB_API void nb_module_zero_grad(nb_module *m);
/* module.double() / module.float(): convert every float parameter and buffer
 * of the tree, and each parameter's .grad, to dtype (NB_F32 or NB_F64) in
 * place; integer buffers (num_batches_tracked) keep theirs. As PyTorch
 * replaces param.data, the tensor objects stay the same: every pointer to
 * them (nb_module_param, nb_module_parameter_list, an optimizer's
 * parameters) sees the new dtype, and an optimizer's state follows at its
 * next step. Views of a parameter taken before keep the old data, and a
 * graph recorded before cannot be backpropagated after (an error says so):
 * run the forward again. On failure nothing has changed. */
NB_API nb_status nb_module_to_dtype(nb_module *m, nb_dtype dtype);

/* ---- looking inside (all BORROWED) ---- */
/* Type name ("Linear", "Conv2d", "Sequential", or the one given to nb_module_new). */
NB_API const char *nb_module_type(const nb_module *m);
/* m's direct child by name, or NULL with an error. */
NB_API nb_module *nb_module_child(const nb_module *m, const char *name);
/* Number of direct children, and the i-th (0-based) with its name in *name (may be NULL). */
NB_API int nb_module_num_children(const nb_module *m);
NB_API nb_module *nb_module_child_at(const nb_module *m, int i, const char **name);
/* m's own parameter or buffer `name` ("weight", "running_mean"), or NULL with an error. */
NB_API nb_tensor *nb_module_param(const nb_module *m, const char *name);
/* Any parameter or buffer of the tree by its full state name ("block.0.weight"), or NULL with an error. */
NB_API nb_tensor *nb_module_state(const nb_module *m, const char *name);

/* Number of parameter tensors in the tree (len(list(parameters()))). */
NB_API int nb_module_num_parameters(const nb_module *m);
/* Number of parameter elements in the tree (sum of p.numel()). */
NB_API int64_t nb_module_num_parameter_elements(const nb_module *m);
/* Fill out[0 .. capacity-1] with the tree's parameters in order (parameters()),
 * for an optimizer; returns their total count (more than capacity means some
 * were left out), or -1 with an error for a NULL module. */
NB_API int nb_module_parameters(const nb_module *m, nb_tensor **out, int capacity);

/* list(module.parameters()), sized for the net, for an optimizer:
 *     nb_param_list ps = nb_module_parameter_list(net);
 *     nb_optimizer *opt = nb_adam(ps.params, ps.n, NULL);  // fails (keeping the message) if the list did
 *     nb_param_list_free(&ps);                              // the optimizer keeps its own references
 * The list holds a reference to each tensor, so it stays valid after the
 * module is freed; the module's later changes (nb_module_to_dtype) show
 * through it, the tensors being the same. On failure params is NULL, n is 0
 * and the error is set. */
typedef struct nb_param_list {
    nb_tensor **params; /* n parameters in parameters() order */
    int n;
} nb_param_list;
NB_API nb_param_list nb_module_parameter_list(const nb_module *m);
/* Release the list's references and array, and zero *list (NULL is ignored). */
NB_API void nb_param_list_free(nb_param_list *list);

/* Visitor over named state: full name, tensor, and whether it is a parameter
 * (else a buffer). Return 0 to go on, anything else to stop. */
typedef int (*nb_state_visit_fn)(const char *name, nb_tensor *t, bool is_parameter, void *ctx);
/* Visit the tree's parameters then buffers per module in state_dict order;
 * returns NB_OK, or NB_ERR_STATE if the visitor stopped it. */
NB_API nb_status nb_module_visit_state(const nb_module *m, nb_state_visit_fn fn, void *ctx);
/* Visit only the parameters, in named_parameters() order. */
NB_API nb_status nb_module_visit_parameters(const nb_module *m, nb_state_visit_fn fn, void *ctx);
/* Number of state entries (len(state_dict())). */
NB_API int nb_module_state_count(const nb_module *m);
/* Copy src's values into the state tensor `name` (shapes must agree,
 * load_state_dict for one key); not recorded by autograd. */
NB_API nb_status nb_module_load_tensor(nb_module *m, const char *name, const nb_tensor *src);

/* ---- containers ---- */
/* nn.Sequential(*modules): n children named "0" .. "n-1", each applied in turn.
 * Takes over every module in the array, even on failure (NULL entries make it
 * fail, keeping the earlier error). */
NB_API nb_module *nb_sequential_module(nb_module *const *modules, int n);
/* NB_MODULES(a, b, c) expands to the `modules, n` pair nb_sequential_module expects. */
#define NB_MODULES(...)                                                                     \
    (nb_module *const[]){__VA_ARGS__}, (int)(sizeof((nb_module *[]){__VA_ARGS__}) / sizeof(nb_module *))
/* seq.append(module): adds it as the next numbered child. Takes over module. */
NB_API nb_status nb_sequential_append(nb_module *seq, nb_module *module);

/* ---- layers ---- */
/* nn.Linear(in_features, out_features, bias): weight [out, in], bias [out]. */
NB_API nb_module *nb_linear_module(int64_t in_features, int64_t out_features, bool bias, nb_rng *rng);
/* nn.Conv2d(in_channels, out_channels, (kh, kw), stride, padding, dilation,
 * groups, bias, padding_mode) with p holding stride .. padding_mode (NULL:
 * nb_conv2d_defaults()). weight [out, in / groups, kh, kw], bias [out]. */
NB_API nb_module *nb_conv2d_module(int64_t in_channels, int64_t out_channels, int64_t kh, int64_t kw,
                                   const nb_conv2d_params *p, bool bias, nb_rng *rng);
/* nn.ConvTranspose2d(in_channels, out_channels, (kh, kw), stride, padding,
 * output_padding, groups, bias, dilation, padding_mode) with p holding stride
 * .. padding_mode (NULL: nb_conv_transpose2d_defaults(); only NB_PAD_ZEROS,
 * as PyTorch). weight [in, out / groups, kh, kw], bias [out]; fan_in is
 * out / groups * kh * kw (PyTorch's, from the transposed weight's dim 1).
 * output_padding is checked against stride and dilation when a forward uses it. */
NB_API nb_module *nb_conv_transpose2d_module(int64_t in_channels, int64_t out_channels, int64_t kh, int64_t kw,
                                             const nb_conv_transpose2d_params *p, bool bias, nb_rng *rng);
/* ConvTranspose2d's forward(input, output_size): output_size (output_size_len
 * 2: (h, w); or the input's rank: (n, c, h, w), (c, h, w)) sets
 * output_padding to output_size - the size without it, which must lie within
 * stride - 1 of it (PyTorch's messages); NULL: the module's output_padding,
 * as nb_module_forward. */
NB_API nb_tensor *nb_conv_transpose2d_module_forward(nb_module *m, const nb_tensor *x, const int64_t *output_size,
                                                     int output_size_len);
/* nn.BatchNorm2d(num_features, eps, momentum, affine, track_running_stats):
 * parameters weight (ones), bias (zeros) when affine; buffers running_mean
 * (zeros), running_var (ones) and num_batches_tracked (int64 0-d, counting
 * training forwards) when track_running_stats. momentum < 0 means PyTorch's
 * momentum=None (cumulative average). PyTorch's defaults: 1e-5, 0.1, true, true. */
NB_API nb_module *nb_batch_norm2d_module(int64_t num_features, double eps, double momentum, bool affine,
                                  bool track_running_stats);
/* nn.BatchNorm1d: nb_batch_norm2d_module's parameters, buffers and rules for
 * input [N, C] or [N, C, L]. */
NB_API nb_module *nb_batch_norm1d_module(int64_t num_features, double eps, double momentum, bool affine,
                                         bool track_running_stats);
/* nn.GroupNorm(num_groups, num_channels, eps, affine): parameters weight
 * (ones) and bias (zeros) [num_channels] when affine. PyTorch's defaults: 1e-5, true. */
NB_API nb_module *nb_group_norm_module(int64_t num_groups, int64_t num_channels, double eps, bool affine);
/* nn.LayerNorm(normalized_shape, eps, elementwise_affine): parameters weight
 * (ones) and bias (zeros) of normalized_shape when elementwise_affine; with
 * NB_SHAPE: nb_layer_norm_module(NB_SHAPE(64), 1e-5, true). */
NB_API nb_module *nb_layer_norm_module(int normalized_ndim, const int64_t *normalized_shape, double eps,
                                       bool elementwise_affine);
/* nn.MaxPool2d / nn.AvgPool2d with the given parameters (see nb_pool2d_defaults). */
NB_API nb_module *nb_max_pool2d_module(const nb_pool2d_params *p);
NB_API nb_module *nb_avg_pool2d_module(const nb_pool2d_params *p);
/* nn.AdaptiveAvgPool2d((out_h, out_w)) and nn.AdaptiveMaxPool2d (its forward
 * returns the output only: for return_indices call nb_adaptive_max_pool2d);
 * NB_SIZE_NONE keeps an input size. */
NB_API nb_module *nb_adaptive_avg_pool2d_module(int64_t out_h, int64_t out_w);
NB_API nb_module *nb_adaptive_max_pool2d_module(int64_t out_h, int64_t out_w);
/* nn.MaxUnpool2d(kernel_size, stride, padding) from p (kernel, stride,
 * padding). Its forward takes the indices too, so it is called with
 * nb_max_unpool2d_module_forward (unpool(x, indices, output_size)), not
 * nb_module_forward (which fails saying so). */
NB_API nb_module *nb_max_unpool2d_module(const nb_pool2d_params *p);
NB_API nb_tensor *nb_max_unpool2d_module_forward(nb_module *m, const nb_tensor *x, const nb_tensor *indices,
                                                 const int64_t *output_size, int output_size_len);
/* nn.Upsample(size or scale_factor, mode, align_corners, recompute_scale_factor) (see nb_interpolate). */
NB_API nb_module *nb_upsample_module(const nb_interpolate_params *p);
/* nn.Embedding(num_embeddings, embedding_dim, padding_idx, scale_grad_by_freq=...):
 * parameter weight [num_embeddings, embedding_dim] from N(0, 1) drawn from
 * rng, the padding_idx row (NB_NO_PADDING_IDX: none) zeroed. max_norm and
 * sparse gradients are not supported. */
NB_API nb_module *nb_embedding_module(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx,
                                      bool scale_grad_by_freq, nb_rng *rng);
/* nn.Dropout(p): active only in training mode, drawing masks from rng
 * (borrowed; it must outlive the module; NULL: nb_default_rng()). */
NB_API nb_module *nb_dropout_module(double p, nb_rng *rng);
/* nn.Dropout2d(p): nb_dropout2d in training mode, the identity otherwise. */
NB_API nb_module *nb_dropout2d_module(double p, nb_rng *rng);
/* nn.Flatten(start_dim, end_dim); PyTorch's defaults are 1, -1. */
NB_API nb_module *nb_flatten_module(int start_dim, int end_dim);
/* nn.LogSoftmax(dim). */
NB_API nb_module *nb_log_softmax_module(int dim);
/* Activations: nn.ReLU(), nn.LeakyReLU(negative_slope) (default 0.01), nn.Sigmoid(), nn.Tanh(). */
NB_API nb_module *nb_relu_module(void);
NB_API nb_module *nb_leaky_relu_module(double negative_slope);
NB_API nb_module *nb_sigmoid_module(void);
NB_API nb_module *nb_tanh_module(void);
/* nn.GELU(approximate), nn.SiLU(), nn.ELU(alpha) (default 1), nn.Softplus(beta,
 * threshold) (defaults 1, 20), nn.Hardswish(), nn.Softmax(dim): no state; the
 * parameters are checked here with the functional op's messages. */
NB_API nb_module *nb_gelu_module(nb_gelu_approximate approximate);
NB_API nb_module *nb_silu_module(void);
NB_API nb_module *nb_elu_module(double alpha);
NB_API nb_module *nb_softplus_module(double beta, double threshold);
NB_API nb_module *nb_hardswish_module(void);
NB_API nb_module *nb_softmax_module(int dim);

#ifdef __cplusplus
}
#endif
#endif
