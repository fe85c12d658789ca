/* Helpers for the files that build the standard layers as modules
 * (layers*.c): a module around a config struct, and its state registered
 * with PyTorch's initial values. They use the public module API only, as a
 * user's own module would. Private to src/nn. */
#ifndef NABLA_NN_LAYER_UTIL_H
#define NABLA_NN_LAYER_UTIL_H

#include "nabla/nn.h"

/* A zeroed ctx of the given size, or NULL with an error naming layer. */
void *nbi_layer_ctx(const char *layer, size_t size);
/* Module of type name around ctx (freed with free()); NULL ctx (a failed
 * nbi_layer_ctx) gives NULL, and ctx is freed on failure. */
nb_module *nbi_layer_new(const char *name, nb_forward_fn fwd, void *ctx);
/* nn.Conv2d / nn.ConvTranspose2d's (_ConvNd's) constructor checks of the
 * channels, kernel size and groups, with PyTorch's messages naming op. */
bool nbi_conv_module_check(const char *op, int64_t in, int64_t out, int64_t kh, int64_t kw, int64_t groups);
/* Register t (a library reference, taken over even on failure) as m's
 * parameter or buffer name; returns the module's (borrowed) tensor or NULL. */
nb_tensor *nbi_layer_state(nb_module *m, const char *name, bool parameter, nb_tensor *t);
/* A parameter drawn from U(-bound, bound) (PyTorch's kaiming_uniform_(a=sqrt(5))
 * and bias rule both come down to this), or NULL. */
nb_tensor *nbi_layer_uniform(nb_module *m, const char *name, nb_rng *rng, int ndim, const int64_t *shape,
                             double bound);
/* A constant-filled parameter or buffer, or NULL. */
nb_tensor *nbi_layer_const(nb_module *m, const char *name, bool parameter, nb_dtype dtype, int ndim,
                           const int64_t *shape, double value);

#endif
