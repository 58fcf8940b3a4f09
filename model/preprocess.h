/* preprocess.h - one canonicalisation for every input picture: whatever its
 * size, polarity, background or placement, bring it to MNIST's own
 * convention - light ink on a black background, the ink's contrast stretched
 * to the full range, its bounding box scaled to fit 20x20 (aspect kept) and
 * centred by centre of mass in 28x28, values in [0,1] - or say that it holds
 * no digit. The daemon, the trainer (on every augmented training image) and
 * the evaluation tools all go through this one function, so the model is
 * trained and measured on exactly what callers' pictures become.
 *
 * Pure: no allocation (the working planes live on the stack, ~150 KiB), no
 * globals, thread-safe, never fails for any width, height >= 1 (a NULL or
 * empty picture is a blank one).
 */
#ifndef BNN_PREPROCESS_H
#define BNN_PREPROCESS_H

#include <stddef.h>
#include <stdint.h>

/* The steps taken, as bit flags (the answer's "preprocessing" names them). */
enum prep_step {
    PREP_DOWNSCALED = 1u << 0, /* larger than 64 px: area-averaged to 64 first */
    PREP_INVERTED = 1u << 1,   /* most ink is darker than its background */
    PREP_MIXED = 1u << 2,      /* ink of both polarities (e.g. inverted bands) */
    PREP_BACKGROUND = 1u << 3, /* a non-black or uneven background removed */
    PREP_CONTRAST = 1u << 4,   /* faint ink stretched to the full range */
    PREP_SPECKS = 1u << 5,     /* small specks apart from the digit removed */
    PREP_RESIZED = 1u << 6,    /* ink's bounding box scaled to 20 px */
    PREP_CENTRED = 1u << 7     /* moved so the centre of mass is at (14, 14) */
};

/* Is there a digit to classify? */
enum prep_verdict {
    PREP_DIGIT = 0,
    PREP_BLANK,        /* no ink: a uniform or nearly uniform picture */
    PREP_NO_BACKGROUND /* no calm background around anything: noise or texture */
};

struct prep_result {
    unsigned steps;            /* enum prep_step bits */
    enum prep_verdict verdict; /* out is all zero unless PREP_DIGIT */
};

/* gray: (height, width) 8-bit, row-major, stride = width. out: 784 floats
 * in [0,1], row-major 28x28. Fills *r. */
void prep_canonical(float out[784], struct prep_result *r, const uint8_t *gray, size_t width, size_t height);

/* The steps joined by '+' ("background+contrast+resized+centred"), or
 * "none", into buf; returns buf. */
const char *prep_describe(unsigned steps, char *buf, size_t len);

/* "digit", "blank", "no_background". */
const char *prep_verdict_name(enum prep_verdict v);

#endif
