/* report.c: progress display, metrics.csv, the SVG plot and the confusion matrix. */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void progress_start(progress *p, int epoch, int epochs, int64_t total_batches) {
    *p = (progress){.tty = isatty(STDOUT_FILENO), .epoch = epoch, .epochs = epochs, .total = total_batches,
                    .start = now_seconds(), .last_decile = 0};
}

static void fmt_time(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    snprintf(buf, n, "%d:%02d", (int)s / 60, (int)s % 60);
}

void progress_update(progress *p, int64_t done, int64_t images, double loss) {
    p->done = done;
    p->images = images;
    double t = now_seconds(), el = t - p->start;
    double rate = el > 0 ? images / el : 0;
    double eta = done > 0 ? el / done * (p->total - done) : 0;
    char eta_s[16];
    fmt_time(eta_s, sizeof eta_s, eta);
    if (p->tty) {
        if (t - p->last_print < 0.1 && done < p->total) return;
        p->last_print = t;
        int width = 30, fill = p->total ? (int)(width * done / p->total) : width;
        char bar[64];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        printf("\repoch %d/%d [%s] %lld/%lld  loss %.4f  %.0f img/s  ETA %s ", p->epoch, p->epochs, bar,
               (long long)done, (long long)p->total, loss, rate, eta_s);
        fflush(stdout);
    } else {
        int decile = p->total ? (int)(10 * done / p->total) : 10;
        if (decile <= p->last_decile || decile >= 10) return;
        p->last_decile = decile;
        printf("epoch %d/%d  %3d%%  batch %lld/%lld  loss %.4f  %.0f img/s  ETA %s\n", p->epoch, p->epochs,
               decile * 10, (long long)done, (long long)p->total, loss, rate, eta_s);
        fflush(stdout);
    }
}

void progress_finish(progress *p, double mean_loss) {
    double el = now_seconds() - p->start;
    char t[16];
    fmt_time(t, sizeof t, el);
    printf("%sepoch %d/%d  train loss %.4f  %.0f img/s  %s (%.1f s)\n", p->tty ? "\r\033[K" : "", p->epoch,
           p->epochs, mean_loss, el > 0 ? p->images / el : 0, t, el);
    fflush(stdout);
}

bool write_metrics_csv(const char *path, const epoch_metrics *m, int n) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    fprintf(f, "epoch,train_loss,test_loss,test_accuracy,seconds\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "%d,%.6f,%.6f,%.4f,%.3f\n", m[i].epoch, m[i].train_loss, m[i].test_loss, m[i].test_accuracy,
                m[i].seconds);
    return fclose(f) == 0;
}

/* One panel: series plotted against epoch inside the box (x0, y0, w, h). */
static void panel(FILE *f, double x0, double y0, double w, double h, const epoch_metrics *m, int n, int nseries,
                  const double *vals, const char *const *labels, const char *const *colors, const char *ylabel) {
    double lo = INFINITY, hi = -INFINITY;
    for (int s = 0; s < nseries; s++)
        for (int i = 0; i < n; i++) {
            double v = vals[s * n + i];
            if (isfinite(v)) lo = fmin(lo, v), hi = fmax(hi, v);
        }
    if (!isfinite(lo)) lo = 0, hi = 1;
    if (hi - lo < 1e-9) lo -= 0.5, hi += 0.5;
    double pad = (hi - lo) * 0.08;
    lo -= pad, hi += pad;
    fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='white' stroke='#888'/>\n", x0, y0, w, h);
    for (int k = 0; k <= 4; k++) {
        double v = lo + (hi - lo) * k / 4, y = y0 + h - h * k / 4;
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#eee'/>", x0, y, x0 + w, y);
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' text-anchor='end'>%.4g</text>\n", x0 - 4, y + 4, v);
    }
    int first = n ? m[0].epoch : 1, last = n ? m[n - 1].epoch : 1;
    double span = last > first ? last - first : 1;
    for (int i = 0; i < n; i++) {
        double x = x0 + (n > 1 ? w * (m[i].epoch - first) / span : w / 2);
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' text-anchor='middle'>%d</text>", x, y0 + h + 14, m[i].epoch);
    }
    fprintf(f, "<text x='%.1f' y='%.1f' font-size='12' text-anchor='middle'>epoch</text>\n", x0 + w / 2, y0 + h + 30);
    fprintf(f, "<text x='%.1f' y='%.1f' font-size='13' font-weight='bold'>%s</text>\n", x0, y0 - 8, ylabel);
    for (int s = 0; s < nseries; s++) {
        fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", colors[s]);
        for (int i = 0; i < n; i++) {
            double x = x0 + (n > 1 ? w * (m[i].epoch - first) / span : w / 2);
            double y = y0 + h - h * (vals[s * n + i] - lo) / (hi - lo);
            fprintf(f, "%.1f,%.1f ", x, y);
        }
        fprintf(f, "'/>\n");
        for (int i = 0; i < n; i++) {
            double x = x0 + (n > 1 ? w * (m[i].epoch - first) / span : w / 2);
            double y = y0 + h - h * (vals[s * n + i] - lo) / (hi - lo);
            fprintf(f, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>", x, y, colors[s]);
        }
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='12' fill='%s'>%s</text>\n", x0 + w - 120, y0 + 18 + 16 * s,
                colors[s], labels[s]);
    }
}

bool write_svg_plot(const char *path, const epoch_metrics *m, int n, const char *title) {
    FILE *f = fopen(path, "w");
    if (!f) return false;
    double *loss = malloc(sizeof(double) * 2 * (size_t)(n ? n : 1)), *acc = malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (!loss || !acc) {
        free(loss);
        free(acc);
        fclose(f);
        return false;
    }
    for (int i = 0; i < n; i++) {
        loss[i] = m[i].train_loss;
        loss[n + i] = m[i].test_loss;
        acc[i] = m[i].test_accuracy;
    }
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='900' height='380' font-family='sans-serif'>\n");
    fprintf(f, "<rect width='900' height='380' fill='#fafafa'/>\n");
    fprintf(f, "<text x='450' y='22' font-size='15' text-anchor='middle'>%s</text>\n", title);
    panel(f, 70, 60, 340, 260, m, n, 2, loss, (const char *const[]){"train loss", "test loss"},
          (const char *const[]){"#1f77b4", "#d62728"}, "loss");
    panel(f, 530, 60, 340, 260, m, n, 1, acc, (const char *const[]){"test accuracy %"}, (const char *const[]){"#2ca02c"},
          "test accuracy (%)");
    fprintf(f, "</svg>\n");
    free(loss);
    free(acc);
    return fclose(f) == 0;
}

void print_confusion(FILE *f, const int64_t c[10][10]) {
    fprintf(f, "confusion matrix (rows: true digit, columns: predicted)\n      ");
    for (int j = 0; j < 10; j++) fprintf(f, "%6d", j);
    fprintf(f, "   acc%%\n");
    for (int i = 0; i < 10; i++) {
        int64_t row = 0;
        fprintf(f, "%6d", i);
        for (int j = 0; j < 10; j++) {
            fprintf(f, "%6lld", (long long)c[i][j]);
            row += c[i][j];
        }
        fprintf(f, "  %6.2f\n", row ? 100.0 * c[i][i] / row : 0.0);
    }
}
