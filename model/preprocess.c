/* preprocess.c - any gray picture to MNIST's convention (preprocess.h).
 *
 * MNIST (LeCun et al. 1998 and the dataset page) took NIST's binary digits,
 * scaled each to fit a 20x20 box keeping the aspect ratio (anti-aliased) and
 * placed it in 28x28 so that its centre of mass sits at the centre. Real
 * pictures differ from that in ways a fixed rule gets wrong: a grey or
 * uneven page (a brightness offset, a fog-like field), dark ink, inverted
 * bands, a digit off-centre or at another scale. So instead of deciding
 * polarity and background once for the whole picture, this file separates
 * ink from background locally:
 *
 *   1. work on at most 64x64 (area-averaged down from larger pictures);
 *   2. structure = how far a pixel stands out from a thin neighbourhood of
 *      either polarity: max(white top-hat, black top-hat) with a small
 *      square (Serra's morphology: x - open(x) and close(x) - x), so strokes
 *      of either colour have structure and wide uniform areas - page,
 *      bands, smooth fields - have none;
 *   3. background = the calm pixels (structure below a fraction of the
 *      picture's 99th percentile) reachable from the border through calm
 *      pixels in small steps; its level is known there, so no single global
 *      background level or polarity is assumed;
 *   4. the background is trimmed away from the ink by a few pixels and
 *      filled in under the ink (breadth-first from the background, each pixel
 *      the mean of its filled neighbours): an estimate of the page under the
 *      digit;
 *   5. ink = |picture - background|, stretched so its peak is 1;
 *   6. the digit = the ink's connected parts without the small specks apart
 *      from it; its bounding box is area-resampled to 20 px on the longer side
 *      and moved by whole pixels so its centre of mass lands on (14, 14)
 *      (pixel-index coordinates; MNIST's 60,000 training digits average
 *      (14.007, 13.996)).
 *
 * Verdicts: no ink above MIN_CONTRAST is a blank picture; a picture in which
 * too little calm background reaches the border has no digit to find in it
 * (noise or texture).
 */
#include "preprocess.h"
#include "resample.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define SIDE 28
/* NaN-free min/max (fminf/fmaxf are library calls that honour NaN). */
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define BOX 20
#define WORK_MAX 64
#define WORK_PIXELS (WORK_MAX * WORK_MAX)
_Static_assert(WORK_MAX <= RESAMPLE_MAX && BOX <= RESAMPLE_MAX, "resample_area's limit");

/* Calm: structure below CALM of the picture's 99th percentile (never below
 * CALM_FLOOR); background grows only in steps below STEP of it. Measured on
 * MNIST test digits and their MNIST-C-style copies (docs/report.md). */
#define CALM 0.4f
#define CALM_FLOOR 0.04f
#define STEP 0.25f
/* Pixels of background next to ink are trimmed this many times (per 28 px)
 * before it is filled in under the ink: their level is contaminated by
 * anti-aliased edges and blur. */
#define TRIM 3
/* Ink at least this fraction of its peak outlines the digit. */
#define INK_MASK 0.25f
/* Less ink contrast than this (of 0..1) is a blank picture (~31/255). */
#define MIN_CONTRAST 0.12f
/* Less than this fraction of calm background: noise, not a page. */
#define MIN_BACKGROUND 0.2f
/* Connected ink parts with less than this fraction of the largest part's
 * ink are specks. */
#define SPECK 0.1
/* Polarity minority above this fraction of the ink: mixed. */
#define MIXED 0.1
/* Background level or unevenness above this counts as a background. */
#define BG_LEVEL 0.04f

/* The working planes, (h, w) row-major, w * h <= WORK_PIXELS. */
struct work {
    int w, h;
    float px[WORK_PIXELS];    /* the picture, [0,1] */
    float tmp[WORK_PIXELS];   /* filter scratch */
    float open[WORK_PIXELS];  /* then: structure */
    float close[WORK_PIXELS]; /* then: ink */
    float bg[WORK_PIXELS];
    unsigned char state[WORK_PIXELS];
    unsigned char edge[WORK_PIXELS]; /* 1 on the picture's outermost pixels */
    int queue[WORK_PIXELS];
    int label[WORK_PIXELS];
};

/* The picture into w->px, area-averaged down to WORK_MAX on the longer side
 * when larger. Returns 1 when it was downscaled. */
static int load_work(struct work *w, const uint8_t *gray, size_t width, size_t height)
{
    size_t longer = width > height ? width : height;
    struct resample_src src = {gray, NULL, width, 1.0f / 255.0f};
    if (longer <= WORK_MAX) {
        w->w = (int)width;
        w->h = (int)height;
        for (size_t i = 0; i < width * height; i++)
            w->px[i] = gray[i] * (1.0f / 255.0f);
        return 0;
    }
    double s = (double)WORK_MAX / (double)longer;
    long dw = lround((double)width * s), dh = lround((double)height * s);
    w->w = dw < 1 ? 1 : (int)dw;
    w->h = dh < 1 ? 1 : (int)dh;
    resample_area(w->px, (size_t)w->w, (size_t)w->w, (size_t)w->h, &src, 0, 0, width, height);
    return 1;
}

/* w->edge: 1 on the outermost pixels (whose neighbours need bounds). */
static void mark_edges(struct work *w)
{
    for (int y = 0; y < w->h; y++)
        for (int x = 0; x < w->w; x++)
            w->edge[y * w->w + x] = (unsigned char)(x == 0 || y == 0 || x == w->w - 1 || y == w->h - 1);
}

/* out = min (take_max 0) or max (1) of in over the (2r+1)^2 square, the
 * square cut off at the picture's edges. Separable: rows into tmp, then
 * columns, each pass a loop along a row so that it vectorises (min and max
 * are exact, so the order does not matter). out may not alias in or tmp. */
#define SQUARE_PASSES(OP)                                                                                    \
    for (int y = 0; y < h; y++) {                                                                            \
        const float *row = in + y * w;                                                                       \
        float *t = tmp + y * w;                                                                              \
        memcpy(t, row, (size_t)w * sizeof *t);                                                               \
        for (int d = 1; d <= r && d < w; d++)                                                                \
            for (int x = 0; x < w; x++) {                                                                    \
                float v = t[x];                                                                              \
                if (x - d >= 0)                                                                              \
                    v = OP(v, row[x - d]);                                                                   \
                if (x + d < w)                                                                               \
                    v = OP(v, row[x + d]);                                                                   \
                t[x] = v;                                                                                    \
            }                                                                                                \
    }                                                                                                        \
    for (int y = 0; y < h; y++) {                                                                            \
        float *o = out + y * w;                                                                              \
        memcpy(o, tmp + y * w, (size_t)w * sizeof *o);                                                       \
        for (int yy = y - r < 0 ? 0 : y - r; yy <= y + r && yy < h; yy++) {                                  \
            const float *t = tmp + yy * w;                                                                   \
            for (int x = 0; x < w; x++)                                                                      \
                o[x] = OP(o[x], t[x]);                                                                       \
        }                                                                                                    \
    }

static void square_filter(float *out, float *tmp, const float *in, int w, int h, int r, int take_max)
{
    if (take_max) {
        SQUARE_PASSES(MAX)
    } else {
        SQUARE_PASSES(MIN)
    }
}

#undef SQUARE_PASSES

/* w->open becomes the structure max(px - open(px), close(px) - px) with a
 * (2r+1) square; returns its 99th percentile (in steps of 1/256). */
static float structure_map(struct work *w, int r)
{
    int n = w->w * w->h;
    float *s = w->open, *c = w->close, *t = w->bg; /* bg is free until later */
    square_filter(t, w->tmp, w->px, w->w, w->h, r, 0);
    square_filter(s, w->tmp, t, w->w, w->h, r, 1); /* opening */
    square_filter(t, w->tmp, w->px, w->w, w->h, r, 1);
    square_filter(c, w->tmp, t, w->w, w->h, r, 0); /* closing */
    unsigned hist[257] = {0};
    for (int i = 0; i < n; i++) {
        s[i] = MAX(w->px[i] - s[i], c[i] - w->px[i]);
        int b = (int)(s[i] * 256.0f);
        hist[b < 0 ? 0 : b > 256 ? 256 : b]++;
    }
    unsigned above = 0, want = (unsigned)n / 100 + 1;
    for (int b = 256; b > 0; b--) {
        above += hist[b];
        if (above >= want)
            return (float)b / 256.0f;
    }
    return 0;
}

static int on_border(const struct work *w, int x, int y)
{
    return x == 0 || y == 0 || x == w->w - 1 || y == w->h - 1;
}

/* The 8-neighbours of pixel i inside the picture, row by row (dy = -1..1,
 * then dx = -1..1): every search below visits them in this order, so the
 * results do not depend on how the bounds are checked. Returns how many. */
static inline int neighbours(const struct work *w, int i, int nb[8])
{
    int W = w->w;
    if (!w->edge[i]) {
        const int all[8] = {i - W - 1, i - W, i - W + 1, i - 1, i + 1, i + W - 1, i + W, i + W + 1};
        memcpy(nb, all, sizeof all);
        return 8;
    }
    int x = i % W, y = i / W, n = 0;
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++)
            if ((dx || dy) && x + dx >= 0 && y + dy >= 0 && x + dx < W && y + dy < w->h)
                nb[n++] = i + dy * W + dx;
    return n;
}

/* Grows one background region from border pixel `seed` through calm
 * pixels in steps below `step` (8-connected), marking it state 1 and
 * label `region`. Returns its size. */
static int grow_region(struct work *w, int seed, int region, float calm, float step)
{
    int head = 0, tail = 0;
    w->state[seed] = 1;
    w->label[seed] = region;
    w->queue[tail++] = seed;
    while (head < tail) {
        int i = w->queue[head++], nb[8], n = neighbours(w, i, nb);
        for (int k = 0; k < n; k++) {
            int j = nb[k];
            if (w->state[j] || w->open[j] >= calm || fabsf(w->px[j] - w->px[i]) >= step)
                continue;
            w->state[j] = 1;
            w->label[j] = region;
            w->queue[tail++] = j;
        }
    }
    return tail;
}

/* The background: state 1 for the calm pixels reachable from the border
 * through calm pixels in small steps, label = the region (1, 2, ...) each
 * belongs to - parts of the page at different levels, such as inverted
 * bands, are separate regions. Returns the number of background pixels. */
static int grow_background(struct work *w, float calm, float step)
{
    int n = w->w * w->h, total = 0, regions = 0;
    memset(w->state, 0, (size_t)n);
    memset(w->label, 0, (size_t)n * sizeof *w->label);
    for (int y = 0; y < w->h; y++)
        for (int x = 0; x < w->w; x++) {
            int i = y * w->w + x;
            if (on_border(w, x, y) && !w->state[i] && w->open[i] < calm)
                total += grow_region(w, i, ++regions, calm, step);
        }
    return total;
}

/* Background pixels closer than `margin` steps (chessboard distance) to any
 * non-background pixel become state 3, trimmed: their level is contaminated
 * by anti-aliased edges and blur, so it is filled in like the ink's. Unless
 * that would leave no background at all. Two-pass distance transform
 * (Rosenfeld & Pfaltz 1966), distances capped at margin + 1 (all that
 * matters) in bytes over w->tmp. */
static void trim_background(struct work *w, int margin)
{
    int W = w->w, H = w->h, n = W * H, kept = 0;
    unsigned char *d = (unsigned char *)w->tmp, cap = (unsigned char)(margin + 1 < 255 ? margin + 1 : 255);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int i = y * W + x;
            unsigned v = w->state[i] ? cap : 0;
            if (v && x > 0)
                v = MIN(v, d[i - 1] + 1u);
            if (v && y > 0) {
                v = MIN(v, d[i - W] + 1u);
                if (x > 0)
                    v = MIN(v, d[i - W - 1] + 1u);
                if (x + 1 < W)
                    v = MIN(v, d[i - W + 1] + 1u);
            }
            d[i] = (unsigned char)v;
        }
    for (int y = H - 1; y >= 0; y--)
        for (int x = W - 1; x >= 0; x--) {
            int i = y * W + x;
            unsigned v = d[i];
            if (v && x + 1 < W)
                v = MIN(v, d[i + 1] + 1u);
            if (v && y + 1 < H) {
                v = MIN(v, d[i + W] + 1u);
                if (x > 0)
                    v = MIN(v, d[i + W - 1] + 1u);
                if (x + 1 < W)
                    v = MIN(v, d[i + W + 1] + 1u);
            }
            d[i] = (unsigned char)v;
            kept += v > (unsigned)margin;
        }
    if (kept)
        for (int i = 0; i < n; i++)
            if (w->state[i] && d[i] <= margin)
                w->state[i] = 3;
}

/* Fills bg[j] with the mean of j's filled 8-neighbours - for a trimmed
 * pixel only those of its own background region (label; 0 = any). Returns
 * 0 when there is none. */
static inline int fill_from_neighbours(struct work *w, int j, int region)
{
    int nb[8], n = neighbours(w, j, nb), cnt = 0;
    double sum = 0;
    for (int m = 0; m < n; m++) {
        int k = nb[m];
        if ((w->state[k] != 1 && w->state[k] != 2) || (region && w->label[k] != region))
            continue;
        sum += w->bg[k];
        cnt++;
    }
    if (!cnt)
        return 0;
    w->bg[j] = (float)(sum / cnt);
    w->state[j] = 2;
    w->label[j] = region;
    return 1;
}

/* bg = the picture on the kept background, and under everything else the
 * mean of the already filled 8-neighbours, breadth-first outwards (a
 * diffusion inpainting; deterministic). A trimmed pixel is filled only from
 * its own background region, so the level of a band never leaks into the
 * page beside it; what stays unfilled that way is filled from any region
 * in a second round. */
static void fill_background(struct work *w)
{
    int n = w->w * w->h;
    for (int round = 0; round < 2; round++) {
        int head = 0, tail = 0;
        for (int i = 0; i < n; i++) {
            if (w->state[i] == 1 && round == 0)
                w->bg[i] = w->px[i];
            if (w->state[i] == 1 || w->state[i] == 2)
                w->queue[tail++] = i;
        }
        while (head < tail) {
            int i = w->queue[head++], nb[8], n_nb = neighbours(w, i, nb);
            for (int k = 0; k < n_nb; k++) {
                int j = nb[k];
                if (w->state[j] == 1 || w->state[j] == 2)
                    continue;
                int region = w->state[j] == 3 && round == 0 ? w->label[j] : 0;
                if (fill_from_neighbours(w, j, region))
                    w->queue[tail++] = j;
            }
        }
    }
}

/* ink = |px - bg| into w->close; returns its peak. Counts ink pixels
 * (>= INK_MASK of the peak) lighter and darker than their background, and
 * notes whether the background is other than uniform black (light ink) or
 * white (dark ink). */
static float ink_map(struct work *w, unsigned *steps)
{
    int n = w->w * w->h, light = 0, dark = 0;
    float peak = 0, lo = 1, hi = 0;
    for (int i = 0; i < n; i++) {
        w->close[i] = fabsf(w->px[i] - w->bg[i]);
        peak = MAX(peak, w->close[i]);
        lo = MIN(lo, w->bg[i]);
        hi = MAX(hi, w->bg[i]);
    }
    for (int i = 0; i < n; i++)
        if (peak > 0 && w->close[i] >= INK_MASK * peak)
            w->px[i] < w->bg[i] ? dark++ : light++;
    if (dark > light)
        *steps |= PREP_INVERTED;
    if ((dark < light ? dark : light) > MIXED * (dark + light))
        *steps |= PREP_MIXED;
    float page = dark > light ? 1.0f - hi : lo; /* distance from the natural page */
    if (hi - lo > BG_LEVEL || page > BG_LEVEL)
        *steps |= PREP_BACKGROUND;
    return peak;
}

/* Labels the 8-connected parts of the ink mask (ink >= INK_MASK * peak) in
 * w->label (0 = not ink) and their ink mass in mass[1..]; returns the number
 * of parts (at most WORK_PIXELS / 2 + 1 exist). */
static int label_parts(struct work *w, float peak, double *mass)
{
    int n = w->w * w->h, parts = 0;
    const float *ink = w->close;
    memset(w->label, 0, (size_t)n * sizeof *w->label);
    for (int i = 0; i < n; i++) {
        if (w->label[i] || ink[i] < INK_MASK * peak)
            continue;
        int head = 0, tail = 0;
        w->label[i] = ++parts;
        mass[parts] = 0;
        w->queue[tail++] = i;
        while (head < tail) {
            int j = w->queue[head++], nb[8], n_nb = neighbours(w, j, nb);
            mass[parts] += ink[j];
            for (int m = 0; m < n_nb; m++) {
                int k = nb[m];
                if (w->label[k] || ink[k] < INK_MASK * peak)
                    continue;
                w->label[k] = parts;
                w->queue[tail++] = k;
            }
        }
    }
    return parts;
}

/* The digit's bounding box: the ink parts that are not specks. Specks' ink
 * is erased (and PREP_SPECKS noted). box = {x0, y0, x1, y1}, inclusive. */
static void digit_box(struct work *w, float peak, int box[4], unsigned *steps)
{
    static const int none[4] = {0, 0, -1, -1};
    double mass[WORK_PIXELS / 2 + 2], best = 0;
    int parts = label_parts(w, peak, mass);
    for (int p = 1; p <= parts; p++)
        best = MAX(best, mass[p]);
    memcpy(box, none, sizeof none);
    box[0] = w->w;
    box[1] = w->h;
    for (int y = 0; y < w->h; y++)
        for (int x = 0; x < w->w; x++) {
            int i = y * w->w + x, p = w->label[i];
            if (!p)
                continue;
            if (mass[p] < SPECK * best) {
                w->close[i] = 0;
                *steps |= PREP_SPECKS;
                continue;
            }
            box[0] = x < box[0] ? x : box[0];
            box[1] = y < box[1] ? y : box[1];
            box[2] = x > box[2] ? x : box[2];
            box[3] = y > box[3] ? y : box[3];
        }
}

/* Scales the ink inside box to 20 px on its longer side (values divided by
 * peak, clipped to 1) and places it in out so that its centre of mass lands
 * on (14, 14); ink pushed past the edge is cut off, as MNIST's was. */
static void place_digit(float out[784], const struct work *w, const int box[4], float peak, unsigned *steps)
{
    size_t bw = (size_t)(box[2] - box[0] + 1), bh = (size_t)(box[3] - box[1] + 1);
    size_t longer = bw > bh ? bw : bh;
    size_t nw = (size_t)lround((double)bw * BOX / (double)longer);
    size_t nh = (size_t)lround((double)bh * BOX / (double)longer);
    nw = nw < 1 ? 1 : nw;
    nh = nh < 1 ? 1 : nh;
    float digit[BOX * BOX];
    struct resample_src ink = {NULL, w->close, (size_t)w->w, 1.0f / peak};
    resample_area(digit, nw, nw, nh, &ink, (size_t)box[0], (size_t)box[1], bw, bh);
    if (longer != BOX)
        *steps |= PREP_RESIZED;
    double mass = 0, mx = 0, my = 0;
    for (size_t y = 0; y < nh; y++)
        for (size_t x = 0; x < nw; x++) {
            float v = MIN(digit[y * nw + x], 1.0f);
            digit[y * nw + x] = v;
            mass += v;
            mx += v * (double)x;
            my += v * (double)y;
        }
    long ox = mass > 0 ? lround(SIDE / 2.0 - mx / mass) : (long)(SIDE - nw) / 2;
    long oy = mass > 0 ? lround(SIDE / 2.0 - my / mass) : (long)(SIDE - nh) / 2;
    if (w->w != SIDE || w->h != SIDE || ox != box[0] || oy != box[1])
        *steps |= PREP_CENTRED;
    for (size_t y = 0; y < nh; y++)
        for (size_t x = 0; x < nw; x++) {
            long tx = (long)x + ox, ty = (long)y + oy;
            if (tx >= 0 && ty >= 0 && tx < SIDE && ty < SIDE)
                out[ty * SIDE + tx] = digit[y * nw + x];
        }
}

void prep_canonical(float out[784], struct prep_result *r, const uint8_t *gray, size_t width, size_t height)
{
    struct work w;
    memset(out, 0, SIDE * SIDE * sizeof *out);
    memset(r, 0, sizeof *r);
    r->verdict = PREP_BLANK;
    if (!gray || width == 0 || height == 0)
        return;
    if (load_work(&w, gray, width, height))
        r->steps |= PREP_DOWNSCALED;
    mark_edges(&w);
    int longer = w.w > w.h ? w.w : w.h;
    double per28 = longer > SIDE ? (double)longer / SIDE : 1.0;
    float p99 = structure_map(&w, (int)lround(per28));
    if (grow_background(&w, MAX(CALM * p99, CALM_FLOOR), MAX(STEP * p99, CALM_FLOOR)) <
        MIN_BACKGROUND * (float)(w.w * w.h)) {
        r->verdict = PREP_NO_BACKGROUND;
        r->steps = 0;
        return;
    }
    trim_background(&w, (int)lround(TRIM * per28));
    fill_background(&w);
    float peak = ink_map(&w, &r->steps);
    if (peak < MIN_CONTRAST) {
        r->steps = 0;
        return;
    }
    if (peak < 0.95f)
        r->steps |= PREP_CONTRAST;
    int box[4];
    digit_box(&w, peak, box, &r->steps);
    place_digit(out, &w, box, peak, &r->steps);
    r->verdict = PREP_DIGIT;
}

const char *prep_describe(unsigned steps, char *buf, size_t len)
{
    static const char *const names[] = {"downscaled", "inverted", "mixed_polarity", "background",
                                        "contrast",   "specks",   "resized",        "centred"};
    if (!buf || len == 0)
        return buf;
    buf[0] = '\0';
    size_t used = 0;
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(steps & (1u << i)))
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? "+" : "", names[i]);
        if (n < 0 || (size_t)n >= len - used)
            return buf;
        used += (size_t)n;
    }
    if (!used)
        snprintf(buf, len, "none");
    return buf;
}

const char *prep_verdict_name(enum prep_verdict v)
{
    switch (v) {
    case PREP_DIGIT:
        return "digit";
    case PREP_BLANK:
        return "blank";
    case PREP_NO_BACKGROUND:
        return "no_background";
    }
    return "unknown";
}
