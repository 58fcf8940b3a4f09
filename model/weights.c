/* weights.c - safetensors -> bnn_model (parse, load); the writer is
 * weights_save.c.
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
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "weights.c reads little-endian F32 by memcpy: big-endian hosts are not supported"
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

/* The tensors a header names, as parse_entry validated them, and the layer
 * widths they imply. */
struct layout {
    struct tensor_ref refs[BNN_MAX_LAYERS][T_COUNT];
    struct span spans[BNN_MAX_LAYERS * T_COUNT];
    size_t n_spans, dims[BNN_MAX_LAYERS + 1];
    int n_layers;
};

/* Step 1, the header: the 8-byte length and its caps, and the JSON object it
 * frames. *root is new (owned by caller, also on failure); *data and
 * *data_len the data section after it. */
static int read_header(json_t **root, const uint8_t **data, size_t *data_len, const uint8_t *buf, size_t len,
                       char err[BNN_ERR_LEN])
{
    *root = NULL;
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
    *data = buf + 8 + hlen;
    *data_len = len - 8 - (size_t)hlen;
    json_error_t jerr;
    *root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!*root) {
        snprintf(err, BNN_ERR_LEN, "safetensors: header is not valid JSON: %s (byte %d)", jerr.text,
                 jerr.position);
        return BNN_E_FORMAT;
    }
    if (!json_is_object(*root)) {
        snprintf(err, BNN_ERR_LEN, "safetensors: header must be a JSON object");
        return BNN_E_FORMAT;
    }
    return BNN_OK;
}

/* Step 2a: every entry but __metadata__ is a known tensor with a valid
 * entry; fills refs, spans and n_layers; then the metadata. */
static int read_entries(struct layout *ly, json_t *root, size_t data_len, char err[BNN_ERR_LEN])
{
    const char *name;
    json_t *val;
    json_object_foreach(root, name, val)
    {
        if (strcmp(name, "__metadata__") == 0)
            continue;
        int layer, kind, r = parse_name(name, &layer, &kind), rc;
        if (r == -1) {
            snprintf(err, BNN_ERR_LEN,
                     "%.80s: unknown tensor (expected layers.{i}.kernel_loc|kernel_scale|"
                     "bias_loc|bias_scale)",
                     name);
            return BNN_E_FORMAT;
        }
        if (r == -2) {
            snprintf(err, BNN_ERR_LEN, "%.80s: layer index out of range 0..%d", name, BNN_MAX_LAYERS - 1);
            return BNN_E_FORMAT;
        }
        if ((rc = parse_entry(&ly->refs[layer][kind], name, val, data_len, err)) != BNN_OK)
            return rc;
        ly->spans[ly->n_spans++] =
            (struct span){ly->refs[layer][kind].begin, ly->refs[layer][kind].end, layer, kind};
        if (layer + 1 > ly->n_layers)
            ly->n_layers = layer + 1;
    }
    if (ly->n_layers == 0) {
        snprintf(err, BNN_ERR_LEN, "safetensors: no tensors (expected layers.0.kernel_loc ...)");
        return BNN_E_FORMAT;
    }
    return parse_metadata(json_object_get(root, "__metadata__"), err);
}

/* Step 2b: no two tensors overlap (sorted by begin, each non-empty span ends
 * before the next begins). */
static int check_overlap(struct layout *ly, char err[BNN_ERR_LEN])
{
    qsort(ly->spans, ly->n_spans, sizeof ly->spans[0], span_cmp);
    for (size_t i = 1; i < ly->n_spans; i++) {
        const struct span *a = &ly->spans[i - 1], *b = &ly->spans[i];
        if (b->begin < a->end && b->begin < b->end) {
            snprintf(err, BNN_ERR_LEN, "layers.%d.%s: data_offsets [%zu,%zu] overlap layers.%d.%s [%zu,%zu]",
                     b->layer, tensor_suffix[b->kind], b->begin, b->end, a->layer, tensor_suffix[a->kind],
                     a->begin, a->end);
            return BNN_E_FORMAT;
        }
    }
    return BNN_OK;
}

/* A 2-D kernel_loc [n_in >= 1, ...] (layer 0) or 1-D bias_loc [n_out >= 1]:
 * the shape that fixes a width. */
static int check_width(const struct tensor_ref *t, int layer, int kind, char err[BNN_ERR_LEN])
{
    size_t rank = kind == T_KLOC ? 2 : 1;
    if (t->rank == rank && t->shape[0] > 0)
        return BNN_OK;
    char got[96];
    fmt_shape(got, sizeof got, t->shape, t->rank);
    snprintf(err, BNN_ERR_LEN, "layers.%d.%s: expected shape %s with %s >= 1, got %s", layer,
             tensor_suffix[kind], kind == T_KLOC ? "[n_in,n_out]" : "[n_out]",
             kind == T_KLOC ? "n_in" : "n_out", got);
    return BNN_E_FORMAT;
}

/* Step 2c: every layer has its four tensors, and their shapes chain. Widths:
 * n_in of layer 0 from its kernel, n_out of each layer from its bias, n_in
 * of layer i+1 = n_out of layer i; every other shape is checked against
 * those. Fills dims. */
static int check_shapes(struct layout *ly, char err[BNN_ERR_LEN])
{
    size_t *dims = ly->dims;
    for (int i = 0; i < ly->n_layers; i++) {
        const struct tensor_ref *r = ly->refs[i];
        for (int k = 0; k < T_COUNT; k++) {
            if (!r[k].present) {
                snprintf(err, BNN_ERR_LEN, "layers.%d.%s: missing (model has %d layers)", i, tensor_suffix[k],
                         ly->n_layers);
                return BNN_E_FORMAT;
            }
        }
        if ((i == 0 && check_width(&r[T_KLOC], 0, T_KLOC, err)) || check_width(&r[T_BLOC], i, T_BLOC, err))
            return BNN_E_FORMAT;
        if (i == 0)
            dims[0] = r[T_KLOC].shape[0];
        dims[i + 1] = r[T_BLOC].shape[0];
        int rc;
        if ((rc = check_shape(&r[T_KLOC], i, T_KLOC, dims[i], dims[i + 1], 2, err)) ||
            (rc = check_shape(&r[T_KSCALE], i, T_KSCALE, dims[i], dims[i + 1], 2, err)) ||
            (rc = check_shape(&r[T_BSCALE], i, T_BSCALE, dims[i + 1], 0, 1, err)))
            return rc;
    }
    if (dims[ly->n_layers] > BNN_MAX_CLASSES) {
        snprintf(err, BNN_ERR_LEN, "layers.%d.bias_loc: %zu classes, at most %d supported", ly->n_layers - 1,
                 dims[ly->n_layers], BNN_MAX_CLASSES);
        return BNN_E_FORMAT;
    }
    return BNN_OK;
}

/* Step 3, the copy: a new model of the layout's widths with every tensor
 * checked value by value, and the metadata. */
static int copy_model(struct bnn_model **out, const struct layout *ly, const uint8_t *data,
                      const json_t *meta, char err[BNN_ERR_LEN])
{
    struct bnn_model *m = bnn_model_new(ly->dims, (size_t)ly->n_layers, err);
    int rc = BNN_E_NOMEM;
    if (!m)
        return rc;
    for (int i = 0; i < ly->n_layers; i++) {
        struct bnn_layer *L = &m->layers[i];
        float *dst[T_COUNT] = {L->w_mu, L->w_sigma, L->b_mu, L->b_sigma};
        for (int k = 0; k < T_COUNT; k++) {
            const struct tensor_ref *t = &ly->refs[i][k];
            if ((rc = copy_tensor(dst[k], data + t->begin, (t->end - t->begin) / 4, i, k, err)) != BNN_OK)
                goto fail;
        }
    }
    bnn_model_update_var(m);
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)meta, key, val)
    {
        if (bnn_meta_set(m, key, json_string_value(val)) != BNN_OK) {
            snprintf(err, BNN_ERR_LEN, "__metadata__.%.64s: out of memory", key);
            rc = BNN_E_NOMEM;
            goto fail;
        }
    }
    *out = m;
    return BNN_OK;
fail:
    bnn_model_free(m);
    return rc;
}

int bnn_weights_parse(struct bnn_model **out, const uint8_t *buf, size_t len, char err[BNN_ERR_LEN])
{
    *out = NULL;
    json_t *root;
    const uint8_t *data = NULL;
    size_t data_len = 0;
    struct layout ly;
    memset(&ly, 0, sizeof ly);
    int rc = read_header(&root, &data, &data_len, buf, len, err);
    if (rc == BNN_OK && (rc = read_entries(&ly, root, data_len, err)) == BNN_OK &&
        (rc = check_overlap(&ly, err)) == BNN_OK && (rc = check_shapes(&ly, err)) == BNN_OK)
        rc = copy_model(out, &ly, data, json_object_get(root, "__metadata__"), err);
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
