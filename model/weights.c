/* weights.c - safetensors <-> bnn_model.
 *
 * File = u64 LE header length N, N bytes of JSON, then the data section. The
 * JSON maps tensor names to {"dtype", "shape", "data_offsets": [begin, end]}
 * (offsets relative to the data section) plus an optional "__metadata__"
 * string map. Loading trusts nothing: every length, offset, shape and value is
 * checked before a model is returned, and the message names the tensor.
 * Tensors are read as little-endian F32 by memcpy; big-endian hosts are
 * refused at compile time.
 */
#include "weights.h"
#include "fault.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "weights.c reads and writes little-endian F32 by memcpy: big-endian hosts are not supported"
#endif
_Static_assert(sizeof(float) == 4, "F32 tensors need a 4-byte float");

enum { T_KLOC, T_KSCALE, T_BLOC, T_BSCALE, T_COUNT };
static const char *const tensor_suffix[T_COUNT] = {"kernel_loc", "kernel_scale", "bias_loc", "bias_scale"};
#define MAX_RANK 8

struct tensor_ref {
    int present;
    size_t rank;
    size_t shape[MAX_RANK];
    size_t begin, end; /* byte offsets in the data section */
};

struct span {
    size_t begin, end;
    int layer, kind;
};

static void fmt_shape(char *buf, size_t len, const size_t *shape, size_t rank)
{
    size_t used = 0;
    int n = snprintf(buf, len, "[");
    used = n > 0 ? (size_t)n : 0;
    for (size_t i = 0; i < rank && used < len; i++) {
        n = snprintf(buf + used, len - used, i ? ",%zu" : "%zu", shape[i]);
        if (n < 0)
            return;
        used += (size_t)n;
    }
    if (used < len)
        snprintf(buf + used, len - used, "]");
}

/* "layers.{i}.{suffix}" -> layer, kind; 0 on success, -1 unknown name, -2 index
 * out of range (*layer set to the parsed value, capped). */
static int parse_name(const char *name, int *layer, int *kind)
{
    static const char prefix[] = "layers.";
    if (strncmp(name, prefix, sizeof prefix - 1) != 0)
        return -1;
    const char *p = name + sizeof prefix - 1;
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9'))
        return -1;
    long idx = 0;
    while (*p >= '0' && *p <= '9') {
        if (idx < 1000000)
            idx = idx * 10 + (*p - '0');
        p++;
    }
    if (*p != '.')
        return -1;
    p++;
    for (int k = 0; k < T_COUNT; k++) {
        if (strcmp(p, tensor_suffix[k]) == 0) {
            *kind = k;
            *layer = (int)idx;
            return idx < BNN_MAX_LAYERS ? 0 : -2;
        }
    }
    return -1;
}

static int json_size(const json_t *v, size_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (size_t)json_integer_value(v);
    return 0;
}

/* Validates one header entry (dtype, shape, data_offsets) against the data
 * section length. */
static int parse_entry(struct tensor_ref *t, const char *name, const json_t *v, size_t data_len,
                       char err[BNN_ERR_LEN])
{
    if (!json_is_object(v)) {
        snprintf(err, BNN_ERR_LEN, "%s: entry must be a JSON object", name);
        return BNN_E_FORMAT;
    }
    const json_t *dtype = json_object_get(v, "dtype");
    if (!json_is_string(dtype)) {
        snprintf(err, BNN_ERR_LEN, "%s: missing string \"dtype\"", name);
        return BNN_E_FORMAT;
    }
    if (strcmp(json_string_value(dtype), "F32") != 0) {
        snprintf(err, BNN_ERR_LEN, "%s: dtype must be \"F32\", got \"%.40s\"", name,
                 json_string_value(dtype));
        return BNN_E_FORMAT;
    }
    const json_t *shape = json_object_get(v, "shape");
    if (!json_is_array(shape)) {
        snprintf(err, BNN_ERR_LEN, "%s: missing array \"shape\"", name);
        return BNN_E_FORMAT;
    }
    t->rank = json_array_size(shape);
    if (t->rank > MAX_RANK) {
        snprintf(err, BNN_ERR_LEN, "%s: shape has %zu dimensions, at most %d expected", name, t->rank,
                 MAX_RANK);
        return BNN_E_FORMAT;
    }
    size_t count = 1;
    int overflow = 0;
    for (size_t i = 0; i < t->rank; i++) {
        if (json_size(json_array_get(shape, i), &t->shape[i]) != 0) {
            snprintf(err, BNN_ERR_LEN, "%s: shape[%zu] must be a non-negative integer", name, i);
            return BNN_E_FORMAT;
        }
        if (t->shape[i] && count > SIZE_MAX / 4 / t->shape[i])
            overflow = 1;
        else
            count *= t->shape[i];
    }
    const json_t *offs = json_object_get(v, "data_offsets");
    if (!json_is_array(offs) || json_array_size(offs) != 2 || json_size(json_array_get(offs, 0), &t->begin) ||
        json_size(json_array_get(offs, 1), &t->end)) {
        snprintf(err, BNN_ERR_LEN, "%s: data_offsets must be [begin, end], non-negative integers", name);
        return BNN_E_FORMAT;
    }
    if (t->begin > t->end || t->end > data_len) {
        snprintf(err, BNN_ERR_LEN, "%s: data_offsets [%zu,%zu] outside the data section of %zu bytes", name,
                 t->begin, t->end, data_len);
        return BNN_E_FORMAT;
    }
    if (overflow || t->end - t->begin != 4 * count) {
        char sh[96];
        fmt_shape(sh, sizeof sh, t->shape, t->rank);
        snprintf(err, BNN_ERR_LEN, "%s: data_offsets [%zu,%zu] hold %zu bytes, shape %s F32 needs %s%zu",
                 name, t->begin, t->end, t->end - t->begin, sh, overflow ? "more than " : "",
                 overflow ? SIZE_MAX : 4 * count);
        return BNN_E_FORMAT;
    }
    t->present = 1;
    return BNN_OK;
}

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

static int check_shape(const struct tensor_ref *t, int layer, int kind, size_t d0, size_t d1, size_t rank,
                       char err[BNN_ERR_LEN])
{
    size_t want[2] = {d0, d1};
    int ok = t->rank == rank && t->shape[0] == d0 && (rank == 1 || t->shape[1] == d1);
    if (ok)
        return BNN_OK;
    char got[96], exp[64];
    fmt_shape(got, sizeof got, t->shape, t->rank);
    fmt_shape(exp, sizeof exp, want, rank);
    snprintf(err, BNN_ERR_LEN, "layers.%d.%s: expected shape %s, got %s", layer, tensor_suffix[kind], exp,
             got);
    return BNN_E_FORMAT;
}

/* Copies one tensor into dst, checking every value (finite; scales > 0 with a
 * finite, non-zero square since the variance is what LRT uses). */
static int copy_tensor(float *dst, const uint8_t *src, size_t count, int layer, int kind,
                       char err[BNN_ERR_LEN])
{
    int is_scale = kind == T_KSCALE || kind == T_BSCALE;
    memcpy(dst, src, count * sizeof(float));
    for (size_t j = 0; j < count; j++) {
        float x = dst[j];
        if (!isfinite(x)) {
            snprintf(err, BNN_ERR_LEN, "layers.%d.%s[%zu]: value must be finite, got %g", layer,
                     tensor_suffix[kind], j, (double)x);
            return BNN_E_FORMAT;
        }
        if (is_scale && !(x > 0.0f)) {
            snprintf(err, BNN_ERR_LEN, "layers.%d.%s[%zu]: scale must be > 0, got %g", layer,
                     tensor_suffix[kind], j, (double)x);
            return BNN_E_FORMAT;
        }
        if (is_scale && !isnormal(x * x)) { /* LRT takes sqrt of sums of these: keep them normal floats */
            snprintf(err, BNN_ERR_LEN, "layers.%d.%s[%zu]: scale %g has a variance outside float range",
                     layer, tensor_suffix[kind], j, (double)x);
            return BNN_E_FORMAT;
        }
    }
    return BNN_OK;
}

static int parse_metadata(const json_t *meta, char err[BNN_ERR_LEN])
{
    if (!meta) {
        snprintf(err, BNN_ERR_LEN, "__metadata__: missing (format \"%s\" required)", BNN_WEIGHTS_FORMAT);
        return BNN_E_FORMAT;
    }
    if (!json_is_object(meta)) {
        snprintf(err, BNN_ERR_LEN, "__metadata__: must be an object of strings");
        return BNN_E_FORMAT;
    }
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)meta, key, val)
    {
        if (!json_is_string(val)) {
            snprintf(err, BNN_ERR_LEN, "__metadata__.%.64s: value must be a string", key);
            return BNN_E_FORMAT;
        }
    }
    const json_t *fmt = json_object_get(meta, "format");
    if (!fmt) {
        snprintf(err, BNN_ERR_LEN, "__metadata__.format: missing, expected \"%s\"", BNN_WEIGHTS_FORMAT);
        return BNN_E_FORMAT;
    }
    if (strcmp(json_string_value(fmt), BNN_WEIGHTS_FORMAT) != 0) {
        snprintf(err, BNN_ERR_LEN, "__metadata__.format: expected \"%s\", got \"%.64s\"", BNN_WEIGHTS_FORMAT,
                 json_string_value(fmt));
        return BNN_E_FORMAT;
    }
    return BNN_OK;
}

int bnn_weights_parse(struct bnn_model **out, const uint8_t *buf, size_t len, char err[BNN_ERR_LEN])
{
    *out = NULL;
    if (len < 8) {
        snprintf(err, BNN_ERR_LEN, "safetensors: truncated: %zu bytes, the header length alone needs 8", len);
        return BNN_E_FORMAT;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | buf[i];
    if (hlen > BNN_WEIGHTS_MAX_HEADER) {
        snprintf(err, BNN_ERR_LEN, "safetensors: header length %llu exceeds the cap of %u bytes",
                 (unsigned long long)hlen, BNN_WEIGHTS_MAX_HEADER);
        return BNN_E_FORMAT;
    }
    if (hlen > len - 8) {
        snprintf(err, BNN_ERR_LEN, "safetensors: header length %llu exceeds the %zu bytes after it",
                 (unsigned long long)hlen, len - 8);
        return BNN_E_FORMAT;
    }
    const uint8_t *data = buf + 8 + hlen;
    size_t data_len = len - 8 - (size_t)hlen;

    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, BNN_ERR_LEN, "safetensors: header is not valid JSON: %s (byte %d)", jerr.text,
                 jerr.position);
        return BNN_E_FORMAT;
    }
    int rc = BNN_E_FORMAT;
    struct bnn_model *m = NULL;
    struct tensor_ref refs[BNN_MAX_LAYERS][T_COUNT];
    struct span spans[BNN_MAX_LAYERS * T_COUNT];
    size_t n_spans = 0;
    memset(refs, 0, sizeof refs);
    if (!json_is_object(root)) {
        snprintf(err, BNN_ERR_LEN, "safetensors: header must be a JSON object");
        goto fail;
    }

    const char *name;
    json_t *val;
    int n_layers = 0;
    json_object_foreach(root, name, val)
    {
        if (strcmp(name, "__metadata__") == 0)
            continue;
        int layer, kind, r = parse_name(name, &layer, &kind);
        if (r == -1) {
            snprintf(err, BNN_ERR_LEN,
                     "%.80s: unknown tensor (expected layers.{i}.kernel_loc|kernel_scale|"
                     "bias_loc|bias_scale)",
                     name);
            goto fail;
        }
        if (r == -2) {
            snprintf(err, BNN_ERR_LEN, "%.80s: layer index out of range 0..%d", name, BNN_MAX_LAYERS - 1);
            goto fail;
        }
        if ((rc = parse_entry(&refs[layer][kind], name, val, data_len, err)) != BNN_OK)
            goto fail;
        rc = BNN_E_FORMAT;
        spans[n_spans++] = (struct span){refs[layer][kind].begin, refs[layer][kind].end, layer, kind};
        if (layer + 1 > n_layers)
            n_layers = layer + 1;
    }
    if (n_layers == 0) {
        snprintf(err, BNN_ERR_LEN, "safetensors: no tensors (expected layers.0.kernel_loc ...)");
        goto fail;
    }
    if ((rc = parse_metadata(json_object_get(root, "__metadata__"), err)) != BNN_OK)
        goto fail;
    rc = BNN_E_FORMAT;

    /* Overlap: sorted by begin, each non-empty span must end before the next. */
    qsort(spans, n_spans, sizeof spans[0], span_cmp);
    for (size_t i = 1; i < n_spans; i++) {
        const struct span *a = &spans[i - 1], *b = &spans[i];
        if (b->begin < a->end && b->begin < b->end) {
            snprintf(err, BNN_ERR_LEN, "layers.%d.%s: data_offsets [%zu,%zu] overlap layers.%d.%s [%zu,%zu]",
                     b->layer, tensor_suffix[b->kind], b->begin, b->end, a->layer, tensor_suffix[a->kind],
                     a->begin, a->end);
            goto fail;
        }
    }

    /* Presence and shapes. Widths: n_in of layer 0 from its kernel, n_out of
     * each layer from its bias, n_in of layer i+1 = n_out of layer i; every
     * other shape is checked against those. */
    size_t dims[BNN_MAX_LAYERS + 1];
    for (int i = 0; i < n_layers; i++) {
        for (int k = 0; k < T_COUNT; k++) {
            if (!refs[i][k].present) {
                snprintf(err, BNN_ERR_LEN, "layers.%d.%s: missing (model has %d layers)", i, tensor_suffix[k],
                         n_layers);
                goto fail;
            }
        }
        const struct tensor_ref *kl = &refs[i][T_KLOC], *bl = &refs[i][T_BLOC];
        if (i == 0) {
            if (kl->rank != 2 || kl->shape[0] == 0) {
                char got[96];
                fmt_shape(got, sizeof got, kl->shape, kl->rank);
                snprintf(err, BNN_ERR_LEN,
                         "layers.0.kernel_loc: expected shape [n_in,n_out] with n_in >= 1, got %s", got);
                goto fail;
            }
            dims[0] = kl->shape[0];
        }
        if (bl->rank != 1 || bl->shape[0] == 0) {
            char got[96];
            fmt_shape(got, sizeof got, bl->shape, bl->rank);
            snprintf(err, BNN_ERR_LEN, "layers.%d.bias_loc: expected shape [n_out] with n_out >= 1, got %s",
                     i, got);
            goto fail;
        }
        dims[i + 1] = bl->shape[0];
        if ((rc = check_shape(kl, i, T_KLOC, dims[i], dims[i + 1], 2, err)) ||
            (rc = check_shape(&refs[i][T_KSCALE], i, T_KSCALE, dims[i], dims[i + 1], 2, err)) ||
            (rc = check_shape(&refs[i][T_BSCALE], i, T_BSCALE, dims[i + 1], 0, 1, err)))
            goto fail;
        rc = BNN_E_FORMAT; /* the default for the checks that follow */
    }
    if (dims[n_layers] > BNN_MAX_CLASSES) {
        snprintf(err, BNN_ERR_LEN, "layers.%d.bias_loc: %zu classes, at most %d supported", n_layers - 1,
                 dims[n_layers], BNN_MAX_CLASSES);
        goto fail;
    }

    if (!(m = bnn_model_new(dims, (size_t)n_layers, err))) {
        rc = BNN_E_NOMEM;
        goto fail;
    }
    for (int i = 0; i < n_layers; i++) {
        struct bnn_layer *L = &m->layers[i];
        float *dst[T_COUNT] = {L->w_mu, L->w_sigma, L->b_mu, L->b_sigma};
        for (int k = 0; k < T_COUNT; k++) {
            const struct tensor_ref *t = &refs[i][k];
            if ((rc = copy_tensor(dst[k], data + t->begin, (t->end - t->begin) / 4, i, k, err)) != BNN_OK)
                goto fail;
        }
    }
    bnn_model_update_var(m);

    const char *key;
    json_object_foreach(json_object_get(root, "__metadata__"), key, val)
    {
        if (bnn_meta_set(m, key, json_string_value(val)) != BNN_OK) {
            snprintf(err, BNN_ERR_LEN, "__metadata__.%.64s: out of memory", key);
            rc = BNN_E_NOMEM;
            goto fail;
        }
    }
    json_decref(root);
    *out = m;
    return BNN_OK;
fail:
    bnn_model_free(m);
    json_decref(root);
    return rc;
}

int bnn_weights_load(struct bnn_model **out, const char *path, char err[BNN_ERR_LEN])
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, BNN_ERR_LEN, "open %s: %s", path, strerror(errno));
        return BNN_E_IO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, BNN_ERR_LEN, "stat %s: %s", path, errno ? strerror(errno) : "not a regular file");
        fclose(f);
        return BNN_E_IO;
    }
    size_t len = (size_t)st.st_size, used = 0;
    uint8_t *buf = bnn_fault_malloc(len);
    if (!buf) {
        snprintf(err, BNN_ERR_LEN, "read %s: out of memory (%zu bytes)", path, len);
        fclose(f);
        return BNN_E_NOMEM;
    }
    /* Chunked so the fault hook can fail any one read of a large file. */
    const size_t chunk = (size_t)4 << 20;
    while (used < len) {
        size_t want = len - used < chunk ? len - used : chunk;
        size_t got = bnn_fault_io() ? 0 : fread(buf + used, 1, want, f);
        if (got != want) {
            snprintf(err, BNN_ERR_LEN, "read %s: %s at byte %zu of %zu", path,
                     ferror(f)           ? strerror(errno)
                     : bnn_fault_fired() ? "injected I/O fault"
                                         : "short read",
                     used, len);
            free(buf);
            fclose(f);
            return BNN_E_IO;
        }
        used += got;
    }
    fclose(f);
    int rc = bnn_weights_parse(out, buf, len, err);
    free(buf);
    if (rc != BNN_OK)
        bnn_err_prefix(err, path);
    return rc;
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

int bnn_weights_serialize(uint8_t **buf, size_t *len, const struct bnn_model *m, char err[BNN_ERR_LEN])
{
    *buf = NULL;
    *len = 0;
    json_t *root = json_object(), *meta = json_object();
    char *hdr = NULL;
    int rc = BNN_E_NOMEM;
    if (!root || !meta) {
        json_decref(meta);
        snprintf(err, BNN_ERR_LEN, "serialize: out of memory (JSON header)");
        goto fail;
    }
    if (json_object_set_new(root, "__metadata__", meta) != 0) {
        snprintf(err, BNN_ERR_LEN, "serialize: out of memory (JSON header)");
        goto fail;
    }
    for (size_t i = 0; i < m->n_meta; i++) {
        if (strcmp(m->meta[i].key, "format") == 0)
            continue;
        json_t *s = json_string(m->meta[i].value);
        if (!s || json_object_set_new(meta, m->meta[i].key, s) != 0) {
            snprintf(err, BNN_ERR_LEN, "serialize: __metadata__.%.64s: not valid UTF-8 or out of memory",
                     m->meta[i].key);
            rc = BNN_E_INVALID;
            goto fail;
        }
    }
    if (json_object_set_new(meta, "format", json_string(BNN_WEIGHTS_FORMAT)) != 0) {
        snprintf(err, BNN_ERR_LEN, "serialize: out of memory (JSON header)");
        goto fail;
    }
    /* Data in the order of the sorted names (layers.0.bias_loc, bias_scale,
     * kernel_loc, kernel_scale, layers.1...), so the file reads in order. */
    static const int order[T_COUNT] = {T_BLOC, T_BSCALE, T_KLOC, T_KSCALE};
    size_t off = 0;
    for (size_t i = 0; i < m->n_layers; i++) {
        const struct bnn_layer *L = &m->layers[i];
        for (int o = 0; o < T_COUNT; o++) {
            int k = order[o];
            size_t shape[2] = {k == T_BLOC || k == T_BSCALE ? L->n_out : L->n_in, L->n_out};
            size_t rank = k == T_BLOC || k == T_BSCALE ? 1 : 2;
            size_t bytes = 4 * (rank == 1 ? L->n_out : L->n_in * L->n_out);
            char name[64];
            snprintf(name, sizeof name, "layers.%zu.%s", i, tensor_suffix[k]);
            if (set_tensor(root, name, shape, rank, off, off + bytes) != 0) {
                snprintf(err, BNN_ERR_LEN, "serialize: out of memory (JSON header)");
                goto fail;
            }
            off += bytes;
        }
    }
    hdr = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    if (!hdr) {
        snprintf(err, BNN_ERR_LEN, "serialize: out of memory (JSON header)");
        goto fail;
    }
    /* Pad the header with spaces to a multiple of 8 so tensors are aligned
     * (what the reference safetensors writer does). */
    size_t hlen = strlen(hdr), padded = (hlen + 7) / 8 * 8, total = 8 + padded + off;
    uint8_t *out = bnn_fault_malloc(total);
    if (!out) {
        snprintf(err, BNN_ERR_LEN, "serialize: out of memory (%zu bytes)", total);
        goto fail;
    }
    for (int b = 0; b < 8; b++)
        out[b] = (uint8_t)((uint64_t)padded >> (8 * b));
    memcpy(out + 8, hdr, hlen);
    memset(out + 8 + hlen, ' ', padded - hlen);
    uint8_t *p = out + 8 + padded;
    for (size_t i = 0; i < m->n_layers; i++) {
        const struct bnn_layer *L = &m->layers[i];
        const float *src[T_COUNT] = {L->w_mu, L->w_sigma, L->b_mu, L->b_sigma};
        for (int o = 0; o < T_COUNT; o++) {
            int k = order[o];
            size_t bytes = 4 * (k == T_BLOC || k == T_BSCALE ? L->n_out : L->n_in * L->n_out);
            memcpy(p, src[k], bytes);
            p += bytes;
        }
    }
    free(hdr);
    json_decref(root);
    *buf = out;
    *len = total;
    return BNN_OK;
fail:
    free(hdr);
    json_decref(root);
    return rc;
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
