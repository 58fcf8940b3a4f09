/* bnn-corrupt - writes MNIST-C-style corrupted copies of the MNIST test set:
 * OUT/NAME/t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte per corruption
 * (the layout of MNIST-C's per-corruption directories), and optionally the
 * first N images as PNG (OUT/NAME/png/00000-7.png, index and label).
 * A thin main over corrupt.h; deterministic for a seed.
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

#define PROG "bnn-corrupt"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: " PROG " --data DIR --out DIR [--corruption NAME|all] [--rotate DEG]\n"
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
    for (int k = 0; k < CORRUPT_COUNT; k++) fprintf(f, " %s", corrupt_name((enum corrupt_kind)k));
    fprintf(f, "\n");
}

static int parse_u64(const char *s, unsigned long long *out)
{
    char *end;
    errno = 0;
    if (*s == '-') return -1;
    *out = strtoull(s, &end, 10);
    return errno || end == s || *end ? -1 : 0;
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0777) == 0 || errno == EEXIST) return 0;
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
    for (int r = 0; r < side; r++) png_write_row(png, (png_const_bytep)(gray + (size_t)r * side));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0) {
        fprintf(stderr, PROG ": error: close %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* kind < 0: rotation by degrees. Returns 0 or -1 (message printed). */
static int write_set(const char *out_dir, const char *name, const struct idx_images *im, const struct idx_labels *lb,
                     int kind, double degrees, uint64_t seed, size_t n_png)
{
    char dir[4096], path[4200], err[BNN_ERR_LEN];
    snprintf(dir, sizeof dir, "%s/%s", out_dir, name);
    if (make_dir(dir) != 0) return -1;
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
    if (idx_images_save(path, &cor, err) != BNN_OK) rc = -1;
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", dir);
    if (rc == 0 && idx_labels_save(path, lb, err) != BNN_OK) rc = -1;
    if (rc != 0) fprintf(stderr, PROG ": error: %s\n", err);
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

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},  {"out", required_argument, NULL, 'o'},
        {"corruption", required_argument, NULL, 'c'}, {"rotate", required_argument, NULL, 'r'},
        {"seed", required_argument, NULL, 's'},  {"png", required_argument, NULL, 'p'},
        {"limit", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *data = NULL, *out = NULL, *which = "all", *rotate = NULL;
    unsigned long long seed = 0, n_png = 0, limit = 0;
    int have_limit = 0, opt;
    while ((opt = getopt_long(argc, argv, "d:o:c:r:s:p:l:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'd': data = optarg; break;
        case 'o': out = optarg; break;
        case 'c': which = optarg; break;
        case 'r': rotate = optarg; break;
        case 's':
            if (parse_u64(optarg, &seed) != 0) {
                fprintf(stderr, PROG ": error: --seed: expected a non-negative integer, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'p':
            if (parse_u64(optarg, &n_png) != 0) {
                fprintf(stderr, PROG ": error: --png: expected a non-negative integer, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'l':
            if (parse_u64(optarg, &limit) != 0 || limit == 0) {
                fprintf(stderr, PROG ": error: --limit: expected a positive integer, got '%s'\n", optarg);
                return 2;
            }
            have_limit = 1;
            break;
        case 'h': usage(stdout); return 0;
        default: fprintf(stderr, "try '" PROG " --help'\n"); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, PROG ": error: unexpected argument '%s'\ntry '" PROG " --help'\n", argv[optind]);
        return 2;
    }
    if (!data || !out) {
        fprintf(stderr, PROG ": error: --data and --out are required\ntry '" PROG " --help'\n");
        return 2;
    }
    enum corrupt_kind kind = CORRUPT_SHOT_NOISE;
    int all = strcmp(which, "all") == 0;
    if (!all && corrupt_parse(which, &kind) != 0) {
        fprintf(stderr, PROG ": error: --corruption: unknown name '%s'\ntry '" PROG " --help'\n", which);
        return 2;
    }
    double degrees = 0.0;
    if (rotate) {
        char *end;
        errno = 0;
        degrees = strtod(rotate, &end);
        if (errno || end == rotate || *end || degrees < -360.0 || degrees > 360.0) {
            fprintf(stderr, PROG ": error: --rotate: expected degrees in [-360, 360], got '%s'\n", rotate);
            return 2;
        }
    }

    char err[BNN_ERR_LEN];
    struct idx_images im = {0};
    struct idx_labels lb = {0};
    if (idx_load_mnist(&im, &lb, data, "t10k", err) != BNN_OK) {
        fprintf(stderr, PROG ": error: %s\n", err);
        return 1;
    }
    if (have_limit && limit < im.n) im.n = lb.n = (size_t)limit;
    if (make_dir(out) != 0) goto fail;
    if (rotate) {
        char name[64];
        snprintf(name, sizeof name, "rotate_%g", degrees);
        if (write_set(out, name, &im, &lb, -1, degrees, seed, (size_t)n_png) != 0) goto fail;
        printf("%s/%s: %zu images\n", out, name, im.n);
    } else {
        for (int k = 0; k < CORRUPT_COUNT; k++) {
            if (!all && k != (int)kind) continue;
            const char *name = corrupt_name((enum corrupt_kind)k);
            if (write_set(out, name, &im, &lb, k, 0.0, seed, (size_t)n_png) != 0) goto fail;
            printf("%s/%s: %zu images\n", out, name, im.n);
        }
    }
    idx_images_free(&im);
    idx_labels_free(&lb);
    return 0;
fail:
    idx_images_free(&im);
    idx_labels_free(&lb);
    return 1;
}
