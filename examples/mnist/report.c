/* report.c: progress display, metrics.csv, the SVG plot and the confusion matrix. */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int terminal_columns(void) {
    const int fds[2] = {STDOUT_FILENO, STDERR_FILENO};
    for (int i = 0; i < 2; i++) {
        struct winsize ws;
        if (isatty(fds[i]) && ioctl(fds[i], TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    }
    const char *env = getenv("COLUMNS");
    char *end;
    long c = env ? strtol(env, &end, 10) : 0;
    return env && *env && !*end && c > 0 && c < 10000 ? (int)c : 80;
}

void format_duration(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    if (s < 60) snprintf(buf, n, "%.1f s", s);
    else if (s < 3600) snprintf(buf, n, "%d:%02d", (int)s / 60, (int)s % 60);
    else snprintf(buf, n, "%d:%02d:%02d", (int)(s / 3600), (int)s / 60 % 60, (int)s % 60);
}

void progress_start(progress *p, int epoch, int epochs, int64_t total_batches) {
    *p = (progress){.tty = isatty(STDOUT_FILENO), .columns = terminal_columns(), .epoch = epoch, .epochs = epochs,
                    .total = total_batches, .start = now_seconds(), .last_decile = 0};
}

#define MAX_BAR 30
#define MIN_BAR 8

/* The progress line for these numbers in at most columns - 1 characters
 * (the last column is left free so that no terminal wraps the line). */
static void progress_line(char *buf, size_t n, int columns, const progress *p, double loss, double rate, double eta) {
    char count[48], lossf[32], ratef[32], etaf[40], t[24];
    char total[24];
    const int digits = snprintf(total, sizeof total, "%lld", (long long)p->total); /* a steady width, a steady bar */
    snprintf(count, sizeof count, "%*lld/%s", digits, (long long)p->done, total);
    snprintf(lossf, sizeof lossf, "loss %.4f", loss);
    snprintf(ratef, sizeof ratef, "%.0f img/s", rate);
    format_duration(t, sizeof t, eta);
    snprintf(etaf, sizeof etaf, "ETA %s", t);
    /* The fields each candidate keeps, most to least. */
    const char *const sets[4][4] = {{count, lossf, ratef, etaf}, {count, lossf, etaf}, {count, lossf}, {count}};
    const int room = columns - 1;
    char rest[160], head[32];
    snprintf(head, sizeof head, "epoch %d/%d", p->epoch, p->epochs);
    for (int pass = 0; pass < 2; pass++) /* first with a bar, then without */
        for (int c = 0; c < 4; c++) {
            size_t len = 0;
            rest[0] = '\0';
            for (int f = 0; f < 4 && sets[c][f]; f++)
                len += (size_t)snprintf(rest + len, sizeof rest - len, "%s%s", f ? "  " : "", sets[c][f]);
            const int used = (int)(strlen(head) + 1 + len);
            if (pass == 0) {
                int bar = room - used - 3; /* "[" bar "] " */
                if (bar < MIN_BAR) continue;
                if (bar > MAX_BAR) bar = MAX_BAR;
                const int fill = p->total ? (int)(bar * p->done / p->total) : bar;
                char b[MAX_BAR + 1];
                for (int i = 0; i < bar; i++) b[i] = i < fill ? '#' : '.';
                b[bar] = '\0';
                snprintf(buf, n, "%s [%s] %s", head, b, rest);
                return;
            }
            if (used <= room || c == 3) {
                snprintf(buf, n, "%s %s", head, rest);
                if (room >= 0 && strlen(buf) > (size_t)room) buf[room] = '\0'; /* a tiny terminal: cut */
                return;
            }
        }
}

void progress_update(progress *p, int64_t done, int64_t images, double loss) {
    p->done = done;
    p->images = images;
    double t = now_seconds(), el = t - p->start;
    double rate = el > 0 ? images / el : 0;
    double eta = done > 0 ? el / done * (p->total - done) : 0;
    if (p->tty) {
        if (t - p->last_print < 0.1 && done < p->total) return;
        p->last_print = t;
        char line[512];
        progress_line(line, sizeof line, p->columns, p, loss, rate, eta);
        printf("\r%s\033[K", line);
        fflush(stdout);
    } else {
        int decile = p->total ? (int)(10 * done / p->total) : 10;
        if (decile <= p->last_decile || decile >= 10) return;
        p->last_decile = decile;
        char eta_s[24];
        format_duration(eta_s, sizeof eta_s, eta);
        printf("epoch %d/%d  %3d%%  batch %lld/%lld  loss %.4f  %.0f img/s  ETA %s\n", p->epoch, p->epochs,
               decile * 10, (long long)done, (long long)p->total, loss, rate, eta_s);
        fflush(stdout);
    }
}

void progress_finish(progress *p, double mean_loss) {
    double el = now_seconds() - p->start;
    char t[24];
    format_duration(t, sizeof t, el);
    printf("%sepoch %d/%d  train loss %.4f  %.0f img/s  %s\n", p->tty ? "\r\033[K" : "", p->epoch, p->epochs,
           mean_loss, el > 0 ? p->images / el : 0, t);
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

/* ---- the plot ---- */
/* An axis from lo to hi on ticks k * step, step 1, 2 or 5 times a power of 10. */
typedef struct axis {
    double lo, hi, step;
    int decimals; /* enough to tell the ticks apart */
} axis;

static axis nice_axis(double lo, double hi, int target, double min_step) {
    if (!isfinite(lo) || !isfinite(hi)) lo = 0, hi = 1;
    if (hi - lo < 1e-12) {
        const double d = fabs(lo) > 1e-12 ? fabs(lo) * 0.1 : 0.5;
        lo -= d, hi += d;
    }
    const double raw = (hi - lo) / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
    double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
    if (step < min_step) step = min_step;
    axis a = {floor(lo / step + 1e-9) * step, ceil(hi / step - 1e-9) * step, step, 0};
    const double digits = -log10(step);
    a.decimals = digits > 0 ? (int)ceil(digits - 1e-9) : 0;
    return a;
}

typedef struct box {
    double x0, y0, w, h;
    axis x, y;
} box;

static double px(const box *b, double x) { return b->x0 + b->w * (x - b->x.lo) / (b->x.hi - b->x.lo); }
static double py(const box *b, double y) { return b->y0 + b->h - b->h * (y - b->y.lo) / (b->y.hi - b->y.lo); }

static void draw_axes(FILE *f, const box *b, const char *ylabel) {
    fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='white' stroke='#888'/>\n", b->x0, b->y0, b->w,
            b->h);
    const long y0 = lround(b->y.lo / b->y.step), y1 = lround(b->y.hi / b->y.step);
    for (long k = y0; k <= y1; k++) {
        const double v = (double)k * b->y.step, y = py(b, v);
        fprintf(f, "<line x1='%.1f' y1='%.1f' x2='%.1f' y2='%.1f' stroke='#eee'/>", b->x0, y, b->x0 + b->w, y);
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' text-anchor='end'>%.*f</text>\n", b->x0 - 4, y + 4,
                b->y.decimals, v == 0 ? 0.0 : v);
    }
    const long x0 = lround(b->x.lo / b->x.step), x1 = lround(b->x.hi / b->x.step);
    for (long k = x0; k <= x1; k++) {
        const double v = (double)k * b->x.step, x = px(b, v);
        fprintf(f, "<text x='%.1f' y='%.1f' font-size='11' text-anchor='middle'>%.*f</text>", x, b->y0 + b->h + 14,
                b->x.decimals, v);
    }
    fprintf(f, "<text x='%.1f' y='%.1f' font-size='12' text-anchor='middle'>epoch</text>\n", b->x0 + b->w / 2,
            b->y0 + b->h + 30);
    fprintf(f, "<text x='%.1f' y='%.1f' font-size='13' font-weight='bold'>%s</text>\n", b->x0, b->y0 - 8, ylabel);
}

/* A series: n points (x[i], y[i]), as a line and/or dots. */
static void draw_series(FILE *f, const box *b, const double *x, const double *y, int n, const char *color,
                        double width, bool dots) {
    fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='%.1f' points='", color, width);
    for (int i = 0; i < n; i++)
        if (isfinite(y[i])) fprintf(f, "%.1f,%.1f ", px(b, x[i]), py(b, y[i]));
    fprintf(f, "'/>\n");
    for (int i = 0; dots && i < n; i++)
        if (isfinite(y[i])) fprintf(f, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>", px(b, x[i]), py(b, y[i]), color);
    if (dots) fprintf(f, "\n");
}

static void legend(FILE *f, const box *b, int row, const char *color, const char *label) {
    fprintf(f, "<text x='%.1f' y='%.1f' font-size='12' fill='%s' text-anchor='end'>%s</text>\n", b->x0 + b->w - 8,
            b->y0 + 18 + 16 * row, color, label);
}

static void range_of(const double *v, int n, double *lo, double *hi) {
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) *lo = fmin(*lo, v[i]), *hi = fmax(*hi, v[i]);
}

bool write_svg_plot(const char *path, const epoch_metrics *m, int n, const double *curve, int stride, int points,
                    const char *title) {
    const int ncurve = curve && points > 0 ? n * points : 0;
    double *buf = malloc(sizeof(double) * (size_t)(5 * n + 2 * ncurve + 1));
    FILE *f = buf ? fopen(path, "w") : NULL;
    if (!f) {
        free(buf);
        return false;
    }
    double *ep = buf, *train = ep + n, *test = train + n, *acc = test + n, *cx = acc + n, *cy = cx + ncurve;
    for (int i = 0; i < n; i++)
        ep[i] = m[i].epoch, train[i] = m[i].train_loss, test[i] = m[i].test_loss, acc[i] = m[i].test_accuracy;
    /* Curve point j of epoch e sits in the middle of its slice of the epoch. */
    for (int e = 0; e < n; e++)
        for (int j = 0; j < points && ncurve; j++) {
            cx[e * points + j] = m[e].epoch - 1 + (j + 0.5) / points;
            cy[e * points + j] = curve[(size_t)e * (size_t)stride + (size_t)j];
        }
    const double last = n ? m[n - 1].epoch : 1, first = n && !ncurve ? m[0].epoch : 0;
    const axis xa = nice_axis(first, last, 6, 1);
    double lo = INFINITY, hi = -INFINITY;
    range_of(train, n, &lo, &hi);
    range_of(test, n, &lo, &hi);
    range_of(cy, ncurve, &lo, &hi);
    box loss = {70, 60, 340, 260, xa, nice_axis(lo, hi, 5, 0)};
    lo = INFINITY, hi = -INFINITY;
    range_of(acc, n, &lo, &hi);
    box accb = {530, 60, 340, 260, xa, nice_axis(lo, hi, 5, 0)};

    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='900' height='380' font-family='sans-serif'>\n");
    fprintf(f, "<rect width='900' height='380' fill='#fafafa'/>\n");
    fprintf(f, "<text x='450' y='22' font-size='15' text-anchor='middle'>%s</text>\n", title);
    draw_axes(f, &loss, "loss");
    if (ncurve) {
        draw_series(f, &loss, cx, cy, ncurve, "#9ecae1", 1.2, false);
        char label[96];
        snprintf(label, sizeof label, "train loss, mean of each 1/%d of an epoch", points);
        legend(f, &loss, 0, "#6baed6", label);
    }
    draw_series(f, &loss, ep, train, n, "#1f77b4", 2, true);
    draw_series(f, &loss, ep, test, n, "#d62728", 2, true);
    legend(f, &loss, 1, "#1f77b4", "train loss per epoch");
    legend(f, &loss, 2, "#d62728", "test loss");
    draw_axes(f, &accb, "test accuracy (%)");
    draw_series(f, &accb, ep, acc, n, "#2ca02c", 2, true);
    fprintf(f, "</svg>\n");
    free(buf);
    return fclose(f) == 0;
}

void print_confusion(FILE *f, const int64_t c[10][10]) {
    fprintf(f, "confusion matrix (rows: true class, columns: predicted)\n      ");
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
