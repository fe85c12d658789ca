/* report.h: what the MNIST trainer shows a person: a progress line per
 * epoch, metrics.csv, an SVG plot of loss and accuracy, a confusion matrix. */
#ifndef MNIST_REPORT_H
#define MNIST_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct epoch_metrics {
    int epoch;
    double train_loss, test_loss, test_accuracy, seconds;
} epoch_metrics;

/* Progress within one epoch. On a terminal: one line redrawn in place (bar,
 * batches done, loss, images/s, ETA); otherwise a plain line about every 10%. */
typedef struct progress {
    bool tty;
    int epoch, epochs;
    int64_t total, done, images;
    double start, last_print;
    int last_decile;
} progress;

double now_seconds(void);
void progress_start(progress *p, int epoch, int epochs, int64_t total_batches);
void progress_update(progress *p, int64_t batches_done, int64_t images_done, double loss);
void progress_finish(progress *p, double mean_loss);

/* Write all epochs so far to a CSV file (epoch,train_loss,test_loss,test_accuracy,seconds). */
bool write_metrics_csv(const char *path, const epoch_metrics *m, int n);
/* An SVG with two panels: train and test loss per epoch, test accuracy per epoch. */
bool write_svg_plot(const char *path, const epoch_metrics *m, int n, const char *title);
/* confusion[true][predicted] as a table with per-class accuracy. */
void print_confusion(FILE *f, const int64_t confusion[10][10]);

#endif
