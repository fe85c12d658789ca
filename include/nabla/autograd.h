/* nabla/autograd.h: define-by-run reverse-mode differentiation, as in PyTorch.
 *
 * An op whose inputs include a tensor that requires grad records itself on
 * its output (unless grad mode is off). nb_backward() walks that graph in
 * reverse and ACCUMULATES (+=) into .grad of every leaf that requires grad,
 * like PyTorch's backward(): call nb_zero_grad between steps. Non-leaf
 * gradients are not kept. After backward the graph's saved tensors are
 * released (PyTorch's retain_graph=False), so a second backward through the
 * same graph is an error (NB_ERR_STATE) unless the first passed retain_graph.
 * Ops run inside backward are not recorded: there is no double backward
 * (create_graph), so gradients of gradients cannot be taken.
 *
 * Beyond the built-in ops: custom functions with their own backward
 * (nb_function, like torch.autograd.Function), gradient hooks on tensors
 * (nb_tensor_register_hook, like Tensor.register_hook), and gradients of
 * outputs with respect to chosen inputs without touching .grad
 * (nb_autograd_grad, like torch.autograd.grad). Callbacks (a function's
 * forward and backward, hooks) follow the ownership rule of nabla/core.h:
 * a tensor they hand back is a new reference (nb_tensor_retain(g) to hand
 * back a tensor they were given).
 */
#ifndef NABLA_AUTOGRAD_H
#define NABLA_AUTOGRAD_H

#include "nabla/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Mark a leaf as requiring grad (or not). Fails on a non-leaf or an integer tensor. */
NB_API nb_status nb_requires_grad_(nb_tensor *t, bool requires_grad);
NB_API bool nb_tensor_requires_grad(const nb_tensor *t);
NB_API bool nb_tensor_is_leaf(const nb_tensor *t);        /* true when no op recorded it */
/* Accumulated gradient of a leaf, or NULL if none yet. BORROWED: valid while t lives. */
NB_API nb_tensor *nb_tensor_grad(const nb_tensor *t);
/* Name of the op that produced t ("mul", "conv2d", ...), or NULL for a leaf. */
NB_API const char *nb_tensor_grad_fn_name(const nb_tensor *t);
/* Drop t's accumulated gradient (PyTorch's zero_grad(set_to_none=True)). */
NB_API void nb_zero_grad(nb_tensor *t);
/* A view of t's data that is a leaf outside the graph (requires_grad false). */
NB_API nb_tensor *nb_detach(const nb_tensor *t);

/* Backward from a one-element tensor (implicit gradient 1). */
NB_API nb_status nb_backward(nb_tensor *root);
/* Backward with an explicit gradient of root's shape; grad_output may be NULL
 * for a one-element root. retain_graph keeps saved tensors for another pass. */
NB_API nb_status nb_backward_ex(nb_tensor *root, const nb_tensor *grad_output, bool retain_graph);

/* Grad mode, like torch.no_grad(): between nb_no_grad_begin() and the
 * matching nb_no_grad_end() no op is recorded and nothing is saved.
 * Nests; per thread. */
NB_API void nb_no_grad_begin(void);
NB_API void nb_no_grad_end(void);
NB_API bool nb_grad_enabled(void);

/* Anomaly detection, like torch.autograd.set_detect_anomaly(True): while on,
 * every op checks its output for NaN/Inf and nb_backward checks every
 * gradient an op's backward returns (and the gradient passed to it). The
 * first non-finite value makes that op fail (forward: it returns NULL;
 * backward: nb_backward returns NB_ERR_ANOMALY) with a message naming the op,
 * the direction, the shapes, and the first bad element's flat index and value:
 *   "detect_anomaly: log produced NaN in forward at index 3, value nan (output [2, 3], inputs [2, 3])"
 *   "detect_anomaly: function 'sqrt' returned Inf in its 1st gradient in backward at index 0, value inf (...)"
 * Off by default (one flag test per op when off). Global to the process;
 * slows every op by a pass over its output, so use it to debug. */
NB_API void nb_set_detect_anomaly(bool enabled);
NB_API bool nb_detect_anomaly_enabled(void);

/* ---- gradients of chosen inputs (torch.autograd.grad) ----
 * Options; a zero-initialised struct (or NULL) means PyTorch's defaults. */
typedef struct nb_grad_options {
    bool retain_graph;  /* keep the graph's saved tensors for another pass (default false) */
    bool create_graph;  /* record the backward pass for double backward: NOT SUPPORTED,
                           true is an error (nabla's backward functions run with grad mode off) */
    bool allow_unused;  /* an input the outputs do not depend on gets NULL instead of an error */
} nb_grad_options;

/* grads[i] = sum over k of d(outputs[k])/d(inputs[i]) applied to grad_outputs[k]
 * (the vector-Jacobian product), as a new reference, for i < ninputs. Unlike
 * nb_backward nothing's .grad changes, leaves' hooks do not run, and only the
 * part of the graph between outputs and inputs is run (non-leaf tensors'
 * hooks run there, but an input's own gradient is taken before its hooks, as
 * in PyTorch 1.13). grad_outputs may be NULL, or have NULL entries, for
 * one-element outputs (gradient 1). Inputs may be leaves or intermediate
 * results; all must require grad. An input no output depends on is an error
 * unless opts->allow_unused (then its grads[i] is NULL). On failure every
 * grads[i] is NULL. */
NB_API nb_status nb_autograd_grad(nb_tensor *const *outputs, int noutputs, const nb_tensor *const *grad_outputs,
                                  nb_tensor *const *inputs, int ninputs, nb_tensor **grads,
                                  const nb_grad_options *opts);

/* ---- gradient hooks (Tensor.register_hook) ----
 * A hook sees the gradient of its tensor during nb_backward, once per pass,
 * when that gradient is complete (for a leaf: the sum of this pass's
 * contributions, before it is added to .grad). It may replace it: set
 * *replacement to a new reference of the same shape and dtype; leave it NULL
 * to keep grad (which must not be modified in place). Hooks of one tensor
 * run in registration order, each seeing the previous one's result. A hook
 * returning an error stops the backward with that error. Hooks run with grad
 * mode off. */
typedef nb_status (*nb_grad_hook_fn)(const nb_tensor *grad, nb_tensor **replacement, void *ctx);
/* Identifies a registered hook for nb_tensor_remove_hook; id 0 is never valid. */
typedef struct nb_hook_handle { uint64_t id; } nb_hook_handle;
/* Register fn(grad, replacement, ctx) on t, which must require grad (a leaf
 * or an op's result). free_ctx (may be NULL) is called on ctx when the hook
 * is removed or t's hooks are freed (with t, or with the graph for a
 * non-leaf). Returns the handle, or {0} with an error. */
NB_API nb_hook_handle nb_tensor_register_hook(nb_tensor *t, nb_grad_hook_fn fn, void *ctx, void (*free_ctx)(void *ctx));
/* Remove a hook of t (handle.remove()); removing one already removed does nothing. */
NB_API nb_status nb_tensor_remove_hook(nb_tensor *t, nb_hook_handle handle);

/* ---- custom functions (torch.autograd.Function) ----
 * A function is a forward and a backward over tensors, applied with
 * nb_function_apply. forward computes the outputs from the inputs with grad
 * mode off and keeps in the context what backward will need; backward gets
 * the gradient of every output and returns the gradient of every input:
 *
 *   static nb_status cube_forward(nb_function_ctx *ctx, nb_tensor *const *in, int nin,
 *                                 nb_tensor **out, int nout, void *arg) {
 *       out[0] = nb_pow_scalar(in[0], 3.0);                        // y = x^3
 *       return out[0] ? nb_function_save_for_backward(ctx, in, 1) : nb_last_status();
 *   }
 *   static nb_status cube_backward(nb_function_ctx *ctx, nb_tensor *const *gout, int nout,
 *                                  nb_tensor **gin, int nin) {
 *       const nb_tensor *x = nb_function_saved_tensor(ctx, 0);
 *       nb_scope *s = nb_scope_begin();                            // holds the temporaries
 *       gin[0] = nb_tensor_retain(nb_mul(gout[0], nb_mul_scalar(nb_mul(x, x), 3.0))); // g 3x^2
 *       nb_scope_end(s);
 *       return gin[0] ? NB_OK : nb_last_status();
 *   }
 *   static const nb_function cube = {"Cube", cube_forward, cube_backward};
 *   nb_tensor *y;
 *   nb_status st = nb_function_apply(&cube, &x, 1, &y, 1, NULL);  // y: "Cube" in its graph
 *
 * The node it records works like a built-in op's: retain_graph, no_grad (no
 * node, nothing saved), anomaly detection (messages name the function),
 * nb_gradcheck, hooks, nb_autograd_grad. As in PyTorch:
 *  - outputs of float dtype are differentiable unless forward marks them
 *    (nb_function_mark_non_differentiable); int64 outputs never are;
 *  - backward receives a gradient for every output, zeros for those that got
 *    none (non-differentiable or unused ones included), and leaves
 *    grad_inputs[i] NULL for "None" (no gradient for that input); a gradient
 *    for an input that does not need one is ignored; one of another dtype is
 *    converted and one of a broadcast shape summed down to the input's shape
 *    (any other shape is an error naming the function);
 *  - an input returned as an output becomes a new tensor (a view of it);
 *  - outputs saved for backward do not keep themselves alive (no cycle).
 * Inputs must not be NULL (pass optional data through arg). */
#define NB_FUNCTION_MAX_INPUTS 16
#define NB_FUNCTION_MAX_OUTPUTS 16
typedef struct nb_function_ctx nb_function_ctx;
typedef struct nb_function {
    const char *name; /* names the node: nb_tensor_grad_fn_name, errors, anomaly messages */
    /* Fill outputs[0 .. noutputs-1] with new references. Runs with grad mode
     * off; arg is nb_function_apply's, for non-tensor arguments. */
    nb_status (*forward)(nb_function_ctx *ctx, nb_tensor *const *inputs, int ninputs, nb_tensor **outputs,
                         int noutputs, void *arg);
    /* Fill grad_inputs[i] (NULL on entry) with new references, or leave NULL.
     * grad_outputs are borrowed. Runs with grad mode off. */
    nb_status (*backward)(nb_function_ctx *ctx, nb_tensor *const *grad_outputs, int noutputs,
                          nb_tensor **grad_inputs, int ninputs);
} nb_function;

/* Run fn on inputs[0 .. ninputs-1] (at most NB_FUNCTION_MAX_INPUTS) into
 * outputs[0 .. noutputs-1] (at most NB_FUNCTION_MAX_OUTPUTS), new
 * references, and record it for backward when grad mode is on and an input
 * requires grad. fn is copied (it need not outlive the call). On failure
 * every outputs[k] is NULL and the error is forward's (or names fn). */
NB_API nb_status nb_function_apply(const nb_function *fn, nb_tensor *const *inputs, int ninputs, nb_tensor **outputs,
                                   int noutputs, void *arg);
/* ctx.save_for_backward(*tensors): keep tensors[0 .. n-1] (inputs, outputs
 * or others; NULL entries allowed) for backward, replacing any saved before.
 * Only during forward. */
NB_API nb_status nb_function_save_for_backward(nb_function_ctx *ctx, nb_tensor *const *tensors, int n);
/* ctx.saved_tensors[i], BORROWED (valid during backward); NULL with an error if out of range. */
NB_API nb_tensor *nb_function_saved_tensor(const nb_function_ctx *ctx, int i);
/* Number of saved tensors (-1 for NULL). */
NB_API int nb_function_num_saved(const nb_function_ctx *ctx);
/* Keep data for backward; free_data (may be NULL) is called on it when the
 * node's saved state is freed (after backward without retain_graph, with the
 * graph, or at once when nothing is recorded). Replaces (and frees) earlier data. */
NB_API nb_status nb_function_set_data(nb_function_ctx *ctx, void *data, void (*free_data)(void *data));
/* The data given to nb_function_set_data (NULL if none). */
NB_API void *nb_function_data(const nb_function_ctx *ctx);
/* ctx.mark_non_differentiable(output): output (one forward is about to
 * return) gets no grad_fn and does not require grad. Only during forward. */
NB_API nb_status nb_function_mark_non_differentiable(nb_function_ctx *ctx, const nb_tensor *output);
/* ctx.needs_input_grad[i]: whether input i requires grad (false out of range). */
NB_API bool nb_function_needs_input_grad(const nb_function_ctx *ctx, int i);

#ifdef __cplusplus
}
#endif
#endif
