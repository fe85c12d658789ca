/* recipe.c: optimizers with weight decay on the weights only, and the
 * warm-up + cosine schedule (see recipe.h). */
#include "recipe.h"

#include <stdlib.h>
#include <string.h>

/* The model's parameters in order, split as the twin's param_groups() does:
 * p.ndim > 1 decays, the rest does not. Borrowed pointers (the optimizer
 * takes its own references). */
typedef struct {
    nb_tensor **decay, **no_decay;
    int ndecay, nno_decay;
} param_split;

static int split_one(const char *name, nb_tensor *t, bool is_param, void *ctx) {
    (void)name, (void)is_param;
    param_split *s = ctx;
    if (nb_tensor_ndim(t) > 1) s->decay[s->ndecay++] = t;
    else s->no_decay[s->nno_decay++] = t;
    return 0;
}

static nb_status split_params(const nb_module *model, param_split *s) {
    int n = nb_module_num_parameters(model);
    *s = (param_split){0};
    if (n < 0) return nb_last_status();
    s->decay = malloc(((size_t)n + 1) * sizeof *s->decay);
    s->no_decay = malloc(((size_t)n + 1) * sizeof *s->no_decay);
    if (!s->decay || !s->no_decay) return nb_set_error(NB_ERR_NOMEM, "mnist_optimizer_new: out of memory");
    /* Visits each tensor once, as parameters() counts it (tied weights once). */
    return nb_module_visit_parameters(model, split_one, s);
}

/* Two groups: the decaying weights with the options given, then the rest
 * with weight_decay 0. One branch per optimizer, since each has its own
 * options type. */
static nb_optimizer *grouped(const mnist_optim_options *o, const param_split *s) {
    nb_optimizer *opt = NULL;
    nb_status st = NB_ERR_ARG;
    if (!strcmp(o->name, "sgd")) {
        nb_sgd_options a = nb_sgd_defaults();
        a.lr = o->lr, a.momentum = o->momentum, a.weight_decay = o->weight_decay;
        opt = nb_sgd(s->decay, s->ndecay, &a);
        a.weight_decay = 0;
        st = opt ? nb_sgd_add_param_group(opt, s->no_decay, s->nno_decay, &a) : nb_last_status();
    } else if (!strcmp(o->name, "adadelta")) {
        nb_adadelta_options a = nb_adadelta_defaults();
        a.lr = o->lr, a.weight_decay = o->weight_decay;
        opt = nb_adadelta(s->decay, s->ndecay, &a);
        a.weight_decay = 0;
        st = opt ? nb_adadelta_add_param_group(opt, s->no_decay, s->nno_decay, &a) : nb_last_status();
    } else if (!strcmp(o->name, "rmsprop")) {
        nb_rmsprop_options a = nb_rmsprop_defaults();
        a.lr = o->lr, a.weight_decay = o->weight_decay;
        opt = nb_rmsprop(s->decay, s->ndecay, &a);
        a.weight_decay = 0;
        st = opt ? nb_rmsprop_add_param_group(opt, s->no_decay, s->nno_decay, &a) : nb_last_status();
    } else if (!strcmp(o->name, "adam") || !strcmp(o->name, "adamw")) {
        bool w = !strcmp(o->name, "adamw");
        nb_adam_options a = w ? nb_adamw_defaults() : nb_adam_defaults();
        a.lr = o->lr, a.weight_decay = o->weight_decay;
        opt = w ? nb_adamw(s->decay, s->ndecay, &a) : nb_adam(s->decay, s->ndecay, &a);
        a.weight_decay = 0;
        st = opt ? nb_adam_add_param_group(opt, s->no_decay, s->nno_decay, &a) : nb_last_status();
    } else {
        nb_set_error(NB_ERR_ARG, "mnist_optimizer_new: no optimizer '%s'", o->name);
    }
    if (st != NB_OK) {
        nb_optimizer_free(opt);
        return NULL;
    }
    return opt;
}

/* One group with the optimizer's own default weight decay. */
static nb_optimizer *single(const mnist_optim_options *o, nb_tensor **params, int n) {
    if (!strcmp(o->name, "sgd")) {
        nb_sgd_options a = nb_sgd_defaults();
        a.lr = o->lr, a.momentum = o->momentum;
        return nb_sgd(params, n, &a);
    }
    if (!strcmp(o->name, "adadelta")) {
        nb_adadelta_options a = nb_adadelta_defaults();
        a.lr = o->lr;
        return nb_adadelta(params, n, &a);
    }
    if (!strcmp(o->name, "rmsprop")) {
        nb_rmsprop_options a = nb_rmsprop_defaults();
        a.lr = o->lr;
        return nb_rmsprop(params, n, &a);
    }
    if (!strcmp(o->name, "adam") || !strcmp(o->name, "adamw")) {
        bool w = !strcmp(o->name, "adamw");
        nb_adam_options a = w ? nb_adamw_defaults() : nb_adam_defaults();
        a.lr = o->lr;
        return w ? nb_adamw(params, n, &a) : nb_adam(params, n, &a);
    }
    nb_set_error(NB_ERR_ARG, "mnist_optimizer_new: no optimizer '%s'", o->name);
    return NULL;
}

nb_optimizer *mnist_optimizer_new(nb_module *model, const mnist_optim_options *o) {
    if (o->weight_decay == 0) {
        nb_param_list ps = nb_module_parameter_list(model);
        /* params NULL if the list failed: then so does the optimizer, keeping the message */
        nb_optimizer *opt = single(o, ps.params, ps.n);
        nb_param_list_free(&ps); /* the optimizer keeps its own references */
        return opt;
    }
    param_split s;
    nb_optimizer *opt = split_params(model, &s) == NB_OK ? grouped(o, &s) : NULL;
    free(s.decay);
    free(s.no_decay);
    return opt;
}

nb_lr_scheduler *mnist_warmup_cosine(nb_optimizer *opt, int64_t steps_per_epoch, int64_t epochs) {
    int64_t cosine_steps = steps_per_epoch * (epochs - 1);
    nb_lr_scheduler *parts[2] = {nb_linear_lr(opt, 0.1, 1.0, steps_per_epoch), NULL};
    if (parts[0]) parts[1] = nb_cosine_annealing_lr(opt, cosine_steps > 1 ? cosine_steps : 1, 0.0);
    return nb_sequential_lr(opt, parts, 2, &steps_per_epoch, 1); /* takes over parts, even on failure */
}
