/* prefetch.c: one background thread that runs one job at a time for its
 * owner (the loader: "fill the buffers with batch k"). The owner submits a
 * job and later waits for it; between the two it must not touch what the job
 * reads or writes. The job works on plain memory only: it never makes
 * tensors, opens scopes or sets the (thread-local) error. */
#include "data_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct nbd_prefetch {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    nbd_job_fn fn;
    void *ctx;
    int64_t job;   /* submitted and not yet taken by the thread; -1: none */
    bool busy;     /* a job is submitted or running */
    bool quit;
};

static void *worker(void *arg) {
    nbd_prefetch *pf = arg;
    pthread_mutex_lock(&pf->mu);
    for (;;) {
        while (!pf->quit && pf->job < 0) pthread_cond_wait(&pf->cv, &pf->mu);
        if (pf->quit) break;
        int64_t job = pf->job;
        pf->job = -1;
        pthread_mutex_unlock(&pf->mu);
        pf->fn(pf->ctx, job);
        pthread_mutex_lock(&pf->mu);
        pf->busy = false;
        pthread_cond_broadcast(&pf->cv);
    }
    pthread_mutex_unlock(&pf->mu);
    return NULL;
}

nbd_prefetch *nbd_prefetch_new(const char *op, nbd_job_fn fn, void *ctx) {
    nbd_prefetch *pf = nbd_alloc(op, sizeof *pf);
    if (!pf) return NULL;
    memset(pf, 0, sizeof *pf);
    pf->fn = fn;
    pf->ctx = ctx;
    pf->job = -1;
    int e = pthread_mutex_init(&pf->mu, NULL);
    if (e == 0 && (e = pthread_cond_init(&pf->cv, NULL)) != 0) pthread_mutex_destroy(&pf->mu);
    if (e == 0 && (e = pthread_create(&pf->thread, NULL, worker, pf)) != 0) {
        pthread_cond_destroy(&pf->cv);
        pthread_mutex_destroy(&pf->mu);
    }
    if (e != 0) {
        free(pf);
        nbi_error(NB_ERR_NOMEM, "%s: cannot start the prefetch thread: %s", op, strerror(e));
        return NULL;
    }
    return pf;
}

void nbd_prefetch_submit(nbd_prefetch *pf, int64_t job) {
    pthread_mutex_lock(&pf->mu);
    while (pf->busy) pthread_cond_wait(&pf->cv, &pf->mu); /* one job at a time */
    pf->job = job;
    pf->busy = true;
    pthread_cond_broadcast(&pf->cv);
    pthread_mutex_unlock(&pf->mu);
}

void nbd_prefetch_wait(nbd_prefetch *pf) {
    pthread_mutex_lock(&pf->mu);
    while (pf->busy) pthread_cond_wait(&pf->cv, &pf->mu);
    pthread_mutex_unlock(&pf->mu);
}

void nbd_prefetch_free(nbd_prefetch *pf) {
    if (!pf) return;
    nbd_prefetch_wait(pf);
    pthread_mutex_lock(&pf->mu);
    pf->quit = true;
    pthread_cond_broadcast(&pf->cv);
    pthread_mutex_unlock(&pf->mu);
    pthread_join(pf->thread, NULL);
    pthread_cond_destroy(&pf->cv);
    pthread_mutex_destroy(&pf->mu);
    free(pf);
}
