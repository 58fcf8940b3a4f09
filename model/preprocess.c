/* preprocess.c - an arbitrary gray picture to MNIST's convention.
 *
 * MNIST (LeCun et al., "Gradient-based learning applied to document
 * recognition", 1998, and the dataset page) took NIST's binary digits, scaled
 * each to fit a 20x20 box keeping the aspect ratio (anti-aliased, hence gray
 * levels), and placed it in a 28x28 field so that the centre of mass of the
 * pixels sits at the field's centre. This file does the same for a decoded
 * PNG: decide the polarity, stretch the background to 0 and the ink to 255,
 * crop to the ink's bounding box, area-average it to 20 px on the longer
 * side and translate it by whole pixels so its centre of mass lands at
 * (14, 14) in pixel-index coordinates (measured on MNIST's 60,000 training
 * digits: mean (14.007, 13.996), every digit within 0.5 px of it; the
 * longer side of the nonzero box is 20 px for all but 13 of them).
 */
#include "preprocess.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define SIDE 28
#define BOX 20
/* A pixel is ink when it is at least this far (of 255) above the
 * background after stretching. MNIST's 20 px box includes the faintest
 * anti-aliased edge, so the threshold is low: 10 % keeps soft edges in the
 * box while ignoring mild sensor or compression noise. */
#define INK_THRESHOLD 24
/* Less contrast than this between background and the brightest ink means
 * there is nothing to recognise (a blank or nearly uniform picture). */
#define MIN_CONTRAST 32

/* Median of the frame of pixels along the four edges: the page colour. Digits
 * rarely touch all four edges, so the frame is mostly background whatever the
 * drawing; the median ignores the ink that does reach it. */
static unsigned border_median(const uint8_t *gray, size_t width, size_t height)
{
    size_t hist[256] = {0};
    size_t n = 0;
    for (size_t x = 0; x < width; x++) {
        hist[gray[x]]++;
        n++;
        if (height > 1) {
            hist[gray[(height - 1) * width + x]]++;
            n++;
        }
    }
    for (size_t y = 1; y + 1 < height; y++) {
        hist[gray[y * width]]++;
        n++;
        if (width > 1) {
            hist[gray[y * width + width - 1]]++;
            n++;
        }
    }
    size_t seen = 0;
    for (unsigned v = 0; v < 256; v++) {
        seen += hist[v];
        if (2 * seen >= n)
            return v;
    }
    return 255;
}

/* The picture as ink intensity in [0, 255]: inverted when the page is light,
 * the background level subtracted and the range stretched by scale. */
struct ink_view {
    const uint8_t *gray;
    size_t width;
    int invert;
    unsigned bg;
    float scale;
};

static float ink_at(const struct ink_view *v, size_t x, size_t y)
{
    unsigned g = v->gray[y * v->width + x];
    if (v->invert)
        g = 255 - g;
    float s = g > v->bg ? (float)(g - v->bg) * v->scale : 0.0f;
    return s > 255.0f ? 255.0f : s;
}

/* Area-averaging (box filter) of the source rectangle at (sx0, sy0) of size
 * (sw, sh) into dst (dh, dw): each destination pixel is the mean of the
 * source area it covers, with fractional weights for partly covered pixels.
 * Exact for any ratio, up or down; each source pixel is visited at most
 * four times, and nothing is allocated. */
static void resample_area(float *dst, size_t dw, size_t dh, const struct ink_view *v, size_t sx0, size_t sy0,
                          size_t sw, size_t sh)
{
    double fx = (double)sw / (double)dw, fy = (double)sh / (double)dh;
    for (size_t y = 0; y < dh; y++) {
        double ya = (double)y * fy, yb = (double)(y + 1) * fy;
        for (size_t x = 0; x < dw; x++) {
            double xa = (double)x * fx, xb = (double)(x + 1) * fx, acc = 0;
            for (size_t sy = (size_t)ya; sy < sh && (double)sy < yb; sy++) {
                double wy = fmin(yb, (double)sy + 1) - fmax(ya, (double)sy);
                if (wy <= 0)
                    continue;
                for (size_t sx = (size_t)xa; sx < sw && (double)sx < xb; sx++) {
                    double wx = fmin(xb, (double)sx + 1) - fmax(xa, (double)sx);
                    if (wx > 0)
                        acc += wx * wy * ink_at(v, sx0 + sx, sy0 + sy);
                }
            }
            dst[y * dw + x] = (float)(acc / (fx * fy));
        }
    }
}

unsigned prep_to_mnist(float out[784], const uint8_t *gray, size_t width, size_t height)
{
    for (size_t i = 0; i < SIDE * SIDE; i++)
        out[i] = 0.0f;
    if (!gray || width == 0 || height == 0)
        return PREP_EMPTY;

    unsigned bg = border_median(gray, width, height);
    unsigned flags = 0;
    int invert = bg >= 128; /* light page: dark ink */
    if (invert) {
        flags |= PREP_INVERTED;
        bg = 255 - bg;
    }
    unsigned peak = 0;
    for (size_t i = 0; i < width * height; i++) {
        unsigned v = invert ? 255u - gray[i] : gray[i];
        if (v > peak)
            peak = v;
    }
    if (peak < bg + MIN_CONTRAST)
        return flags | PREP_EMPTY;

    if (!invert && width == SIDE && height == SIDE) {
        for (size_t i = 0; i < SIDE * SIDE; i++)
            out[i] = gray[i] / 255.0f;
        return PREP_NONE;
    }

    /* Stretch [bg, peak] to [0, 255]: a gray page or faded ink becomes
     * MNIST's black background and full-intensity strokes. */
    float scale = 255.0f / (float)(peak - bg);
    size_t x0 = width, x1 = 0, y0 = height, y1 = 0;
    for (size_t y = 0; y < height; y++)
        for (size_t x = 0; x < width; x++) {
            unsigned v = invert ? 255u - gray[y * width + x] : gray[y * width + x];
            if (v >= bg && (float)(v - bg) * scale >= INK_THRESHOLD) {
                if (x < x0)
                    x0 = x;
                if (x > x1)
                    x1 = x;
                if (y < y0)
                    y0 = y;
                if (y > y1)
                    y1 = y;
            }
        }
    /* peak >= bg + MIN_CONTRAST guarantees one pixel at 255 >= threshold. */
    size_t bw = x1 - x0 + 1, bh = y1 - y0 + 1;
    size_t longer = bw > bh ? bw : bh;
    size_t nw = (size_t)lround((double)bw * BOX / (double)longer);
    size_t nh = (size_t)lround((double)bh * BOX / (double)longer);
    if (nw < 1)
        nw = 1;
    if (nh < 1)
        nh = 1;

    float box[BOX * BOX];
    struct ink_view view = {gray, width, invert, bg, scale};
    resample_area(box, nw, nh, &view, x0, y0, bw, bh);

    /* Centre of mass in pixel-index coordinates (MNIST's convention, see
     * the top of the file). */
    double mass = 0, mx = 0, my = 0;
    for (size_t y = 0; y < nh; y++)
        for (size_t x = 0; x < nw; x++) {
            double m = box[y * nw + x];
            mass += m;
            mx += m * (double)x;
            my += m * (double)y;
        }
    long ox, oy;
    if (mass > 0) {
        ox = lround(SIDE / 2.0 - mx / mass);
        oy = lround(SIDE / 2.0 - my / mass);
    } else {
        ox = (long)(SIDE - nw) / 2;
        oy = (long)(SIDE - nh) / 2;
    }
    for (size_t y = 0; y < nh; y++)
        for (size_t x = 0; x < nw; x++) {
            long tx = (long)x + ox, ty = (long)y + oy;
            if (tx < 0 || ty < 0 || tx >= SIDE || ty >= SIDE)
                continue; /* ink far off-centre: MNIST also clipped */
            float v = box[y * nw + x] / 255.0f;
            out[ty * SIDE + tx] = v < 0 ? 0 : v > 1 ? 1 : v;
        }
    return flags | PREP_RESIZED;
}

const char *prep_describe(unsigned flags, char *buf, size_t len)
{
    static const struct {
        unsigned flag;
        const char *name;
    } names[] = {{PREP_INVERTED, "inverted"}, {PREP_RESIZED, "resized"}, {PREP_EMPTY, "empty"}};
    if (!buf || len == 0)
        return buf;
    buf[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(flags & names[i].flag))
            continue;
        int n = snprintf(buf + used, len - used, "%s%s", used ? "+" : "", names[i].name);
        if (n < 0 || (size_t)n >= len - used)
            return buf;
        used += (size_t)n;
    }
    if (!used)
        snprintf(buf, len, "none");
    return buf;
}
