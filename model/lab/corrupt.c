/* corrupt.c - the 15 MNIST-C corruptions (see corrupt.h for the recipe
 * sources and every deviation from corruptions.py).
 *
 * Images are worked on as doubles x = pixel / 255, (row, col) row-major;
 * skimage's (x, y) is (col, row). Random draws come from rng.h at the
 * address (seed, stream = CORRUPT_STREAM + kind, pass = image index, unit =
 * a per-corruption draw counter), so no draw depends on any other image.
 */
#include "corrupt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "filters.h"
#include "rng.h"

#define SIDE CORRUPT_SIDE
#define NPIX CORRUPT_PIXELS
#define CORRUPT_STREAM 0x4d430000u /* "MC": separates these draws from inference's */
#define CENTRE 13.5                /* (27 / 2): skimage's fixed point */
#define PLASMA_SIZE 256

static const char *const corrupt_names[CORRUPT_COUNT] = {
    "shot_noise", "impulse_noise", "glass_blur",  "motion_blur", "shear",
    "scale",      "rotate",        "brightness",  "translate",   "stripe",
    "fog",        "spatter",       "dotted_line", "zigzag",      "canny_edges",
};

const char *corrupt_name(enum corrupt_kind kind)
{
    if ((int)kind < 0 || kind >= CORRUPT_COUNT)
        return NULL;
    return corrupt_names[kind];
}

int corrupt_parse(const char *name, enum corrupt_kind *out)
{
    for (int k = 0; k < CORRUPT_COUNT; k++) {
        if (strcmp(name, corrupt_names[k]) == 0) {
            *out = (enum corrupt_kind)k;
            return 0;
        }
    }
    return -1;
}

/* ---- helpers ------------------------------------------------------------ */

struct draws {
    uint64_t seed;
    uint32_t stream, pass;
    uint64_t next; /* next unit address */
};

static double draw_uniform(struct draws *d)
{
    float u;
    rng_uniforms(&u, 1, d->seed, d->stream, d->pass, d->next++);
    return u;
}

static void to_unit(double *x, const uint8_t *in)
{
    for (int i = 0; i < NPIX; i++)
        x[i] = in[i] / 255.0;
}

static double clip01(double v)
{
    return v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v);
}

static void from_unit(uint8_t *out, const double *x)
{
    for (int i = 0; i < NPIX; i++)
        out[i] = (uint8_t)lround(clip01(x[i]) * 255.0);
}

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* corruptions.py keeps the centre (13.5, 13.5) fixed: t = c - M c. */
static void warp_about_centre(double *out, const double *in, const double m[4])
{
    double t[2] = {CENTRE * (1.0 - m[0] - m[1]), CENTRE * (1.0 - m[2] - m[3])};
    filt_warp(out, in, m, t);
}

static double random_sign(struct draws *d)
{
    return draw_uniform(d) < 0.5 ? -1.0 : 1.0;
}

/* ---- noise -------------------------------------------------------------- */

/* Poisson(lambda) by inversion of u in (0,1); lambda <= 3 here, so the loop
 * ends within a few terms (capped for safety against u ~ 1 - 2^-24). */
static unsigned poisson_inverse(double lambda, double u)
{
    double p = exp(-lambda), cdf = p;
    unsigned k = 0;
    while (u > cdf && k < 64) {
        k++;
        p *= lambda / k;
        cdf += p;
    }
    return k;
}

static void shot_noise(double *x, struct draws *d)
{
    float u[NPIX];
    rng_uniforms(u, NPIX, d->seed, d->stream, d->pass, 0);
    for (int i = 0; i < NPIX; i++)
        x[i] = clip01(poisson_inverse(3.0 * x[i], u[i]) / 3.0);
}

static void impulse_noise(double *x, struct draws *d)
{
    float u[2 * NPIX];
    rng_uniforms(u, 2 * NPIX, d->seed, d->stream, d->pass, 0);
    for (int i = 0; i < NPIX; i++) {
        if (u[2 * i] < 0.17f)
            x[i] = u[2 * i + 1] < 0.5f ? 1.0 : 0.0;
    }
}

/* ---- blurs -------------------------------------------------------------- */

static void glass_blur(double *x, struct draws *d)
{
    const double sigma = 0.7;
    const int delta = 1, iterations = 2;
    double y[NPIX];
    uint8_t u8[NPIX];
    filt_blur_axis(y, x, sigma, 0, FILT_NEAREST);
    for (int i = 0; i < NPIX; i++)
        u8[i] = (uint8_t)(clip01(y[i]) * 255.0); /* np.uint8 truncates */
    for (int it = 0; it < iterations; it++) {
        for (int h = SIDE - delta; h > delta; h--) {
            for (int w = SIDE - delta; w > delta; w--) {
                /* np.random.choice([True, False]): swap with probability 1/2 */
                if (draw_uniform(d) >= 0.5)
                    continue;
                /* randint(-delta, delta, size=2): {-1, 0} each, dx first */
                int dx = (int)floor(draw_uniform(d) * 2 * delta) - delta;
                int dy = (int)floor(draw_uniform(d) * 2 * delta) - delta;
                int a = h * SIDE + w, b = (h + dy) * SIDE + (w + dx);
                uint8_t tmp = u8[a];
                u8[a] = u8[b];
                u8[b] = tmp;
            }
        }
    }
    for (int i = 0; i < NPIX; i++)
        y[i] = u8[i] / 255.0;
    filt_blur_axis(x, y, sigma, 0, FILT_NEAREST);
}

/* ImageMagick MotionBlurImage(radius 10, sigma 3, angle): a one-sided
 * Gaussian kernel of width 2 ceil(r) + 1 along the angle, edge pixels
 * replicated (ImageMagick's default virtual pixels). */
static void motion_blur(double *x, struct draws *d)
{
    const double radius = 10.0, sigma = 3.0;
    const int width = 2 * (int)ceil(radius) + 1;
    double angle = (-45.0 + 90.0 * draw_uniform(d)) * M_PI / 180.0;
    double k[2 * 10 + 1];
    int ox[2 * 10 + 1], oy[2 * 10 + 1];
    double sum = 0.0;
    for (int i = 0; i < width; i++) {
        sum += k[i] = exp(-(double)(i * i) / (2.0 * sigma * sigma));
        ox[i] = (int)ceil(i * cos(angle) - 0.5);
        oy[i] = (int)ceil(i * sin(angle) - 0.5);
    }
    double in[NPIX];
    /* ImageMagick reads the 8-bit image: quantise first, as the PNG did */
    for (int i = 0; i < NPIX; i++)
        in[i] = lround(clip01(x[i]) * 255.0) / 255.0;
    for (int row = 0; row < SIDE; row++) {
        for (int col = 0; col < SIDE; col++) {
            double acc = 0.0;
            for (int i = 0; i < width; i++) {
                int c = clampi(col + ox[i], 0, SIDE - 1), r = clampi(row + oy[i], 0, SIDE - 1);
                acc += k[i] * in[r * SIDE + c];
            }
            x[row * SIDE + col] = acc / sum;
        }
    }
}

/* ---- affine ------------------------------------------------------------- */

static void shear(double *x, struct draws *d)
{
    double s = 0.4 * random_sign(d);
    double m[4] = {1.0, -sin(s), 0.0, cos(s)}; /* AffineTransform(shear=s) */
    double y[NPIX];
    warp_about_centre(y, x, m);
    memcpy(x, y, sizeof y);
}

static void scale(double *x)
{
    double m[4] = {1.0 / 0.7, 0.0, 0.0, 1.0 / 0.7};
    double y[NPIX];
    warp_about_centre(y, x, m);
    memcpy(x, y, sizeof y);
}

static void rotate_rad(double *out, const double *in, double a)
{
    double m[4] = {cos(a), -sin(a), sin(a), cos(a)};
    warp_about_centre(out, in, m);
}

static void translate(double *x, struct draws *d)
{
    double m[4] = {1.0, 0.0, 0.0, 1.0};
    double t[2];
    t[0] = 3.0 * random_sign(d);
    t[1] = 3.0 * random_sign(d);
    double y[NPIX];
    filt_warp(y, x, m, t);
    memcpy(x, y, sizeof y);
}

void corrupt_rotate(uint8_t *out, const uint8_t *in, double degrees)
{
    double x[NPIX], y[NPIX];
    to_unit(x, in);
    rotate_rad(y, x, degrees * M_PI / 180.0);
    from_unit(out, y);
}

/* ---- overlays ----------------------------------------------------------- */

static void stripe(double *x)
{
    for (int row = 0; row < SIDE; row++) {
        for (int col = 0; col < SIDE; col++) {
            if (col < 7 || col >= 21)
                x[row * SIDE + col] = 1.0 - x[row * SIDE + col];
        }
    }
}

/* ImageNet-C's plasma_fractal: diamond-square on a torus of size n (a power
 * of two), wibble starting at 100 and divided by decay per level, each new
 * point the mean of its 4 neighbours plus wibble * U(-wibble, wibble); then
 * normalised to [0, 1] over the whole map. */
static void plasma_fractal(double *map, size_t n, double decay, struct draws *d)
{
    double wibble = 100.0;
    map[0] = 0.0;
    float u[PLASMA_SIZE];
#define AT(r, c) map[(size_t)(r)*n + (size_t)(c)]
#define WIB(k) (wibble * (-wibble + 2.0 * wibble * u[(k)]))
    for (size_t s = n; s >= 2; s /= 2) {
        size_t cells = n / s, h = s / 2;
        /* squares: centre = mean of its 4 corners (wrapping) */
        for (size_t i = 0; i < cells; i++) {
            rng_uniforms(u, cells, d->seed, d->stream, d->pass, d->next);
            d->next += cells;
            for (size_t j = 0; j < cells; j++) {
                size_t i1 = (i + 1) % cells, j1 = (j + 1) % cells;
                double sum = AT(i * s, j * s) + AT(i1 * s, j * s) + AT(i * s, j1 * s) + AT(i1 * s, j1 * s);
                AT(h + i * s, h + j * s) = sum / 4.0 + WIB(j);
            }
        }
        /* diamonds on the rows of corners: left/right corners, up/down centres */
        for (size_t i = 0; i < cells; i++) {
            rng_uniforms(u, cells, d->seed, d->stream, d->pass, d->next);
            d->next += cells;
            for (size_t j = 0; j < cells; j++) {
                size_t im = (i + cells - 1) % cells, j1 = (j + 1) % cells;
                double sum = AT(h + i * s, h + j * s) + AT(h + im * s, h + j * s) + AT(i * s, j * s) +
                             AT(i * s, j1 * s);
                AT(i * s, h + j * s) = sum / 4.0 + WIB(j);
            }
        }
        /* diamonds on the columns of corners */
        for (size_t i = 0; i < cells; i++) {
            rng_uniforms(u, cells, d->seed, d->stream, d->pass, d->next);
            d->next += cells;
            for (size_t j = 0; j < cells; j++) {
                size_t jm = (j + cells - 1) % cells, i1 = (i + 1) % cells;
                double sum = AT(h + i * s, h + j * s) + AT(h + i * s, h + jm * s) + AT(i * s, j * s) +
                             AT(i1 * s, j * s);
                AT(h + i * s, j * s) = sum / 4.0 + WIB(j);
            }
        }
        wibble /= decay;
    }
#undef AT
#undef WIB
    double lo = map[0], hi = map[0];
    for (size_t i = 0; i < n * n; i++) {
        if (map[i] < lo)
            lo = map[i];
        if (map[i] > hi)
            hi = map[i];
    }
    double span = hi - lo > 0.0 ? hi - lo : 1.0;
    for (size_t i = 0; i < n * n; i++)
        map[i] = (map[i] - lo) / span;
}

static int fog(double *x, struct draws *d)
{
    const double strength = 3.0, decay = 1.4;
    double *map = malloc(sizeof *map * PLASMA_SIZE * PLASMA_SIZE);
    if (!map)
        return -1;
    plasma_fractal(map, PLASMA_SIZE, decay, d);
    double m = 0.0;
    for (int i = 0; i < NPIX; i++)
        m = x[i] > m ? x[i] : m;
    for (int row = 0; row < SIDE; row++) {
        for (int col = 0; col < SIDE; col++) {
            double v = x[row * SIDE + col] + strength * map[row * PLASMA_SIZE + col];
            x[row * SIDE + col] = clip01(v * m / (m + strength));
        }
    }
    free(map);
    return 0;
}

/* ImageNet-C's spatter, "mud" branch, with MNIST-C's parameters. */
static void spatter(double *x, struct draws *d)
{
    const double loc = 0.65, scale_ = 0.3, sigma = 1.0, threshold = 0.65, sigma_mask = 1.5;
    float z[NPIX];
    double liquid[NPIX], blurred[NPIX], mask[NPIX], m[NPIX];
    rng_normals(z, NPIX, d->seed, d->stream, d->pass, 0);
    for (int i = 0; i < NPIX; i++)
        liquid[i] = loc + scale_ * z[i];
    filt_blur(blurred, liquid, sigma, FILT_NEAREST);
    for (int i = 0; i < NPIX; i++) {
        if (blurred[i] < threshold)
            blurred[i] = 0.0;
        mask[i] = blurred[i] > threshold ? 1.0 : 0.0;
    }
    filt_blur(m, mask, sigma_mask, FILT_NEAREST);
    for (int i = 0; i < NPIX; i++) {
        if (m[i] < 0.8)
            m[i] = 0.0;
        x[i] = clip01(x[i] * (1.0 - m[i]) + 63.0 / 255.0 * m[i]);
    }
}

/* corruptions.py's line_from_points: intensity log(1 - dist/2.3) + 1 by the
 * vertical distance to the line through (c0, r0) and (c1, r1), zero left of
 * floor(c0) and from ceil(c1) on; added to acc and clipped to [0, 1]. */
static void add_line(double *acc, double c0, double r0, double c1, double r1)
{
    if (c1 == c0)
        return;
    double slope = (r1 - r0) / (c1 - c0);
    int left = (int)floor(c0), right = (int)ceil(c1);
    for (int row = 0; row < SIDE; row++) {
        for (int col = 0; col < SIDE; col++) {
            if (col < left || col >= right)
                continue;
            double dist = fabs(row - (slope * (col - c0) + r0));
            if (dist > 2.3 - 1e-10)
                dist = 2.3 - 1e-10;
            double v = clip01(log(1.0 - dist / 2.3) + 1.0);
            acc[row * SIDE + col] = clip01(acc[row * SIDE + col] + v);
        }
    }
}

static void dotted_line(double *x, struct draws *d)
{
    double line[NPIX] = {0};
    int r0 = (int)floor(draw_uniform(d) * 27.0), r1 = (int)floor(draw_uniform(d) * 27.0); /* randint(0, 27) */
    add_line(line, 0.0, r0, 27.0, r1);
    for (int c = 0; c < 27; c += 4) { /* 2 px off, 2 px on */
        for (int row = 0; row < SIDE; row++) {
            line[row * SIDE + c] = 0.0;
            if (c + 1 < SIDE)
                line[row * SIDE + c + 1] = 0.0;
        }
    }
    for (int i = 0; i < NPIX; i++)
        x[i] = clip01(x[i] + line[i]);
}

static void zigzag(double *x, struct draws *d)
{
    const double a = 2.0, b = 2.0, c0 = 2.0, c1 = 25.0;
    int r0 = (int)floor(draw_uniform(d) * 27.0);
    int r1 = r0 + (int)floor(draw_uniform(d) * 10.0) - 5; /* randint(-5, 5) */
    double theta = atan((r1 - r0) / (c1 - c0));
    double len = (c1 - c0) / cos(theta);
    /* the zigzag along the x axis: (0,0), ((2i+1)a, (-1)^i b), ..., (len, .) */
    double vx[16], vy[16];
    int nv = 0;
    vx[nv] = 0.0;
    vy[nv++] = 0.0;
    int last = (int)floor((len - a) / (2.0 * a));
    for (int i = 0; i <= last && nv < 15; i++) {
        vx[nv] = (2 * i + 1) * a;
        vy[nv++] = (i % 2 ? -1.0 : 1.0) * b;
    }
    /* corruptions.py's closing vertex, verbatim: (d, r_i / (2 (d - max_c)))
     * with max_c = 2a floor(d / 2a) and r_i the last zigzag vertex's row */
    double max_c = 2.0 * a * floor(len / (2.0 * a));
    if (len != max_c) {
        vx[nv] = len;
        vy[nv] = vy[nv - 1] / (2.0 * (len - max_c));
        nv++;
    }
    double zz[NPIX] = {0};
    double ct = cos(theta), st = sin(theta);
    for (int i = 0; i + 1 < nv; i++) {
        double ca = vx[i] * ct - vy[i] * st + c0, ra = vx[i] * st + vy[i] * ct + r0;
        double cb = vx[i + 1] * ct - vy[i + 1] * st + c0, rb = vx[i + 1] * st + vy[i + 1] * ct + r0;
        add_line(zz, ca, ra, cb, rb);
    }
    for (int i = 0; i < NPIX; i++)
        x[i] = clip01(x[i] + zz[i]);
}

/* ---- dispatch ----------------------------------------------------------- */

int corrupt_apply(uint8_t *out, const uint8_t *in, enum corrupt_kind kind, uint64_t seed, uint64_t index)
{
    if ((int)kind < 0 || kind >= CORRUPT_COUNT)
        return -1;
    struct draws d = {seed, CORRUPT_STREAM + (uint32_t)kind, (uint32_t)index, 0};
    double x[NPIX];
    to_unit(x, in);
    switch (kind) {
    case CORRUPT_SHOT_NOISE:
        shot_noise(x, &d);
        break;
    case CORRUPT_IMPULSE_NOISE:
        impulse_noise(x, &d);
        break;
    case CORRUPT_GLASS_BLUR:
        glass_blur(x, &d);
        break;
    case CORRUPT_MOTION_BLUR:
        motion_blur(x, &d);
        break;
    case CORRUPT_SHEAR:
        shear(x, &d);
        break;
    case CORRUPT_SCALE:
        scale(x);
        break;
    case CORRUPT_ROTATE: {
        double y[NPIX];
        rotate_rad(y, x, 0.4 * random_sign(&d));
        memcpy(x, y, sizeof y);
        break;
    }
    case CORRUPT_BRIGHTNESS:
        for (int i = 0; i < NPIX; i++)
            x[i] = clip01(x[i] + 0.5); /* HSV value + 0.5 on gray */
        break;
    case CORRUPT_TRANSLATE:
        translate(x, &d);
        break;
    case CORRUPT_STRIPE:
        stripe(x);
        break;
    case CORRUPT_FOG:
        if (fog(x, &d) != 0)
            return -1;
        break;
    case CORRUPT_SPATTER:
        spatter(x, &d);
        break;
    case CORRUPT_DOTTED_LINE:
        dotted_line(x, &d);
        break;
    case CORRUPT_ZIGZAG:
        zigzag(x, &d);
        break;
    case CORRUPT_CANNY_EDGES:
        filt_canny(x, 1.0, 0.1, 0.2);
        break; /* canny(x), its defaults */
    case CORRUPT_COUNT:
        return -1;
    }
    from_unit(out, x);
    return 0;
}
