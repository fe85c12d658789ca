/* nabla/autograd.h: define-by-run reverse-mode differentiation, as in PyTorch.
 *
 * An op whose inputs include a tensor that requires grad records itself on
 * its output (unless grad mode is off). nb_backward() walks that graph in
 * reverse and ACCUMULATES (+=) into .grad of every leaf that requires grad,
 * like PyTorch's backward(): call nb_zero_grad between steps. Non-leaf
 * gradients are not kept. After backward the graph's saved tensors are
 * released (PyTorch's retain_graph=False), so a second backward through the
 * same graph is an error (NB_ERR_STATE) unless the first passed retain_graph.
 * Ops run inside backward are not recorded (no double backward).
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

#ifdef __cplusplus
}
#endif
#endif
