/* weights_save.c - bnn_model -> safetensors (serialize, save); the reader
 * is weights.c. The header's keys are sorted and the data section holds
 * the tensors in the same order, so the file reads front to back; the
 * header is padded with spaces to a multiple of 8 bytes so every tensor is
 * 4-byte aligned (what the reference safetensors writer does).
 */
#include "weights.h"
#include "fault.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "weights_save.c writes little-endian F32 by memcpy: big-endian hosts are not supported"
#endif
_Static_assert(sizeof(float) == 4, "F32 tensors need a 4-byte float");

#define NOMEM_HEADER "serialize: out of memory (JSON header)"

/* A layer's tensors in the order of their sorted names (layers.0.bias_loc,
 * bias_scale, kernel_loc, kernel_scale, layers.1...): name, rank, data. */
struct tensor_out {
    const char *suffix;
    size_t rank;
    const float *data;
};

static void layer_tensors(struct tensor_out t[4], const struct bnn_layer *L)
{
    t[0] = (struct tensor_out){"bias_loc", 1, L->b_mu};
    t[1] = (struct tensor_out){"bias_scale", 1, L->b_sigma};
    t[2] = (struct tensor_out){"kernel_loc", 2, L->w_mu};
    t[3] = (struct tensor_out){"kernel_scale", 2, L->w_sigma};
}

static size_t tensor_bytes(const struct tensor_out *t, const struct bnn_layer *L)
{
    return 4 * (t->rank == 1 ? L->n_out : L->n_in * L->n_out);
}

static int set_tensor(json_t *root, const char *name, const size_t *shape, size_t rank, size_t begin,
                      size_t end)
{
    json_t *sh = json_array(), *offs = json_array(), *entry = json_object();
    int bad = !sh || !offs || !entry;
    for (size_t i = 0; i < rank && !bad; i++)
        bad = json_array_append_new(sh, json_integer((json_int_t)shape[i])) != 0;
    bad = bad || json_array_append_new(offs, json_integer((json_int_t)begin)) ||
          json_array_append_new(offs, json_integer((json_int_t)end));
    bad = bad || json_object_set_new(entry, "dtype", json_string("F32"));
    if (bad) {
        json_decref(sh);
        json_decref(offs);
        json_decref(entry);
        return -1;
    }
    json_object_set_new(entry, "shape", sh);
    json_object_set_new(entry, "data_offsets", offs);
    return json_object_set_new(root, name, entry);
}

/* __metadata__: m's pairs, format last (always BNN_WEIGHTS_FORMAT). */
static int header_metadata(json_t *root, const struct bnn_model *m, char err[BNN_ERR_LEN])
{
    json_t *meta = json_object();
    if (!meta || json_object_set_new(root, "__metadata__", meta) != 0) {
        snprintf(err, BNN_ERR_LEN, NOMEM_HEADER);
        return BNN_E_NOMEM;
    }
    for (size_t i = 0; i < m->n_meta; i++) {
        if (strcmp(m->meta[i].key, "format") == 0)
            continue;
        json_t *s = json_string(m->meta[i].value);
        if (!s || json_object_set_new(meta, m->meta[i].key, s) != 0) {
            snprintf(err, BNN_ERR_LEN, "serialize: __metadata__.%.64s: not valid UTF-8 or out of memory",
                     m->meta[i].key);
            return BNN_E_INVALID;
        }
    }
    if (json_object_set_new(meta, "format", json_string(BNN_WEIGHTS_FORMAT)) != 0) {
        snprintf(err, BNN_ERR_LEN, NOMEM_HEADER);
        return BNN_E_NOMEM;
    }
    return BNN_OK;
}

/* The whole header as compact JSON (new string, owned by caller) and the
 * data section's length. */
static int header_json(char **hdr, size_t *data_len, const struct bnn_model *m, char err[BNN_ERR_LEN])
{
    *hdr = NULL;
    json_t *root = json_object();
    int rc = root ? header_metadata(root, m, err) : BNN_E_NOMEM;
    size_t off = 0;
    for (size_t i = 0; rc == BNN_OK && i < m->n_layers; i++) {
        const struct bnn_layer *L = &m->layers[i];
        struct tensor_out t[4];
        layer_tensors(t, L);
        for (int k = 0; rc == BNN_OK && k < 4; k++) {
            size_t shape[2] = {t[k].rank == 1 ? L->n_out : L->n_in, L->n_out}, bytes = tensor_bytes(&t[k], L);
            char name[64];
            snprintf(name, sizeof name, "layers.%zu.%s", i, t[k].suffix);
            if (set_tensor(root, name, shape, t[k].rank, off, off + bytes) != 0)
                rc = BNN_E_NOMEM;
            off += bytes;
        }
    }
    if (rc == BNN_OK && !(*hdr = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS)))
        rc = BNN_E_NOMEM;
    if (rc == BNN_E_NOMEM)
        snprintf(err, BNN_ERR_LEN, NOMEM_HEADER);
    json_decref(root);
    *data_len = off;
    return rc;
}

int bnn_weights_serialize(uint8_t **buf, size_t *len, const struct bnn_model *m, char err[BNN_ERR_LEN])
{
    *buf = NULL;
    *len = 0;
    char *hdr;
    size_t data_len;
    int rc = header_json(&hdr, &data_len, m, err);
    if (rc != BNN_OK)
        return rc;
    size_t hlen = strlen(hdr), padded = (hlen + 7) / 8 * 8, total = 8 + padded + data_len;
    uint8_t *out = bnn_fault_malloc(total);
    if (!out) {
        snprintf(err, BNN_ERR_LEN, "serialize: out of memory (%zu bytes)", total);
        free(hdr);
        return BNN_E_NOMEM;
    }
    for (int b = 0; b < 8; b++)
        out[b] = (uint8_t)((uint64_t)padded >> (8 * b));
    memcpy(out + 8, hdr, hlen);
    memset(out + 8 + hlen, ' ', padded - hlen);
    free(hdr);
    uint8_t *p = out + 8 + padded;
    for (size_t i = 0; i < m->n_layers; i++) {
        struct tensor_out t[4];
        layer_tensors(t, &m->layers[i]);
        for (int k = 0; k < 4; k++) {
            size_t bytes = tensor_bytes(&t[k], &m->layers[i]);
            memcpy(p, t[k].data, bytes);
            p += bytes;
        }
    }
    *buf = out;
    *len = total;
    return BNN_OK;
}

int bnn_weights_save(const char *path, const struct bnn_model *m, char err[BNN_ERR_LEN])
{
    uint8_t *buf;
    size_t len;
    int rc = bnn_weights_serialize(&buf, &len, m, err);
    if (rc != BNN_OK)
        return rc;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) {
        free(buf);
        snprintf(err, BNN_ERR_LEN, "save %s: out of memory", path);
        return BNN_E_NOMEM;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(err, BNN_ERR_LEN, "create %s: %s", tmp, strerror(errno));
        free(tmp);
        free(buf);
        return BNN_E_IO;
    }
    size_t done = 0;
    const char *what = "write";
    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto io_fail;
        done += (size_t)n;
    }
    what = "fchmod";
    if (fchmod(fd, 0644) != 0)
        goto io_fail;
    what = "fsync";
    if (fsync(fd) != 0)
        goto io_fail;
    what = "close";
    int cfd = fd;
    fd = -1;
    if (close(cfd) != 0)
        goto io_fail;
    what = "rename";
    if (rename(tmp, path) != 0)
        goto io_fail;
    /* Make the rename itself durable: fsync the directory (best effort - some
     * file systems refuse fsync on a directory, and the file is complete). */
    char *slash = strrchr(tmp, '/');
    if (slash)
        slash[slash == tmp ? 1 : 0] = '\0';
    int dfd = open(slash ? tmp : ".", O_RDONLY);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(tmp);
    free(buf);
    return BNN_OK;
io_fail:
    snprintf(err, BNN_ERR_LEN, "save %s: %s %s: %s", path, what, tmp, strerror(errno ? errno : EIO));
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    free(buf);
    return BNN_E_IO;
}
