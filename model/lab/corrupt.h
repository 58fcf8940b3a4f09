/* corrupt.h - MNIST-C-style corruptions (Mu & Gilmer 2019, arXiv 1906.02337;
 * google-research/mnist-c corruptions.py), reimplemented in C, each at the
 * fixed default severity of corruptions.py, plus a rotation by any angle.
 *
 * Images are 28x28 uint8, row-major (row, col), light ink on dark as MNIST.
 * Randomness is Philox (rng.h) keyed by the caller's seed and addressed by
 * (corruption, image index, draw), so the corrupted copy of image i is the
 * same whatever the order, the thread or the --limit. No state, no globals;
 * every function is thread-safe. Output never aliases input unless stated.
 *
 * Where the C code differs from corruptions.py (an exact byte match is
 * impossible anyway: numpy's Mersenne Twister, skimage and ImageMagick
 * versions), the difference is stated on the corruption below.
 *   - All: values are computed in double on x = pixel/255 and written back
 *     as round(clip(x,0,1)*255) (numpy's astype(uint8) would truncate; the
 *     saved MNIST-C files went through PNG/uint8 in unknown ways).
 *   - shot_noise: Poisson by inversion of one uniform (exact distribution).
 *   - impulse_noise: each pixel independently flipped with p = 0.17, then
 *     salt or pepper 50/50 (skimage >= 0.19 semantics; older versions chose
 *     exactly ceil(0.17*784*0.5) coordinates with replacement per kind).
 *   - glass_blur: as corruptions.py (each pixel swapped with probability
 *     1/2 with a neighbour at offset in {-1,0}^2), including its vertical-
 *     only blur (gaussian(..., multichannel=True) on a 2-D array) and the
 *     uint8 truncation between the two blurs.
 *   - motion_blur: ImageMagick's kernel applied directly to the uint8 image
 *     (no PNG round trip, which is lossless anyway); angle ~ U(-45, 45) deg.
 *     Checked against ImageMagick 6.9 `-motion-blur 10x3+A`: within 1 grey
 *     level. canny, shear, rotate match skimage 0.19.3 exactly on 200 test
 *     digits, scale and brightness within 1 (rounding).
 *   - fog: ImageNet-C's plasma fractal (diamond-square on 256x256, wibble
 *     100, decay 1.4) with Philox uniforms; the top-left 28x28 is used.
 *   - zigzag, dotted_line: as corruptions.py (line_from_points' vertical-
 *     distance profile, its closing vertex (d, r_i / (2 (d - max_c)))).
 *   - canny_edges: skimage's canny (sigma 1, thresholds 0.1 / 0.2, masked
 *     Gaussian smoothing, Sobel, 4-sector interpolated non-maximum
 *     suppression, 8-connected hysteresis) reimplemented.
 *
 * Part of the lab (model/lab/): linked by the tools and tests, never by
 * the daemon, which links only the runtime in model/.
 */
#ifndef BNN_CORRUPT_H
#define BNN_CORRUPT_H

#include <stddef.h>
#include <stdint.h>

#define CORRUPT_SIDE 28
#define CORRUPT_PIXELS 784

/* In the order of corruptions.py's CORRUPTIONS list (identity excluded). */
enum corrupt_kind {
    CORRUPT_SHOT_NOISE = 0, /* Poisson(3x)/3: values k*85 */
    CORRUPT_IMPULSE_NOISE,  /* salt & pepper, amount 0.17 */
    CORRUPT_GLASS_BLUR,     /* sigma 0.7 (vertical), delta 1, 2 iterations */
    CORRUPT_MOTION_BLUR,    /* radius 10, sigma 3, angle U(-45,45) */
    CORRUPT_SHEAR,          /* +-0.4 rad about the centre */
    CORRUPT_SCALE,          /* digit shrunk to 70 % about the centre */
    CORRUPT_ROTATE,         /* +-0.4 rad (22.9 deg) about the centre */
    CORRUPT_BRIGHTNESS,     /* x + 0.5, clipped */
    CORRUPT_TRANSLATE,      /* (+-3, +-3) px, independent signs */
    CORRUPT_STRIPE,         /* columns 0-6 and 21-27 inverted */
    CORRUPT_FOG,            /* plasma fractal, (3.0, 1.4) */
    CORRUPT_SPATTER,        /* (0.65, 0.3, 1, 0.65, 1.5, 1) */
    CORRUPT_DOTTED_LINE,    /* one dashed line across */
    CORRUPT_ZIGZAG,         /* one zigzag line across */
    CORRUPT_CANNY_EDGES,    /* binary edge map of the digit */
    CORRUPT_COUNT
};

/* "shot_noise", ... as in corruptions.py; NULL for an out-of-range kind. */
const char *corrupt_name(enum corrupt_kind kind);

/* Name -> kind; returns 0 on success, -1 for an unknown name. */
int corrupt_parse(const char *name, enum corrupt_kind *out);

/* Writes the corrupted copy of in (784 bytes) to out (784 bytes; must not
 * alias in). seed and index (< 2^32) select the random draws: image i of a
 * set always gets the same draws for the same seed. Returns 0, or -1 for an
 * out-of-range kind or when fog's 512 KiB scratch cannot be allocated (out
 * untouched). */
int corrupt_apply(uint8_t *out, const uint8_t *in, enum corrupt_kind kind, uint64_t seed, uint64_t index);

/* Rotates about the image centre (13.5, 13.5) by degrees, bilinear, zero
 * outside: skimage's warp with inverse map [[cos, -sin], [sin, cos]] in
 * (x = col, y = row), so positive degrees turn the digit counter-clockwise on
 * screen - the transform of CORRUPT_ROTATE with a chosen angle. out must not
 * alias in. */
void corrupt_rotate(uint8_t *out, const uint8_t *in, double degrees);

#endif
