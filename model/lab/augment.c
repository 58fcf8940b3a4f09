/* augment.c - random redrawing of a training digit (augment.h).
 *
 * Order: geometry (one inverse warp: affine plus elastic grid, bilinear),
 * stroke width (3x3 grey dilation or erosion, blended), contrast and
 * background (ink amplitude over a smooth random field), polarity, noise;
 * then clipped and rounded to 8 bits, as a PNG would carry it.
 */
#include "augment.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "rng.h"

#define SIDE 28
#define PIXELS 784
#define CENTRE 13.5
#define GRID 5       /* elastic control points per side */
#define BG_GRID 3    /* background control points per side */
#define STREAM 0x600 /* rng.h stream of the augmentation */

/* Draws per image: uniforms [0, N_UNIFORM), normals for the grid after
 * them, normals for the noise after those; all inside one image's range. */
enum { N_UNIFORM = 32, U_GRID = 64, UNITS_PER_IMAGE = 1024 };
enum {
    D_AUGMENT,
    D_ROT,
    D_SHEAR,
    D_SX,
    D_SY,
    D_TX,
    D_TY,
    D_ELASTIC,
    D_STROKE,
    D_STROKE_KIND,
    D_STROKE_AMT,
    D_CONTRAST,
    D_BG,
    D_BG_LEVEL,
    D_BG_AMP,
    D_INVERT,
    D_NOISE,
    D_NOISE_SIGMA,
    D_BG_GRID /* 9 values */
};

void augment_config_default(struct augment_config *a)
{
    a->p = 0.75;
    a->rotate_deg = 15;
    a->shear = 0.25;
    a->scale = 0.15;
    a->translate = 2;
    a->elastic_p = 0.5;
    a->elastic_px = 1.0;
    a->stroke_p = 0.4;
    a->background_p = 0.3;
    a->contrast_min = 0.35;
    a->invert_p = 0.2;
    a->noise_p = 0.3;
    a->noise_sigma = 0.12;
}

void augment_config_none(struct augment_config *a)
{
    memset(a, 0, sizeof *a);
    a->contrast_min = 1;
}

int augment_config_check(const struct augment_config *a, char *err, size_t err_len)
{
    const double probs[] = {a->p, a->elastic_p, a->stroke_p, a->background_p, a->invert_p, a->noise_p};
    for (size_t i = 0; i < sizeof probs / sizeof probs[0]; i++)
        if (!(probs[i] >= 0 && probs[i] <= 1)) {
            snprintf(err, err_len, "augmentation probability: expected in [0, 1], got %g", probs[i]);
            return -1;
        }
    if (!(a->rotate_deg >= 0 && a->rotate_deg <= 90) || !(a->shear >= 0 && a->shear <= 1) ||
        !(a->scale >= 0 && a->scale < 1) || !(a->translate >= 0 && a->translate <= 10) ||
        !(a->elastic_px >= 0 && a->elastic_px <= 5) || !(a->contrast_min > 0 && a->contrast_min <= 1) ||
        !(a->noise_sigma >= 0 && a->noise_sigma <= 1)) {
        snprintf(err, err_len,
                 "augmentation: expected rotate 0..90, shear 0..1, scale 0..<1, translate 0..10, "
                 "elastic 0..5, contrast (0,1], noise 0..1");
        return -1;
    }
    return 0;
}

char *augment_describe(const struct augment_config *a, char *buf, size_t len)
{
    if (a->p <= 0) {
        snprintf(buf, len, "none");
        return buf;
    }
    snprintf(buf, len,
             "p %g: rotation U(+-%g deg), shear U(+-%g), scale U(1+-%g) per axis, shift U(+-%g px); "
             "elastic grid %dx%d sd %g px (p %g); stroke dilate/erode (p %g); ink contrast U(%g,1) over "
             "a smooth background (p %g); dark on light (p %g); Gaussian noise sd U(0,%g) (p %g); "
             "then the serving canonicalisation",
             a->p, a->rotate_deg, a->shear, a->scale, a->translate, GRID, GRID, a->elastic_px, a->elastic_p,
             a->stroke_p, a->contrast_min, a->background_p, a->invert_p, a->noise_sigma, a->noise_p);
    return buf;
}

/* Bilinear sample of img at (x, y), zero outside. */
static float sample(const float *img, double x, double y)
{
    double fx = floor(x), fy = floor(y), ax = x - fx, ay = y - fy, v = 0;
    int x0 = (int)fx, y0 = (int)fy;
    for (int dy = 0; dy <= 1; dy++)
        for (int dx = 0; dx <= 1; dx++) {
            int xx = x0 + dx, yy = y0 + dy;
            if (xx < 0 || yy < 0 || xx >= SIDE || yy >= SIDE)
                continue;
            v += (dx ? ax : 1 - ax) * (dy ? ay : 1 - ay) * img[yy * SIDE + xx];
        }
    return (float)v;
}

/* A smooth field from a g x g grid of control values (row-major),
 * interpolated with smoothstep weights over the 28x28 image. */
static double grid_at(const float *ctrl, int g, int x, int y)
{
    double gx = (double)x / (SIDE - 1) * (g - 1), gy = (double)y / (SIDE - 1) * (g - 1);
    int ix = (int)gx < g - 1 ? (int)gx : g - 2, iy = (int)gy < g - 1 ? (int)gy : g - 2;
    double tx = gx - ix, ty = gy - iy;
    tx = tx * tx * (3 - 2 * tx);
    ty = ty * ty * (3 - 2 * ty);
    const float *c = ctrl + iy * g + ix;
    return (1 - ty) * ((1 - tx) * c[0] + tx * c[1]) + ty * ((1 - tx) * c[g] + tx * c[g + 1]);
}

/* Affine map (inverse: output -> source) and elastic grid in one warp. */
static void warp(float *out, const float *in, const float *u, const float *grid, int elastic,
                 const struct augment_config *a)
{
    double th = (2 * u[D_ROT] - 1) * a->rotate_deg * M_PI / 180, sh = (2 * u[D_SHEAR] - 1) * a->shear;
    double sx = 1 + (2 * u[D_SX] - 1) * a->scale, sy = 1 + (2 * u[D_SY] - 1) * a->scale;
    double tx = (2 * u[D_TX] - 1) * a->translate, ty = (2 * u[D_TY] - 1) * a->translate;
    double c = cos(th), s = sin(th);
    /* M = R(th) [[1, sh], [0, 1]] diag(1/sx, 1/sy) maps output to source */
    double m00 = c / sx, m01 = (c * sh - s) / sy, m10 = s / sx, m11 = (s * sh + c) / sy;
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            double ox = x - CENTRE - tx, oy = y - CENTRE - ty;
            double px = m00 * ox + m01 * oy + CENTRE, py = m10 * ox + m11 * oy + CENTRE;
            if (elastic) {
                px += grid_at(grid, GRID, x, y) * a->elastic_px;
                py += grid_at(grid + GRID * GRID, GRID, x, y) * a->elastic_px;
            }
            out[y * SIDE + x] = sample(in, px, py);
        }
}

/* Blends img with its 3x3-cross grey dilation (thicker) or erosion
 * (thinner) by amount in (0, 1]. */
static void stroke(float *img, float *tmp, int thicker, double amount)
{
    static const int dx[] = {0, 1, -1, 0, 0}, dy[] = {0, 0, 0, 1, -1};
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            float b = img[y * SIDE + x];
            for (int k = 1; k < 5; k++) {
                int xx = x + dx[k], yy = y + dy[k];
                float v = xx < 0 || yy < 0 || xx >= SIDE || yy >= SIDE ? 0 : img[yy * SIDE + xx];
                b = thicker ? (v > b ? v : b) : (v < b ? v : b);
            }
            tmp[y * SIDE + x] = b;
        }
    for (int i = 0; i < PIXELS; i++)
        img[i] = (float)((1 - amount) * img[i] + amount * tmp[i]);
}

/* Contrast, background, polarity and noise, then 8 bits. */
static void paint(uint8_t *out, const float *ink, const float *u, const float *noise,
                  const struct augment_config *a)
{
    double contrast = a->contrast_min + (1 - a->contrast_min) * u[D_CONTRAST];
    int background = u[D_BG] < a->background_p, invert = u[D_INVERT] < a->invert_p;
    double level = 0.6 * u[D_BG_LEVEL], amp = 0.3 * u[D_BG_AMP];
    double sigma = u[D_NOISE] < a->noise_p ? a->noise_sigma * u[D_NOISE_SIGMA] : 0;
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            int i = y * SIDE + x;
            double page = background ? level + amp * (grid_at(u + D_BG_GRID, BG_GRID, x, y) - 0.5) : 0;
            page = page < 0 ? 0 : page > 1 ? 1 : page;
            double v = page + contrast * ink[i] * (1 - page);
            if (invert)
                v = 1 - v;
            v += sigma * noise[i];
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            out[i] = (uint8_t)lround(v * 255);
        }
}

void augment_image(uint8_t out[784], const uint8_t in[784], const struct augment_config *a, uint64_t seed,
                   uint32_t pass, uint64_t index)
{
    float u[N_UNIFORM], grid[2 * GRID * GRID], noise[PIXELS], img[PIXELS], tmp[PIXELS];
    uint64_t base = index * UNITS_PER_IMAGE;
    rng_uniforms(u, N_UNIFORM, seed, STREAM, pass, base);
    if (!(u[D_AUGMENT] < a->p)) {
        memcpy(out, in, PIXELS);
        return;
    }
    rng_normals(grid, 2 * GRID * GRID, seed, STREAM, pass, base + U_GRID);
    rng_normals(noise, PIXELS, seed, STREAM + 1, pass, index * PIXELS);
    for (int i = 0; i < PIXELS; i++)
        tmp[i] = in[i] * (1.0f / 255.0f);
    warp(img, tmp, u, grid, u[D_ELASTIC] < a->elastic_p, a);
    if (u[D_STROKE] < a->stroke_p)
        stroke(img, tmp, u[D_STROKE_KIND] < 0.5f, 0.3 + 0.7 * u[D_STROKE_AMT]);
    paint(out, img, u, noise, a);
}
