/* filters.c - scipy.ndimage / skimage operations on one 28x28 image
 * (filters.h). */
#include "filters.h"

#include <math.h>

#define SIDE CORRUPT_SIDE
#define NPIX CORRUPT_PIXELS
#define MAX_RADIUS 8 /* Gaussian radius for sigma <= 1.875 */

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* scipy.ndimage's Gaussian: radius int(truncate * sigma + 0.5), truncate 4,
 * weights exp(-k^2 / (2 sigma^2)) normalised. Returns the radius. */
static int gauss_kernel(double w[2 * MAX_RADIUS + 1], double sigma)
{
    int r = (int)(4.0 * sigma + 0.5);
    if (r > MAX_RADIUS)
        r = MAX_RADIUS;
    double sum = 0.0;
    for (int k = -r; k <= r; k++)
        sum += w[k + r] = exp(-0.5 * k * k / (sigma * sigma));
    for (int k = 0; k <= 2 * r; k++)
        w[k] /= sum;
    return r;
}

void filt_blur_axis(double *out, const double *in, double sigma, int axis, enum filt_border mode)
{
    double w[2 * MAX_RADIUS + 1];
    int r = gauss_kernel(w, sigma);
    for (int row = 0; row < SIDE; row++) {
        for (int col = 0; col < SIDE; col++) {
            double acc = 0.0;
            for (int k = -r; k <= r; k++) {
                int rr = row, cc = col;
                if (axis == 0)
                    rr += k;
                else
                    cc += k;
                if (rr < 0 || rr >= SIDE || cc < 0 || cc >= SIDE) {
                    if (mode == FILT_CONSTANT)
                        continue;
                    rr = clampi(rr, 0, SIDE - 1);
                    cc = clampi(cc, 0, SIDE - 1);
                }
                acc += w[k + r] * in[rr * SIDE + cc];
            }
            out[row * SIDE + col] = acc;
        }
    }
}

void filt_blur(double *out, const double *in, double sigma, enum filt_border mode)
{
    double tmp[NPIX];
    filt_blur_axis(tmp, in, sigma, 0, mode);
    filt_blur_axis(out, tmp, sigma, 1, mode);
}

void filt_warp(double *out, const double *in, const double m[4], const double t[2])
{
    for (int row = 0; row < SIDE; row++) {
        for (int col = 0; col < SIDE; col++) {
            double xi = m[0] * col + m[1] * row + t[0];
            double yi = m[2] * col + m[3] * row + t[1];
            double x0 = floor(xi), y0 = floor(yi);
            double fx = xi - x0, fy = yi - y0;
            double acc = 0.0;
            for (int dy = 0; dy <= 1; dy++) {
                for (int dx = 0; dx <= 1; dx++) {
                    double wgt = (dx ? fx : 1.0 - fx) * (dy ? fy : 1.0 - fy);
                    double c = x0 + dx, r = y0 + dy;
                    if (wgt == 0.0 || c < 0 || c > SIDE - 1 || r < 0 || r > SIDE - 1)
                        continue;
                    acc += wgt * in[(int)r * SIDE + (int)c];
                }
            }
            out[row * SIDE + col] = acc;
        }
    }
}

static double at_reflect(const double *img, int r, int c)
{
    /* scipy 'reflect': d c b a | a b c d */
    if (r < 0)
        r = -r - 1;
    if (r >= SIDE)
        r = 2 * SIDE - r - 1;
    if (c < 0)
        c = -c - 1;
    if (c >= SIDE)
        c = 2 * SIDE - c - 1;
    return img[r * SIDE + c];
}

/* Canny's first step: the masked smoothing gaussian(x) / (gaussian(mask) +
 * eps), mode constant, then ndi.sobel along axis 0 (gi: d/drow) and axis 1
 * (gj: d/dcol), and the gradient's magnitude. */
static void canny_gradients(double *gi, double *gj, double *mag, const double *x, double sigma)
{
    double ones[NPIX], bleed[NPIX], smooth[NPIX];
    for (int i = 0; i < NPIX; i++)
        ones[i] = 1.0;
    filt_blur(bleed, ones, sigma, FILT_CONSTANT);
    filt_blur(smooth, x, sigma, FILT_CONSTANT);
    for (int i = 0; i < NPIX; i++)
        smooth[i] /= bleed[i] + 2.220446049250313e-16;
    for (int r = 0; r < SIDE; r++) {
        for (int c = 0; c < SIDE; c++) {
            double si = 0.0, sj = 0.0;
            for (int k = -1; k <= 1; k++) {
                double wk = k == 0 ? 2.0 : 1.0;
                si += wk * (at_reflect(smooth, r + 1, c + k) - at_reflect(smooth, r - 1, c + k));
                sj += wk * (at_reflect(smooth, r + k, c + 1) - at_reflect(smooth, r + k, c - 1));
            }
            gi[r * SIDE + c] = si;
            gj[r * SIDE + c] = sj;
            mag[r * SIDE + c] = hypot(si, sj);
        }
    }
}

/* Canny's second step, non-maximum suppression: lmax[p] = 1 where the
 * magnitude is at least its two neighbours' along the gradient, each
 * interpolated between the two pixels the direction falls between. The
 * four sectors in skimage's order, a later one overriding on ties; the
 * eroded mask drops the border. */
static void canny_nonmax(unsigned char *lmax, const double *gi, const double *gj, const double *mag)
{
#define M(r, c) mag[(r)*SIDE + (c)]
    for (int r = 1; r < SIDE - 1; r++) {
        for (int c = 1; c < SIDE - 1; c++) {
            int p = r * SIDE + c;
            double is = gi[p], js = gj[p], ai = fabs(is), aj = fabs(js), m = mag[p];
            if (!(m > 0.0))
                continue;
            int same = (is >= 0 && js >= 0) || (is <= 0 && js <= 0);
            int opposite = (is <= 0 && js >= 0) || (is >= 0 && js <= 0);
            if (same && ai >= aj) { /* 0-45 deg */
                double w = aj / ai;
                int plus = M(r + 1, c + 1) * w + M(r + 1, c) * (1 - w) <= m;
                int minus = M(r - 1, c - 1) * w + M(r - 1, c) * (1 - w) <= m;
                lmax[p] = (unsigned char)(plus && minus);
            }
            if (same && ai <= aj) { /* 45-90 */
                double w = ai / aj;
                int plus = M(r + 1, c + 1) * w + M(r, c + 1) * (1 - w) <= m;
                int minus = M(r - 1, c - 1) * w + M(r, c - 1) * (1 - w) <= m;
                lmax[p] = (unsigned char)(plus && minus);
            }
            if (opposite && ai <= aj) { /* 90-135 */
                double w = ai / aj;
                int plus = M(r - 1, c + 1) * w + M(r, c + 1) * (1 - w) <= m;
                int minus = M(r + 1, c - 1) * w + M(r, c - 1) * (1 - w) <= m;
                lmax[p] = (unsigned char)(plus && minus);
            }
            if (opposite && ai >= aj) { /* 135-180 */
                double w = aj / ai;
                int plus = M(r - 1, c + 1) * w + M(r - 1, c) * (1 - w) <= m;
                int minus = M(r + 1, c - 1) * w + M(r + 1, c) * (1 - w) <= m;
                lmax[p] = (unsigned char)(plus && minus);
            }
        }
    }
#undef M
}

/* Canny's last step, hysteresis: keep the 8-connected components of
 * (lmax & mag >= low) that contain a pixel with mag >= high, by a flood
 * fill from the strong pixels. */
static void canny_hysteresis(double *x, const unsigned char *lmax, const double *mag, double low, double high)
{
    unsigned char keep[NPIX] = {0};
    int stack[NPIX], top = 0;
    for (int p = 0; p < NPIX; p++) {
        if (lmax[p] && mag[p] >= high && !keep[p]) {
            keep[p] = 1;
            stack[top++] = p;
        }
    }
    while (top > 0) {
        int p = stack[--top], r = p / SIDE, c = p % SIDE;
        for (int dr = -1; dr <= 1; dr++) {
            for (int dc = -1; dc <= 1; dc++) {
                int rr = r + dr, cc = c + dc;
                if (rr < 0 || rr >= SIDE || cc < 0 || cc >= SIDE)
                    continue;
                int q = rr * SIDE + cc;
                if (!keep[q] && lmax[q] && mag[q] >= low) {
                    keep[q] = 1;
                    stack[top++] = q;
                }
            }
        }
    }
    for (int i = 0; i < NPIX; i++)
        x[i] = keep[i] ? 1.0 : 0.0;
}

void filt_canny(double *x, double sigma, double low, double high)
{
    double gi[NPIX], gj[NPIX], mag[NPIX];
    unsigned char lmax[NPIX] = {0};
    canny_gradients(gi, gj, mag, x, sigma);
    canny_nonmax(lmax, gi, gj, mag);
    canny_hysteresis(x, lmax, mag, low, high);
}
