/* test_image.c - img_decode_png against PNGs written here with libpng's
 * writer from a real MNIST digit, in every colour type, bit depth and
 * interlace method: each must decode to exactly the same gray pixels. Then
 * broken files built byte by byte (truncation, CRCs, filter bytes, zlib,
 * sizes) must be refused with the right status, and every allocation
 * failure must be reported as IMG_E_NOMEM without a leak (run under ASan).
 *
 * Needs build/data/mnist (make data); fails, does not skip, without it.
 * BNN_WRITE_FIXTURES=1 also (re)writes tests/data/png/ and its MANIFEST.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <png.h>
#include <zlib.h>

#include "fault.h"
#include "idx.h"
#include "image.h"

#define MNIST_DIR "build/data/mnist"
#define FIXTURE_DIR "tests/data/png"

struct membuf {
    uint8_t *data;
    size_t len, cap;
};

static void mb_append(struct membuf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->data = realloc(b->data, cap);
        assert_non_null(b->data);
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void mb_free(struct membuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* A picture: gray (h, w) 8-bit, owned. */
struct pic {
    size_t w, h;
    uint8_t *px;
};

static struct pic g_digit; /* t10k image 0, 28x28 */
static struct pic g_odd;   /* the digit resampled to 45x31: odd sizes for Adam7 */
static unsigned g_digit_label;

static int load_digit(void **state)
{
    (void)state;
    struct idx_images im;
    struct idx_labels lb;
    char err[BNN_ERR_LEN];
    if (idx_load_mnist(&im, &lb, MNIST_DIR, "t10k", err) != BNN_OK) {
        fprintf(stderr, "test_image: cannot load MNIST (run 'make data'): %s\n", err);
        return -1;
    }
    g_digit.w = g_digit.h = 28;
    g_digit.px = malloc(784);
    memcpy(g_digit.px, im.pixels, 784);
    g_digit_label = lb.labels[0];
    g_odd.w = 45;
    g_odd.h = 31;
    g_odd.px = malloc(45 * 31);
    for (size_t y = 0; y < 31; y++)
        for (size_t x = 0; x < 45; x++)
            g_odd.px[y * 45 + x] = im.pixels[(y * 28 / 31) * 28 + x * 28 / 45];
    idx_images_free(&im);
    idx_labels_free(&lb);
    return 0;
}

static int free_digit(void **state)
{
    (void)state;
    free(g_digit.px);
    free(g_odd.px);
    return 0;
}

/* ---- writing PNGs with libpng ---- */

enum trns_kind { NO_TRNS, TRNS };

struct spec {
    const char *name;
    int color_type, depth;
    enum trns_kind trns;
};

static const struct spec specs[] = {
    {"gray1", PNG_COLOR_TYPE_GRAY, 1, NO_TRNS},          {"gray2", PNG_COLOR_TYPE_GRAY, 2, NO_TRNS},
    {"gray4", PNG_COLOR_TYPE_GRAY, 4, NO_TRNS},          {"gray8", PNG_COLOR_TYPE_GRAY, 8, NO_TRNS},
    {"gray16", PNG_COLOR_TYPE_GRAY, 16, NO_TRNS},        {"gray8+trns", PNG_COLOR_TYPE_GRAY, 8, TRNS},
    {"gray16+trns", PNG_COLOR_TYPE_GRAY, 16, TRNS},      {"graya8", PNG_COLOR_TYPE_GRAY_ALPHA, 8, NO_TRNS},
    {"graya16", PNG_COLOR_TYPE_GRAY_ALPHA, 16, NO_TRNS}, {"rgb8", PNG_COLOR_TYPE_RGB, 8, NO_TRNS},
    {"rgb16", PNG_COLOR_TYPE_RGB, 16, NO_TRNS},          {"rgb8+trns", PNG_COLOR_TYPE_RGB, 8, TRNS},
    {"rgba8", PNG_COLOR_TYPE_RGB_ALPHA, 8, NO_TRNS},     {"rgba16", PNG_COLOR_TYPE_RGB_ALPHA, 16, NO_TRNS},
    {"palette1", PNG_COLOR_TYPE_PALETTE, 1, NO_TRNS},    {"palette2", PNG_COLOR_TYPE_PALETTE, 2, NO_TRNS},
    {"palette4", PNG_COLOR_TYPE_PALETTE, 4, NO_TRNS},    {"palette8", PNG_COLOR_TYPE_PALETTE, 8, NO_TRNS},
    {"palette1+trns", PNG_COLOR_TYPE_PALETTE, 1, TRNS},  {"palette2+trns", PNG_COLOR_TYPE_PALETTE, 2, TRNS},
    {"palette4+trns", PNG_COLOR_TYPE_PALETTE, 4, TRNS},  {"palette8+trns", PNG_COLOR_TYPE_PALETTE, 8, TRNS},
};

/* Levels a depth-d gray or palette image can hold: q in 0..L, shown as
 * q * 255 / L (libpng's expansion, and the PNG spec's). */
static unsigned levels(const struct spec *s)
{
    return s->depth < 8 ? (1u << s->depth) - 1 : 255u;
}

static unsigned quantize(unsigned v, unsigned L)
{
    return (v * L + 127) / 255;
}

/* The gray picture this spec's file shows when decoded: the digit with
 * low-depth quantisation; with a gray/RGB tRNS colour of 0, the background
 * turns transparent and composites to white. */
static uint8_t expected_value(const struct spec *s, uint8_t v)
{
    unsigned L = levels(s);
    unsigned shown = quantize(v, L) * (255 / L);
    if (s->trns == TRNS && s->color_type != PNG_COLOR_TYPE_PALETTE && v == 0)
        return 255;
    return (uint8_t)shown;
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void write_cb(png_structp png, png_bytep data, size_t n)
{
    mb_append(png_get_io_ptr(png), data, n);
}

static void flush_cb(png_structp png)
{
    (void)png;
}

/* One row of the picture in the spec's pixel format. Pixels alternate
 * between an opaque gray and black at alpha 255 - v: composited over white
 * both give v exactly, so the alpha path is exercised with no rounding. */
static void encode_row(uint8_t *row, const struct spec *s, const uint8_t *src, size_t w)
{
    unsigned L = levels(s);
    int b16 = s->depth == 16;
    memset(row, 0, (w * 8 * 8 + 7) / 8);
    for (size_t x = 0; x < w; x++) {
        unsigned v = src[x];
        int alt = x & 1;
        switch (s->color_type) {
        case PNG_COLOR_TYPE_GRAY:
        case PNG_COLOR_TYPE_PALETTE:
            if (s->depth < 8) {
                unsigned q = quantize(v, L);
                unsigned per = 8u / (unsigned)s->depth;
                row[x / per] |= (uint8_t)(q << ((per - 1 - x % per) * (unsigned)s->depth));
            } else if (b16) {
                put16(row + 2 * x, v * 257);
            } else {
                row[x] = (uint8_t)v;
            }
            break;
        case PNG_COLOR_TYPE_GRAY_ALPHA: {
            unsigned g = alt ? 0 : v, a = alt ? 255 - v : 255;
            if (b16) {
                put16(row + 4 * x, g * 257);
                put16(row + 4 * x + 2, a * 257);
            } else {
                row[2 * x] = (uint8_t)g;
                row[2 * x + 1] = (uint8_t)a;
            }
            break;
        }
        case PNG_COLOR_TYPE_RGB:
            for (int c = 0; c < 3; c++) {
                if (b16)
                    put16(row + 6 * x + 2 * c, v * 257);
                else
                    row[3 * x + c] = (uint8_t)v;
            }
            break;
        case PNG_COLOR_TYPE_RGB_ALPHA: {
            unsigned g = alt ? 0 : v, a = alt ? 255 - v : 255;
            for (int c = 0; c < 4; c++) {
                unsigned val = c == 3 ? a : g;
                if (b16)
                    put16(row + 8 * x + 2 * c, val * 257);
                else
                    row[4 * x + c] = (uint8_t)val;
            }
            break;
        }
        }
    }
}

struct extras {
    int gamma; /* 1: add gAMA 0.7, bKGD and tEXt; 2: add sRGB. Must change nothing. */
};

static void write_png(struct membuf *out, const struct spec *s, const struct pic *p, int interlace,
                      const struct extras *ex)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    assert_non_null(png);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    uint8_t *row = malloc(p->w * 8 + 16);
    assert_non_null(row);
    if (setjmp(png_jmpbuf(png)))
        fail_msg("libpng writer failed for %s", s->name);
    png_set_write_fn(png, out, write_cb, flush_cb);
    png_set_IHDR(png, info, (png_uint_32)p->w, (png_uint_32)p->h, s->depth, s->color_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (s->color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[256];
        png_byte alpha[256];
        unsigned L = levels(s);
        for (unsigned q = 0; q <= L; q++) {
            unsigned shown = q * (255 / L);
            if (s->trns == TRNS) { /* black at alpha 255 - shown: over white gives shown */
                pal[q].red = pal[q].green = pal[q].blue = 0;
                alpha[q] = (png_byte)(255 - shown);
            } else {
                pal[q].red = pal[q].green = pal[q].blue = (png_byte)shown;
            }
        }
        png_set_PLTE(png, info, pal, (int)L + 1);
        if (s->trns == TRNS)
            png_set_tRNS(png, info, alpha, (int)L + 1, NULL);
    } else if (s->trns == TRNS) {
        png_color_16 c = {0};
        png_set_tRNS(png, info, NULL, 0, &c);
    }
    if (ex && ex->gamma == 2)
        png_set_sRGB(png, info, PNG_sRGB_INTENT_PERCEPTUAL);
    if (ex && ex->gamma == 1) {
        png_set_gAMA(png, info, 0.7);
        png_color_16 bg = {.red = 200, .green = 10, .blue = 10, .gray = 1, .index = 0};
        if (s->color_type != PNG_COLOR_TYPE_PALETTE)
            png_set_bKGD(png, info, &bg);
        png_text t = {.compression = PNG_TEXT_COMPRESSION_NONE,
                      .key = (char *)"Comment",
                      .text = (char *)"written by test_image"};
        png_set_text(png, info, &t, 1);
    }
    png_write_info(png, info);
    int passes = interlace ? png_set_interlace_handling(png) : 1;
    for (int pass = 0; pass < passes; pass++)
        for (size_t y = 0; y < p->h; y++) {
            encode_row(row, s, p->px + y * p->w, p->w);
            png_write_row(png, row);
        }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
}

/* ---- the round trip for every format ---- */

static void check_decodes_to(const struct membuf *file, const struct spec *s, const struct pic *p,
                             const char *what)
{
    struct img_gray g;
    char err[IMG_ERR_LEN] = "";
    int rc = img_decode_png(&g, file->data, file->len, 4096, err);
    if (rc != IMG_OK)
        fail_msg("%s: expected IMG_OK, got %d (%s)", what, rc, err);
    assert_int_equal(g.width, p->w);
    assert_int_equal(g.height, p->h);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < p->w * p->h; i++)
        if (g.pixels[i] != expected_value(s, p->px[i]) && bad++ == 0)
            first = i;
    if (bad)
        fail_msg("%s: %zu of %zu pixels differ; first at %zu: expected %u, got %u", what, bad, p->w * p->h,
                 first, expected_value(s, p->px[first]), g.pixels[first]);
    img_gray_free(&g);
}

static void test_every_format_decodes_identically(void **state)
{
    (void)state;
    const struct pic *pics[] = {&g_digit, &g_odd};
    int n = 0;
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
            for (int interlace = 0; interlace < 2; interlace++) {
                struct membuf file = {0};
                write_png(&file, &specs[i], pics[k], interlace, NULL);
                char what[96];
                snprintf(what, sizeof what, "%s %zux%zu %s", specs[i].name, pics[k]->w, pics[k]->h,
                         interlace ? "Adam7" : "non-interlaced");
                check_decodes_to(&file, &specs[i], pics[k], what);
                mb_free(&file);
                n++;
            }
    assert_int_equal(n, 2 * 2 * (int)(sizeof specs / sizeof specs[0]));
}

/* The 8-bit gray, RGB and RGBA forms of the digit are the same picture. */
static void test_gray_rgb_rgba_agree_bit_for_bit(void **state)
{
    (void)state;
    const struct spec *forms[] = {&specs[3], &specs[9], &specs[12], &specs[17]};
    struct img_gray ref = {0};
    for (size_t i = 0; i < 4; i++) {
        struct membuf file = {0};
        write_png(&file, forms[i], &g_digit, 0, NULL);
        struct img_gray g;
        char err[IMG_ERR_LEN];
        assert_int_equal(img_decode_png(&g, file.data, file.len, 28, err), IMG_OK);
        if (i == 0) {
            ref = g;
            assert_memory_equal(ref.pixels, g_digit.px, 784);
        } else {
            assert_memory_equal(g.pixels, ref.pixels, 784);
            img_gray_free(&g);
        }
        mb_free(&file);
    }
    img_gray_free(&ref);
}

/* gAMA, sRGB and text chunks must not change a single pixel. */
static void test_colour_chunks_are_ignored(void **state)
{
    (void)state;
    for (int kind = 1; kind <= 2; kind++) {
        struct extras ex = {.gamma = kind};
        for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
            struct membuf file = {0};
            write_png(&file, &specs[i], &g_digit, 0, &ex);
            char what[64];
            snprintf(what, sizeof what, "%s with %s", specs[i].name, kind == 1 ? "gAMA/bKGD/tEXt" : "sRGB");
            check_decodes_to(&file, &specs[i], &g_digit, what);
            mb_free(&file);
        }
    }
}

/* Partial alpha over white, against the formula computed here. */
static void test_alpha_composited_over_white(void **state)
{
    (void)state;
    static const struct spec ga = {"graya8-partial", PNG_COLOR_TYPE_GRAY_ALPHA, 8, NO_TRNS};
    /* 16x16: gray g = 16 * y, alpha a = 17 * x: every combination class. */
    struct membuf file = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png)))
        fail_msg("writer failed");
    png_set_write_fn(png, &file, write_cb, flush_cb);
    png_set_IHDR(png, info, 16, 16, 8, ga.color_type, 0, 0, 0);
    png_write_info(png, info);
    uint8_t row[32];
    for (unsigned y = 0; y < 16; y++) {
        for (unsigned x = 0; x < 16; x++) {
            row[2 * x] = (uint8_t)(16 * y);
            row[2 * x + 1] = (uint8_t)(17 * x);
        }
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    struct img_gray g;
    char err[IMG_ERR_LEN];
    assert_int_equal(img_decode_png(&g, file.data, file.len, 16, err), IMG_OK);
    for (unsigned y = 0; y < 16; y++)
        for (unsigned x = 0; x < 16; x++) {
            unsigned v = 16 * y, a = 17 * x;
            unsigned want = (a * v + (255 - a) * 255 + 127) / 255;
            if (g.pixels[y * 16 + x] != want)
                fail_msg("gray %u alpha %u: expected %u, got %u", v, a, want, g.pixels[y * 16 + x]);
        }
    img_gray_free(&g);
    mb_free(&file);
}

/* Colour to gray with Rec. 709 weights (libpng's defaults). */
static void test_colour_to_gray_weights(void **state)
{
    (void)state;
    static const uint8_t rgb[][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {10, 200, 90}, {255, 255, 255}};
    struct membuf file = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png)))
        fail_msg("writer failed");
    png_set_write_fn(png, &file, write_cb, flush_cb);
    png_set_IHDR(png, info, 5, 1, 8, PNG_COLOR_TYPE_RGB, 0, 0, 0);
    png_write_info(png, info);
    png_write_row(png, (png_const_bytep)rgb);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    struct img_gray g;
    char err[IMG_ERR_LEN];
    assert_int_equal(img_decode_png(&g, file.data, file.len, 16, err), IMG_OK);
    for (int i = 0; i < 5; i++) {
        double y = 0.2126 * rgb[i][0] + 0.7152 * rgb[i][1] + 0.0722 * rgb[i][2];
        if (g.pixels[i] < y - 1 || g.pixels[i] > y + 1)
            fail_msg("rgb(%u,%u,%u): expected %.1f +- 1, got %u", rgb[i][0], rgb[i][1], rgb[i][2], y,
                     g.pixels[i]);
    }
    assert_int_equal(g.pixels[4], 255);
    img_gray_free(&g);
    mb_free(&file);
}

/* ---- broken files, built chunk by chunk ---- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void add_chunk(struct membuf *b, const char *type, const uint8_t *data, size_t n)
{
    uint8_t head[8];
    put32(head, (uint32_t)n);
    memcpy(head + 4, type, 4);
    mb_append(b, head, 8);
    if (n)
        mb_append(b, data, n);
    uLong crc = crc32(0, (const Bytef *)type, 4);
    if (n)
        crc = crc32(crc, data, (uInt)n);
    uint8_t c[4];
    put32(c, (uint32_t)crc);
    mb_append(b, c, 4);
}

static void add_ihdr(struct membuf *b, uint32_t w, uint32_t h, int depth, int ctype, int interlace)
{
    static const uint8_t sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    mb_append(b, sig, 8);
    uint8_t ihdr[13];
    put32(ihdr, w);
    put32(ihdr + 4, h);
    ihdr[8] = (uint8_t)depth;
    ihdr[9] = (uint8_t)ctype;
    ihdr[10] = 0;
    ihdr[11] = 0;
    ihdr[12] = (uint8_t)interlace;
    add_chunk(b, "IHDR", ihdr, 13);
}

/* The digit as 8-bit gray, hand-assembled: filter byte per row as given
 * (filter_of_row3 replaces row 3's), zlib-compressed into one IDAT. */
static void build_gray_png(struct membuf *b, int filter_of_row3, int corrupt_zlib)
{
    uint8_t raw[28 * 29];
    for (size_t y = 0; y < 28; y++) {
        raw[y * 29] = 0;
        memcpy(raw + y * 29 + 1, g_digit.px + y * 28, 28);
    }
    raw[3 * 29] = (uint8_t)filter_of_row3;
    uLongf zlen = compressBound(sizeof raw);
    uint8_t *z = malloc(zlen);
    assert_int_equal(compress2(z, &zlen, raw, sizeof raw, 9), Z_OK);
    if (corrupt_zlib)
        for (size_t i = 2; i < zlen - 4; i += 3)
            z[i] ^= 0x5a;
    add_ihdr(b, 28, 28, 8, PNG_COLOR_TYPE_GRAY, 0);
    add_chunk(b, "IDAT", z, zlen);
    add_chunk(b, "IEND", NULL, 0);
    free(z);
}

/* Offset of the first chunk of that type (its length field), or 0. */
static size_t find_chunk(const struct membuf *b, const char *type)
{
    size_t pos = 8;
    while (pos + 12 <= b->len) {
        uint32_t n = (uint32_t)b->data[pos] << 24 | (uint32_t)b->data[pos + 1] << 16 |
                     (uint32_t)b->data[pos + 2] << 8 | b->data[pos + 3];
        if (memcmp(b->data + pos + 4, type, 4) == 0)
            return pos;
        pos += 12 + n;
    }
    return 0;
}

static void expect_status(const uint8_t *buf, size_t len, unsigned max_side, int want, const char *what)
{
    struct img_gray g = {.width = 7, .height = 7, .pixels = (uint8_t *)&g};
    char err[IMG_ERR_LEN] = "";
    int rc = img_decode_png(&g, buf, len, max_side, err);
    if (rc != want)
        fail_msg("%s: expected status %d, got %d (%s)", what, want, rc, err);
    if (want != IMG_OK) {
        if (g.pixels || g.width || g.height)
            fail_msg("%s: output not zeroed on error", what);
        if (!err[0])
            fail_msg("%s: no error message", what);
    }
    img_gray_free(&g);
}

static void test_reference_build_is_valid(void **state)
{
    (void)state;
    struct membuf b = {0};
    build_gray_png(&b, 0, 0);
    check_decodes_to(&b, &specs[3], &g_digit, "hand-built gray8");
    mb_free(&b);
}

static void test_truncated(void **state)
{
    (void)state;
    struct membuf b = {0};
    build_gray_png(&b, 0, 0);
    size_t idat = find_chunk(&b, "IDAT"), iend = find_chunk(&b, "IEND");
    assert_true(idat > 0 && iend > idat);
    size_t cuts[] = {1,        7,    8,        12,       16,        20,
                     29,       33,   idat + 4, idat + 8, idat + 20, (idat + iend) / 2,
                     iend - 4, iend, iend + 8, b.len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu of %zu bytes", cuts[i], b.len);
        expect_status(b.data, cuts[i], 4096, cuts[i] < 8 ? IMG_E_NOT_PNG : IMG_E_CORRUPT, what);
    }
    /* The message names the truncation. */
    struct img_gray g;
    char err[IMG_ERR_LEN];
    assert_int_equal(img_decode_png(&g, b.data, idat + 20, 4096, err), IMG_E_CORRUPT);
    assert_non_null(strstr(err, "truncated"));
    mb_free(&b);
}

static void test_bad_crc(void **state)
{
    (void)state;
    const char *chunks[] = {"IHDR", "IDAT", "IEND"};
    for (int i = 0; i < 3; i++) {
        struct membuf b = {0};
        build_gray_png(&b, 0, 0);
        size_t at = find_chunk(&b, chunks[i]);
        uint32_t n = (uint32_t)b.data[at + 3] | (uint32_t)b.data[at + 2] << 8;
        b.data[at + 8 + n + 3] ^= 1; /* last byte of the CRC */
        char what[32];
        snprintf(what, sizeof what, "bad %s CRC", chunks[i]);
        expect_status(b.data, b.len, 4096, IMG_E_CORRUPT, what);
        struct img_gray g;
        char err[IMG_ERR_LEN];
        img_decode_png(&g, b.data, b.len, 4096, err);
        assert_non_null(strstr(err, "CRC"));
        mb_free(&b);
    }
}

/* A damaged ancillary chunk is skipped (libpng warns), like browsers do. */
static void test_bad_ancillary_crc_is_tolerated(void **state)
{
    (void)state;
    struct membuf good = {0}, b = {0};
    build_gray_png(&good, 0, 0);
    size_t idat = find_chunk(&good, "IDAT");
    mb_append(&b, good.data, idat);
    const char text[] = "Comment\0damaged";
    add_chunk(&b, "tEXt", (const uint8_t *)text, sizeof text - 1);
    b.data[b.len - 1] ^= 0xff;
    mb_append(&b, good.data + idat, good.len - idat);
    check_decodes_to(&b, &specs[3], &g_digit, "bad tEXt CRC");
    mb_free(&good);
    mb_free(&b);
}

static void test_bad_filter_byte(void **state)
{
    (void)state;
    struct membuf b = {0};
    build_gray_png(&b, 5, 0); /* filter types are 0..4 */
    expect_status(b.data, b.len, 4096, IMG_E_CORRUPT, "filter byte 5");
    mb_free(&b);
    build_gray_png(&b, 255, 0);
    expect_status(b.data, b.len, 4096, IMG_E_CORRUPT, "filter byte 255");
    mb_free(&b);
}

static void test_bad_zlib(void **state)
{
    (void)state;
    struct membuf b = {0};
    build_gray_png(&b, 0, 1);
    expect_status(b.data, b.len, 4096, IMG_E_CORRUPT, "scrambled zlib stream");
    mb_free(&b);
}

static void test_unknown_critical_chunk(void **state)
{
    (void)state;
    struct membuf good = {0}, b = {0};
    build_gray_png(&good, 0, 0);
    size_t idat = find_chunk(&good, "IDAT");
    mb_append(&b, good.data, idat);
    add_chunk(&b, "ZZZZ", (const uint8_t *)"x", 1);
    mb_append(&b, good.data + idat, good.len - idat);
    expect_status(b.data, b.len, 4096, IMG_E_CORRUPT, "unknown critical chunk");
    mb_free(&good);
    mb_free(&b);
}

static void test_sizes(void **state)
{
    (void)state;
    struct {
        uint32_t w, h;
        unsigned max_side;
        int want;
    } cases[] = {
        {0, 28, 4096, IMG_E_TOO_LARGE},
        {28, 0, 4096, IMG_E_TOO_LARGE},
        {100000, 100000, 4096, IMG_E_TOO_LARGE},
        {0x7fffffff, 1, 4096, IMG_E_TOO_LARGE},
        {0xffffffff, 0xffffffff, 4096, IMG_E_TOO_LARGE},
        {29, 28, 28, IMG_E_TOO_LARGE},
        {28, 29, 28, IMG_E_TOO_LARGE},
        {8193, 8192, 100000, IMG_E_TOO_LARGE},
        {100000, 672, 100000, IMG_E_TOO_LARGE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct membuf b = {0};
        add_ihdr(&b, cases[i].w, cases[i].h, 8, PNG_COLOR_TYPE_GRAY, 0);
        uint8_t tiny[16] = {0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1};
        add_chunk(&b, "IDAT", tiny, 9);
        add_chunk(&b, "IEND", NULL, 0);
        char what[80];
        snprintf(what, sizeof what, "%ux%u with max_side %u", cases[i].w, cases[i].h, cases[i].max_side);
        expect_status(b.data, b.len, cases[i].max_side, cases[i].want, what);
        mb_free(&b);
    }
    /* Exactly at the limit is fine. */
    struct membuf f = {0};
    write_png(&f, &specs[3], &g_digit, 0, NULL);
    expect_status(f.data, f.len, 28, IMG_OK, "28x28 with max_side 28");
    expect_status(f.data, f.len, 27, IMG_E_TOO_LARGE, "28x28 with max_side 27");
    struct img_gray g;
    char err[IMG_ERR_LEN];
    img_decode_png(&g, f.data, f.len, 27, err);
    assert_non_null(strstr(err, "28x28"));
    mb_free(&f);
}

/* A decompression bomb inside the limits: 4096x4096 (16 MiB of pixels) from
 * a few KiB of deflate data decodes, and nothing bigger than the result
 * plus one row is held (ASan would see an overflow of a smaller buffer). */
static void test_large_image_from_small_file(void **state)
{
    (void)state;
    const size_t side = 4096, stride = side + 1;
    uint8_t *raw = calloc(stride * side, 1);
    assert_non_null(raw);
    for (size_t y = 0; y < side; y++)
        raw[y * stride + 1 + (y * 7) % side] = 200; /* one dot per row, filter 0 */
    uLongf zlen = compressBound(stride * side);
    uint8_t *z = malloc(zlen);
    assert_int_equal(compress2(z, &zlen, raw, stride * side, 9), Z_OK);
    struct membuf b = {0};
    add_ihdr(&b, (uint32_t)side, (uint32_t)side, 8, PNG_COLOR_TYPE_GRAY, 0);
    add_chunk(&b, "IDAT", z, zlen);
    add_chunk(&b, "IEND", NULL, 0);
    print_message("%zux%zu gray in a %zu-byte file\n", side, side, b.len);
    assert_true(b.len < 64 * 1024);
    struct img_gray g;
    char err[IMG_ERR_LEN];
    assert_int_equal(img_decode_png(&g, b.data, b.len, 4096, err), IMG_OK);
    assert_int_equal(g.width, side);
    assert_int_equal(g.height, side);
    for (size_t y = 0; y < side; y += 997)
        assert_int_equal(g.pixels[y * side + (y * 7) % side], 200);
    img_gray_free(&g);
    expect_status(b.data, b.len, 4095, IMG_E_TOO_LARGE, "4096x4096 with max_side 4095");
    mb_free(&b);
    free(z);
    free(raw);
}

static void test_not_png(void **state)
{
    (void)state;
    static const uint8_t jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F', 0, 1};
    static const char text[] = "hello, this is not an image at all";
    static const uint8_t almost[] = {137, 80, 78, 71, 13, 10, 26, 11, 0, 0, 0, 13};
    expect_status(NULL, 0, 4096, IMG_E_NOT_PNG, "NULL buffer");
    expect_status((const uint8_t *)"", 0, 4096, IMG_E_NOT_PNG, "empty buffer");
    expect_status(jpeg, sizeof jpeg, 4096, IMG_E_NOT_PNG, "JPEG");
    expect_status((const uint8_t *)text, sizeof text - 1, 4096, IMG_E_NOT_PNG, "text");
    expect_status(almost, sizeof almost, 4096, IMG_E_NOT_PNG, "signature off by one bit");
}

/* Fails the 1st, 2nd, ... allocation (libpng's included) until decoding
 * succeeds: each failure must be IMG_E_NOMEM with nothing leaked (ASan). */
static void test_allocation_failures(void **state)
{
    (void)state;
    struct membuf plain = {0}, inter = {0};
    write_png(&plain, &specs[12], &g_digit, 0, NULL);
    write_png(&inter, &specs[12], &g_digit, 1, NULL);
    const struct membuf *files[] = {&plain, &inter};
    for (int f = 0; f < 2; f++) {
        long n;
        for (n = 1; n < 200; n++) {
            struct img_gray g;
            char err[IMG_ERR_LEN] = "";
            bnn_fault_set(n);
            int rc = img_decode_png(&g, files[f]->data, files[f]->len, 4096, err);
            int fired = bnn_fault_fired();
            bnn_fault_set(0);
            if (!fired) {
                assert_int_equal(rc, IMG_OK);
                img_gray_free(&g);
                break;
            }
            if (rc != IMG_E_NOMEM)
                fail_msg("allocation %ld failed: expected IMG_E_NOMEM, got %d (%s)", n, rc, err);
            assert_null(g.pixels);
        }
        assert_true(n > 3 && n < 200);
    }
    mb_free(&plain);
    mb_free(&inter);
}

/* ---- committed fixtures (tests/data/png/MANIFEST) ---- */

static void write_file(const char *name, const uint8_t *data, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", FIXTURE_DIR, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len)
        assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* The digit dark-on-light, 5x larger, on a 280x280 white page, off-centre:
 * what a user's drawing looks like. */
static void page_picture(struct pic *p)
{
    p->w = p->h = 280;
    p->px = malloc(280 * 280);
    memset(p->px, 255, 280 * 280);
    for (size_t y = 0; y < 140; y++)
        for (size_t x = 0; x < 140; x++)
            p->px[(y + 40) * 280 + x + 100] = (uint8_t)(255 - g_digit.px[(y / 5) * 28 + x / 5]);
}

static void write_fixtures(void)
{
    FILE *m = fopen(FIXTURE_DIR "/MANIFEST", "w");
    assert_non_null(m);
    fprintf(m, "# file  expected-status  label  what (written by test_image with BNN_WRITE_FIXTURES=1)\n"
               "# status: ok, not_png, corrupt, too_large (image.h); label: MNIST t10k[0] digit or -\n");
    struct membuf b = {0};
    write_png(&b, &specs[3], &g_digit, 0, NULL);
    write_file("digit_gray8.png", b.data, b.len);
    fprintf(m, "digit_gray8.png ok %u MNIST t10k[0], 28x28 8-bit gray, light on dark\n", g_digit_label);
    mb_free(&b);
    write_png(&b, &specs[13], &g_digit, 1, NULL);
    write_file("digit_rgba16_adam7.png", b.data, b.len);
    fprintf(m, "digit_rgba16_adam7.png ok %u same digit, RGBA 16-bit, interlaced\n", g_digit_label);
    mb_free(&b);
    write_png(&b, &specs[20], &g_digit, 0, NULL);
    write_file("digit_palette4_trns.png", b.data, b.len);
    fprintf(m, "digit_palette4_trns.png ok %u same digit, 4-bit palette with tRNS\n", g_digit_label);
    mb_free(&b);
    struct pic page;
    page_picture(&page);
    write_png(&b, &specs[3], &page, 0, NULL);
    write_file("digit_on_page_280.png", b.data, b.len);
    fprintf(m, "digit_on_page_280.png ok %u same digit, dark on a white 280x280 page\n", g_digit_label);
    mb_free(&b);
    free(page.px);
    struct pic blank = {.w = 64, .h = 64, .px = malloc(64 * 64)};
    memset(blank.px, 255, 64 * 64);
    write_png(&b, &specs[3], &blank, 0, NULL);
    write_file("blank_white_64.png", b.data, b.len);
    fprintf(m, "blank_white_64.png ok - all white: preprocessing finds no ink\n");
    mb_free(&b);
    free(blank.px);

    build_gray_png(&b, 0, 0);
    size_t idat = find_chunk(&b, "IDAT");
    write_file("truncated_idat.png", b.data, idat + 20);
    fprintf(m, "truncated_idat.png corrupt - cut inside IDAT\n");
    write_file("truncated_header.png", b.data, 20);
    fprintf(m, "truncated_header.png corrupt - cut inside IHDR\n");
    b.data[idat + 8 + (b.data[idat + 2] << 8 | b.data[idat + 3]) + 3] ^= 1;
    write_file("bad_crc.png", b.data, b.len);
    fprintf(m, "bad_crc.png corrupt - IDAT CRC off by one bit\n");
    mb_free(&b);
    build_gray_png(&b, 5, 0);
    write_file("bad_filter.png", b.data, b.len);
    fprintf(m, "bad_filter.png corrupt - row 3 has filter type 5\n");
    mb_free(&b);
    build_gray_png(&b, 0, 1);
    write_file("bad_zlib.png", b.data, b.len);
    fprintf(m, "bad_zlib.png corrupt - scrambled deflate data, valid CRC\n");
    mb_free(&b);
    uint8_t tiny[9] = {0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1};
    add_ihdr(&b, 100000, 100000, 8, PNG_COLOR_TYPE_GRAY, 0);
    add_chunk(&b, "IDAT", tiny, 9);
    add_chunk(&b, "IEND", NULL, 0);
    write_file("huge_100000x100000.png", b.data, b.len);
    fprintf(m, "huge_100000x100000.png too_large - declares 100000x100000 in a %zu-byte file\n", b.len);
    mb_free(&b);
    add_ihdr(&b, 0, 28, 8, PNG_COLOR_TYPE_GRAY, 0);
    add_chunk(&b, "IDAT", tiny, 9);
    add_chunk(&b, "IEND", NULL, 0);
    write_file("zero_width.png", b.data, b.len);
    fprintf(m, "zero_width.png too_large - IHDR width 0\n");
    mb_free(&b);
    write_file("not_png.png", (const uint8_t *)"GIF89a this is not a PNG\n", 25);
    fprintf(m, "not_png.png not_png - text with a GIF signature\n");
    write_file("empty.png", NULL, 0);
    fprintf(m, "empty.png not_png - zero bytes\n");
    fclose(m);
}

static int status_of(const char *name)
{
    static const char *const names[] = {"ok", "not_png", "corrupt", "too_large", "nomem"};
    for (int i = 0; i < 5; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

static void test_committed_fixtures(void **state)
{
    (void)state;
    if (getenv("BNN_WRITE_FIXTURES"))
        write_fixtures();
    FILE *m = fopen(FIXTURE_DIR "/MANIFEST", "r");
    if (!m)
        fail_msg("cannot open %s/MANIFEST (run from the repository root)", FIXTURE_DIR);
    char line[512];
    int n = 0, n_ok = 0;
    while (fgets(line, sizeof line, m)) {
        char name[128], status[32], label[8];
        if (line[0] == '#' || sscanf(line, "%127s %31s %7s", name, status, label) != 3)
            continue;
        int want = status_of(status);
        assert_true(want >= 0);
        char path[256];
        snprintf(path, sizeof path, "%s/%s", FIXTURE_DIR, name);
        FILE *f = fopen(path, "rb");
        if (!f)
            fail_msg("fixture %s listed in MANIFEST is missing", path);
        static uint8_t buf[1 << 20];
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        expect_status(buf, len, 4096, want, name);
        if (want == IMG_OK && strncmp(name, "digit_", 6) == 0 && strcmp(name, "digit_on_page_280.png") != 0) {
            /* The 28x28 fixtures are t10k[0] exactly, whatever the format
             * (the 4-bit one quantised). */
            struct img_gray g;
            char err[IMG_ERR_LEN];
            assert_int_equal(img_decode_png(&g, buf, len, 4096, err), IMG_OK);
            const struct spec *s = strstr(name, "palette4") ? &specs[20] : &specs[3];
            for (size_t i = 0; i < 784; i++)
                assert_int_equal(g.pixels[i], expected_value(s, g_digit.px[i]));
            img_gray_free(&g);
            n_ok++;
        }
        n++;
    }
    fclose(m);
    assert_true(n >= 12);
    assert_int_equal(n_ok, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_format_decodes_identically),
        cmocka_unit_test(test_gray_rgb_rgba_agree_bit_for_bit),
        cmocka_unit_test(test_colour_chunks_are_ignored),
        cmocka_unit_test(test_alpha_composited_over_white),
        cmocka_unit_test(test_colour_to_gray_weights),
        cmocka_unit_test(test_reference_build_is_valid),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_bad_crc),
        cmocka_unit_test(test_bad_ancillary_crc_is_tolerated),
        cmocka_unit_test(test_bad_filter_byte),
        cmocka_unit_test(test_bad_zlib),
        cmocka_unit_test(test_unknown_critical_chunk),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_large_image_from_small_file),
        cmocka_unit_test(test_not_png),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_committed_fixtures),
    };
    return cmocka_run_group_tests_name("image", tests, load_digit, free_digit);
}
