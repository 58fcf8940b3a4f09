/* test_idx.c - IDX files: round trip, boundaries (0, 1, many items), wrong
 * magic, truncation, trailing bytes, gzip, the real MNIST and Fashion-MNIST
 * counts, idx_load_mnist's checks, and fault injection on the loaders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "fault.h"
#include "idx.h"

static const char *data_dir(void)
{
    const char *d = getenv("BNN_DATA");
    return d ? d : "build/data/mnist";
}

static char *tmpdir(void)
{
    char *d = strdup("/tmp/test_idx.XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void rm_dir(char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(dir);
}

/* An IDX image file in memory: header + n*r*c bytes (pixel i = i % 251). */
static uint8_t *image_bytes(uint32_t magic, uint32_t n, uint32_t r, uint32_t c, size_t extra, size_t *len)
{
    size_t body = (size_t)n * r * c;
    *len = 16 + body + extra;
    uint8_t *b = malloc(*len + 1);
    uint32_t h[4] = {magic, n, r, c};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            b[4 * i + j] = (uint8_t)(h[i] >> (24 - 8 * j));
    for (size_t i = 0; i < body + extra; i++)
        b[16 + i] = (uint8_t)(i % 251);
    return b;
}

static void test_images_parse_sizes(void **state)
{
    (void)state;
    const uint32_t ns[] = {0, 1, 1000};
    for (size_t k = 0; k < 3; k++) {
        size_t len;
        uint8_t *b = image_bytes(0x803, ns[k], 28, 28, 0, &len);
        struct idx_images im;
        char err[BNN_ERR_LEN];
        assert_int_equal(idx_images_parse(&im, b, len, err), BNN_OK);
        assert_int_equal(im.n, ns[k]);
        assert_int_equal(im.rows, 28);
        assert_int_equal(im.cols, 28);
        if (ns[k])
            assert_memory_equal(im.pixels, b + 16, len - 16);
        idx_images_free(&im);
        assert_null(im.pixels);
        free(b);
    }
}

struct idx_bad {
    const char *what;
    uint32_t magic, n, r, c;
    size_t extra; /* bytes beyond the declared data */
    size_t cut;   /* bytes removed from the end */
    const char *expect;
};

static void test_images_malformed(void **state)
{
    (void)state;
    static const struct idx_bad cases[] = {
        {"labels magic", 0x801, 2, 28, 28, 0, 0, "wrong magic: expected 0x00000803, got 0x00000801"},
        {"garbage magic", 0xdeadbeef, 2, 28, 28, 0, 0, "got 0xdeadbeef"},
        {"one byte short", 0x803, 2, 28, 28, 0, 1, "truncated: 2 x 28 x 28 needs 1568 pixel bytes, got 1567"},
        {"header only", 0x803, 2, 28, 28, 0, 1568, "got 0"},
        {"half a header", 0x803, 2, 28, 28, 0, 1568 + 8, "truncated header: expected 16 bytes, got 8"},
        {"empty file", 0x803, 2, 28, 28, 0, 1568 + 16, "got 0"},
        {"trailing bytes", 0x803, 2, 28, 28, 5, 0,
         "size mismatch: 2 x 28 x 28 needs 1568 pixel bytes, got 1573"},
        {"zero rows", 0x803, 2, 0, 28, 0, 0, "bad dimensions 2 x 0 x 28"},
        {"absurd count", 0x803, 0xffffffffu, 28, 28, 0, 0, "bad dimensions 4294967295 x 28 x 28"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct idx_bad *c = &cases[k];
        size_t len;
        uint8_t *b =
            image_bytes(c->magic, c->r ? (c->n > 1000 ? 0 : c->n) : c->n, c->r, c->c, c->extra, &len);
        if (c->n > 1000) /* declare the absurd count without writing it */
            b[4] = b[5] = b[6] = b[7] = 0xff;
        struct idx_images im;
        char err[BNN_ERR_LEN] = "";
        int rc = idx_images_parse(&im, b, len - c->cut, err);
        if (rc != BNN_E_FORMAT || !strstr(err, c->expect))
            fail_msg("%s: got %s \"%s\", expected \"%s\"", c->what, bnn_status_name(rc), err, c->expect);
        assert_null(im.pixels);
        free(b);
    }
}

static void test_labels_parse(void **state)
{
    (void)state;
    uint8_t b[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1};
    struct idx_labels lb;
    char err[BNN_ERR_LEN];
    assert_int_equal(idx_labels_parse(&lb, b, sizeof b, err), BNN_OK);
    assert_int_equal(lb.n, 3);
    assert_int_equal(lb.labels[2], 1);
    idx_labels_free(&lb);
    assert_int_equal(idx_labels_parse(&lb, b, sizeof b - 1, err), BNN_E_FORMAT);
    assert_non_null(strstr(err, "truncated: 3 labels need 3 bytes, got 2"));
    b[7] = 2;
    assert_int_equal(idx_labels_parse(&lb, b, sizeof b, err), BNN_E_FORMAT);
    assert_non_null(strstr(err, "size mismatch: 2 labels need 2 bytes, got 3"));
    b[3] = 3;
    assert_int_equal(idx_labels_parse(&lb, b, sizeof b, err), BNN_E_FORMAT);
    assert_non_null(strstr(err, "wrong magic: expected 0x00000801, got 0x00000803"));
    assert_int_equal(idx_labels_parse(&lb, b, 7, err), BNN_E_FORMAT);
    assert_non_null(strstr(err, "truncated header"));
    /* zero labels is a valid (empty) file */
    uint8_t z[8] = {0, 0, 8, 1, 0, 0, 0, 0};
    assert_int_equal(idx_labels_parse(&lb, z, 8, err), BNN_OK);
    assert_int_equal(lb.n, 0);
    idx_labels_free(&lb);
    idx_labels_free(NULL);
    idx_images_free(NULL);
}

/* Writes a small MNIST-like split (n images 28x28 + labels) into dir. */
static void write_split(const char *dir, const char *split, size_t n_img, size_t n_lab, size_t side)
{
    char path[512], err[BNN_ERR_LEN];
    struct idx_images im = {n_img, side, side, malloc(n_img * side * side + 1)};
    struct idx_labels lb = {n_lab, malloc(n_lab + 1)};
    for (size_t i = 0; i < n_img * side * side; i++)
        im.pixels[i] = (uint8_t)(i * 31 % 256);
    for (size_t i = 0; i < n_lab; i++)
        lb.labels[i] = (uint8_t)(i % 10);
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, split);
    assert_int_equal(idx_images_save(path, &im, err), BNN_OK);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, split);
    assert_int_equal(idx_labels_save(path, &lb, err), BNN_OK);
    idx_images_free(&im);
    idx_labels_free(&lb);
}

static void test_save_load_and_mnist_checks(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char err[BNN_ERR_LEN], path[512];
    struct idx_images im;
    struct idx_labels lb;
    write_split(dir, "t10k", 5, 5, 28);
    assert_int_equal(idx_load_mnist(&im, &lb, dir, "t10k", err), BNN_OK);
    assert_int_equal(im.n, 5);
    assert_int_equal(lb.n, 5);
    assert_int_equal(im.pixels[100], (uint8_t)(100 * 31 % 256));
    assert_int_equal(lb.labels[4], 4);
    idx_images_free(&im);
    idx_labels_free(&lb);

    assert_int_equal(idx_load_mnist(&im, &lb, dir, "valid", err), BNN_E_INVALID);
    assert_non_null(strstr(err, "\"valid\""));
    assert_int_equal(idx_load_mnist(&im, &lb, dir, "train", err), BNN_E_IO);
    assert_non_null(strstr(err, "train-images-idx3-ubyte"));

    write_split(dir, "train", 3, 2, 28);
    assert_int_equal(idx_load_mnist(&im, &lb, dir, "train", err), BNN_E_FORMAT);
    assert_non_null(strstr(err, "3 images but 2 labels"));
    assert_null(im.pixels);
    assert_null(lb.labels);
    write_split(dir, "train", 2, 2, 27);
    assert_int_equal(idx_load_mnist(&im, &lb, dir, "train", err), BNN_E_FORMAT);
    assert_non_null(strstr(err, "expected 28x28 images, got 27x27"));

    /* a label out of 0..9 */
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    write_split(dir, "train", 2, 2, 28);
    uint8_t bad[10] = {0, 0, 8, 1, 0, 0, 0, 2, 3, 10};
    FILE *f = fopen(path, "wb");
    fwrite(bad, 1, sizeof bad, f);
    fclose(f);
    assert_int_equal(idx_load_mnist(&im, &lb, dir, "train", err), BNN_E_FORMAT);
    assert_non_null(strstr(err, "label 1 is 10"));

    /* gzip: the same bytes compressed load identically; a corrupt stream fails */
    write_split(dir, "t10k", 4, 4, 28);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    struct idx_images raw, gz;
    assert_int_equal(idx_images_load(&raw, path, err), BNN_OK);
    char gzpath[600];
    snprintf(gzpath, sizeof gzpath, "%s.gz", path);
    gzFile g = gzopen(gzpath, "wb");
    FILE *src = fopen(path, "rb");
    uint8_t buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, src)) > 0)
        gzwrite(g, buf, (unsigned)n);
    fclose(src);
    gzclose(g);
    assert_int_equal(idx_images_load_gz(&gz, gzpath, err), BNN_OK);
    assert_int_equal(gz.n, raw.n);
    assert_memory_equal(gz.pixels, raw.pixels, raw.n * 784);
    idx_images_free(&gz);
    /* gzip with a damaged body */
    f = fopen(gzpath, "r+b");
    fseek(f, 30, SEEK_SET);
    fwrite("garbagegarbage", 1, 14, f);
    fclose(f);
    assert_int_not_equal(idx_images_load_gz(&gz, gzpath, err), BNN_OK);
    assert_non_null(strstr(err, gzpath));
    idx_images_free(&raw);
    rm_dir(dir);
}

static void test_real_mnist(void **state)
{
    (void)state;
    char path[512], err[BNN_ERR_LEN];
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", data_dir());
    if (access(path, R_OK) != 0) {
        printf("skipped: %s missing (run `make data`)\n", data_dir());
        skip();
    }
    struct idx_images im;
    struct idx_labels lb;
    static const struct {
        const char *split;
        size_t n;
        unsigned first_label;
        size_t count_of_1; /* images of digit 1 in the split (a known MNIST figure) */
    } splits[] = {{"train", 60000, 5, 6742}, {"t10k", 10000, 7, 1135}};
    for (int s = 0; s < 2; s++) {
        int rc = idx_load_mnist(&im, &lb, data_dir(), splits[s].split, err);
        if (rc != BNN_OK)
            fail_msg("%s", err);
        assert_int_equal(im.n, splits[s].n);
        assert_int_equal(lb.n, splits[s].n);
        assert_int_equal(lb.labels[0], splits[s].first_label);
        size_t ones = 0;
        for (size_t i = 0; i < lb.n; i++)
            ones += lb.labels[i] == 1;
        assert_int_equal(ones, splits[s].count_of_1);
        idx_images_free(&im);
        idx_labels_free(&lb);
    }
}

static void test_real_fashion_gz(void **state)
{
    (void)state;
    const char *p = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    const char *pl = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
    if (access(p, R_OK) != 0) {
        printf("skipped: %s missing (Debian dataset-fashion-mnist)\n", p);
        skip();
    }
    struct idx_images im;
    struct idx_labels lb;
    char err[BNN_ERR_LEN];
    assert_int_equal(idx_images_load_gz(&im, p, err), BNN_OK);
    assert_int_equal(idx_labels_load_gz(&lb, pl, err), BNN_OK);
    assert_int_equal(im.n, 10000);
    assert_int_equal(im.rows, 28);
    assert_int_equal(lb.n, 10000);
    size_t per[10] = {0};
    for (size_t i = 0; i < lb.n; i++) {
        assert_true(lb.labels[i] < 10);
        per[lb.labels[i]]++;
    }
    for (int c = 0; c < 10; c++)
        assert_int_equal(per[c], 1000); /* Fashion-MNIST's test set is balanced */
    idx_images_free(&im);
    idx_labels_free(&lb);
}

/* Every counted allocation and read in idx_load_mnist (and the gzip path)
 * fails in turn: an error each time, nothing returned, nothing leaked. */
static void test_fault_injection(void **state)
{
    (void)state;
    char *dir = tmpdir();
    char err[BNN_ERR_LEN], path[512];
    write_split(dir, "t10k", 7, 7, 28);
    struct idx_images im;
    struct idx_labels lb;
    long n;
    for (n = 1; n < 100; n++) {
        bnn_fault_set(n);
        int rc = idx_load_mnist(&im, &lb, dir, "t10k", err);
        int fired = bnn_fault_fired();
        bnn_fault_set(0);
        if (!fired) {
            assert_int_equal(rc, BNN_OK);
            assert_int_equal(im.n, 7);
            break;
        }
        assert_int_not_equal(rc, BNN_OK);
        assert_null(im.pixels);
        assert_null(lb.labels);
        assert_non_null(strstr(err, dir));
    }
    assert_true(n >= 7); /* 2 files x (buffer, >= 2 reads, copy) */
    idx_images_free(&im);
    idx_labels_free(&lb);

    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    char gzpath[600];
    snprintf(gzpath, sizeof gzpath, "%s.gz", path);
    gzFile g = gzopen(gzpath, "wb");
    uint8_t hdr[16] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28}, px[784] = {0};
    gzwrite(g, hdr, 16);
    gzwrite(g, px, 784);
    gzclose(g);
    for (n = 1; n < 100; n++) {
        bnn_fault_set(n);
        int rc = idx_images_load_gz(&im, gzpath, err);
        int fired = bnn_fault_fired();
        bnn_fault_set(0);
        if (!fired) {
            assert_int_equal(rc, BNN_OK);
            assert_int_equal(im.n, 1);
            break;
        }
        assert_int_not_equal(rc, BNN_OK);
        assert_null(im.pixels);
    }
    assert_true(n >= 3);
    idx_images_free(&im);
    rm_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_images_parse_sizes), cmocka_unit_test(test_images_malformed),
        cmocka_unit_test(test_labels_parse),       cmocka_unit_test(test_save_load_and_mnist_checks),
        cmocka_unit_test(test_real_mnist),         cmocka_unit_test(test_real_fashion_gz),
        cmocka_unit_test(test_fault_injection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
