/* weights.h - load and save a bnn_model as safetensors (8-byte LE header
 * length, JSON header, raw LE F32 tensors). Tensor names:
 *   layers.{i}.kernel_loc / kernel_scale  F32 [n_in, n_out]  (scale = sigma)
 *   layers.{i}.bias_loc   / bias_scale    F32 [n_out]
 * plus __metadata__ (string -> string), which must carry format "bnn-serve/1".
 * Loading validates everything and names the tensor and the problem in err.
 * Tensors are memcpy'd as little-endian F32: big-endian hosts are refused at
 * compile time, not supported. Reading is weights.c, writing weights_save.c.
 */
#ifndef BNN_WEIGHTS_H
#define BNN_WEIGHTS_H

#include "bnn.h"

#define BNN_WEIGHTS_FORMAT "bnn-serve/1"
#define BNN_WEIGHTS_MAX_HEADER (100u << 20) /* header JSON cap, bytes */

/* Parses a whole safetensors image held in memory. On success *out is a new
 * model (owned by caller) and BNN_OK is returned; otherwise *out is NULL and
 * err says which tensor and what is wrong, e.g.
 * "layers.2.kernel_loc: expected shape [256,256], got [256,128]". */
int bnn_weights_parse(struct bnn_model **out, const uint8_t *buf, size_t len, char err[BNN_ERR_LEN]);

/* Reads path and parses it; errors as above, prefixed with the path. */
int bnn_weights_load(struct bnn_model **out, const char *path, char err[BNN_ERR_LEN]);

/* Serialises m (with its metadata; format is set to BNN_WEIGHTS_FORMAT) into a
 * new malloc'd buffer (*buf, *len; owned by caller). Header keys sorted,
 * header padded with spaces to a multiple of 8, tensors in key order. */
int bnn_weights_serialize(uint8_t **buf, size_t *len, const struct bnn_model *m, char err[BNN_ERR_LEN]);

/* Writes atomically (temp file + rename) so a crash never leaves half a file. */
int bnn_weights_save(const char *path, const struct bnn_model *m, char err[BNN_ERR_LEN]);

#endif
