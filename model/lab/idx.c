/* idx.c - MNIST IDX reader/writer. A file is a 4-byte big-endian magic
 * (0x00000803 images: n, rows, cols; 0x00000801 labels: n), the dimensions as
 * big-endian u32, then exactly prod(dims) bytes. Anything else is refused.
 * Reads go through fault.h so the error paths can be tested.
 */
#include "idx.h"
#include "fault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_READ_CHUNK (1u << 20)
#define IDX_MAX_FILE ((size_t)1 << 34) /* 16 GiB: far beyond any IDX data set */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Reads a whole file (plain or gzip) into a new buffer (*buf owned by caller). */
static int read_all(uint8_t **buf, size_t *len, const char *path, int gz, char err[BNN_ERR_LEN])
{
    *buf = NULL;
    *len = 0;
    FILE *f = NULL;
    gzFile g = NULL;
    if (gz)
        g = gzopen(path, "rb");
    else
        f = fopen(path, "rb");
    if (!f && !g) {
        snprintf(err, BNN_ERR_LEN, "open %s: %s", path, strerror(errno ? errno : ENOMEM));
        return BNN_E_IO;
    }
    size_t cap = 0, used = 0;
    uint8_t *data = NULL;
    int rc = BNN_OK;
    for (;;) {
        if (cap - used < IDX_READ_CHUNK) {
            size_t ncap = cap ? cap * 2 : 4 * (size_t)IDX_READ_CHUNK;
            if (ncap > IDX_MAX_FILE) {
                snprintf(err, BNN_ERR_LEN, "read %s: larger than %zu bytes", path, IDX_MAX_FILE);
                rc = BNN_E_FORMAT;
                goto fail;
            }
            uint8_t *grown = bnn_fault_realloc(data, ncap);
            if (!grown) {
                snprintf(err, BNN_ERR_LEN, "read %s: out of memory (%zu bytes)", path, ncap);
                rc = BNN_E_NOMEM;
                goto fail;
            }
            data = grown;
            cap = ncap;
        }
        if (bnn_fault_io()) {
            snprintf(err, BNN_ERR_LEN, "read %s: injected I/O fault at byte %zu", path, used);
            rc = BNN_E_IO;
            goto fail;
        }
        size_t got;
        if (gz) {
            int n = gzread(g, data + used, IDX_READ_CHUNK);
            if (n < 0) {
                int zerr;
                const char *msg = gzerror(g, &zerr);
                snprintf(err, BNN_ERR_LEN, "read %s: gzip: %s", path, msg);
                rc = BNN_E_FORMAT;
                goto fail;
            }
            got = (size_t)n;
        } else {
            got = fread(data + used, 1, IDX_READ_CHUNK, f);
            if (got == 0 && ferror(f)) {
                snprintf(err, BNN_ERR_LEN, "read %s: %s", path, strerror(errno));
                rc = BNN_E_IO;
                goto fail;
            }
        }
        used += got;
        if (got == 0)
            break;
    }
    if (gz)
        gzclose(g);
    else
        fclose(f);
    *buf = data;
    *len = used;
    return BNN_OK;
fail:
    free(data);
    if (gz)
        gzclose(g);
    else
        fclose(f);
    return rc;
}

int idx_images_parse(struct idx_images *out, const uint8_t *buf, size_t len, char err[BNN_ERR_LEN])
{
    memset(out, 0, sizeof *out);
    if (len < 16) {
        snprintf(err, BNN_ERR_LEN, "idx images: truncated header: expected 16 bytes, got %zu", len);
        return BNN_E_FORMAT;
    }
    uint32_t magic = be32(buf);
    if (magic != IDX_MAGIC_IMAGES) {
        snprintf(err, BNN_ERR_LEN, "idx images: wrong magic: expected 0x%08x, got 0x%08x", IDX_MAGIC_IMAGES,
                 magic);
        return BNN_E_FORMAT;
    }
    size_t n = be32(buf + 4), rows = be32(buf + 8), cols = be32(buf + 12);
    /* Each factor < 2^32, so n*rows*cols may overflow 64 bits: check in steps. */
    if (rows == 0 || cols == 0 || rows * cols > IDX_MAX_FILE || (n && rows * cols > IDX_MAX_FILE / n)) {
        snprintf(err, BNN_ERR_LEN, "idx images: bad dimensions %zu x %zu x %zu", n, rows, cols);
        return BNN_E_FORMAT;
    }
    size_t want = n * rows * cols, have = len - 16;
    if (have < want) {
        snprintf(err, BNN_ERR_LEN, "idx images: truncated: %zu x %zu x %zu needs %zu pixel bytes, got %zu", n,
                 rows, cols, want, have);
        return BNN_E_FORMAT;
    }
    if (have > want) {
        snprintf(err, BNN_ERR_LEN,
                 "idx images: size mismatch: %zu x %zu x %zu needs %zu pixel bytes, got %zu (%zu trailing)",
                 n, rows, cols, want, have, have - want);
        return BNN_E_FORMAT;
    }
    uint8_t *px = bnn_fault_malloc(want);
    if (!px) {
        snprintf(err, BNN_ERR_LEN, "idx images: out of memory (%zu bytes)", want);
        return BNN_E_NOMEM;
    }
    if (want)
        memcpy(px, buf + 16, want);
    out->n = n, out->rows = rows, out->cols = cols, out->pixels = px;
    return BNN_OK;
}

int idx_labels_parse(struct idx_labels *out, const uint8_t *buf, size_t len, char err[BNN_ERR_LEN])
{
    memset(out, 0, sizeof *out);
    if (len < 8) {
        snprintf(err, BNN_ERR_LEN, "idx labels: truncated header: expected 8 bytes, got %zu", len);
        return BNN_E_FORMAT;
    }
    uint32_t magic = be32(buf);
    if (magic != IDX_MAGIC_LABELS) {
        snprintf(err, BNN_ERR_LEN, "idx labels: wrong magic: expected 0x%08x, got 0x%08x", IDX_MAGIC_LABELS,
                 magic);
        return BNN_E_FORMAT;
    }
    size_t n = be32(buf + 4), have = len - 8;
    if (have < n) {
        snprintf(err, BNN_ERR_LEN, "idx labels: truncated: %zu labels need %zu bytes, got %zu", n, n, have);
        return BNN_E_FORMAT;
    }
    if (have > n) {
        snprintf(err, BNN_ERR_LEN, "idx labels: size mismatch: %zu labels need %zu bytes, got %zu", n, n,
                 have);
        return BNN_E_FORMAT;
    }
    uint8_t *lb = bnn_fault_malloc(n);
    if (!lb) {
        snprintf(err, BNN_ERR_LEN, "idx labels: out of memory (%zu bytes)", n);
        return BNN_E_NOMEM;
    }
    if (n)
        memcpy(lb, buf + 8, n);
    out->n = n, out->labels = lb;
    return BNN_OK;
}

/* Reads path (gunzipped when gz) and parses it into im, or into lb when im
 * is NULL; err names the file. */
static int load(struct idx_images *im, struct idx_labels *lb, const char *path, int gz, char err[BNN_ERR_LEN])
{
    if (im)
        memset(im, 0, sizeof *im);
    else
        memset(lb, 0, sizeof *lb);
    uint8_t *buf;
    size_t len;
    int rc = read_all(&buf, &len, path, gz, err);
    if (rc != BNN_OK)
        return rc;
    rc = im ? idx_images_parse(im, buf, len, err) : idx_labels_parse(lb, buf, len, err);
    free(buf);
    if (rc != BNN_OK)
        bnn_err_prefix(err, path);
    return rc;
}

int idx_images_load(struct idx_images *out, const char *path, char err[BNN_ERR_LEN])
{
    return load(out, NULL, path, 0, err);
}

int idx_labels_load(struct idx_labels *out, const char *path, char err[BNN_ERR_LEN])
{
    return load(NULL, out, path, 0, err);
}

int idx_images_load_gz(struct idx_images *out, const char *path, char err[BNN_ERR_LEN])
{
    return load(out, NULL, path, 1, err);
}

int idx_labels_load_gz(struct idx_labels *out, const char *path, char err[BNN_ERR_LEN])
{
    return load(NULL, out, path, 1, err);
}

static int write_file(const char *path, const uint8_t *hdr, size_t hlen, const uint8_t *data, size_t dlen,
                      char err[BNN_ERR_LEN])
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(err, BNN_ERR_LEN, "open %s: %s", path, strerror(errno));
        return BNN_E_IO;
    }
    int ok = fwrite(hdr, 1, hlen, f) == hlen && (dlen == 0 || fwrite(data, 1, dlen, f) == dlen);
    int saved = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (!ok) {
        snprintf(err, BNN_ERR_LEN, "write %s: %s", path, strerror(saved));
        return BNN_E_IO;
    }
    return BNN_OK;
}

int idx_images_save(const char *path, const struct idx_images *im, char err[BNN_ERR_LEN])
{
    if (im->n > UINT32_MAX || im->rows > UINT32_MAX || im->cols > UINT32_MAX) {
        snprintf(err, BNN_ERR_LEN, "write %s: dimensions %zu x %zu x %zu exceed IDX's u32", path, im->n,
                 im->rows, im->cols);
        return BNN_E_INVALID;
    }
    uint8_t hdr[16];
    put_be32(hdr, IDX_MAGIC_IMAGES);
    put_be32(hdr + 4, (uint32_t)im->n);
    put_be32(hdr + 8, (uint32_t)im->rows);
    put_be32(hdr + 12, (uint32_t)im->cols);
    return write_file(path, hdr, sizeof hdr, im->pixels, im->n * im->rows * im->cols, err);
}

int idx_labels_save(const char *path, const struct idx_labels *lb, char err[BNN_ERR_LEN])
{
    if (lb->n > UINT32_MAX) {
        snprintf(err, BNN_ERR_LEN, "write %s: %zu labels exceed IDX's u32", path, lb->n);
        return BNN_E_INVALID;
    }
    uint8_t hdr[8];
    put_be32(hdr, IDX_MAGIC_LABELS);
    put_be32(hdr + 4, (uint32_t)lb->n);
    return write_file(path, hdr, sizeof hdr, lb->labels, lb->n, err);
}

void idx_images_free(struct idx_images *im)
{
    if (!im)
        return;
    free(im->pixels);
    memset(im, 0, sizeof *im);
}

void idx_labels_free(struct idx_labels *lb)
{
    if (!lb)
        return;
    free(lb->labels);
    memset(lb, 0, sizeof *lb);
}

int idx_load_mnist(struct idx_images *im, struct idx_labels *lb, const char *dir, const char *split,
                   char err[BNN_ERR_LEN])
{
    memset(im, 0, sizeof *im);
    memset(lb, 0, sizeof *lb);
    if (strcmp(split, "train") != 0 && strcmp(split, "t10k") != 0) {
        snprintf(err, BNN_ERR_LEN, "idx_load_mnist: split must be \"train\" or \"t10k\", got \"%s\"", split);
        return BNN_E_INVALID;
    }
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, split);
    if (n < 0 || (size_t)n >= sizeof path) {
        snprintf(err, BNN_ERR_LEN, "idx_load_mnist: directory name too long (%zu bytes)", strlen(dir));
        return BNN_E_INVALID;
    }
    int rc = idx_images_load(im, path, err);
    if (rc != BNN_OK)
        return rc;
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, split);
    rc = idx_labels_load(lb, path, err);
    if (rc != BNN_OK)
        goto fail;
    if (im->rows != BNN_MNIST_SIDE || im->cols != BNN_MNIST_SIDE) {
        snprintf(err, BNN_ERR_LEN, "%s/%s: expected %dx%d images, got %zux%zu", dir, split, BNN_MNIST_SIDE,
                 BNN_MNIST_SIDE, im->rows, im->cols);
        rc = BNN_E_FORMAT;
        goto fail;
    }
    if (im->n != lb->n) {
        snprintf(err, BNN_ERR_LEN, "%s/%s: %zu images but %zu labels", dir, split, im->n, lb->n);
        rc = BNN_E_FORMAT;
        goto fail;
    }
    for (size_t i = 0; i < lb->n; i++) {
        if (lb->labels[i] > 9) {
            snprintf(err, BNN_ERR_LEN, "%s/%s: label %zu is %u, expected 0..9", dir, split, i, lb->labels[i]);
            rc = BNN_E_FORMAT;
            goto fail;
        }
    }
    return BNN_OK;
fail:
    idx_images_free(im);
    idx_labels_free(lb);
    return rc;
}
