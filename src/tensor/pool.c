/* The tensor memory pool.
 *
 * Why: glibc's malloc returns blocks above its mmap threshold to the OS on
 * free and maps them again on the next malloc, so a training loop would pay
 * page faults for every large activation on every step. The pool keeps freed
 * blocks in size classes (four per power of two, so at most 25% slack) and
 * hands them out again. Blocks are 64-byte aligned for vector loads.
 * Under AddressSanitizer cached blocks are poisoned, so a use after release
 * is still caught. The free lists are arrays of pointers beside the blocks,
 * not links inside them: LeakSanitizer does not read poisoned memory, so
 * blocks chained through each other would be reported as leaked at exit;
 * held in plain arrays reachable from a global, they are "still reachable",
 * which no leak checker reports (nor valgrind counts as an error).
 * For tests, nb_debug_fail_allocations_after() makes allocations fail on
 * purpose, so error paths (NB_ERR_NOMEM) can be exercised one by one.
 */
#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define NCLASSES 256

/* The cached blocks of one size class: a stack of pointers (LIFO keeps the
 * most recently used, cache-warm block on top). */
typedef struct free_list {
    void **blocks;
    size_t n, cap;
} free_list;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static free_list cache[NCLASSES];
static size_t bytes_in_use, bytes_cached;

/* Size class of n bytes and the class's block size: 64, then four classes
 * per power of two (2^k, 1.25*2^k, 1.5*2^k, 1.75*2^k). */
static int size_class(size_t n, size_t *class_bytes) {
    if (n <= 64) {
        *class_bytes = 64;
        return 0;
    }
    int k = 63 - __builtin_clzll((unsigned long long)(n - 1)); /* 2^k < n <= 2^(k+1) */
    size_t base = (size_t)1 << k, quarter = base / 4;
    size_t steps = (n - base + quarter - 1) / quarter;        /* 1..4 */
    *class_bytes = base + steps * quarter;
    int c = 1 + (k - 6) * 4 + (int)(steps - 1);
    return c < NCLASSES ? c : -1;
}

/* Allocations left before forced failures start; -1: never fail. Atomic, as
 * kernels may allocate from OpenMP threads. */
static atomic_llong fail_budget = -1;

void nb_debug_fail_allocations_after(int64_t n) { atomic_store(&fail_budget, n < 0 ? -1 : (long long)n); }

bool nbi_alloc_should_fail(void) {
    long long b = atomic_load_explicit(&fail_budget, memory_order_relaxed);
    while (b > 0) /* consume one allocation of the budget */
        if (atomic_compare_exchange_weak(&fail_budget, &b, b - 1)) return false;
    return b == 0;
}

void *nbi_alloc(size_t nbytes) {
    if (nbi_alloc_should_fail()) return NULL;
    size_t cb;
    int c = size_class(nbytes ? nbytes : 1, &cb);
    void *p = NULL;
    pthread_mutex_lock(&lock);
    if (c >= 0 && cache[c].n > 0) {
        p = cache[c].blocks[--cache[c].n];
        UNPOISON(p, cb);
        bytes_cached -= cb;
    }
    if (p) bytes_in_use += cb;
    pthread_mutex_unlock(&lock);
    if (p) return p;
    if (posix_memalign(&p, 64, cb) != 0) return NULL;
    pthread_mutex_lock(&lock);
    bytes_in_use += cb;
    pthread_mutex_unlock(&lock);
    return p;
}

/* Push p on class c's stack; false when the stack cannot grow (the caller
 * then gives p back to the system). Called with the lock held. */
static bool cache_push(int c, void *p) {
    free_list *l = &cache[c];
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        void **b = realloc(l->blocks, cap * sizeof *b);
        if (!b) return false;
        l->blocks = b;
        l->cap = cap;
    }
    l->blocks[l->n++] = p;
    return true;
}

void nbi_free(void *p, size_t nbytes) {
    if (!p) return;
    size_t cb;
    int c = size_class(nbytes ? nbytes : 1, &cb);
    pthread_mutex_lock(&lock);
    bytes_in_use -= cb;
    if (c >= 0 && cache_push(c, p)) {
        bytes_cached += cb;
        POISON(p, cb);
        p = NULL;
    }
    pthread_mutex_unlock(&lock);
    free(p);
}

void nb_memory_trim(void) {
    pthread_mutex_lock(&lock);
    for (int c = 0; c < NCLASSES; c++) {
        /* free() accepts a block still poisoned by us: ASan marks it freed either way */
        for (size_t i = 0; i < cache[c].n; i++) free(cache[c].blocks[i]);
        free(cache[c].blocks);
        cache[c] = (free_list){0};
    }
    bytes_cached = 0;
    pthread_mutex_unlock(&lock);
}

size_t nb_memory_in_use(void) {
    pthread_mutex_lock(&lock);
    size_t n = bytes_in_use;
    pthread_mutex_unlock(&lock);
    return n;
}

size_t nb_memory_cached(void) {
    pthread_mutex_lock(&lock);
    size_t n = bytes_cached;
    pthread_mutex_unlock(&lock);
    return n;
}
