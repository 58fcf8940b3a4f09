/* idx.h - MNIST IDX files (big-endian magic 0x00000803 images,
 * 0x00000801 labels). Reads whole files; refuses wrong magic, dimensions
 * that do not match the file size, and truncation, with a precise message.
 *
 * Part of the lab (model/lab/): linked by the tools and tests, never by
 * the daemon, which links only the runtime in model/.
 */
#ifndef BNN_IDX_H
#define BNN_IDX_H

#include "bnn.h"

struct idx_images {
    size_t n, rows, cols;
    uint8_t *pixels; /* (n, rows, cols), owned */
};

struct idx_labels {
    size_t n;
    uint8_t *labels; /* (n), owned */
};

/* Each returns BNN_OK and fills *out (free with the matching _free), or an
 * error code with err naming the file and the problem. gzip is not handled:
 * pass raw IDX (Fashion-MNIST .gz files go through idx_*_load_gz). */
int idx_images_load(struct idx_images *out, const char *path, char err[BNN_ERR_LEN]);
int idx_labels_load(struct idx_labels *out, const char *path, char err[BNN_ERR_LEN]);
int idx_images_parse(struct idx_images *out, const uint8_t *buf, size_t len, char err[BNN_ERR_LEN]);
int idx_labels_parse(struct idx_labels *out, const uint8_t *buf, size_t len, char err[BNN_ERR_LEN]);
/* Same for gzip-compressed files (zlib). */
int idx_images_load_gz(struct idx_images *out, const char *path, char err[BNN_ERR_LEN]);
int idx_labels_load_gz(struct idx_labels *out, const char *path, char err[BNN_ERR_LEN]);

int idx_images_save(const char *path, const struct idx_images *im, char err[BNN_ERR_LEN]);
int idx_labels_save(const char *path, const struct idx_labels *lb, char err[BNN_ERR_LEN]);

/* NULL-safe; leave the struct zeroed. */
void idx_images_free(struct idx_images *im);
void idx_labels_free(struct idx_labels *lb);

/* The MNIST pair in dir: {train,t10k}-images-idx3-ubyte + labels; checks
 * that counts match and images are 28x28. split is "train" or "t10k". */
int idx_load_mnist(struct idx_images *im, struct idx_labels *lb, const char *dir, const char *split,
                   char err[BNN_ERR_LEN]);

#endif
