/*
 * svg.c - the chart of `fp4gemm bench --svg`: speedup over cublas_bf16 against M (log2
 * axis), one line per provider, one panel per (N, K), drawn as plain SVG by our own code.
 * Without a cublas_bf16 row to divide by, the panels show TFLOP/s instead.
 */
#include "bench_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    PANEL_W = 540,
    PANEL_H = 340,
    PLOT_LEFT = 64,   /* inside a panel */
    PLOT_RIGHT = 20,
    PLOT_TOP = 34,
    PLOT_BOTTOM = 54,
    MARGIN = 20,
    MAX_PANELS = 64,
    MAX_MS = 64
};

/* Tableau 10: distinct, and readable by most color-blind readers. */
static const char *const k_colors[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                       "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#555555"};
#define N_COLORS ((int)(sizeof k_colors / sizeof k_colors[0]))

/* The ideal memory-bound speedup of NVFP4 over BF16: 2 bytes / 0.5625 bytes per weight. */
#define IDEAL_SPEEDUP (2.0 / 0.5625)

typedef struct panel {
    int64_t n, k;
    int64_t ms[MAX_MS];
    int nm;
} panel;

static int cmp_i64(const void *x, const void *y) {
    const int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* The plotted value of a row: its speedup, or TFLOP/s when there is no baseline. */
static double value_of(const bench_result *r, int speedup) {
    if (r->status != BENCH_OK) return 0.0;
    return speedup ? r->speedup : r->tflops;
}

/* A round step that gives about 4-8 ticks up to ymax. */
static double nice_step(double ymax) {
    const double raw = ymax / 6.0;
    const double mag = pow(10.0, floor(log10(raw)));
    const double steps[] = {1, 2, 2.5, 5, 10};
    for (int i = 0; i < 5; i++)
        if (steps[i] * mag >= raw) return steps[i] * mag;
    return 10 * mag;
}

static void m_label(char *buf, size_t len, int64_t m) {
    if (m >= 1024 && m % 1024 == 0)
        snprintf(buf, len, "%lldk", (long long)(m / 1024));
    else
        snprintf(buf, len, "%lld", (long long)m);
}

static void draw_panel(const bench_run *run, const panel *pn, double x0, double y0, int speedup,
                       int baseline, bench_text *t) {
    const double pw = PANEL_W - PLOT_LEFT - PLOT_RIGHT, ph = PANEL_H - PLOT_TOP - PLOT_BOTTOM;
    const double left = x0 + PLOT_LEFT, top = y0 + PLOT_TOP, bottom = top + ph;

    /* y range: from 0 to a round value above the largest point (and above 1x) */
    double ymax = speedup ? 1.2 : 1.0;
    for (int i = 0; i < run->nresults; i++) {
        const bench_result *r = &run->results[i];
        if (r->shape.n != pn->n || r->shape.k != pn->k || r->provider == baseline) continue;
        const double v = value_of(r, speedup);
        if (v * 1.08 > ymax) ymax = v * 1.08;
    }
    const double step = nice_step(ymax);
    ymax = ceil(ymax / step) * step;
    const double lx_lo = log2((double)pn->ms[0]), lx_hi = log2((double)pn->ms[pn->nm - 1]);
#define X_OF(m) (lx_hi > lx_lo ? left + (log2((double)(m)) - lx_lo) / (lx_hi - lx_lo) * pw \
                               : left + pw / 2)
#define Y_OF(v) (bottom - (v) / ymax * ph)

    bench_text_printf(t, "<g>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                         "fill=\"#fbfbfb\" stroke=\"#cccccc\"/>\n",
                      left, top, pw, ph);
    bench_text_printf(t, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"15\" font-weight=\"bold\" "
                         "text-anchor=\"middle\">N = %lld, K = %lld</text>\n",
                      left + pw / 2, y0 + 22, (long long)pn->n, (long long)pn->k);

    /* y grid and labels */
    for (double v = 0.0; v <= ymax + step * 1e-6; v += step) {
        const double y = Y_OF(v);
        bench_text_printf(t, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                             "stroke=\"#e4e4e4\"/>\n",
                          left, y, left + pw, y);
        bench_text_printf(t, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\">"
                             "%g%s</text>\n",
                          left - 6, y + 4, v, speedup ? "x" : "");
    }
    /* x grid and labels: every M present, thinned when crowded */
    const int every = pn->nm > (int)(pw / 30) ? (pn->nm + (int)(pw / 30) - 1) / (int)(pw / 30) : 1;
    for (int i = 0; i < pn->nm; i++) {
        const double x = X_OF(pn->ms[i]);
        bench_text_printf(t, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                             "stroke=\"#eeeeee\"/>\n",
                          x, top, x, bottom);
        if (i % every != 0 && i != pn->nm - 1) continue;
        char label[32];
        m_label(label, sizeof label, pn->ms[i]);
        bench_text_printf(t, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" "
                             "text-anchor=\"middle\">%s</text>\n",
                          x, bottom + 16, label);
    }
    bench_text_printf(t, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\">"
                         "M (rows of A), log2 scale</text>\n",
                      left + pw / 2, bottom + 38);
    bench_text_printf(t, "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" font-size=\"13\" "
                         "text-anchor=\"middle\">%s</text>\n",
                      x0 + 16, top + ph / 2,
                      speedup ? (run->on_cpu ? "speedup over openblas_f32" : "speedup over cublas_bf16")
                              : "TFLOP/s");

    /* reference lines: 1x (cublas_bf16) and the ideal memory-bound speedup of NVFP4 */
    if (speedup) {
        bench_text_printf(t, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                             "stroke=\"#333333\" stroke-width=\"1.5\"/>\n",
                          left, Y_OF(1.0), left + pw, Y_OF(1.0));
        if (IDEAL_SPEEDUP <= ymax)
            bench_text_printf(t, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                                 "stroke=\"#999999\" stroke-dasharray=\"2,4\"/>\n",
                              left, Y_OF(IDEAL_SPEEDUP), left + pw, Y_OF(IDEAL_SPEEDUP));
    }

    /* one line per provider, broken where a point is missing; FAILED points as red crosses */
    for (int p = 0; p < run->nproviders; p++) {
        if (p == baseline) continue;
        const char *color = k_colors[p % N_COLORS];
        const char *style = run->providers[p].svg_style;
        int open = 0;
        for (int i = 0; i < pn->nm; i++) {
            const bench_result *r = NULL;
            for (int j = 0; j < run->nresults && !r; j++) {
                const bench_result *c = &run->results[j];
                if (c->provider == p && c->shape.n == pn->n && c->shape.k == pn->k &&
                    c->shape.m == pn->ms[i])
                    r = c;
            }
            const double v = r ? value_of(r, speedup) : 0.0;
            if (!(v > 0)) {
                if (open) bench_text_printf(t, "\"/>\n");
                open = 0;
                continue;
            }
            if (!open)
                bench_text_printf(t, "<polyline fill=\"none\" stroke=\"%s\"%s points=\"", color,
                                  style);
            bench_text_printf(t, "%.1f,%.1f ", X_OF(pn->ms[i]), Y_OF(v));
            open = 1;
        }
        if (open) bench_text_printf(t, "\"/>\n");
        for (int j = 0; j < run->nresults; j++) {
            const bench_result *r = &run->results[j];
            if (r->provider != p || r->shape.n != pn->n || r->shape.k != pn->k) continue;
            const double x = X_OF(r->shape.m);
            if (r->status == BENCH_FAILED) {
                bench_text_printf(t, "<path d=\"M%.1f %.1fl8 8m0 -8l-8 8\" stroke=\"#d62728\" "
                                     "stroke-width=\"2\"><title>",
                                  x - 4, bottom - 12);
                bench_text_printf(t, "%s M=%lld FAILED: ", run->providers[p].name,
                                  (long long)r->shape.m);
                bench_text_xml(t, r->note);
                bench_text_printf(t, "</title></path>\n");
                continue;
            }
            const double v = value_of(r, speedup);
            if (!(v > 0)) continue;
            bench_text_printf(t, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>"
                                 "%s M=%lld N=%lld K=%lld: %.2f%s, %.2f us, %.1f TFLOP/s, "
                                 "%.0f GB/s</title></circle>\n",
                              x, Y_OF(v), color, run->providers[p].name, (long long)r->shape.m,
                              (long long)r->shape.n, (long long)r->shape.k, v,
                              speedup ? "x" : " TFLOP/s", r->time_us, r->tflops, r->gbs);
        }
    }
    bench_text_printf(t, "</g>\n");
#undef X_OF
#undef Y_OF
}

void bench_svg(const bench_run *run, bench_text *t) {
    /* the panels: each (N, K) in the order met, with its M values */
    static panel panels[MAX_PANELS];
    int np = 0;
    for (int i = 0; i < run->nresults; i++) {
        const bench_result *r = &run->results[i];
        int at = -1;
        for (int j = 0; j < np; j++)
            if (panels[j].n == r->shape.n && panels[j].k == r->shape.k) at = j;
        if (at < 0) {
            if (np == MAX_PANELS) continue;
            at = np++;
            panels[at].n = r->shape.n;
            panels[at].k = r->shape.k;
            panels[at].nm = 0;
        }
        panel *pn = &panels[at];
        int seen = 0;
        for (int j = 0; j < pn->nm; j++) seen |= pn->ms[j] == r->shape.m;
        if (!seen && pn->nm < MAX_MS) pn->ms[pn->nm++] = r->shape.m;
    }
    for (int j = 0; j < np; j++) qsort(panels[j].ms, (size_t)panels[j].nm, sizeof(int64_t), cmp_i64);

    const int baseline = bench_baseline_index(run);
    int speedup = 0;
    for (int i = 0; i < run->nresults; i++) speedup |= run->results[i].speedup > 0;

    /* the legend: the providers drawn, then the reference lines */
    int nitems = 0;
    for (int p = 0; p < run->nproviders; p++) nitems += p != baseline || !speedup;
    nitems += speedup ? 2 : 0;
    const int cols = np > 1 ? 2 : 1;
    const int rows = np > 0 ? (np + cols - 1) / cols : 1;
    const double width = cols * PANEL_W + 2 * MARGIN;
    int per_line = (int)((width - 2 * MARGIN) / 250);
    if (per_line < 1) per_line = 1;
    const int legend_lines = (nitems + per_line - 1) / per_line;
    const double header = 84 + 22.0 * legend_lines;
    const double height = header + rows * PANEL_H + MARGIN;

    bench_text_printf(t, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    bench_text_printf(t, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
                         "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                         "font-family=\"Helvetica, Arial, sans-serif\">\n",
                      width, height, width, height);
    bench_text_printf(t, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    bench_text_printf(t, "<text x=\"%d\" y=\"30\" font-size=\"20\" font-weight=\"bold\">"
                         "fp4gemm bench on ",
                      MARGIN);
    bench_text_xml(t, run->dev.name);
    bench_text_printf(t, "%s", speedup ? (run->on_cpu ? ": speedup over OpenBLAS sgemm F32 (higher is better)</text>\n"
                                                      : ": speedup over cuBLAS BF16 (higher is better)</text>\n")
                                       : ": TFLOP/s (no baseline in this run)</text>\n");
    bench_text_printf(t, "<text x=\"%d\" y=\"52\" font-size=\"13\" fill=\"#444444\">", MARGIN);
    if (run->opt->preset) {
        bench_text_printf(t, "preset ");
        bench_text_xml(t, run->opt->preset);
        bench_text_printf(t, ", ");
    }
    if (run->on_cpu)
        bench_text_printf(t, "D in %s, %s. %d threads; measured ceilings: DRAM read %.1f GB/s, "
                             "FP32 FMA %.0f GFLOP/s.</text>\n",
                          fp4_dtype_name(run->opt->out_dtype), run->date, run->dev.sm_count,
                          run->dev.copy_gbs, run->dev.bf16_tflops * 1e3);
    else
        bench_text_printf(t, "D in %s, %s. sm_%d, %d SMs; measured ceilings: copy %.0f GB/s, cuBLASLt "
                             "BF16 %.0f TFLOP/s.</text>\n",
                          fp4_dtype_name(run->opt->out_dtype), run->date, run->dev.cc,
                          run->dev.sm_count, run->dev.copy_gbs, run->dev.bf16_tflops);
    if (run->on_cpu)
        bench_text_printf(t, "<text x=\"%d\" y=\"70\" font-size=\"13\" fill=\"#444444\">Time per GEMM: "
                             "median of replays on the host clock, inputs rotated over &#8805; 4x "
                             "the last-level cache (cold weights); every provider checked before "
                             "timing. Hover a point for its numbers.</text>\n",
                          MARGIN);
    else
        bench_text_printf(t, "<text x=\"%d\" y=\"70\" font-size=\"13\" fill=\"#444444\">Time per GEMM: "
                             "median of CUDA-graph replays, inputs rotated over &#8805; %.0fx L2 "
                             "(cold weights); every provider checked before timing. Hover a point "
                             "for its numbers.</text>\n",
                          MARGIN, BENCH_L2_FACTOR);

    /* legend */
    int item = 0;
    for (int p = 0; p < run->nproviders + (speedup ? 2 : 0); p++) {
        if (p < run->nproviders && p == baseline && speedup) continue;
        const double x = MARGIN + (item % per_line) * 250.0;
        const double y = 84 + 22.0 * (item / per_line) + 8;
        item++;
        if (p < run->nproviders) {
            bench_text_printf(t, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                                 "stroke=\"%s\"%s/>",
                              x, y, x + 30, y, k_colors[p % N_COLORS],
                              run->providers[p].svg_style);
            bench_text_printf(t, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\">", x + 38, y + 4);
            bench_text_xml(t, run->providers[p].name);
            bench_text_printf(t, "</text>\n");
        } else if (p == run->nproviders) {
            bench_text_printf(t, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                                 "stroke=\"#333333\" stroke-width=\"1.5\"/><text x=\"%.1f\" "
                                 "y=\"%.1f\" font-size=\"13\">%s (1x)</text>\n",
                              x, y, x + 30, y, x + 38, y + 4, bench_baseline_name(run));
        } else {
            bench_text_printf(t, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" "
                                 "stroke=\"#999999\" stroke-dasharray=\"2,4\"/><text x=\"%.1f\" "
                                 "y=\"%.1f\" font-size=\"13\">%.2fx: BF16 / NVFP4 weight "
                                 "bytes</text>\n",
                              x, y, x + 30, y, x + 38, y + 4, IDEAL_SPEEDUP);
        }
    }

    if (np == 0)
        bench_text_printf(t, "<text x=\"%d\" y=\"%.0f\" font-size=\"15\">no results</text>\n",
                          MARGIN, header + 30);
    for (int j = 0; j < np; j++)
        draw_panel(run, &panels[j], MARGIN + (j % cols) * (double)PANEL_W,
                   header + (j / cols) * (double)PANEL_H, speedup, speedup ? baseline : -1, t);
    bench_text_printf(t, "</svg>\n");
}
