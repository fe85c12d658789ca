/* nn.Embedding as a module around F.embedding: parameter weight
 * [num_embeddings, embedding_dim] drawn from N(0, 1) (rng; NULL: the default
 * generator), the padding_idx row then zeroed, as PyTorch's reset_parameters. */
#include "nn/layer_util.h"
#include "nn/nn_util.h"

#include <string.h>

typedef struct embedding_ctx {
    int64_t padding_idx;        /* as given (NB_NO_PADDING_IDX: none) */
    bool scale_grad_by_freq;
    nb_tensor *weight;          /* borrowed */
} embedding_ctx;

static nb_tensor *embedding_forward(nb_module *self, const nb_tensor *x, void *ctx) {
    (void)self;
    const embedding_ctx *c = ctx;
    return nb_embedding(x, c->weight, c->padding_idx, c->scale_grad_by_freq);
}

nb_module *nb_embedding_module(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx,
                               bool scale_grad_by_freq, nb_rng *rng) {
    const char *name = "Embedding";
    if (num_embeddings < 0 || embedding_dim < 0) {
        nbi_error(NB_ERR_ARG, "%s: num_embeddings and embedding_dim must be non-negative, but got %lld and %lld", name,
                  (long long)num_embeddings, (long long)embedding_dim);
        return NULL;
    }
    int64_t pad;
    if (!nbi_embedding_check_padding_idx(name, padding_idx, num_embeddings, &pad)) return NULL;
    embedding_ctx *c = nbi_layer_ctx(name, sizeof *c);
    nb_module *m = nbi_layer_new(name, embedding_forward, c);
    if (!m) return NULL;
    c->padding_idx = padding_idx;
    c->scale_grad_by_freq = scale_grad_by_freq;
    nb_tensor *w = nbi_own(nb_rand_normal(rng ? rng : nb_default_rng(), NB_F32, NB_SHAPE(num_embeddings, embedding_dim),
                                          0.0, 1.0));
    if (w && pad >= 0 && pad < num_embeddings)
        memset((float *)nbi_data(w) + pad * embedding_dim, 0, (size_t)embedding_dim * sizeof(float));
    if (!(c->weight = nbi_layer_state(m, "weight", true, w))) {
        nb_module_free(m);
        return NULL;
    }
    return m;
}
