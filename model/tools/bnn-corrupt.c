/* bnn-corrupt - writes MNIST-C-style corrupted copies of the MNIST test set:
 * OUT/NAME/t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte per corruption
 * (the layout of MNIST-C's per-corruption directories), and optionally the
 * first N images as PNG (OUT/NAME/png/00000-7.png, index and label).
 * A thin main over corrupt.h (options, run); deterministic for a seed.
 */
#include <errno.h>
#include <getopt.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "corrupt.h"
#include "idx.h"

#include "cli.h"

#define PROG "bnn-corrupt"

static void usage(FILE *f)
{
    fprintf(f, "usage: " PROG " --data DIR --out DIR [--corruption NAME|all] [--rotate DEG]\n"
               "                   [--seed S] [--png N] [--limit N]\n"
               "Writes corrupted copies of DIR/t10k-{images-idx3,labels-idx1}-ubyte to\n"
               "OUT/NAME/ (IDX), and the first N of each as PNG to OUT/NAME/png/.\n"
               "  --corruption NAME  one of the 15 below, or all (default)\n"
               "  --rotate DEG       instead: the test set rotated by DEG degrees\n"
               "                     (counter-clockwise), written to OUT/rotate_DEG/\n"
               "  --seed S           random seed (default 0)\n"
               "  --png N            also write the first N images as PNG (default 0)\n"
               "  --limit N          only the first N test images (default all)\n"
               "corruptions:");
    for (int k = 0; k < CORRUPT_COUNT; k++)
        fprintf(f, " %s", corrupt_name((enum corrupt_kind)k));
    fprintf(f, "\n");
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0777) == 0 || errno == EEXIST)
        return 0;
    fprintf(stderr, PROG ": error: mkdir %s: %s\n", path, strerror(errno));
    return -1;
}

static int write_png(const char *path, const uint8_t *gray, int side)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, PROG ": error: open %s: %s\n", path, strerror(errno));
        return -1;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        fprintf(stderr, PROG ": error: writing PNG %s failed\n", path);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)side, (png_uint_32)side, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int r = 0; r < side; r++)
        png_write_row(png, (png_const_bytep)(gray + (size_t)r * side));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0) {
        fprintf(stderr, PROG ": error: close %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* kind < 0: rotation by degrees. Returns 0 or -1 (message printed). */
static int write_set(const char *out_dir, const char *name, const struct idx_images *im,
                     const struct idx_labels *lb, int kind, double degrees, uint64_t seed, size_t n_png)
{
    char dir[4096], path[4200], err[BNN_ERR_LEN];
    snprintf(dir, sizeof dir, "%s/%s", out_dir, name);
    if (make_dir(dir) != 0)
        return -1;
    struct idx_images cor = {im->n, im->rows, im->cols, malloc(im->n * CORRUPT_PIXELS)};
    if (!cor.pixels) {
        fprintf(stderr, PROG ": error: out of memory for %zu images\n", im->n);
        return -1;
    }
    for (size_t i = 0; i < im->n; i++) {
        uint8_t *dst = cor.pixels + i * CORRUPT_PIXELS;
        const uint8_t *src = im->pixels + i * CORRUPT_PIXELS;
        if (kind < 0) {
            corrupt_rotate(dst, src, degrees);
        } else if (corrupt_apply(dst, src, (enum corrupt_kind)kind, seed, i) != 0) {
            fprintf(stderr, PROG ": error: %s on image %zu failed (out of memory)\n", name, i);
            idx_images_free(&cor);
            return -1;
        }
    }
    int rc = 0;
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    if (idx_images_save(path, &cor, err) != BNN_OK)
        rc = -1;
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", dir);
    if (rc == 0 && idx_labels_save(path, lb, err) != BNN_OK)
        rc = -1;
    if (rc != 0)
        fprintf(stderr, PROG ": error: %s\n", err);
    if (rc == 0 && n_png > 0) {
        snprintf(path, sizeof path, "%s/png", dir);
        rc = make_dir(path);
        for (size_t i = 0; rc == 0 && i < n_png && i < im->n; i++) {
            snprintf(path, sizeof path, "%s/png/%05zu-%d.png", dir, i, lb->labels[i]);
            rc = write_png(path, cor.pixels + i * CORRUPT_PIXELS, CORRUPT_SIDE);
        }
    }
    idx_images_free(&cor);
    return rc;
}

struct options {
    const char *data, *out, *which;
    int all, rotate;
    enum corrupt_kind kind;
    double degrees;
    size_t seed, n_png, limit;
};

static const struct option long_options[] = {
    {"data", required_argument, NULL, 'd'},
    {"out", required_argument, NULL, 'o'},
    {"corruption", required_argument, NULL, 'c'},
    {"rotate", required_argument, NULL, 'r'},
    {"seed", required_argument, NULL, 's'},
    {"png", required_argument, NULL, 'p'},
    {"limit", required_argument, NULL, 'l'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* One option into o; the expectation its value failed, or NULL. */
static const char *parse_one(void *opts, int c, const char *arg)
{
    struct options *o = opts;
    switch (c) {
    case 'd':
        o->data = arg;
        return NULL;
    case 'o':
        o->out = arg;
        return NULL;
    case 'c':
        o->which = arg;
        o->all = strcmp(arg, "all") == 0;
        return o->all || corrupt_parse(arg, &o->kind) == 0 ? NULL : "all or a corruption name (see --help)";
    case 'r':
        o->rotate = 1;
        return cli_parse_double(arg, &o->degrees) || o->degrees < -360.0 || o->degrees > 360.0
                   ? "degrees in [-360, 360]"
                   : NULL;
    case 's':
        return cli_parse_size(arg, &o->seed) ? "a non-negative integer" : NULL;
    case 'p':
        return cli_parse_size(arg, &o->n_png) ? "a non-negative integer" : NULL;
    case 'l':
        return cli_parse_size(arg, &o->limit) || o->limit == 0 ? "a positive integer" : NULL;
    }
    return "a known option";
}

static int parse_options(struct options *o, int argc, char **argv)
{
    *o = (struct options){.which = "all", .all = 1};
    int rc = cli_getopt(PROG, argc, argv, "d:o:c:r:s:p:l:h", long_options, 'h', usage, parse_one, o);
    if (rc != CLI_RUN)
        return rc;
    return cli_finish(PROG, argc, argv, o->data && o->out, "--data and --out are required");
}

/* Every set asked for; 0, or -1 with the message printed. */
static int run(const struct options *o, const struct idx_images *im, const struct idx_labels *lb)
{
    if (make_dir(o->out) != 0)
        return -1;
    if (o->rotate) {
        char name[64];
        snprintf(name, sizeof name, "rotate_%g", o->degrees);
        if (write_set(o->out, name, im, lb, -1, o->degrees, o->seed, o->n_png) != 0)
            return -1;
        printf("%s/%s: %zu images\n", o->out, name, im->n);
        return 0;
    }
    for (int k = 0; k < CORRUPT_COUNT; k++) {
        if (!o->all && k != (int)o->kind)
            continue;
        const char *name = corrupt_name((enum corrupt_kind)k);
        if (write_set(o->out, name, im, lb, k, 0.0, o->seed, o->n_png) != 0)
            return -1;
        printf("%s/%s: %zu images\n", o->out, name, im->n);
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct options o;
    int status = parse_options(&o, argc, argv);
    if (status != CLI_RUN)
        return status;
    char err[BNN_ERR_LEN];
    struct idx_images im = {0};
    struct idx_labels lb = {0};
    if (idx_load_mnist(&im, &lb, o.data, "t10k", err) != BNN_OK) {
        fprintf(stderr, PROG ": error: %s\n", err);
        return 1;
    }
    if (o.limit && o.limit < im.n)
        im.n = lb.n = o.limit;
    status = run(&o, &im, &lb) == 0 ? 0 : 1;
    idx_images_free(&im);
    idx_labels_free(&lb);
    return status;
}
