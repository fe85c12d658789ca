/* Private to the library (src/): the tensor layout, the autograd node, error
 * helpers, dtype dispatch and the GEMM interface. src/nn and src/optim may
 * include it (they build on tensor); nothing under include/ does.
 *
 * HOW AN OP IS WRITTEN: docs/ops.md (a check that returns the geometry, a
 * kernel over plain arrays, a short public function that checks, runs the
 * kernel and ends in nbi_finish_op; a grad_fn that starts with
 * nbi_alloc_grads). src/nn/activation.c is the canonical example.
 *
 * REFERENCES INSIDE src/ (the one rule; the public rule is in nabla/core.h).
 * A tensor pointer held by library code is either borrowed (arguments,
 * node->inputs, node->saved, node->out, a module's parameters) or a LIBRARY
 * REFERENCE, which no scope holds. There is one pair of verbs for those:
 *     nbi_retain(t)   take a library reference to a borrowed tensor
 *     nbi_release(t)  give one back (NULL is ignored)
 * Every tensor-returning function of this header (nbi_empty, nbi_make_view,
 * nbi_contiguous_data, nbi_sum_to_shape, ...) returns a library reference.
 * Two calls cross the boundary to the caller's references, and only they:
 *   - nbi_own(nb_xxx(...)): the result of a PUBLIC function called inside
 *     src/ is the caller's reference (a scope may hold it); wrap the call in
 *     nbi_own, at the call, and it is a library reference like any other.
 *   - nbi_give(t): hand a library reference out as a public function's result.
 *     Ops never call it: nbi_finish_op does. (Creation functions do.)
 * nb_tensor_retain / nb_tensor_release are for users; src/ does not call them. */
#ifndef NABLA_INTERNAL_H
#define NABLA_INTERNAL_H

#include "nabla.h"

#include <stdarg.h>

/* ---- storage: a refcounted buffer, from the pool or borrowed ---- */
typedef struct nbi_storage {
    void *data;
    size_t nbytes;
    int refcount;
    bool borrowed;      /* the caller's buffer (nb_from_buffer): never freed */
} nbi_storage;

typedef struct nbi_node nbi_node;
typedef struct nbi_hook nbi_hook;

struct nb_tensor {
    int refcount;                 /* all references: the caller's and the library's */
    int ext_refs;                 /* of those, the callers' (returned or nb_tensor_retain'd) */
    nb_dtype dtype;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    int64_t strides[NB_MAX_DIMS]; /* in elements */
    int64_t offset;               /* in elements, into storage */
    int64_t numel;
    nbi_storage *storage;
    bool requires_grad;
    nb_tensor *grad;              /* leaf gradient (owned reference) */
    nbi_node *grad_fn;            /* op that produced this tensor (one of the node's counted
                                     references), NULL for a leaf */
    int output_nr;                /* which output of grad_fn this tensor is (0 but for
                                     custom functions with several outputs) */
    /* scope bookkeeping: which scope holds a reference for the caller, and where */
    nb_scope *scope;
    int64_t scope_slot;
    /* backward bookkeeping (engine only), for leaves; a non-leaf's hooks and
     * gradient live in its grad_fn, indexed by output_nr */
    uint64_t visit_epoch;
    nb_tensor *bgrad;             /* gradient flowing into this leaf during one backward */
    nbi_hook *hooks;              /* nb_tensor_register_hook on a leaf, in order (owned) */
};

/* ---- autograd ----
 * An op is a name plus a backward function (its grad_fn). grad_fn receives
 * the node and the gradient of the node's output (contiguous, output's shape
 * and dtype), and for each input i with nbi_node_needs_grad(node, i) stores in
 * gin[i] a library reference to a new tensor of input i's shape and dtype
 * (leaving the others NULL); nbi_alloc_grads makes them. It runs with grad
 * mode off and may call any public op. On failure it returns the status and
 * the engine releases whatever it left in gin. (Custom functions,
 * autograd_function.c, are ops with several outputs: see nbi_node.) */
typedef struct nbi_op {
    const char *name;
    nb_status (*backward)(nbi_node *node, const nb_tensor *gout, nb_tensor **gin);
    void (*free_ctx)(void *ctx);   /* NULL means free(); ops written with nbi_finish_op leave it NULL */
} nbi_op;

#define NBI_MAX_INPUTS 16
#define NBI_MAX_OUTPUTS 16
#define NBI_MAX_SAVED 4
struct nbi_node {
    const nbi_op *op;
    int ninputs;
    nb_tensor *inputs[NBI_MAX_INPUTS]; /* retained until the graph is freed */
    bool needs_grad[NBI_MAX_INPUTS];
    int nsaved;
    nb_tensor *saved[NBI_MAX_SAVED];   /* what backward reads besides the inputs (library references) */
    nb_tensor *out;                    /* borrowed: the node is owned by out (NULL when noutputs > 1) */
    void *ctx;                         /* op data: a copy of plain data (nbi_finish_op) */
    bool released;                     /* saved state freed after backward */
    /* An op with several outputs (custom functions) has noutputs > 1 and
     * reads each output's gradient from bgrads[k] (NULL: none arrived);
     * gout is bgrads[0] then. Built-in ops have one output. */
    int noutputs;
    nb_tensor **bgrads;                /* engine: gradient of each output during one backward */
    /* engine only */
    int refcount;                      /* outputs whose grad_fn is this node */
    nb_dtype in_dtype[NBI_MAX_INPUTS]; /* inputs' dtypes when recorded (nb_module_to_dtype may change them) */
    char *name;                        /* owned; overrides op->name (custom functions) */
    nbi_hook *hooks;                   /* hooks of the outputs (non-leaf tensors), in order */
    uint64_t visit_epoch;
    bool exec;                         /* this backward runs the node */
    nb_tensor *bgrad1;                 /* bgrads' storage for one output */
};
/* The name messages give the node: the op's, or a custom function's. */
static inline const char *nbi_node_name(const nbi_node *node) { return node->name ? node->name : node->op->name; }

/* True when grad mode is on and any of the inputs requires grad. */
bool nbi_should_record(nb_tensor *const *inputs, int n);
static inline bool nbi_node_needs_grad(const nbi_node *node, int i) { return node->needs_grad[i]; }

/* The last call of every op's public function: returns out (a library
 * reference made by the op) as the caller's reference, after recording it as
 * made by op from inputs[0..n) when grad mode is on and one of them requires
 * grad. The node keeps the inputs (NULL entries: absent optional inputs), the
 * tensors saved[0..nsaved) and a copy of the ctx_size bytes at ctx (plain
 * data, read back through node->ctx; ctx may be NULL with size 0). It takes
 * over out and the saved references whatever happens: nothing recorded, they
 * are released. out NULL (the op failed earlier): releases the saved, returns
 * NULL, the earlier message stays. Out of memory: "<op name>: out of memory". */
nb_tensor *nbi_finish_op(nb_tensor *out, const nbi_op *op, const nb_tensor *const *inputs, int n,
                         nb_tensor *const *saved, int nsaved, const void *ctx, size_t ctx_size);
/* NBI_INPUTS(x, w, b) and NBI_SAVED(xc, wc) expand to the pair `array, count`
 * nbi_finish_op takes (like NB_SHAPE); nothing saved is `NULL, 0`. */
#define NBI_INPUTS(...) (const nb_tensor *const[]){__VA_ARGS__}, \
    (int)(sizeof((const nb_tensor *const[]){__VA_ARGS__}) / sizeof(const nb_tensor *))
#define NBI_SAVED(...) (nb_tensor *const[]){__VA_ARGS__}, \
    (int)(sizeof((nb_tensor *const[]){__VA_ARGS__}) / sizeof(nb_tensor *))

/* For grad_fn: gin[i] = a new uninitialised tensor shaped like input i for
 * every input that needs a gradient (the kernel overwrites it), NULL for the
 * others. Out of memory: every gin[i] NULL again, the status returned. */
nb_status nbi_alloc_grads(const nbi_node *node, nb_tensor **gin);

/* The older form, for an op that allocates its own ctx (custom ops in tests):
 * nbi_finish_op's contract, with ctx malloc'd by the caller and freed with
 * op->free_ctx (NULL: free()) whatever happens. */
nb_tensor *nbi_finish(nb_tensor *out, const nbi_op *op, nb_tensor *const *inputs, int n, void *ctx);
/* Record outs[0 .. nouts-1] as the outputs of one node of op (nouts <=
 * NBI_MAX_OUTPUTS; a NULL entry is an output that is not differentiable: it
 * has a gradient slot but no grad_fn). name (copied; NULL: op->name) names
 * the node. Takes ownership of ctx as nbi_record does. */
nb_status nbi_record_outputs(nb_tensor *const *outs, int nouts, const nbi_op *op, nb_tensor *const *inputs, int n,
                             void *ctx, const char *name);
/* Anomaly mode's check of a forward output: NB_OK, or NB_ERR_ANOMALY with a
 * message naming the op (name). */
nb_status nbi_check_forward_output(const nb_tensor *out, const char *name, nb_tensor *const *inputs, int n);
/* True while the engine runs backward functions and hooks (whose results it
 * checks itself: forward checks do not apply to what they compute). */
bool nbi_in_backward(void);
/* Free a hook list (a leaf's when it dies, a node's with the node). */
void nbi_hooks_free(nbi_hook *hooks);
/* Run, in order, the hooks of the list registered for output_nr on the
 * gradient *g (a library reference, replaced by a hook's result); what
 * describes the tensor in messages. */
nb_status nbi_hooks_run(nbi_hook *hooks, int output_nr, nb_tensor **g, const char *what);
/* Record out as produced by op from inputs, taking ownership of ctx (freed
 * with op->free_ctx even on failure). Sets out->requires_grad. On failure
 * returns an error and out is unchanged otherwise. Call only when
 * nbi_should_record() said yes. (The engine's primitive: ops use nbi_finish_op.) */
nb_status nbi_record(nb_tensor *out, const nbi_op *op, nb_tensor *const *inputs, int n, void *ctx);

/* ---- tensors ---- */
/* New contiguous tensor with uninitialised data (a library reference). */
nb_tensor *nbi_empty(nb_dtype dtype, int ndim, const int64_t *shape);
nb_tensor *nbi_empty_like(const nb_tensor *t);
/* nbi_empty whose argument errors name op (the public function called). */
nb_tensor *nbi_empty_op(const char *op, nb_dtype dtype, int ndim, const int64_t *shape);
/* nbytes of pool memory held like a tensor (an int64 tensor of ceil(nbytes / 8)
 * elements), for byte masks an op saves: read it through (uint8_t *)nbi_data(t). */
nb_tensor *nbi_empty_bytes(const char *op, int64_t nbytes);
/* A view sharing t's storage with the given geometry (a library reference). */
nb_tensor *nbi_make_view(const nb_tensor *t, int ndim, const int64_t *shape, const int64_t *strides, int64_t offset);
/* Exchange the data of two tensors of the same shape: dtype, storage,
 * strides and offset (nothing else: the objects, their grads and graphs stay). */
void nbi_swap_data(nb_tensor *a, nb_tensor *b);
/* The reference verbs and the two boundary crossings: see the top of this file. */
static inline nb_tensor *nbi_retain(nb_tensor *t) { if (t) t->refcount++; return t; }
void nbi_release(nb_tensor *t);
nb_tensor *nbi_own(nb_tensor *t);   /* a public function's result -> a library reference */
nb_tensor *nbi_give(nb_tensor *t);  /* a fresh library reference -> the caller's result */
/* A library reference to t's elements laid out contiguously: t itself
 * (retained) when it already is, else a copy made with grad mode off, so
 * nothing is recorded (the op records t itself as its input). Kernels read
 * their inputs through it. NULL on failure. */
nb_tensor *nbi_contiguous_data(const nb_tensor *t);
/* Pointer to the first element. */
static inline void *nbi_data(const nb_tensor *t) {
    return (char *)t->storage->data + (size_t)t->offset * nb_dtype_size(t->dtype);
}
/* nbi_data, or NULL for an absent tensor: optional kernel arguments (bias, gradients not needed). */
static inline void *nbi_data_or_null(const nb_tensor *t) { return t ? nbi_data(t) : NULL; }
int64_t nbi_numel(int ndim, const int64_t *shape);
bool nbi_is_contiguous(const nb_tensor *t); /* row-major without gaps; an empty tensor always is (as PyTorch) */
void nbi_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);
/* Normalise a possibly negative dim for a tensor of ndim dims; -1 (with an
 * error naming op) when out of range. */
int nbi_dim(const char *op, int dim, int ndim);

/* Broadcast two shapes; NB_ERR_SHAPE (message names op) if incompatible. */
nb_status nbi_broadcast_shape(const char *op, int na, const int64_t *sa, int nb, const int64_t *sb,
                              int *nout, int64_t *out);
/* t's elements broadcast to shape (which t must broadcast to) and laid out
 * contiguously, a library reference: nbi_contiguous_data(t) when t has that
 * shape already, else a copy. NULL on failure. */
nb_tensor *nbi_expand_data(const nb_tensor *t, int ndim, const int64_t *shape);
/* Sum g over broadcast dims so it has the given shape (the backward of broadcasting).
 * Returns a new library reference (a view of g when shapes already agree). */
nb_tensor *nbi_sum_to_shape(const nb_tensor *g, int ndim, const int64_t *shape);

/* ---- random numbers (rng.c) ----
 * data[0..n) of float dtype filled in order with U(a, b) draws, a + (b - a) * u,
 * or (normal) N(a, b) draws, a + b * z, from rng (NULL: the default): the
 * kernel of nb_rand_uniform / nb_rand_normal, shared by nn's init functions. */
void nbi_rng_fill(nb_dtype dtype, void *data, int64_t n, nb_rng *rng, double a, double b, bool normal);

/* The kernel of nb_softmax and nb_log_softmax (ops_softmax.c), for ops that
 * fuse it (cross_entropy): y = (log_)softmax of x over the middle dim of
 * (outer, size, inner), deterministic at any thread count. */
void nbi_softmax_forward(nb_dtype dtype, void *y, const void *x, int64_t outer, int64_t size, int64_t inner,
                         bool log_out);

/* ---- errors ---- */
/* Record a message for the calling thread and return status. */
nb_status nbi_error(nb_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* NULL tensor arguments: keeps an earlier error's message (propagation). */
nb_status nbi_null_arg(const char *op, const char *arg);
/* Argument checks that set a message naming op; they return false on failure. */
bool nbi_check_tensor(const char *op, const char *arg, const nb_tensor *t);        /* not NULL */
bool nbi_check_float(const char *op, const char *arg, const nb_tensor *t);         /* not NULL, f32/f64 */
bool nbi_check_same_dtype(const char *op, const nb_tensor *a, const nb_tensor *b);

/* ---- dtype dispatch ----
 * NBI_DISPATCH_FLOAT(dtype, body): runs body with T typedef'd to float or double. */
#define NBI_DISPATCH_FLOAT(dtype, ...)                                   \
    do {                                                                 \
        if ((dtype) == NB_F32) { typedef float T; __VA_ARGS__ }          \
        else { typedef double T; __VA_ARGS__ }                           \
    } while (0)

/* Parallelise elementwise loops only above this many elements. Inside
 * NBI_DISPATCH_FLOAT bodies write _Pragma("omp ...") rather than #pragma:
 * a directive cannot appear inside a macro argument. */
#define NBI_PAR_MIN 32768

/* ---- memory pool (pool.c) ---- */
void *nbi_alloc(size_t nbytes);   /* 64-byte aligned; NULL on failure (no message) */
void nbi_free(void *p, size_t nbytes);
/* True when nb_debug_fail_allocations_after() says this allocation must fail
 * (it counts one allocation); library allocations beside the pool's may ask it too. */
bool nbi_alloc_should_fail(void);

/* ---- GEMM (gemm.c) ----
 * C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, row-major with leading
 * dimensions; op(X) is X or its transpose. When beta == 0, C is not read.
 * It may run OpenMP over output tiles (when called outside a parallel region)
 * but never splits K, so every element's summation order is fixed: results
 * do not depend on the thread count. */
void nbi_sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
void nbi_dgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
               const double *A, int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc);

#endif
