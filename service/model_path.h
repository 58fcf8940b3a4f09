/* model_path.h - where the weights file is, given the `model` setting: a
 * file is used as it is; a directory must hold exactly one *.safetensors
 * file, which is then the model. So a model directory such as KServe's
 * /mnt/models (where its storage initializer downloads an InferenceService's
 * storageUri) works unchanged as --model.
 *
 * Pure lookup: nothing is opened but the directory, nothing is kept, nothing
 * is printed; the safetensors loader validates the file's contents later.
 */
#ifndef BNN_MODEL_PATH_H
#define BNN_MODEL_PATH_H

#include <stddef.h>

#define MODEL_PATH_ERR_LEN 256

/* Writes the weights file's path for `path` into out (out_len bytes,
 * NUL-terminated) and returns 0:
 *   - path is a file (or a symbolic link to one; anything but a directory
 *     that stat() accepts as a regular file): out = path, unchanged;
 *   - path is a directory: out = path "/" NAME, where NAME is the only entry
 *     whose name ends in ".safetensors" and that is a regular file (links
 *     followed). Entries whose names start with '.' are ignored (download
 *     and editor leftovers), as are subdirectories and other files.
 * Returns -1 with err filled (naming the path and what was found, e.g.
 * "directory '/mnt/models' holds no .safetensors file (found: config.json,
 * README.md)" or "... holds 2 .safetensors files (a.safetensors,
 * b.safetensors): keep one, or name the file") when path is NULL or empty,
 * cannot be stat'ed or read, is neither a file nor a directory, a directory
 * holds none or several, or the result does not fit in out; out is then
 * the empty string (when out_len > 0). Names in
 * messages are sorted, so they do not depend on the directory's order. */
int model_path_resolve(char *out, size_t out_len, const char *path, char err[MODEL_PATH_ERR_LEN]);

#endif
