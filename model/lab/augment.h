/* augment.h - on-the-fly data augmentation for training: each training
 * digit is redrawn with a small random affine map (rotation, shear, scale,
 * translation), a smooth elastic deformation (a random displacement grid,
 * after Simard, Steinkraus & Platt 2003), a thicker or thinner stroke, a
 * random ink contrast on a random smooth background, sometimes dark on
 * light, and pixel noise - the variety real pictures have, so the posterior
 * covers more than MNIST's clean scans. The trainer then sends the result
 * through the serving canonicalisation (preprocess.h), exactly as a caller's
 * picture goes, and learns from what that makes of it.
 *
 * None of this is one of the test corruptions (corrupt.h): those stay a test.
 *
 * Deterministic: every draw comes from rng.h addressed by (seed, pass,
 * image index), so an augmented copy does not depend on threads or order.
 * Pure, thread-safe, no allocation.
 *
 * Part of the lab (model/lab/): linked by the tools and tests, never by
 * the daemon, which links only the runtime in model/.
 */
#ifndef BNN_AUGMENT_H
#define BNN_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

struct augment_config {
    double p;            /* probability that an image is augmented at all */
    double rotate_deg;   /* rotation ~ U(-r, r) degrees */
    double shear;        /* shear factor ~ U(-s, s) */
    double scale;        /* per-axis scale ~ U(1 - s, 1 + s) */
    double translate;    /* shift ~ U(-t, t) pixels per axis */
    double elastic_p;    /* probability of an elastic deformation */
    double elastic_px;   /* std of the control points' displacement, px */
    double stroke_p;     /* probability of a thicker or thinner stroke */
    double background_p; /* probability of a smooth non-black background */
    double contrast_min; /* ink amplitude ~ U(contrast_min, 1) */
    double invert_p;     /* probability of dark ink on a light page */
    double noise_p;      /* probability of pixel noise */
    double noise_sigma;  /* its Gaussian std ~ U(0, noise_sigma), of 0..1 */
};

/* The trainer's default (the shipped weights' augmentation). */
void augment_config_default(struct augment_config *a);

/* Everything off: augment_image copies. */
void augment_config_none(struct augment_config *a);

/* Checks ranges (probabilities in [0,1], ...); 0 or -1 with err filled. */
int augment_config_check(const struct augment_config *a, char *err, size_t err_len);

/* One plain line for the weights' metadata. */
char *augment_describe(const struct augment_config *a, char *buf, size_t len);

/* The augmented copy of in (28x28, 8-bit, MNIST convention) into out (may
 * not alias in); the draws are addressed by (seed, pass, index). */
void augment_image(uint8_t out[784], const uint8_t in[784], const struct augment_config *a, uint64_t seed,
                   uint32_t pass, uint64_t index);

#endif
