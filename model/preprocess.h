/* preprocess.h - bring an arbitrary grayscale picture to MNIST's convention:
 * light digit on a dark background, the ink's bounding box scaled to fit
 * 20x20 (aspect kept), centred by centre of mass in 28x28, values in [0,1].
 * A 28x28 picture that is already light-on-dark is used as it is.
 */
#ifndef BNN_PREPROCESS_H
#define BNN_PREPROCESS_H

#include <stddef.h>
#include <stdint.h>

/* What was done, as bit flags (for the response's "preprocessing"). */
enum prep_flags {
    PREP_NONE = 0,
    PREP_INVERTED = 1u << 0, /* dark ink on light page was inverted */
    PREP_RESIZED = 1u << 1,  /* bounding box scaled to 20x20 and centred */
    PREP_EMPTY = 1u << 2     /* no ink found: an all-background image */
};

/* gray: (height, width) 8-bit, row-major, stride = width. out: 784 floats.
 * Returns the flags. Never fails for width, height >= 1. */
unsigned prep_to_mnist(float out[784], const uint8_t *gray, size_t width, size_t height);

/* "none", "inverted", "resized", "inverted+resized", ... into buf. */
const char *prep_describe(unsigned flags, char *buf, size_t len);

#endif
