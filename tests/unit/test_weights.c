/* test_weights.c - safetensors: round trips (1, 3 and BNN_MAX_LAYERS layers,
 * memory and disk), atomic save, sorted keys, and every malformed file the
 * loader must refuse, each with a message naming the tensor and the values.
 * Ends with fault injection: every allocation and read of a load fails in
 * turn and must be reported without leaking (the ASan build checks leaks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bnn.h"
#include "fault.h"
#include "weights.h"

/* A model with distinct, deterministic values in every tensor. */
static struct bnn_model *make_model(const size_t *dims, size_t n_layers)
{
    char err[BNN_ERR_LEN];
    struct bnn_model *m = bnn_model_new(dims, n_layers, err);
    assert_non_null(m);
    for (size_t l = 0; l < n_layers; l++) {
        struct bnn_layer *L = &m->layers[l];
        for (size_t i = 0; i < L->n_in * L->n_out; i++) {
            L->w_mu[i] = 0.01f * (float)((i * 7 + l) % 13) - 0.06f;
            L->w_sigma[i] = 0.05f + 0.001f * (float)((i + 3 * l) % 17);
        }
        for (size_t j = 0; j < L->n_out; j++) {
            L->b_mu[j] = -0.02f * (float)j + (float)l;
            L->b_sigma[j] = 0.3f + 0.01f * (float)j;
        }
    }
    bnn_model_update_var(m);
    assert_int_equal(bnn_meta_set(m, "trainer", "test_weights"), BNN_OK);
    assert_int_equal(bnn_meta_set(m, "epochs", "12"), BNN_OK);
    return m;
}

static void assert_same_model(const struct bnn_model *a, const struct bnn_model *b)
{
    assert_int_equal(a->n_layers, b->n_layers);
    for (size_t l = 0; l < a->n_layers; l++) {
        const struct bnn_layer *x = &a->layers[l], *y = &b->layers[l];
        assert_int_equal(x->n_in, y->n_in);
        assert_int_equal(x->n_out, y->n_out);
        size_t nw = x->n_in * x->n_out;
        assert_memory_equal(x->w_mu, y->w_mu, nw * sizeof(float));
        assert_memory_equal(x->w_sigma, y->w_sigma, nw * sizeof(float));
        assert_memory_equal(x->w_var, y->w_var, nw * sizeof(float));
        assert_memory_equal(x->b_mu, y->b_mu, x->n_out * sizeof(float));
        assert_memory_equal(x->b_sigma, y->b_sigma, x->n_out * sizeof(float));
        assert_memory_equal(x->b_var, y->b_var, x->n_out * sizeof(float));
    }
}

static void roundtrip(const size_t *dims, size_t n_layers)
{
    char err[BNN_ERR_LEN];
    struct bnn_model *m = make_model(dims, n_layers), *back = NULL;
    uint8_t *buf;
    size_t len;
    assert_int_equal(bnn_weights_serialize(&buf, &len, m, err), BNN_OK);
    int rc = bnn_weights_parse(&back, buf, len, err);
    if (rc != BNN_OK)
        fail_msg("parse: %s", err);
    assert_same_model(m, back);
    assert_string_equal(bnn_meta_get(back, "format"), BNN_WEIGHTS_FORMAT);
    assert_string_equal(bnn_meta_get(back, "trainer"), "test_weights");
    assert_string_equal(bnn_meta_get(back, "epochs"), "12");
    assert_int_equal(bnn_model_param_count(back), bnn_model_param_count(m));
    free(buf);
    bnn_model_free(back);
    bnn_model_free(m);
}

static void test_roundtrip_one_layer(void **state)
{
    (void)state;
    const size_t dims[] = {5, 3};
    roundtrip(dims, 1);
}

static void test_roundtrip_three_layers(void **state)
{
    (void)state;
    const size_t dims[] = {7, 6, 4, 3};
    roundtrip(dims, 3);
}

static void test_roundtrip_max_layers(void **state)
{
    (void)state;
    const size_t dims[BNN_MAX_LAYERS + 1] = {9, 8, 7, 6, 5, 4, 3, 2, 2};
    roundtrip(dims, BNN_MAX_LAYERS);
}

static void test_roundtrip_mnist_shape(void **state)
{
    (void)state;
    const size_t dims[] = {784, 784, 256, 256, 10};
    roundtrip(dims, 4);
}

static char *make_tmpdir(void)
{
    char *dir = strdup("/tmp/test_weights.XXXXXX");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void test_save_load_atomic_sorted(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN], path[512];
    char *dir = make_tmpdir();
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    const size_t dims[] = {4, 3, 2};
    struct bnn_model *m = make_model(dims, 2), *back = NULL;
    assert_int_equal(bnn_weights_save(path, m, err), BNN_OK);
    assert_int_equal(bnn_weights_save(path, m, err), BNN_OK); /* over an existing file */
    assert_int_equal(count_entries(dir), 1);                  /* no temp file left behind */
    assert_int_equal(bnn_weights_load(&back, path, err), BNN_OK);
    assert_same_model(m, back);

    /* The header's keys are sorted and the header is padded to 8 bytes. */
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t lenb[8];
    assert_int_equal(fread(lenb, 1, 8, f), 8);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | lenb[i];
    assert_int_equal(hlen % 8, 0);
    char *hdr = calloc(1, hlen + 1);
    assert_int_equal(fread(hdr, 1, hlen, f), hlen);
    fclose(f);
    const char *names[] = {
        "\"__metadata__\"",        "\"layers.0.bias_loc\"",     "\"layers.0.bias_scale\"",
        "\"layers.0.kernel_loc\"", "\"layers.0.kernel_scale\"", "\"layers.1.bias_loc\"",
        "\"layers.1.bias_scale\"", "\"layers.1.kernel_loc\"",   "\"layers.1.kernel_scale\""};
    const char *prev = hdr;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *at = strstr(hdr, names[i]);
        assert_non_null(at);
        assert_true(at >= prev);
        prev = at;
    }
    free(hdr);

    /* Missing file: I/O error naming the path. */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/nope.safetensors", dir);
    struct bnn_model *none = (struct bnn_model *)1;
    assert_int_equal(bnn_weights_load(&none, missing, err), BNN_E_IO);
    assert_null(none);
    assert_non_null(strstr(err, "nope.safetensors"));
    /* Unwritable destination: error, nothing created. */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/m.safetensors", dir);
    assert_int_equal(bnn_weights_save(bad, m, err), BNN_E_IO);
    assert_non_null(strstr(err, "no/such/dir"));

    unlink(path);
    rmdir(dir);
    free(dir);
    bnn_model_free(back);
    bnn_model_free(m);
}

/* ---- malformed files ------------------------------------------------------ */

/* The good file every malformed case starts from: 3 -> 4 -> 2. */
static uint8_t *good_file(size_t *len)
{
    char err[BNN_ERR_LEN];
    const size_t dims[] = {3, 4, 2};
    struct bnn_model *m = make_model(dims, 2);
    uint8_t *buf;
    assert_int_equal(bnn_weights_serialize(&buf, len, m, err), BNN_OK);
    bnn_model_free(m);
    return buf;
}

static json_t *header_of(const uint8_t *buf, size_t *data_start)
{
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | buf[i];
    json_error_t e;
    json_t *h = json_loadb((const char *)buf + 8, hlen, 0, &e);
    assert_non_null(h);
    *data_start = 8 + hlen;
    return h;
}

/* New file from a header and data section. */
static uint8_t *assemble(const char *hdr, size_t hlen, const uint8_t *data, size_t dlen, size_t *len)
{
    *len = 8 + hlen + dlen;
    uint8_t *out = malloc(*len);
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(out + 8, hdr, hlen);
    if (dlen)
        memcpy(out + 8 + hlen, data, dlen);
    return out;
}

/* Re-emits the header. With relayout, every tensor whose shape is an array
 * of integers gets fresh contiguous offsets and valid data (locs 0.01,
 * scales 0.5), so a case can change shapes and nothing else. */
static uint8_t *rebuild(json_t *hdr, const uint8_t *old_data, size_t old_dlen, int relayout, size_t *len)
{
    uint8_t *data = NULL;
    size_t dlen = old_dlen;
    if (relayout) {
        size_t off = 0;
        const char *name;
        json_t *v;
        json_object_foreach(hdr, name, v)
        {
            json_t *shape = json_object_get(v, "shape");
            if (!json_is_array(shape))
                continue;
            size_t count = 1, i;
            json_t *d;
            json_array_foreach(shape, i, d) count *= json_is_integer(d) ? (size_t)json_integer_value(d) : 1;
            json_object_set_new(v, "data_offsets",
                                json_pack("[II]", (json_int_t)off, (json_int_t)(off + 4 * count)));
            data = realloc(data, off + 4 * count + 1);
            float val = strstr(name, "scale") ? 0.5f : 0.01f;
            for (size_t j = 0; j < count; j++)
                memcpy(data + off + 4 * j, &val, 4);
            off += 4 * count;
        }
        dlen = off;
    } else {
        data = malloc(old_dlen + 1);
        memcpy(data, old_data, old_dlen);
    }
    char *text = json_dumps(hdr, JSON_COMPACT);
    uint8_t *out = assemble(text, strlen(text), data, dlen, len);
    free(text);
    free(data);
    return out;
}

/* Sets element index of tensor name to v in a file image. */
static void poke(uint8_t *file, const char *name, size_t index, float v)
{
    size_t ds;
    json_t *h = header_of(file, &ds);
    json_t *offs = json_object_get(json_object_get(h, name), "data_offsets");
    assert_non_null(offs);
    size_t begin = (size_t)json_integer_value(json_array_get(offs, 0));
    memcpy(file + ds + begin + 4 * index, &v, 4);
    json_decref(h);
}

enum edit { SHAPE, OFFSETS, VALUE, JSON, RAW };

struct bad_case {
    const char *what;
    enum edit kind;
    const char *tensor; /* tensor to edit, or NULL */
    const char *json;   /* new value of that entry's field / the entry / the header text */
    const char *field;  /* "shape", "data_offsets", "dtype", NULL = whole entry */
    size_t index;       /* VALUE: element */
    float value;        /* VALUE: new value */
    int status;
    const char *expect[3]; /* substrings of err */
};

static const struct bad_case bad_cases[] = {
    {"dtype F16",
     JSON,
     "layers.0.kernel_loc",
     "\"F16\"",
     "dtype",
     0,
     0,
     BNN_E_FORMAT,
     {"layers.0.kernel_loc", "dtype must be \"F32\", got \"F16\""}},
    {"dtype missing",
     JSON,
     "layers.1.bias_scale",
     NULL,
     "dtype",
     0,
     0,
     BNN_E_FORMAT,
     {"layers.1.bias_scale", "dtype"}},
    {"entry not an object",
     JSON,
     "layers.0.bias_loc",
     "5",
     NULL,
     0,
     0,
     BNN_E_FORMAT,
     {"layers.0.bias_loc", "object"}},
    {"shape missing",
     JSON,
     "layers.0.kernel_scale",
     NULL,
     "shape",
     0,
     0,
     BNN_E_FORMAT,
     {"layers.0.kernel_scale", "shape"}},
    {"shape negative",
     JSON,
     "layers.0.kernel_loc",
     "[-3,4]",
     "shape",
     0,
     0,
     BNN_E_FORMAT,
     {"layers.0.kernel_loc", "shape[0]"}},
    {"shape string",
     JSON,
     "layers.1.kernel_loc",
     "[4,\"2\"]",
     "shape",
     0,
     0,
     BNN_E_FORMAT,
     {"layers.1.kernel_loc", "shape[1]"}},
    {"offsets one number",
     JSON,
     "layers.0.bias_loc",
     "[0]",
     "data_offsets",
     0,
     0,
     BNN_E_FORMAT,
     {"layers.0.bias_loc", "data_offsets must be [begin, end]"}},
    {"offsets begin > end",
     JSON,
     "layers.0.bias_loc",
     "[16,0]",
     "data_offsets",
     0,
     0,
     BNN_E_FORMAT,
     {"layers.0.bias_loc", "[16,0]"}},
    {"offsets past the data",
     JSON,
     "layers.1.kernel_scale",
     "[0,100000]",
     "data_offsets",
     0,
     0,
     BNN_E_FORMAT,
     {"layers.1.kernel_scale", "[0,100000] outside the data section"}},
    {"offsets size != 4 prod(shape)",
     JSON,
     "layers.0.bias_loc",
     "[0,12]",
     "data_offsets",
     0,
     0,
     BNN_E_FORMAT,
     {"layers.0.bias_loc", "hold 12 bytes", "shape [4] F32 needs 16"}},
    {"offsets overlap",
     JSON,
     "layers.0.bias_scale",
     "[0,16]",
     "data_offsets",
     0,
     0,
     BNN_E_FORMAT,
     {"layers.0.bias_", "overlap"}},
    {"unknown tensor",
     JSON,
     "layers.0.kernel_mean",
     "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}",
     NULL,
     0,
     0,
     BNN_E_FORMAT,
     {"layers.0.kernel_mean", "unknown tensor"}},
    {"unknown name",
     JSON,
     "classifier.weight",
     "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}",
     NULL,
     0,
     0,
     BNN_E_FORMAT,
     {"classifier.weight", "unknown tensor"}},
    {"leading zero index",
     JSON,
     "layers.01.bias_loc",
     "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}",
     NULL,
     0,
     0,
     BNN_E_FORMAT,
     {"layers.01.bias_loc", "unknown tensor"}},
    {"layer index too large",
     JSON,
     "layers.8.bias_loc",
     "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}",
     NULL,
     0,
     0,
     BNN_E_FORMAT,
     {"layers.8.bias_loc", "out of range 0..7"}},
    {"tensor missing",
     JSON,
     "layers.1.bias_scale",
     NULL,
     NULL,
     0,
     0,
     BNN_E_FORMAT,
     {"layers.1.bias_scale", "missing"}},
    {"layer gap", SHAPE, "layers.2.bias_loc", "[2]", NULL, 0, 0, BNN_E_FORMAT, {"layers.1.", "missing"}},
    {"chain: kernel in != previous out",
     SHAPE,
     "layers.1.kernel_loc",
     "[5,2]",
     NULL,
     0,
     0,
     BNN_E_FORMAT,
     {"layers.1.kernel_loc", "expected shape [4,2], got [5,2]"}},
    {"kernel out != bias",
     SHAPE,
     "layers.0.kernel_loc",
     "[3,5]",
     NULL,
     0,
     0,
     BNN_E_FORMAT,
     {"layers.0.kernel_loc", "expected shape [3,4], got [3,5]"}},
    {"scale shape differs",
     SHAPE,
     "layers.0.kernel_scale",
     "[4,3]",
     NULL,
     0,
     0,
     BNN_E_FORMAT,
     {"layers.0.kernel_scale", "expected shape [3,4], got [4,3]"}},
    {"bias scale shape",
     SHAPE,
     "layers.1.bias_scale",
     "[3]",
     NULL,
     0,
     0,
     BNN_E_FORMAT,
     {"layers.1.bias_scale", "expected shape [2], got [3]"}},
    {"bias 2-D",
     SHAPE,
     "layers.0.bias_loc",
     "[4,1]",
     NULL,
     0,
     0,
     BNN_E_FORMAT,
     {"layers.0.bias_loc", "got [4,1]"}},
    {"kernel 3-D",
     SHAPE,
     "layers.0.kernel_loc",
     "[3,4,1]",
     NULL,
     0,
     0,
     BNN_E_FORMAT,
     {"layers.0.kernel_loc", "got [3,4,1]"}},
    {"zero-width layer",
     SHAPE,
     "layers.0.bias_loc",
     "[0]",
     NULL,
     0,
     0,
     BNN_E_FORMAT,
     {"layers.0.bias_loc", "n_out >= 1, got [0]"}},
    {"NaN weight",
     VALUE,
     "layers.0.kernel_loc",
     NULL,
     NULL,
     5,
     NAN,
     BNN_E_FORMAT,
     {"layers.0.kernel_loc[5]", "finite", "nan"}},
    {"infinite bias",
     VALUE,
     "layers.1.bias_loc",
     NULL,
     NULL,
     1,
     INFINITY,
     BNN_E_FORMAT,
     {"layers.1.bias_loc[1]", "finite", "inf"}},
    {"negative scale",
     VALUE,
     "layers.0.kernel_scale",
     NULL,
     NULL,
     7,
     -0.5f,
     BNN_E_FORMAT,
     {"layers.0.kernel_scale[7]: scale must be > 0, got -0.5"}},
    {"zero scale",
     VALUE,
     "layers.1.bias_scale",
     NULL,
     NULL,
     0,
     0.0f,
     BNN_E_FORMAT,
     {"layers.1.bias_scale[0]: scale must be > 0, got 0"}},
    {"scale whose square underflows",
     VALUE,
     "layers.1.kernel_scale",
     NULL,
     NULL,
     3,
     1e-30f,
     BNN_E_FORMAT,
     {"layers.1.kernel_scale[3]", "variance"}},
    {"scale whose square is subnormal",
     VALUE,
     "layers.0.bias_scale",
     NULL,
     NULL,
     1,
     1e-20f,
     BNN_E_FORMAT,
     {"layers.0.bias_scale[1]", "variance"}},
    {"scale whose square overflows",
     VALUE,
     "layers.1.kernel_scale",
     NULL,
     NULL,
     2,
     1e30f,
     BNN_E_FORMAT,
     {"layers.1.kernel_scale[2]", "variance"}},
    {"metadata missing", JSON, "__metadata__", NULL, NULL, 0, 0, BNN_E_FORMAT, {"__metadata__", "missing"}},
    {"metadata not an object",
     JSON,
     "__metadata__",
     "[1]",
     NULL,
     0,
     0,
     BNN_E_FORMAT,
     {"__metadata__", "object"}},
    {"metadata value not a string",
     JSON,
     "__metadata__",
     "{\"format\":\"bnn-serve/1\",\"epochs\":12}",
     NULL,
     0,
     0,
     BNN_E_FORMAT,
     {"__metadata__.epochs", "string"}},
    {"format missing",
     JSON,
     "__metadata__",
     "{\"trainer\":\"x\"}",
     NULL,
     0,
     0,
     BNN_E_FORMAT,
     {"__metadata__.format", "missing"}},
    {"format wrong",
     JSON,
     "__metadata__",
     "{\"format\":\"bnn-serve/2\"}",
     NULL,
     0,
     0,
     BNN_E_FORMAT,
     {"__metadata__.format", "expected \"bnn-serve/1\", got \"bnn-serve/2\""}},
    {"header not JSON", RAW, NULL, "{\"layers.0.bias_loc\": ", NULL, 0, 0, BNN_E_FORMAT, {"not valid JSON"}},
    {"header an array", RAW, NULL, "[1,2,3]", NULL, 0, 0, BNN_E_FORMAT, {"JSON object"}},
    {"duplicate key",
     RAW,
     NULL,
     "{\"__metadata__\":{\"format\":\"bnn-serve/1\"},\"__metadata__\":{}}",
     NULL,
     0,
     0,
     BNN_E_FORMAT,
     {"not valid JSON", "duplicate"}},
    {"no tensors",
     RAW,
     NULL,
     "{\"__metadata__\":{\"format\":\"bnn-serve/1\"}}",
     NULL,
     0,
     0,
     BNN_E_FORMAT,
     {"no tensors"}},
    {"empty header", RAW, NULL, "", NULL, 0, 0, BNN_E_FORMAT, {"not valid JSON"}},
};

static void run_bad_case(const struct bad_case *c)
{
    size_t len, ds, flen = 0;
    uint8_t *good = good_file(&len);
    json_t *hdr = header_of(good, &ds);
    uint8_t *file = NULL;
    switch (c->kind) {
    case RAW:
        file = assemble(c->json, strlen(c->json), NULL, 0, &flen);
        break;
    case VALUE:
        file = rebuild(hdr, good + ds, len - ds, 0, &flen);
        poke(file, c->tensor, c->index, c->value);
        break;
    case SHAPE: {
        json_t *entry = json_object_get(hdr, c->tensor);
        if (!entry) { /* a new tensor named like an existing one: move layers.1 to c->tensor */
            const char *src = "layers.1.bias_loc";
            entry = json_deep_copy(json_object_get(hdr, src));
            json_object_set_new(hdr, c->tensor, entry);
            json_object_del(hdr, "layers.1.bias_loc");
            json_object_del(hdr, "layers.1.bias_scale");
        }
        json_object_set_new(entry, "shape", json_loads(c->json, JSON_DECODE_ANY, NULL));
        file = rebuild(hdr, NULL, 0, 1, &flen);
        break;
    }
    case JSON:
    case OFFSETS: {
        json_t *val = c->json ? json_loads(c->json, JSON_DECODE_ANY, NULL) : NULL;
        if (c->json)
            assert_non_null(val);
        if (c->field) {
            json_t *entry = json_object_get(hdr, c->tensor);
            assert_non_null(entry);
            if (val)
                json_object_set_new(entry, c->field, val);
            else
                json_object_del(entry, c->field);
        } else if (val) {
            json_object_set_new(hdr, c->tensor, val);
        } else {
            json_object_del(hdr, c->tensor);
        }
        file = rebuild(hdr, good + ds, len - ds, 0, &flen);
        break;
    }
    }
    char err[BNN_ERR_LEN] = "";
    struct bnn_model *m = (struct bnn_model *)1;
    int rc = bnn_weights_parse(&m, file, flen, err);
    if (rc != c->status)
        fail_msg("%s: expected status %s, got %s (%s)", c->what, bnn_status_name(c->status),
                 bnn_status_name(rc), err);
    assert_null(m);
    for (int i = 0; i < 3 && c->expect[i]; i++)
        if (!strstr(err, c->expect[i]))
            fail_msg("%s: message \"%s\" lacks \"%s\"", c->what, err, c->expect[i]);
    json_decref(hdr);
    free(file);
    free(good);
}

static void test_malformed_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++)
        run_bad_case(&bad_cases[i]);
    /* sanity: the unmodified good file parses (so the cases fail for their edit) */
    size_t len;
    char err[BNN_ERR_LEN];
    uint8_t *good = good_file(&len);
    struct bnn_model *m;
    assert_int_equal(bnn_weights_parse(&m, good, len, err), BNN_OK);
    bnn_model_free(m);
    free(good);
}

/* 17 classes: more than BNN_MAX_CLASSES (the prediction struct's size). */
static void test_too_many_classes(void **state)
{
    (void)state;
    size_t len, ds, flen;
    uint8_t *good = good_file(&len);
    json_t *hdr = header_of(good, &ds);
    json_object_set_new(json_object_get(hdr, "layers.1.kernel_loc"), "shape", json_pack("[ii]", 4, 17));
    json_object_set_new(json_object_get(hdr, "layers.1.kernel_scale"), "shape", json_pack("[ii]", 4, 17));
    json_object_set_new(json_object_get(hdr, "layers.1.bias_loc"), "shape", json_pack("[i]", 17));
    json_object_set_new(json_object_get(hdr, "layers.1.bias_scale"), "shape", json_pack("[i]", 17));
    uint8_t *file = rebuild(hdr, NULL, 0, 1, &flen);
    char err[BNN_ERR_LEN];
    struct bnn_model *m;
    assert_int_equal(bnn_weights_parse(&m, file, flen, err), BNN_E_FORMAT);
    assert_non_null(strstr(err, "layers.1.bias_loc: 17 classes, at most 16"));
    /* 16 is the boundary that loads */
    json_object_set_new(json_object_get(hdr, "layers.1.kernel_loc"), "shape", json_pack("[ii]", 4, 16));
    json_object_set_new(json_object_get(hdr, "layers.1.kernel_scale"), "shape", json_pack("[ii]", 4, 16));
    json_object_set_new(json_object_get(hdr, "layers.1.bias_loc"), "shape", json_pack("[i]", 16));
    json_object_set_new(json_object_get(hdr, "layers.1.bias_scale"), "shape", json_pack("[i]", 16));
    free(file);
    file = rebuild(hdr, NULL, 0, 1, &flen);
    assert_int_equal(bnn_weights_parse(&m, file, flen, err), BNN_OK);
    assert_int_equal(bnn_model_n_classes(m), 16);
    assert_float_equal(m->layers[1].w_var[5], 0.25, 0.0); /* scale 0.5 from rebuild */
    bnn_model_free(m);
    free(file);
    json_decref(hdr);
    free(good);
}

static void test_header_length(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN];
    struct bnn_model *m;
    size_t len;
    uint8_t *good = good_file(&len);
    /* shorter than the 8-byte length field, boundary 0 and 7 */
    assert_int_equal(bnn_weights_parse(&m, good, 0, err), BNN_E_FORMAT);
    assert_non_null(strstr(err, "truncated"));
    assert_int_equal(bnn_weights_parse(&m, good, 7, err), BNN_E_FORMAT);
    assert_non_null(strstr(err, "7 bytes"));
    /* file cut inside the header / inside the data */
    assert_int_equal(bnn_weights_parse(&m, good, 20, err), BNN_E_FORMAT);
    assert_non_null(strstr(err, "exceeds the 12 bytes after it"));
    assert_int_equal(bnn_weights_parse(&m, good, len - 1, err), BNN_E_FORMAT);
    assert_non_null(strstr(err, "outside the data section"));
    /* length above the cap, and the largest 64-bit value */
    uint8_t *bad = malloc(len);
    memcpy(bad, good, len);
    uint64_t cap1 = (uint64_t)BNN_WEIGHTS_MAX_HEADER + 1;
    for (int i = 0; i < 8; i++)
        bad[i] = (uint8_t)(cap1 >> (8 * i));
    assert_int_equal(bnn_weights_parse(&m, bad, len, err), BNN_E_FORMAT);
    assert_non_null(strstr(err, "cap"));
    memset(bad, 0xff, 8);
    assert_int_equal(bnn_weights_parse(&m, bad, len, err), BNN_E_FORMAT);
    assert_non_null(strstr(err, "18446744073709551615"));
    free(bad);
    free(good);
}

/* Every allocation and read of a load fails in turn: each must return an
 * error with a message and no model; the ASan build finds any leak. */
static void test_fault_injection(void **state)
{
    (void)state;
    char err[BNN_ERR_LEN], path[512];
    char *dir = make_tmpdir();
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    const size_t dims[] = {6, 5, 3};
    struct bnn_model *m = make_model(dims, 2);
    assert_int_equal(bnn_weights_save(path, m, err), BNN_OK);
    long n;
    int failures = 0;
    for (n = 1; n < 1000; n++) {
        struct bnn_model *got = (struct bnn_model *)1;
        err[0] = '\0';
        bnn_fault_set(n);
        int rc = bnn_weights_load(&got, path, err);
        int fired = bnn_fault_fired();
        bnn_fault_set(0);
        if (!fired) {
            assert_int_equal(rc, BNN_OK);
            assert_same_model(m, got);
            bnn_model_free(got);
            break;
        }
        failures++;
        if (rc == BNN_OK)
            fail_msg("fault %ld fired but the load succeeded", n);
        assert_null(got);
        assert_true(strlen(err) > 0);
        assert_non_null(strstr(err, "m.safetensors"));
    }
    /* file buffer, model struct, storage, metadata strings + arrays, reads */
    assert_true(failures >= 5);
    /* the same walk over serialize */
    for (n = 1; n < 100; n++) {
        uint8_t *buf = (uint8_t *)1;
        size_t len;
        bnn_fault_set(n);
        int rc = bnn_weights_serialize(&buf, &len, m, err);
        int fired = bnn_fault_fired();
        bnn_fault_set(0);
        if (!fired) {
            assert_int_equal(rc, BNN_OK);
            free(buf);
            break;
        }
        assert_int_not_equal(rc, BNN_OK);
        assert_null(buf);
    }
    unlink(path);
    rmdir(dir);
    free(dir);
    bnn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_one_layer),     cmocka_unit_test(test_roundtrip_three_layers),
        cmocka_unit_test(test_roundtrip_max_layers),    cmocka_unit_test(test_roundtrip_mnist_shape),
        cmocka_unit_test(test_save_load_atomic_sorted), cmocka_unit_test(test_malformed_table),
        cmocka_unit_test(test_header_length),           cmocka_unit_test(test_fault_injection),
        cmocka_unit_test(test_too_many_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
