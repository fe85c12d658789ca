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
 * batches done, loss, images/s, ETA), never wider than the terminal (the
 * bar shrinks, then the least useful fields go); otherwise a plain line
 * about every 10%. */
typedef struct progress {
    bool tty;
    int columns;
    int epoch, epochs;
    int64_t total, done, images;
    double start, last_print;
    int last_decile;
} progress;

double now_seconds(void);
/* The width of the terminal on stdout (or stderr), else $COLUMNS, else 80. */
int terminal_columns(void);
/* "31.6 s" under a minute, else "2:05" (or "1:02:05"). */
void format_duration(char *buf, size_t n, double seconds);
void progress_start(progress *p, int epoch, int epochs, int64_t total_batches);
void progress_update(progress *p, int64_t batches_done, int64_t images_done, double loss);
void progress_finish(progress *p, double mean_loss);

/* Write all epochs so far to a CSV file (epoch,train_loss,test_loss,test_accuracy,seconds). */
bool write_metrics_csv(const char *path, const epoch_metrics *m, int n);
/* An SVG with two panels: the loss (training loss along the epochs from
 * curve, points per epoch: curve[e * stride + j], j < points, the mean of
 * the j-th of `points` equal slices of epoch e's batches; train and test
 * loss per epoch as points) and the test accuracy per epoch. Axis ticks on
 * 1-2-5 steps. */
bool write_svg_plot(const char *path, const epoch_metrics *m, int n, const double *curve, int stride, int points,
                    const char *title);
/* confusion[true][predicted] as a table with per-class accuracy. */
void print_confusion(FILE *f, const int64_t confusion[10][10]);

#endif
