/* fuzz_preprocess.c - libFuzzer harness for prep_to_mnist on raw gray
 * pixels (the PNG harness reaches it only through images libFuzzer manages
 * to encode). Input: 2 bytes of width (little-endian, 1..1024), then the
 * pixels row by row; the height is what the bytes fill. Checked: values in
 * [0, 1]; exactly one of resized / empty / as-is; an empty result is all
 * zero and a resized one is not; a 28x28 light-on-dark picture is v/255.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "preprocess.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    size_t width = 1 + ((size_t)data[0] | (size_t)data[1] << 8) % 1024;
    size_t height = (size - 2) / width;
    if (height == 0)
        return 0;
    const uint8_t *px = data + 2;
    float out[784];
    unsigned flags = prep_to_mnist(out, px, width, height);
    if (flags & ~(unsigned)(PREP_INVERTED | PREP_RESIZED | PREP_EMPTY))
        abort();
    if ((flags & PREP_RESIZED) && (flags & PREP_EMPTY))
        abort();
    double sum = 0;
    for (int i = 0; i < 784; i++) {
        if (!(out[i] >= 0.0f && out[i] <= 1.0f))
            abort();
        sum += out[i];
    }
    if ((flags & PREP_EMPTY) && sum != 0)
        abort();
    if ((flags & PREP_RESIZED) && !(sum > 0))
        abort();
    if (flags == PREP_NONE) {
        if (width != 28 || height != 28)
            abort();
        for (int i = 0; i < 784; i++)
            if (out[i] != px[i] / 255.0f)
                abort();
    }
    return 0;
}
