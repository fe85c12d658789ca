/* Private to src/nn: the layout of nb_module, shared by module.c (building,
 * running) and module_state.c (enumeration and lookup by name). */
#ifndef NABLA_NN_MODULE_INTERNAL_H
#define NABLA_NN_MODULE_INTERNAL_H

#include "nabla/nn.h"
#include "tensor/internal.h"

typedef struct nbi_entry {
    char *name;     /* own name, no dots ("weight") */
    nb_tensor *t;   /* owned reference, held by no scope */
} nbi_entry;

typedef struct nbi_child {
    char *name;
    nb_module *m;   /* owned */
} nbi_child;

struct nb_module {
    char *type;                   /* "Linear", "Net", ... for messages */
    nb_forward_fn forward;
    void *ctx;
    void (*free_ctx)(void *ctx);
    bool training;
    nb_module *parent;            /* borrowed; NULL for a root */
    nbi_entry *params;            /* registration order */
    int nparams, cap_params;
    nbi_entry *buffers;
    int nbuffers, cap_buffers;
    nbi_child *children;          /* order added */
    int nchildren, cap_children;
};

/* True when m already has a parameter, buffer or child called name. */
bool nbi_module_has_name(const nb_module *m, const char *name);

#endif
