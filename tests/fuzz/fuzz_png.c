/* fuzz_png.c - libFuzzer harness: arbitrary bytes through the service's
 * image path, img_decode_png then prep_to_mnist, as a request body would
 * go. Besides ASan/UBSan findings it checks the contracts: on error the
 * output is zeroed and a message is set; on success the picture is within
 * the side limit and every preprocessed value is in [0, 1].
 *
 * Most mutations break a chunk CRC, and libpng stops at the first bad CRC
 * of a critical chunk; so each input is decoded twice, as is and with every
 * chunk CRC recomputed, letting mutations reach inflate, the row filters,
 * the transforms and our own row conversion.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "image.h"
#include "preprocess.h"

/* Below the service default (4096) to keep each run fast; the code paths
 * are the same, only the largest allocation differs. */
#define FUZZ_MAX_SIDE 1024

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_and_check(const uint8_t *data, size_t size);

/* Rewrites the CRC of every complete chunk; returns 1 when one changed. */
static int fix_crcs(uint8_t *buf, size_t len)
{
    int changed = 0;
    size_t pos = 8;
    while (pos + 12 <= len) {
        uint32_t n = (uint32_t)buf[pos] << 24 | (uint32_t)buf[pos + 1] << 16 | (uint32_t)buf[pos + 2] << 8 |
                     buf[pos + 3];
        if (n > len - pos - 12)
            break;
        uint32_t crc = (uint32_t)crc32(0, buf + pos + 4, (uInt)n + 4);
        uint8_t *c = buf + pos + 8 + n;
        uint8_t want[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
        if (memcmp(c, want, 4) != 0) {
            memcpy(c, want, 4);
            changed = 1;
        }
        pos += 12 + (size_t)n;
    }
    return changed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    decode_and_check(data, size);
    if (size > 8 && size <= (1u << 20)) {
        uint8_t *copy = malloc(size);
        if (!copy)
            return 0;
        memcpy(copy, data, size);
        if (fix_crcs(copy, size))
            decode_and_check(copy, size);
        free(copy);
    }
    return 0;
}

static void decode_and_check(const uint8_t *data, size_t size)
{
    struct img_gray g;
    char err[IMG_ERR_LEN];
    err[0] = '\0';
    int rc = img_decode_png(&g, data, size, FUZZ_MAX_SIDE, err);
    if (rc != IMG_OK) {
        if (g.pixels || g.width || g.height || !err[0] || memchr(err, '\0', IMG_ERR_LEN) == NULL)
            abort();
        return;
    }
    if (!g.pixels || g.width < 1 || g.height < 1 || g.width > FUZZ_MAX_SIDE || g.height > FUZZ_MAX_SIDE)
        abort();
    float out[784];
    struct prep_result r;
    prep_canonical(out, &r, g.pixels, g.width, g.height);
    if (r.steps >= (PREP_CENTRED << 1) || r.verdict > PREP_NO_BACKGROUND)
        abort();
    for (int i = 0; i < 784; i++)
        if (!(out[i] >= 0.0f && out[i] <= 1.0f))
            abort();
    if (r.verdict != PREP_DIGIT)
        for (int i = 0; i < 784; i++)
            if (out[i] != 0.0f)
                abort();
    char desc[160];
    prep_describe(r.steps, desc, sizeof desc);
    img_gray_free(&g);
}
