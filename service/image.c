/* image.c - PNG bytes to 8-bit gray with libpng 1.6.
 *
 * The pixel values are the file's stored values: no gamma, colour-space or
 * background chunk changes them (those chunks are ignored), so the same
 * picture saved as gray, RGB, palette, 8 or 16 bit decodes to the same gray
 * bytes. libpng does the unpacking (palette -> RGB, tRNS -> alpha, gray < 8
 * bits -> 8, 16 -> 8 by rounding); the RGB -> gray weights and the alpha
 * compositing over white are done here, in integers, so that R = G = B = v
 * gives exactly v and alpha 255 gives exactly the colour.
 *
 * libpng reports errors by longjmp to the setjmp in decode(); every buffer
 * that decode() owns is reachable through struct decode_ctx (not through
 * locals of the longjmp'ing frame), so the one cleanup path frees them all.
 */
#include "image.h"

#include "fault.h"

#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libpng's own dimension ceiling when the caller sets none. */
#define IMG_DEFAULT_MAX_SIDE 1000000u
/* Largest ancillary chunk libpng may allocate (tRNS, PLTE are <= 1 KiB;
 * everything bigger is text or profiles that we skip anyway). */
#define IMG_CHUNK_MALLOC_MAX (1u << 20)

struct decode_ctx {
    const uint8_t *buf;
    size_t len, pos;
    int status;     /* enum img_status to return after a longjmp */
    int have_msg;   /* err already says what went wrong */
    char *err;      /* caller's err[IMG_ERR_LEN] */
    uint8_t *image; /* one decoded row (width * channels) + its gray */
    uint8_t *gray;  /* the result, width * height */
};

static void set_err(char *err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, IMG_ERR_LEN, fmt, ap);
    va_end(ap);
}

/* Every allocation, libpng's included, goes through the fault-injection
 * hook so tests can fail the nth one and check the cleanup path. */
static png_voidp png_alloc(png_structp png, png_alloc_size_t n)
{
    (void)png;
    return bnn_fault_malloc(n);
}

static void png_release(png_structp png, png_voidp p)
{
    (void)png;
    free(p);
}

static void on_png_error(png_structp png, png_const_charp msg)
{
    struct decode_ctx *ctx = png_get_error_ptr(png);
    /* Keep a message we set ourselves before calling png_error (too large,
     * out of memory); otherwise take libpng's. */
    if (!ctx->have_msg) {
        /* "Out of memory", "insufficient memory" (zlib's buffers), ... */
        if (strstr(msg, "memory") || strstr(msg, "Memory"))
            ctx->status = IMG_E_NOMEM;
        set_err(ctx->err, "invalid PNG: %s", msg);
        ctx->have_msg = 1;
    }
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    /* Warnings (unknown chunks, bad ancillary CRCs, extra data) do not stop
     * decoding; the service does not print from library code. */
    (void)png;
    (void)msg;
}

static void read_bytes(png_structp png, png_bytep out, size_t n)
{
    struct decode_ctx *ctx = png_get_io_ptr(png);
    if (n > ctx->len - ctx->pos) {
        set_err(ctx->err, "invalid PNG: truncated: needed %zu bytes at offset %zu of %zu", n, ctx->pos,
                ctx->len);
        ctx->status = IMG_E_CORRUPT;
        ctx->have_msg = 1;
        png_error(png, "truncated");
    }
    memcpy(out, ctx->buf + ctx->pos, n);
    ctx->pos += n;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int check_size(uint32_t w, uint32_t h, unsigned max_side, char *err)
{
    if (w == 0 || h == 0 || w > max_side || h > max_side) {
        set_err(err, "image is %lux%lu; width and height must be 1..%u", (unsigned long)w, (unsigned long)h,
                max_side);
        return IMG_E_TOO_LARGE;
    }
    if ((uint64_t)w * h > IMG_MAX_PIXELS) {
        set_err(err, "image is %lux%lu = %llu pixels; at most %llu", (unsigned long)w, (unsigned long)h,
                (unsigned long long)w * h, (unsigned long long)IMG_MAX_PIXELS);
        return IMG_E_TOO_LARGE;
    }
    return IMG_OK;
}

/* Rec. 709 luma in 1/32768 units, libpng's own default weights (png.h
 * png_set_rgb_to_gray_fixed); they sum to 32768 so gray input is unchanged. */
enum { W_R = 6968, W_G = 23434, W_B = 2366 };

static uint8_t luma(unsigned r, unsigned g, unsigned b)
{
    return (uint8_t)((W_R * r + W_G * g + W_B * b + 16384) >> 15);
}

/* Alpha over a white page, rounded to nearest: a = 255 gives v, a = 0 white. */
static uint8_t over_white(unsigned v, unsigned a)
{
    return (uint8_t)((a * v + (255 - a) * 255 + 127) / 255);
}

static void row_to_gray(uint8_t *out, const uint8_t *in, size_t width, unsigned channels)
{
    switch (channels) {
    case 1:
        memcpy(out, in, width);
        break;
    case 2:
        for (size_t x = 0; x < width; x++)
            out[x] = over_white(in[2 * x], in[2 * x + 1]);
        break;
    case 3:
        for (size_t x = 0; x < width; x++)
            out[x] = luma(in[3 * x], in[3 * x + 1], in[3 * x + 2]);
        break;
    default:
        for (size_t x = 0; x < width; x++)
            out[x] = over_white(luma(in[4 * x], in[4 * x + 1], in[4 * x + 2]), in[4 * x + 3]);
        break;
    }
}

/* Chunks whose content could change pixel values (gamma, colour space,
 * background) or that only cost memory (text, profiles, Exif); tRNS and
 * PLTE are kept. */
static const png_byte ignored_chunks[] = "bKGD\0cHRM\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0pCAL\0"
                                         "pHYs\0sBIT\0sCAL\0sPLT\0sRGB\0tEXt\0tIME\0zTXt";

/* What the header and the transforms say about the rows to read. */
struct img_layout {
    png_uint_32 width, height;
    int interlace;
    unsigned channels;
    size_t rowbytes; /* of one decoded row: width * channels */
};

/* NULL-safe for info. Takes copies so callers may pass volatile pointers. */
static void destroy_reader(png_structp png, png_infop info)
{
    png_destroy_read_struct(&png, info ? &info : NULL, NULL);
}

/* Reader settings, IHDR, and the transforms to 8-bit gray-able rows. May
 * longjmp to decode()'s setjmp; holds nothing of its own. */
static int read_header(png_structp png, png_infop info, struct decode_ctx *ctx, unsigned max_side,
                       struct img_layout *l)
{
    png_set_read_fn(png, ctx, read_bytes);
    png_set_sig_bytes(png, 8);
    ctx->pos = 8;
    png_set_user_limits(png, max_side, max_side);
    png_set_chunk_malloc_max(png, IMG_CHUNK_MALLOC_MAX);
    png_set_chunk_cache_max(png, 64);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, ignored_chunks,
                                (int)(sizeof ignored_chunks / 5));

    png_read_info(png, info);
    int bit_depth, color_type;
    png_get_IHDR(png, info, &l->width, &l->height, &bit_depth, &color_type, &l->interlace, NULL, NULL);
    if (check_size(l->width, l->height, max_side, ctx->err) != IMG_OK)
        return IMG_E_TOO_LARGE;

    png_set_expand(png);   /* palette -> RGB, gray < 8 bits -> 8, tRNS -> alpha */
    png_set_scale_16(png); /* 16 -> 8 bits, rounded: v * 257 -> v */
    /* No png_set_interlace_handling: libpng then hands out each Adam7 pass
     * as its own reduced image (empty passes skipped), which we convert and
     * scatter into place, so memory stays at one row plus the result for
     * interlaced files too, instead of a full-colour copy of the image. */
    png_read_update_info(png, info);
    l->channels = png_get_channels(png, info);
    l->rowbytes = png_get_rowbytes(png, info);
    if (png_get_bit_depth(png, info) != 8 || l->channels < 1 || l->channels > 4 ||
        l->rowbytes != (size_t)l->width * l->channels) {
        set_err(ctx->err, "invalid PNG: unexpected layout after transforms (%u channels, %zu bytes per row)",
                l->channels, l->rowbytes);
        return IMG_E_CORRUPT;
    }
    return IMG_OK;
}

/* Every row into ctx->gray (allocated here), Adam7 passes scattered into
 * place, then up to IEND. May longjmp to decode()'s setjmp. */
static int read_pixels(png_structp png, struct decode_ctx *ctx, const struct img_layout *l)
{
    size_t width = l->width;
    ctx->gray = bnn_fault_malloc(width * l->height);
    ctx->image = bnn_fault_malloc(l->rowbytes + width); /* one decoded row, then its gray */
    if (!ctx->gray || !ctx->image) {
        set_err(ctx->err, "out of memory decoding a %lux%lu PNG", (unsigned long)l->width,
                (unsigned long)l->height);
        return IMG_E_NOMEM;
    }
    if (l->interlace == PNG_INTERLACE_NONE) {
        for (png_uint_32 y = 0; y < l->height; y++) {
            png_read_row(png, ctx->image, NULL);
            row_to_gray(ctx->gray + (size_t)y * width, ctx->image, width, l->channels);
        }
    } else {
        uint8_t *line = ctx->image + l->rowbytes;
        for (int pass = 0; pass < PNG_INTERLACE_ADAM7_PASSES; pass++) {
            png_uint_32 cols = PNG_PASS_COLS(l->width, pass), rows = PNG_PASS_ROWS(l->height, pass);
            if (cols == 0 || rows == 0)
                continue; /* libpng skips empty passes too */
            for (png_uint_32 r = 0; r < rows; r++) {
                png_read_row(png, ctx->image, NULL);
                row_to_gray(line, ctx->image, cols, l->channels);
                uint8_t *dst = ctx->gray + (size_t)PNG_ROW_FROM_PASS_ROW(r, pass) * width;
                for (png_uint_32 c = 0; c < cols; c++)
                    dst[PNG_COL_FROM_PASS_COL(c, pass)] = line[c];
            }
        }
    }
    /* Reads up to IEND so that a file cut short after its pixel data, or a
     * bad CRC in a later chunk, is refused rather than half-trusted. */
    png_read_end(png, NULL);
    return IMG_OK;
}

static int decode(struct decode_ctx *ctx, struct img_gray *out, unsigned max_side)
{
    /* volatile: these change after setjmp and are read after a longjmp. */
    png_structp volatile png = NULL;
    png_infop volatile info = NULL;
    int volatile rc = IMG_OK;

    png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, ctx, on_png_error, on_png_warning, NULL, png_alloc,
                                   png_release);
    info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        if (png)
            destroy_reader(png, NULL);
        set_err(ctx->err, "out of memory creating the PNG reader");
        return IMG_E_NOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        rc = ctx->status;
        goto done;
    }
    struct img_layout l;
    rc = read_header(png, info, ctx, max_side, &l);
    if (rc == IMG_OK)
        rc = read_pixels(png, ctx, &l);
    if (rc == IMG_OK) {
        out->width = l.width;
        out->height = l.height;
        out->pixels = ctx->gray;
        ctx->gray = NULL;
    }
done:
    destroy_reader(png, info);
    free(ctx->image);
    free(ctx->gray);
    ctx->image = NULL;
    ctx->gray = NULL;
    return rc;
}

int img_decode_png(struct img_gray *out, const uint8_t *buf, size_t len, unsigned max_side,
                   char err[IMG_ERR_LEN])
{
    memset(out, 0, sizeof *out);
    if (max_side == 0 || max_side > IMG_DEFAULT_MAX_SIDE)
        max_side = IMG_DEFAULT_MAX_SIDE;
    if (!buf || len < 8 || png_sig_cmp(buf, 0, 8) != 0) {
        set_err(err, "not a PNG: the 8-byte PNG signature is missing (%zu bytes)", buf ? len : 0);
        return IMG_E_NOT_PNG;
    }
    /* IHDR must be the first chunk (PNG spec 5.6); read its size from the
     * raw bytes so that a huge declared image is refused before libpng
     * allocates anything for it. A malformed IHDR is left to libpng. */
    if (len >= 8 + 8 + 13 && be32(buf + 8) == 13 && memcmp(buf + 12, "IHDR", 4) == 0) {
        if (check_size(be32(buf + 16), be32(buf + 20), max_side, err) != IMG_OK)
            return IMG_E_TOO_LARGE;
    }
    struct decode_ctx ctx = {.buf = buf, .len = len, .pos = 0, .status = IMG_E_CORRUPT, .err = err};
    return decode(&ctx, out, max_side);
}

void img_gray_free(struct img_gray *g)
{
    if (!g)
        return;
    free(g->pixels);
    g->pixels = NULL;
    g->width = g->height = 0;
}
