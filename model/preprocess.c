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
#include "morph.h"
#include "prep_work.h"
#include "resample.h"
#include "rowmask.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define SIDE 28
#define BOX 20
_Static_assert(WORK_MAX <= RESAMPLE_MAX && BOX <= RESAMPLE_MAX, "resample_area's limit");
_Static_assert(WORK_MAX <= ROWMASK_MAX && WORK_MAX <= MORPH_MAX_W, "row masks and filters");

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

/* The picture into w->px, area-averaged down to WORK_MAX on the longer side
 * when larger. Returns 1 when it was downscaled. */
static int load_work(struct prep_work *w, const uint8_t *gray, size_t width, size_t height)
{
    size_t longer = width > height ? width : height;
    struct resample_src src = {gray, NULL, width, 1.0f / 255.0f};
    if (longer <= WORK_MAX) {
        w->w = (int)width;
        w->h = (int)height;
        for (size_t y = 0; y < height; y++)
            for (size_t x = 0; x < width; x++)
                w->px[AT(x, y)] = gray[y * width + x] * (1.0f / 255.0f);
        return 0;
    }
    double s = (double)WORK_MAX / (double)longer;
    long dw = lround((double)width * s), dh = lround((double)height * s);
    w->w = dw < 1 ? 1 : (int)dw;
    w->h = dh < 1 ? 1 : (int)dh;
    resample_area(w->px + AT(0, 0), STRIDE, (size_t)w->w, (size_t)w->h, &src, 0, 0, width, height);
    return 1;
}

/* px is 0 on the frame and up to PACK_WIDTH: step_edges reads the frame
 * beside the picture's edges, the filters and comparisons whole vectors. */
static void frame_px(struct prep_work *w)
{
    for (int x = -1; x <= WORK_MAX; x++)
        w->px[AT(x, -1)] = w->px[AT(x, w->h)] = 0;
    for (int y = 0; y < w->h; y++) {
        w->px[AT(-1, y)] = 0;
        for (int x = w->w; x <= PACK_WIDTH(w->w); x++)
            w->px[AT(x, y)] = 0;
    }
}

/* w->open becomes the structure max(px - open(px), close(px) - px) with a
 * (2r+1) square (morph.h: min and max over it cut off at the picture's
 * edges); returns its 99th percentile (in steps of 1/256). Only bins >= 1
 * are ever looked at, so only the pixels with s * 256 >= 1 are counted. */
static float structure_map(struct prep_work *w, int r)
{
    int W = w->w, H = w->h, n = morph_width(W), pw = PACK_WIDTH(W);
    float *s = w->open, *c = w->close;
    unsigned char counted[WORK_MAX];
    /* bg is free until later */
    morph_open_close(s + AT(0, 0), c + AT(0, 0), w->px + AT(0, 0), w->tmp + AT(0, 0), w->bg + AT(0, 0), W, H,
                     STRIDE, r);
    unsigned hist[257] = {0};
    for (int y = 0; y < H; y++) {
        float *restrict sr = s + AT(0, y);
        const float *restrict p = w->px + AT(0, y), *restrict cr = c + AT(0, y);
        for (int x = 0; x < n; x++)
            sr[x] = MAX(p[x] - sr[x], cr[x] - p[x]);
        for (int x = n; x < pw; x++)
            sr[x] = 0;
        for (int x = 0; x < pw; x++)
            counted[x] = sr[x] * 256.0f >= 1.0f;
        for (uint64_t m = rowmask_pack(counted, W); m; m &= m - 1) {
            int b = (int)(sr[__builtin_ctzll(m)] * 256.0f);
            hist[b > 256 ? 256 : b]++;
        }
    }
    unsigned above = 0, want = (unsigned)(W * H) / 100 + 1;
    for (int b = 256; b > 0; b--) {
        above += hist[b];
        if (above >= want)
            return (float)b / 256.0f;
    }
    return 0;
}

/* ink = |px - bg| into w->close; returns its peak. Counts ink pixels
 * (w->ink: >= INK_MASK of the peak) lighter and darker than their
 * background, and notes whether the background is other than uniform black
 * (light ink) or white (dark ink). */
static float ink_map(struct prep_work *w, unsigned *steps)
{
    int light = 0, dark = 0;
    float pk[4] = {0, 0, 0, 0}, mn[4] = {1, 1, 1, 1}, mx[4] = {0, 0, 0, 0}; /* 4 lanes: exact in any order */
    uint64_t darker[MASK_ROWS];
    int n = PACK_WIDTH(w->w);
    for (int y = 0; y < w->h; y++) {
        float *restrict ink = w->close + AT(0, y);
        const float *restrict p = w->px + AT(0, y), *restrict b = w->bg + AT(0, y);
        for (int x = 0; x < n; x++)
            ink[x] = fabsf(p[x] - b[x]);
        int x = 0;
        for (; x + 4 <= w->w; x += 4)
            for (int k = 0; k < 4; k++) {
                pk[k] = MAX(pk[k], ink[x + k]);
                mn[k] = MIN(mn[k], b[x + k]);
                mx[k] = MAX(mx[k], b[x + k]);
            }
        for (; x < w->w; x++) {
            pk[0] = MAX(pk[0], ink[x]);
            mn[0] = MIN(mn[0], b[x]);
            mx[0] = MAX(mx[0], b[x]);
        }
    }
    float peak = MAX(MAX(pk[0], pk[1]), MAX(pk[2], pk[3]));
    float lo = MIN(MIN(mn[0], mn[1]), MIN(mn[2], mn[3])), hi = MAX(MAX(mx[0], mx[1]), MAX(mx[2], mx[3]));
    memset(w->ink, 0, sizeof w->ink);
    if (peak > 0) {
        rowmask_below(w->ink, w->close + AT(0, 0), STRIDE, INK_MASK * peak, w->w, w->h);
        for (int y = 0; y < w->h; y++) {
            unsigned char c[WORK_MAX];
            const float *restrict p = w->px + AT(0, y), *restrict b = w->bg + AT(0, y);
            w->ink[y + 1] ^= rowmask_bits(w->w); /* not below: ink >= INK_MASK * peak */
            for (int x = 0; x < n; x++)
                c[x] = p[x] < b[x];
            darker[y + 1] = rowmask_pack(c, w->w);
            dark += __builtin_popcountll(w->ink[y + 1] & darker[y + 1]);
            light += __builtin_popcountll(w->ink[y + 1] & ~darker[y + 1]);
        }
    }
    if (dark > light)
        *steps |= PREP_INVERTED;
    if ((dark < light ? dark : light) > MIXED * (dark + light))
        *steps |= PREP_MIXED;
    float page = dark > light ? 1.0f - hi : lo; /* distance from the natural page */
    if (hi - lo > BG_LEVEL || page > BG_LEVEL)
        *steps |= PREP_BACKGROUND;
    return peak;
}

/* Labels the 8-connected parts of the ink mask (w->ink) in w->label (0 =
 * not ink), numbered in row order of their first pixel, and their ink mass
 * in mass[1..]; returns the number of parts (at most WORK_PIXELS / 2 + 1
 * exist). Each ink value is >= INK_MASK * MIN_CONTRAST > 2^-6, so a multiple
 * of 2^-29, and a mass <= 2^12: the sums are exact in any order. */
static int label_parts(struct prep_work *w, double *mass)
{
    int parts = 0;
    uint64_t todo[MASK_ROWS], r[MASK_ROWS]; /* todo: ink not yet labelled */
    struct rowmask_graph g;
    memcpy(todo, w->ink, sizeof todo);
    rowmask_graph_of(&g, todo, w->h);
    for (int y = 0; y < w->h; y++)
        memset(w->label + AT(0, y), 0, (size_t)w->w * sizeof *w->label);
    for (int y = 0; y < w->h; y++)
        while (todo[y + 1]) {
            memset(r, 0, sizeof r);
            r[y + 1] = todo[y + 1] & -todo[y + 1];
            rowmask_flood(r, &g, y, w->h);
            mass[++parts] = 0;
            for (int yy = y; yy < w->h; yy++) {
                todo[yy + 1] &= ~r[yy + 1];
                for (uint64_t m = r[yy + 1]; m; m &= m - 1) {
                    int i = AT(__builtin_ctzll(m), yy);
                    w->label[i] = parts;
                    mass[parts] += w->close[i];
                }
            }
        }
    return parts;
}

/* The digit's bounding box: the ink parts that are not specks. Specks' ink
 * is erased (and PREP_SPECKS noted). box = {x0, y0, x1, y1}, inclusive. */
static void digit_box(struct prep_work *w, int box[4], unsigned *steps)
{
    static const int none[4] = {0, 0, -1, -1};
    double mass[WORK_PIXELS / 2 + 2], best = 0;
    int parts = label_parts(w, mass);
    for (int p = 1; p <= parts; p++)
        best = MAX(best, mass[p]);
    memcpy(box, none, sizeof none);
    box[0] = w->w;
    box[1] = w->h;
    for (int y = 0; y < w->h; y++)
        for (int x = 0; x < w->w; x++) {
            int i = AT(x, y), p = w->label[i];
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
static void place_digit(float out[784], const struct prep_work *w, const int box[4], float peak,
                        unsigned *steps)
{
    size_t bw = (size_t)(box[2] - box[0] + 1), bh = (size_t)(box[3] - box[1] + 1);
    size_t longer = bw > bh ? bw : bh;
    size_t nw = (size_t)lround((double)bw * BOX / (double)longer);
    size_t nh = (size_t)lround((double)bh * BOX / (double)longer);
    nw = nw < 1 ? 1 : nw;
    nh = nh < 1 ? 1 : nh;
    float digit[BOX * BOX];
    struct resample_src ink = {NULL, w->close + AT(0, 0), STRIDE, 1.0f / peak};
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
    struct prep_work w;
    memset(out, 0, SIDE * SIDE * sizeof *out);
    memset(r, 0, sizeof *r);
    r->verdict = PREP_BLANK;
    if (!gray || width == 0 || height == 0)
        return;
    if (load_work(&w, gray, width, height))
        r->steps |= PREP_DOWNSCALED;
    frame_px(&w);
    int longer = w.w > w.h ? w.w : w.h;
    double per28 = longer > SIDE ? (double)longer / SIDE : 1.0;
    float p99 = structure_map(&w, (int)lround(per28));
    if (prep_grow_background(&w, MAX(CALM * p99, CALM_FLOOR), MAX(STEP * p99, CALM_FLOOR)) <
        MIN_BACKGROUND * (float)(w.w * w.h)) {
        r->verdict = PREP_NO_BACKGROUND;
        r->steps = 0;
        return;
    }
    prep_trim_background(&w, (int)lround(TRIM * per28));
    prep_fill_background(&w);
    float peak = ink_map(&w, &r->steps);
    if (peak < MIN_CONTRAST) {
        r->steps = 0;
        return;
    }
    if (peak < 0.95f)
        r->steps |= PREP_CONTRAST;
    int box[4];
    digit_box(&w, box, &r->steps);
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
