/* fuzz_preprocess.c - libFuzzer harness for prep_canonical on raw gray
 * pixels (the PNG harness reaches it only through images libFuzzer manages
 * to encode). Input: 2 bytes of width (little-endian, 1..1024), then the
 * pixels row by row; the height is what the bytes fill. Checked: values in
 * [0, 1]; only known steps and verdicts; a picture without a digit is all
 * zero with no steps and a digit is not; a second run gives the same bits.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
    struct prep_result r;
    prep_canonical(out, &r, px, width, height);
    if (r.steps >= (PREP_CENTRED << 1) || r.verdict > PREP_NO_BACKGROUND)
        abort();
    if (r.verdict != PREP_DIGIT && r.steps)
        abort();
    double sum = 0;
    for (int i = 0; i < 784; i++) {
        if (!(out[i] >= 0.0f && out[i] <= 1.0f))
            abort();
        sum += out[i];
    }
    if (r.verdict != PREP_DIGIT && sum != 0)
        abort();
    if (r.verdict == PREP_DIGIT && !(sum > 0))
        abort();
    /* deterministic: a second run gives the same bits (no stale reads) */
    float again[784];
    struct prep_result r2;
    prep_canonical(again, &r2, px, width, height);
    if (r2.steps != r.steps || r2.verdict != r.verdict || memcmp(out, again, sizeof out) != 0)
        abort();
    return 0;
}
