/* image.h - PNG bytes to 8-bit gray with libpng: every colour type, bit
 * depth and interlacing; alpha composited over white; 16-bit reduced.
 * Dimensions are read from IHDR and checked against the limit before any
 * pixel is decoded. Errors never longjmp past our frames with memory held.
 */
#ifndef BNN_IMAGE_H
#define BNN_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#define IMG_ERR_LEN 256
/* Pixel cap whatever max_side says (8192 x 8192): the decoded gray image is
 * width * height bytes, and a deflate stream can expand ~1000-fold. */
#define IMG_MAX_PIXELS (1ull << 26)

enum img_status {
    IMG_OK = 0,
    IMG_E_NOT_PNG,   /* signature missing */
    IMG_E_CORRUPT,   /* truncated, bad CRC, bad filter, bad zlib, ... */
    IMG_E_TOO_LARGE, /* width or height over the limit, or zero, or over IMG_MAX_PIXELS */
    IMG_E_NOMEM
};

struct img_gray {
    size_t width, height;
    uint8_t *pixels; /* (height, width), owned; free with img_gray_free */
};

/* Decodes buf[0..len) into *out. max_side caps width and height. On error
 * *out is zeroed and err holds a message for the client. */
int img_decode_png(struct img_gray *out, const uint8_t *buf, size_t len, unsigned max_side,
                   char err[IMG_ERR_LEN]);

/* NULL-safe. */
void img_gray_free(struct img_gray *g);

#endif
