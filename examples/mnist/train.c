/* mnist_train: train a CNN on MNIST (or Fashion-MNIST) in pure C with nabla.
 * Defaults follow PyTorch's MNIST example: the classic net, Adadelta lr 1.0,
 * StepLR gamma 0.7, batch 64, test batch 1000. --model resnet brings its own
 * recipe, that of tools/fashion_resnet.py: SGD lr 0.1 momentum 0.9, weight
 * decay 5e-4 on the weights only, batch 128, 20 epochs, one epoch of linear
 * warm-up then cosine annealing stepped every batch, random crop (padding 2)
 * and horizontal flip. Run with --help for flags. */
#include <nabla.h>

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "checkpoint.h"
#include "dist_support.h"
#include "models.h"
#include "recipe.h"
#include "report.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
/* Default data directory (set by CMake to <repo>/data/mnist, where
 * scripts/fetch_mnist.sh puts the files). */
#ifndef MNIST_DEFAULT_DIR
#define MNIST_DEFAULT_DIR "data/mnist"
#endif
/* torchvision's MNIST example: ToTensor() then Normalize((0.1307,), (0.3081,));
 * Fashion-MNIST's usual statistics. */
#define MNIST_MEAN 0.1307
#define MNIST_STD 0.3081
#define FASHION_MEAN 0.2860
#define FASHION_STD 0.3530

typedef struct options {
    const char *data, *model, *optimizer, *save, *load, *checkpoint, *resume, *metrics, *plot, *dump_logits;
    int epochs, threads;
    int64_t batch_size, test_batch_size, limit_train, limit_test, width;
    double lr, gamma, momentum, weight_decay;
    uint64_t seed;
    bool fashion, eval_only, no_prefetch;
} options;

static void usage(FILE *f, const char *argv0) {
    fprintf(f,
            "usage: %s [options]\n"
            "  --data DIR            folder with the IDX files (default %s;\n"
            "                        get them with scripts/fetch_mnist.sh)\n"
            "  --fashion             Fashion-MNIST from %s (scripts/fetch_mnist.sh --fashion)\n"
            "  --model NAME          default (PyTorch's MNIST example net), small, or resnet (a\n"
            "                        residual net with its own recipe: SGD lr 0.1, weight decay\n"
            "                        5e-4, batch 128, 20 epochs, warm-up + cosine per batch,\n"
            "                        random crop and flip; tools/fashion_resnet.py is its twin)\n"
            "  --width N             resnet's channels in its first stage (default 16)\n"
            "  --epochs N            default 6 (PyTorch's full recipe: 14; resnet 20)\n"
            "  --batch-size N        default 64 (resnet 128)\n"
            "  --test-batch-size N   default 1000\n"
            "  --optimizer NAME      adadelta (default), sgd (resnet's), adam, adamw, rmsprop\n"
            "  --lr X                default 1.0 for adadelta, 0.01 for sgd (resnet 0.1), 0.001 otherwise\n"
            "  --momentum X          SGD momentum (default 0.9)\n"
            "  --weight-decay X      on conv and linear weights only (a second parameter group\n"
            "                        holds the rest); default 5e-4 for resnet, otherwise 0,\n"
            "                        which keeps the optimizer's own default on every parameter\n"
            "  --gamma X             StepLR decay per epoch (default 0.7; not resnet's schedule)\n"
            "  --seed N              default 1\n"
            "  --threads N           default: all cores (on a machine busy with other work,\n"
            "                        fewer threads can be faster: try --threads 1)\n"
            "  --limit-train N       train on the first N images only\n"
            "  --limit-test N        test on the first N images only\n"
            "  --load FILE           start from weights in HDF5 (a PyTorch state_dict export)\n"
            "  --save FILE           write the final weights to HDF5 (loads in PyTorch)\n"
            "  --checkpoint FILE     write a resumable checkpoint after every epoch\n"
            "  --resume FILE         resume from a checkpoint\n"
            "  --eval-only           only evaluate (with --load)\n"
            "  --metrics FILE        per-epoch CSV (default metrics.csv)\n"
            "  --plot FILE           SVG plot of loss and accuracy (default training.svg)\n"
            "  --dump-logits FILE    write the final model's test-set logits and predictions to HDF5\n"
            "  --no-prefetch         prepare each batch when it is asked for, not ahead in a\n"
            "                        background thread (the batches are the same either way)\n",
            argv0, MNIST_DEFAULT_DIR, FASHION_DIR);
}

static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno == ERANGE || v < lo || v > hi) return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double lo, double *out) {
    char *end;
    *out = strtod(s, &end);
    return *s != '\0' && *end == '\0' && isfinite(*out) && *out >= lo;
}

/* One line naming the flag, the value and what was expected; then where help is. */
static int bad_value(const char *argv0, const char *flag, const char *value, const char *expected) {
    fprintf(stderr, "mnist_train: --%s: invalid value '%s' (expected %s)\n", flag, value, expected);
    fprintf(stderr, "Try '%s --help' for the options.\n", argv0);
    return 2;
}

static int parse_args(int argc, char **argv, options *o) {
    /* -1 (NULL for names): the model's recipe decides, after parsing. */
    *o = (options){.data = NULL, .model = "default", .optimizer = NULL, .metrics = "metrics.csv",
                   .plot = "training.svg", .epochs = -1, .threads = 0, .batch_size = -1, .test_batch_size = 1000,
                   .width = -1, .lr = -1, .gamma = 0.7, .momentum = 0.9, .weight_decay = -1, .seed = 1};
    static const struct option longopts[] = {
        {"data", 1, 0, 'd'}, {"fashion", 0, 0, 'F'}, {"model", 1, 0, 'm'}, {"epochs", 1, 0, 'e'},
        {"batch-size", 1, 0, 'b'}, {"test-batch-size", 1, 0, 'B'}, {"optimizer", 1, 0, 'o'}, {"lr", 1, 0, 'l'},
        {"momentum", 1, 0, 'M'}, {"gamma", 1, 0, 'g'}, {"seed", 1, 0, 's'}, {"threads", 1, 0, 't'},
        {"limit-train", 1, 0, 'L'}, {"limit-test", 1, 0, 'T'}, {"load", 1, 0, 'i'}, {"save", 1, 0, 'w'},
        {"checkpoint", 1, 0, 'c'}, {"resume", 1, 0, 'r'}, {"eval-only", 0, 0, 'E'}, {"metrics", 1, 0, 'C'},
        {"plot", 1, 0, 'P'}, {"dump-logits", 1, 0, 'D'}, {"no-prefetch", 0, 0, 'N'}, {"help", 0, 0, 'h'},
        {"width", 1, 0, 'W'}, {"weight-decay", 1, 0, 'y'}, {0, 0, 0, 0}};
    const int64_t big = INT64_C(1) << 40; /* sizes beyond any data set, still far from overflow */
    int c;
    int64_t v = 0;
    opterr = 0; /* unknown options are reported below, in the same words as bad values */
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        const char *expected = NULL; /* set when the value is bad */
        switch (c) {
        case 'd': o->data = optarg; break;
        case 'F': o->fashion = true; break;
        case 'm':
            o->model = optarg;
            if (name_index(mnist_model_names, optarg) < 0) expected = "default, small or resnet";
            break;
        case 'W':
            if (!parse_int(optarg, 1, MNIST_RESNET_MAX_WIDTH, &o->width)) expected = "an integer in [1, 1024]";
            break;
        case 'y':
            if (!parse_double(optarg, 0, &o->weight_decay)) expected = "a number >= 0";
            break;
        case 'e':
            if (!parse_int(optarg, 1, CHECKPOINT_MAX_EPOCHS, &v)) expected = "an integer in [1, 1000]";
            o->epochs = (int)v;
            break;
        case 'b':
            if (!parse_int(optarg, 1, big, &o->batch_size)) expected = "a positive integer";
            break;
        case 'B':
            if (!parse_int(optarg, 1, big, &o->test_batch_size)) expected = "a positive integer";
            break;
        case 'o':
            o->optimizer = optarg;
            if (name_index(mnist_optimizer_names, optarg) < 0) expected = "adadelta, sgd, adam, adamw or rmsprop";
            break;
        case 'l':
            if (!parse_double(optarg, 0, &o->lr)) expected = "a number >= 0";
            break;
        case 'M':
            if (!parse_double(optarg, 0, &o->momentum)) expected = "a number >= 0";
            break;
        case 'g':
            if (!parse_double(optarg, 0, &o->gamma) || o->gamma == 0) expected = "a number > 0";
            break;
        case 's':
            if (!parse_int(optarg, 0, INT64_MAX, &v)) expected = "an integer >= 0";
            o->seed = (uint64_t)v;
            break;
        case 't':
            if (!parse_int(optarg, 1, 1024, &v)) expected = "an integer in [1, 1024]";
            o->threads = (int)v;
            break;
        case 'L':
            if (!parse_int(optarg, 1, big, &o->limit_train)) expected = "a positive integer";
            break;
        case 'T':
            if (!parse_int(optarg, 1, big, &o->limit_test)) expected = "a positive integer";
            break;
        case 'i': o->load = optarg; break;
        case 'w': o->save = optarg; break;
        case 'c': o->checkpoint = optarg; break;
        case 'r': o->resume = optarg; break;
        case 'E': o->eval_only = true; break;
        case 'C': o->metrics = optarg; break;
        case 'P': o->plot = optarg; break;
        case 'D': o->dump_logits = optarg; break;
        case 'N': o->no_prefetch = true; break;
        case 'h': usage(stdout, argv[0]); return -1;
        case ':':
            fprintf(stderr, "mnist_train: %s needs a value\nTry '%s --help' for the options.\n", argv[optind - 1],
                    argv[0]);
            return 2;
        default:
            fprintf(stderr, "mnist_train: unknown option '%s'\nTry '%s --help' for the options.\n",
                    argv[optind - 1], argv[0]);
            return 2;
        }
        if (expected) {
            const char *flag = "?";
            for (const struct option *lo = longopts; lo->name; lo++)
                if (lo->val == c) flag = lo->name;
            return bad_value(argv[0], flag, optarg, expected);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mnist_train: unexpected argument '%s'\nTry '%s --help' for the options.\n", argv[optind],
                argv[0]);
        return 2;
    }
    const bool resnet = !strcmp(o->model, "resnet");
    if (o->width >= 0 && !resnet) {
        fprintf(stderr, "mnist_train: --width applies to --model resnet only\n");
        return 2;
    }
    if (o->eval_only && !o->load) {
        fprintf(stderr, "mnist_train: --eval-only needs --load FILE (the weights to evaluate)\n");
        return 2;
    }
    if (!o->data) o->data = o->fashion ? FASHION_DIR : MNIST_DEFAULT_DIR;
    if (o->width < 0) o->width = 16;
    if (!o->optimizer) o->optimizer = resnet ? "sgd" : "adadelta";
    if (o->epochs < 0) o->epochs = resnet ? 20 : 6;
    if (o->batch_size < 0) o->batch_size = resnet ? 128 : 64;
    if (o->weight_decay < 0) o->weight_decay = resnet ? 5e-4 : 0;
    if (o->lr < 0)
        o->lr = !strcmp(o->optimizer, "adadelta") ? 1.0
              : !strcmp(o->optimizer, "sgd")      ? (resnet ? 0.1 : 0.01)
                                                  : 0.001;
    return 0;
}

/* Evaluation runs the model on at most this many images at a time and joins
 * the outputs, so a test batch of 1000 (PyTorch's recipe) costs the memory
 * of 100: a net's outputs do not depend on the batch they are computed in
 * (bitwise), so the loss per test batch is what one forward pass gives. */
#define EVAL_CHUNK 100

/* The model's output for x, (B, ...), computed EVAL_CHUNK rows at a time. */
static nb_tensor *forward_chunked(nb_module *model, nb_tensor *x) {
    int64_t n = nb_tensor_size(x, 0);
    if (n <= EVAL_CHUNK) return nb_module_forward(model, x);
    int64_t k = (n + EVAL_CHUNK - 1) / EVAL_CHUNK;
    nb_tensor **parts = calloc((size_t)k, sizeof *parts);
    if (!parts) {
        nb_set_error(NB_ERR_NOMEM, "mnist_train: out of memory for %lld chunks", (long long)k);
        return NULL;
    }
    nb_tensor *out = NULL;
    bool ok = true;
    for (int64_t i = 0; i < k && ok; i++) {
        int64_t start = i * EVAL_CHUNK, len = n - start < EVAL_CHUNK ? n - start : EVAL_CHUNK;
        nb_tensor *xi = nb_narrow(x, 0, start, len);
        parts[i] = xi ? nb_module_forward(model, xi) : NULL;
        nb_tensor_release(xi);
        ok = parts[i] != NULL;
    }
    if (ok) out = nb_cat((const nb_tensor *const *)parts, (int)k, 0);
    for (int64_t i = 0; i < k; i++) nb_tensor_release(parts[i]);
    free(parts);
    return out;
}

/* Batches of ds in order, normalised like the training data: for evaluation. */
static nb_loader *eval_loader(const nb_dataset *ds, int64_t batch, const nb_transform *norm) {
    nb_loader_options lo = nb_loader_defaults();
    lo.batch_size = batch;
    lo.transforms = norm;
    lo.num_transforms = 1;
    return nb_loader_new(ds, &lo);
}

/* The loss of a model's output: cross-entropy for logits (resnet), NLL for
 * log-probabilities (the nets ending in log_softmax): the same function. */
static nb_tensor *model_loss(const nb_tensor *out, const nb_tensor *y, nb_reduction r, bool logits) {
    return logits ? nb_cross_entropy(out, y, r) : nb_nll_loss(out, y, r);
}

/* Mean loss and accuracy (%) over a data set; fills confusion if not NULL.
 * Under mpirun each rank evaluates its slice and the sums are added up. */
static nb_status evaluate(nb_module *model, bool logits, const nb_dataset *ds, int64_t batch,
                          const nb_transform *norm, double *loss, double *acc, int64_t confusion[10][10]) {
    int64_t count = nb_dataset_len(ds), lo, hi;
    mnist_dist_slice(count, &lo, &hi);
    nb_dataset *slice = hi > lo ? nb_dataset_narrow(ds, lo, hi - lo) : NULL;
    nb_loader *loader = slice ? eval_loader(slice, batch, norm) : NULL;
    nb_dataset_free(slice); /* the loader keeps it */
    nb_status st = hi > lo && !loader ? nb_last_status() : NB_OK;
    nb_module_eval(model);
    nb_no_grad_begin();
    double total = 0;
    int64_t correct = 0;
    while (st == NB_OK && loader) {
        nb_scope *s = nb_scope_begin(); /* holds x, y and everything computed from them */
        nb_tensor *x, *y;
        int64_t b = nb_loader_next(loader, &x, &y);
        if (b <= 0) {
            if (b < 0) st = (nb_status)b;
            nb_scope_end(s);
            break;
        }
        nb_tensor *out = forward_chunked(model, x);
        nb_tensor *l = model_loss(out, y, NB_REDUCTION_SUM, logits);
        nb_tensor *pred = NULL;
        nb_tensor *mx = out ? nb_max_dim(out, 1, false, &pred) : NULL;
        double lv;
        if (!l || !mx || nb_tensor_item(l, &lv) != NB_OK) {
            st = nb_last_status();
        } else {
            total += lv;
            const int64_t *p = nb_tensor_i64(pred), *t = nb_tensor_i64(y);
            for (int64_t i = 0; i < b; i++) {
                correct += p[i] == t[i];
                if (confusion && t[i] >= 0 && t[i] < 10 && p[i] >= 0 && p[i] < 10) confusion[t[i]][p[i]]++;
            }
        }
        nb_tensor_release(pred);
        nb_scope_end(s);
    }
    nb_no_grad_end();
    nb_module_train(model, true);
    nb_loader_free(loader);
    if (st == NB_OK) st = mnist_dist_sum_f64(&total, 1);
    if (st == NB_OK) st = mnist_dist_sum_i64(&correct, 1);
    if (st == NB_OK && confusion) st = mnist_dist_sum_i64(&confusion[0][0], 100);
    *loss = total / (double)count;
    *acc = 100.0 * (double)correct / (double)count;
    return st;
}

/* The model's outputs (logits, or log-probabilities for the nets ending in
 * log_softmax) and predicted classes on a data set, to HDF5. */
static nb_status dump_logits(nb_module *model, const nb_dataset *ds, int64_t batch, const nb_transform *norm,
                             const char *path) {
    int64_t count = nb_dataset_len(ds);
    nb_loader *loader = eval_loader(ds, batch, norm);
    nb_tensor *all = loader ? nb_zeros(NB_F32, NB_SHAPE(count, 10)) : NULL;
    nb_tensor *pred = all ? nb_zeros(NB_I64, NB_SHAPE(count)) : NULL;
    nb_status st = pred ? NB_OK : nb_last_status();
    nb_module_eval(model);
    nb_no_grad_begin();
    for (int64_t start = 0; st == NB_OK;) {
        nb_scope *s = nb_scope_begin();
        nb_tensor *x, *y;
        int64_t b = nb_loader_next(loader, &x, &y);
        if (b <= 0) {
            if (b < 0) st = (nb_status)b;
            nb_scope_end(s);
            break;
        }
        nb_tensor *out = forward_chunked(model, x);
        nb_tensor *idx = NULL;
        nb_tensor *mx = out ? nb_max_dim(out, 1, false, &idx) : NULL;
        if (!mx) st = nb_last_status();
        else {
            st = nb_tensor_copy_(nb_narrow(all, 0, start, b), out);
            if (st == NB_OK) st = nb_tensor_copy_(nb_narrow(pred, 0, start, b), idx);
        }
        nb_tensor_release(idx);
        nb_scope_end(s);
        start += b;
    }
    nb_no_grad_end();
    nb_module_train(model, true);
    if (st == NB_OK) {
        nb_named_tensor e[2] = {{"logits", all}, {"predictions", pred}};
        st = nb_hdf5_save(path, e, 2);
    }
    nb_tensor_release(all);
    nb_tensor_release(pred);
    nb_loader_free(loader);
    return st;
}

/* Keep only the first n examples of a data set (no copy: a narrowed view). */
static nb_status limit(nb_dataset **ds, int64_t n) {
    if (n <= 0 || n >= nb_dataset_len(*ds)) return NB_OK;
    nb_dataset *first = nb_dataset_narrow(*ds, 0, n);
    if (!first) return nb_last_status();
    nb_dataset_free(*ds);
    *ds = first;
    return NB_OK;
}

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

/* Everything main allocates, freed by trainer_free on every exit. */
typedef struct trainer {
    nb_dataset *train, *test;
    nb_module *model;
    nb_optimizer *opt;
    nb_lr_scheduler *sched;
    nb_loader *loader;
} trainer;

static void trainer_free(trainer *t) {
    nb_loader_free(t->loader);
    nb_lr_scheduler_free(t->sched);
    nb_optimizer_free(t->opt);
    nb_module_free(t->model);
    nb_dataset_free(t->train);
    nb_dataset_free(t->test);
    nb_memory_trim();
}

/* "mnist_train: <what><the library's message>", and exit status 1. */
static int fail(const char *what) {
    fprintf(stderr, "mnist_train: %s%s\n", what, nb_last_error()[0] ? nb_last_error() : "unknown error");
    return 1;
}

/* fail() with a flag and its file in front: "--save out.h5: ...". */
static int fail_file(const char *flag, const char *path) {
    char what[1100];
    snprintf(what, sizeof what, "%s %s: ", flag, path);
    return fail(what);
}

/* The training loss of one epoch as the mean of each of `points` equal
 * slices of its batches (summed over ranks at the end of the epoch). */
typedef struct loss_slices {
    double sum[CHECKPOINT_CURVE_POINTS], images[CHECKPOINT_CURVE_POINTS];
} loss_slices;

/* metrics.csv and the plot; false (and a message) if either cannot be written. */
static bool write_reports(const options *o, const train_state *ts, const char *title) {
    bool ok = true;
    if (!write_metrics_csv(o->metrics, ts->metrics, ts->nmetrics)) {
        fprintf(stderr, "mnist_train: --metrics %s: cannot write: %s\n", o->metrics, strerror(errno));
        ok = false;
    }
    if (!write_svg_plot(o->plot, ts->metrics, ts->nmetrics, &ts->curve[0][0], CHECKPOINT_CURVE_POINTS,
                        ts->curve_points, title)) {
        fprintf(stderr, "mnist_train: --plot %s: cannot write: %s\n", o->plot, strerror(errno));
        ok = false;
    }
    return ok;
}

/* One epoch of training; its mean loss, seconds and loss slices. */
static int train_epoch(trainer *t, const options *o, train_state *ts, int epoch, bool logits, bool resnet,
                       double *mean_loss, double *secs) {
    progress pr;
    progress_start(&pr, epoch, o->epochs, nb_loader_num_batches(t->loader));
    if (nb_loader_set_epoch(t->loader, epoch - 1) != NB_OK) return fail(""); /* epochs count from 0 there */
    loss_slices sl = {{0}, {0}};
    const int64_t steps = nb_loader_num_batches(t->loader), points = ts->curve_points;
    double loss_sum = 0;
    int64_t seen = 0, k = 0;
    for (;;) {
        nb_scope *s = nb_scope_begin(); /* frees the batch and the step's graph at the end */
        nb_tensor *x, *y;
        int64_t b = nb_loader_next(t->loader, &x, &y);
        if (b <= 0) {
            nb_scope_end(s);
            if (b < 0) return fail(pr.tty ? "\n" : "");
            break;
        }
        /* The epoch's short last batch needs tensors of other sizes
         * than the pool holds for full ones: give those back first. */
        if (b < o->batch_size) nb_memory_trim();
        nb_tensor *out = nb_module_forward(t->model, x);
        nb_tensor *loss = model_loss(out, y, NB_REDUCTION_MEAN, logits);
        double lv = 0;
        nb_optimizer_zero_grad(t->opt);
        if (!loss || nb_backward(loss) != NB_OK || mnist_dist_sync_grads() != NB_OK ||
            nb_optimizer_step(t->opt) != NB_OK || (resnet && nb_lr_scheduler_step(t->sched) != NB_OK) ||
            nb_tensor_item(loss, &lv) != NB_OK) {
            nb_scope_end(s);
            return fail(pr.tty ? "\n" : "");
        }
        nb_scope_end(s);
        const int64_t slice = k < steps ? k * points / steps : points - 1;
        sl.sum[slice] += lv * (double)b;
        sl.images[slice] += (double)b;
        loss_sum += lv * (double)b;
        seen += b;
        progress_update(&pr, ++k, seen, loss_sum / (double)seen);
    }
    double sums[2] = {loss_sum, (double)seen}; /* over all ranks */
    if (mnist_dist_sum_f64(sums, 2) != NB_OK || mnist_dist_sum_f64(sl.sum, points) != NB_OK ||
        mnist_dist_sum_f64(sl.images, points) != NB_OK)
        return fail("");
    *mean_loss = sums[0] / sums[1];
    for (int64_t j = 0; j < points; j++)
        ts->curve[epoch - 1][j] = sl.images[j] > 0 ? sl.sum[j] / sl.images[j] : NAN;
    progress_finish(&pr, *mean_loss);
    *secs = now_seconds() - pr.start;
    return 0;
}

static int run(trainer *t, const options *o) {
    /* The images stay bytes in memory; each batch is converted and normalised as it is made. */
    t->train = nb_mnist_dataset(o->data, true);
    t->test = t->train ? nb_mnist_dataset(o->data, false) : NULL;
    if (!t->test) {
        fprintf(stderr, "mnist_train: --data %s: %s\n", o->data, nb_last_error());
        fprintf(stderr, "Get the data with:  scripts/fetch_mnist.sh%s\n"
                        "or point --data at a folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte,\n"
                        "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (raw or .gz) downloaded by hand.\n",
                o->fashion ? " --fashion" : "");
        return 1;
    }
    if (limit(&t->train, o->limit_train) != NB_OK || limit(&t->test, o->limit_test) != NB_OK) return fail("");
    double mean = o->fashion ? FASHION_MEAN : MNIST_MEAN, std = o->fashion ? FASHION_STD : MNIST_STD;
    nb_transform norm = nb_normalize(1, &mean, &std);
    const char *dataset = o->fashion ? "Fashion-MNIST" : "MNIST";
    char title[128];
    snprintf(title, sizeof title, "nabla: %s on %s", o->model, dataset);

    nb_rng init_rng, dropout_rng;
    nb_rng_seed(&init_rng, o->seed);
    nb_rng_seed(&dropout_rng, o->seed ^ 0x5eed0001ULL);
    const bool resnet = !strcmp(o->model, "resnet"), logits = mnist_model_outputs_logits(o->model);
    /* resnet's schedule is stepped every batch over the loader's batches per
     * epoch: len(DistributedSampler) = ceil(N / world) samples per rank, in
     * batches of batch_size (checked against the loader below). */
    const int64_t world = mnist_dist_world(), per_rank = (nb_dataset_len(t->train) + world - 1) / world;
    const int64_t steps_per_epoch = (per_rank + o->batch_size - 1) / o->batch_size;
    t->model = mnist_model_new(o->model, o->width, &init_rng, &dropout_rng);
    mnist_optim_options oo = {.name = o->optimizer, .lr = o->lr, .momentum = o->momentum, .weight_decay = o->weight_decay};
    t->opt = t->model ? mnist_optimizer_new(t->model, &oo) : NULL;
    t->sched = !t->opt ? NULL
               : resnet ? mnist_warmup_cosine(t->opt, steps_per_epoch, o->epochs)
                        : nb_step_lr(t->opt, 1, o->gamma);
    if (!t->sched) return fail("");
    static train_state ts; /* large (metrics and loss history): not on the stack */
    ts = (train_state){.model = t->model, .opt = t->opt, .sched = t->sched, .nrngs = 2,
                       .rngs = {&init_rng, &dropout_rng}, .rng_names = {"init", "dropout"},
                       .shuffle_seed = o->seed ^ 0x5eed0002ULL,
                       .curve_points = (int)(steps_per_epoch < CHECKPOINT_CURVE_POINTS ? steps_per_epoch
                                                                                        : CHECKPOINT_CURVE_POINTS),
                       .config = {.model = name_index(mnist_model_names, o->model), .width = resnet ? o->width : 0,
                                  .batch_size = o->batch_size, .optimizer = name_index(mnist_optimizer_names, o->optimizer),
                                  .train_images = nb_dataset_len(t->train), .fashion = o->fashion}};
    memcpy(&ts.config.seed, &o->seed, sizeof ts.config.seed);
    if (o->load) {
        nb_load_report rep;
        if (nb_module_load_hdf5(t->model, o->load, true, &rep) != NB_OK) {
            nb_load_report_free(&rep);
            return fail_file("--load", o->load);
        }
        printf("loaded weights from %s%s%s\n", o->load, rep.notes[0] ? " (" : "", rep.notes[0] ? rep.notes : "");
        if (rep.notes[0]) printf(")\n");
        nb_load_report_free(&rep);
    }
    if (o->resume) {
        if (checkpoint_load(o->resume, &ts, o->epochs) != NB_OK) return fail("--resume: ");
        printf("resumed from %s after epoch %lld\n", o->resume, (long long)ts.epoch);
    }
    /* Epoch e's order is a function of (seed, e), like DistributedSampler's;
     * under mpirun each rank takes its shard of it. */
    nb_loader_options lo = nb_loader_defaults();
    lo.batch_size = o->batch_size;
    lo.shuffle = true;
    lo.seed = ts.shuffle_seed;
    lo.rank = mnist_dist_rank();
    lo.world_size = mnist_dist_world();
    lo.prefetch = !o->no_prefetch;
    /* resnet's augmentation, as the twin's: RandomCrop(28, padding=2) with
     * zero fill, RandomHorizontalFlip(0.5), then Normalize. */
    int64_t shape[NB_MAX_DIMS] = {0};
    nb_dataset_sample_shape(t->train, shape); /* (1, H, W) */
    nb_transform train_tf[3] = {nb_random_crop(shape[1], shape[2], 2), nb_random_horizontal_flip(0.5), norm};
    lo.transforms = resnet ? train_tf : &norm;
    lo.num_transforms = resnet ? 3 : 1;
    t->loader = nb_loader_new(t->train, &lo);
    if (!t->loader || mnist_dist_prepare(t->model, o->batch_size, nb_loader_num_samples(t->loader)) != NB_OK)
        return fail("");
    if (nb_loader_num_batches(t->loader) != steps_per_epoch) {
        fprintf(stderr, "mnist_train: the schedule counts %lld batches per epoch, the loader %lld\n",
                (long long)steps_per_epoch, (long long)nb_loader_num_batches(t->loader));
        return 1;
    }
    const bool finished = !o->eval_only && ts.epoch >= o->epochs;
    if (finished) {
        const epoch_metrics *last = &ts.metrics[ts.nmetrics - 1];
        printf("%s: all %d epochs are done already (test accuracy %.2f%% after epoch %d): nothing to train\n",
               o->resume, o->epochs, last->test_accuracy, last->epoch);
    } else {
        printf("nabla: %s (%lld parameters) on %s, %lld training / %lld test images\n", o->model,
               (long long)nb_module_num_parameter_elements(t->model), dataset, (long long)nb_dataset_len(t->train),
               (long long)nb_dataset_len(t->test));
        printf("  data: %s\n", o->data);
        char wd[64] = "";
        if (o->weight_decay > 0) snprintf(wd, sizeof wd, ", weight decay %g on weights", o->weight_decay);
        printf("  %s lr %g%s%s\n", o->optimizer, resnet ? o->lr : nb_optimizer_get_lr(t->opt), wd, /* resnet's: the peak */
               resnet ? "; warm-up then cosine per batch" : "");
        printf("  batch %lld%s, seed %llu, %d threads\n", (long long)o->batch_size, resnet ? ", random crop + flip" : "",
               (unsigned long long)o->seed, nb_get_num_threads());
    }

    int64_t confusion[10][10] = {{0}};
    double test_loss = 0, test_acc = 0;
    if (o->eval_only) {
        if (evaluate(t->model, logits, t->test, o->test_batch_size, &norm, &test_loss, &test_acc, confusion) != NB_OK)
            return fail("");
        print_confusion(stdout, (const int64_t(*)[10])confusion);
        printf("test loss %.4f, accuracy %.2f%%\n", test_loss, test_acc);
        printf("final test accuracy: %.2f%%\n", test_acc);
    }
    double train_seconds = 0;
    int trained_epochs = 0;
    bool reports_written = false;
    for (int epoch = (int)ts.epoch + 1; !o->eval_only && epoch <= o->epochs; epoch++) {
        double mean_loss = 0, secs = 0;
        int rc = train_epoch(t, o, &ts, epoch, logits, resnet, &mean_loss, &secs);
        if (rc) return rc;
        if (!resnet && nb_lr_scheduler_step(t->sched) != NB_OK) return fail("");
        memset(confusion, 0, sizeof confusion);
        /* Training and evaluation use tensors of other sizes: give the pool's
         * cached blocks back between them, so peak memory is the larger of
         * the two, not their sum. */
        nb_memory_trim();
        if (evaluate(t->model, logits, t->test, o->test_batch_size, &norm, &test_loss, &test_acc, confusion) != NB_OK)
            return fail("");
        nb_memory_trim();
        printf("epoch %d/%d  test loss %.4f  test accuracy %.2f%%\n", epoch, o->epochs, test_loss, test_acc);
        train_seconds += secs;
        trained_epochs++;
        ts.epoch = epoch;
        ts.metrics[ts.nmetrics++] = (epoch_metrics){epoch, mean_loss, test_loss, test_acc, secs};
        if (!mnist_dist_is_main()) continue; /* rank 0 writes the files */
        reports_written = write_reports(o, &ts, title);
        if (o->checkpoint && checkpoint_save(o->checkpoint, &ts) != NB_OK) return fail_file("--checkpoint", o->checkpoint);
    }
    if (trained_epochs) {
        print_confusion(stdout, (const int64_t(*)[10])confusion);
        char per[24];
        format_duration(per, sizeof per, train_seconds / trained_epochs);
        printf("training time per epoch: %s (%d threads)\n", per, nb_get_num_threads());
        printf("final test accuracy: %.2f%%\n", test_acc);
        if (reports_written) printf("metrics: %s, plot: %s\n", o->metrics, o->plot);
    }
    if (o->dump_logits && mnist_dist_is_main()) {
        if (dump_logits(t->model, t->test, o->test_batch_size, &norm, o->dump_logits) != NB_OK)
            return fail_file("--dump-logits", o->dump_logits);
        printf("test-set logits written to %s\n", o->dump_logits);
    }
    if (o->save && mnist_dist_is_main()) {
        if (nb_module_save_hdf5(t->model, o->save) != NB_OK) return fail_file("--save", o->save);
        printf("saved weights to %s\n", o->save);
    }
    printf("peak resident memory: %.0f MiB\n", peak_rss_mib());
    return 0;
}

int main(int argc, char **argv) {
    if (mnist_dist_setup(&argc, &argv) != 0) return 1; /* MPI when run under mpirun */
    options o;
    int rc = parse_args(argc, argv, &o);
    if (rc) {
        mnist_dist_finish();
        return rc < 0 ? 0 : rc; /* -1: --help */
    }
    if (o.threads) nb_set_num_threads(o.threads);
    trainer t = {0};
    rc = run(&t, &o);
    trainer_free(&t);
    /* A failed rank of several exits without finalizing: mpirun then ends
     * the others, which a finalize could leave waiting in a collective. */
    if (rc == 0 || mnist_dist_world() == 1) mnist_dist_finish();
    return rc;
}
