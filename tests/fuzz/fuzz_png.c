/* fuzz_png.c - libFuzzer harness: arbitrary bytes through the service's
 * image path, img_decode_png then prep_to_mnist, as a request body would
 * go. Besides ASan/UBSan findings it checks the contracts: on error the
 * output is zeroed and a message is set; on success the picture is within
 * the side limit and every preprocessed value is in [0, 1].
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "preprocess.h"

/* Below the service default (4096) to keep each run fast; the code paths
 * are the same, only the largest allocation differs. */
#define FUZZ_MAX_SIDE 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct img_gray g;
    char err[IMG_ERR_LEN];
    err[0] = '\0';
    int rc = img_decode_png(&g, data, size, FUZZ_MAX_SIDE, err);
    if (rc != IMG_OK) {
        if (g.pixels || g.width || g.height || !err[0] || memchr(err, '\0', IMG_ERR_LEN) == NULL)
            abort();
        return 0;
    }
    if (!g.pixels || g.width < 1 || g.height < 1 || g.width > FUZZ_MAX_SIDE || g.height > FUZZ_MAX_SIDE)
        abort();
    float out[784];
    unsigned flags = prep_to_mnist(out, g.pixels, g.width, g.height);
    if (flags & ~(unsigned)(PREP_INVERTED | PREP_RESIZED | PREP_EMPTY))
        abort();
    for (int i = 0; i < 784; i++)
        if (!(out[i] >= 0.0f && out[i] <= 1.0f))
            abort();
    if (flags & PREP_EMPTY)
        for (int i = 0; i < 784; i++)
            if (out[i] != 0.0f)
                abort();
    char desc[64];
    prep_describe(flags, desc, sizeof desc);
    img_gray_free(&g);
    return 0;
}
