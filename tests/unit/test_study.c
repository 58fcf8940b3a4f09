/* test_study.c - the robustness study (study.h, study_report.h) on the
 * shipped weights at a small size: bad configurations refused with the
 * values named; the sets' figures consistent with each other (rotation by
 * 0 is the clean set, totals are the sums of the sets', every picture
 * without a digit flagged, each candidate rate flags exactly its share of
 * the validation digits); the example replays its set's answer; the
 * writers report an unwritable path by name. Needs build/data/mnist,
 * Fashion-MNIST and the weights; missing any fails, never skips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calibrate.h"
#include "idx.h"
#include "study.h"
#include "study_report.h"
#include "weights.h"

#define FASHION "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"

struct fixture {
    struct bnn_model *m;
    struct bnn_policy policy;
    struct idx_images test, train, fashion;
    struct idx_labels test_lb, train_lb;
    struct study_data data;
    struct study_config cfg;
    struct study st;
};

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v ? v : fallback;
}

static int setup(void **state)
{
    static struct fixture f;
    char err[BNN_ERR_LEN];
    const char *data = env_or("BNN_DATA", "build/data/mnist");
    if (bnn_weights_load(&f.m, env_or("BNN_WEIGHTS", "model/weights/mnist-bnn.safetensors"), err) ||
        idx_load_mnist(&f.test, &f.test_lb, data, "t10k", err) ||
        idx_load_mnist(&f.train, &f.train_lb, data, "train", err) ||
        idx_images_load_gz(&f.fashion, FASHION, err)) {
        fprintf(stderr, "test_study: %s\n", err);
        return -1;
    }
    /* a policy fitted here, on 1,000 validation digits */
    const size_t n_val = 1000;
    const uint8_t *val = f.train.pixels + (f.train.n - n_val) * 784,
                  *val_lb = f.train_lb.labels + f.train.n - n_val;
    if (calib_policy(&f.policy, f.m, val, val_lb, n_val, 8, 2, 0.05, err)) {
        fprintf(stderr, "test_study: calib_policy: %s\n", err);
        return -1;
    }
    f.data =
        (struct study_data){f.test.pixels, f.test_lb.labels, 120, f.fashion.pixels, 60, val, val_lb, n_val};
    eval_options_default(&f.cfg.eval);
    f.cfg.eval.samples = 8;
    f.cfg.eval.policy = &f.policy;
    f.cfg.eval.set_level = bnn_policy_level(&f.policy, STUDY_SET_COVERAGE);
    f.cfg.model_samples = 8;
    f.cfg.n_rotation = 30;
    f.cfg.n_no_digit = 10;
    f.cfg.example = SIZE_MAX;
    f.cfg.model_name = "shipped";
    f.cfg.policy_source = "calibrated in the test";
    if (study_run(&f.st, f.m, &f.data, &f.cfg, err)) {
        fprintf(stderr, "test_study: study_run: %s\n", err);
        return -1;
    }
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    study_free(&f->st);
    bnn_model_free(f->m);
    idx_images_free(&f->test);
    idx_images_free(&f->train);
    idx_images_free(&f->fashion);
    idx_labels_free(&f->test_lb);
    idx_labels_free(&f->train_lb);
    return 0;
}

static void test_bad_config(void **state)
{
    struct fixture *f = *state;
    char err[BNN_ERR_LEN];
    struct study st;
    struct study_config c = f->cfg;
    c.n_rotation = f->data.n_test + 1;
    assert_int_equal(study_run(&st, f->m, &f->data, &c, err), BNN_E_INVALID);
    assert_non_null(strstr(err, "got 120, 60, 121"));
    study_free(&st);
    c = f->cfg;
    c.eval.policy = NULL;
    assert_int_equal(study_run(&st, f->m, &f->data, &c, err), BNN_E_INVALID);
    assert_non_null(strstr(err, "none"));
    study_free(&st);
    struct study_data d = f->data;
    d.n_fashion = 0;
    assert_int_equal(study_run(&st, f->m, &d, &f->cfg, err), BNN_E_INVALID);
    study_free(&st);
}

static void test_sets_agree(void **state)
{
    struct fixture *f = *state;
    const struct study *st = &f->st;
    assert_int_equal(st->clean.n, 120);
    assert_int_equal(st->rotation[0].n, 30);
    /* rotation by 0 is the clean digits with the same seeds */
    for (size_t i = 0; i < 30; i++) {
        assert_true(st->rotation[0].pipe.epistemic[i] == st->clean.pipe.epistemic[i]);
        assert_true(st->rotation[0].model.entropy[i] == st->clean.model.entropy[i]);
    }
    size_t wrong = 0, caught = 0;
    double acc = 0;
    for (int k = 0; k < CORRUPT_COUNT; k++) {
        wrong += st->corrupt[k].pipe.wrong;
        caught += st->corrupt[k].pipe.wrong_flagged;
        acc += st->corrupt[k].pipe.m.accuracy;
    }
    assert_int_equal(st->t.wrong, wrong);
    assert_int_equal(st->t.wrong_flagged, caught);
    assert_float_equal(st->t.mean_accuracy, acc / CORRUPT_COUNT, 1e-12);
    assert_float_equal(st->t.errors_flagged, (double)caught / (double)wrong, 1e-12);
    /* pictures without a digit: every one flagged, whatever the verdict */
    assert_int_equal(st->no_digit.n, 10);
    assert_float_equal(st->no_digit.pipe.m.flagged, 1.0, 0);
    for (int g = 0; g < STUDY_TARGETS; g++)
        if (strcmp(st->targets[g].key, "no_digit_flagged") == 0)
            assert_int_equal(st->targets[g].status, 1);
    /* the model alone never says "no digit" */
    assert_float_equal(st->no_digit.model.m.no_digit, 0.0, 0);
}

/* Each candidate policy flags exactly its share of the validation digits,
 * which it was calibrated on. */
static void test_candidates(void **state)
{
    struct fixture *f = *state;
    const struct study *st = &f->st;
    const struct study_run *v = &st->validation.pipe;
    assert_int_equal(st->n_cand, STUDY_RATES);
    for (size_t j = 0; j < st->n_cand; j++) {
        size_t flagged = 0;
        for (size_t i = 0; i < st->validation.n; i++)
            flagged += bnn_decide(&st->cand[j].policy, v->entropy[i], v->epistemic[i], v->digit[i]) != 0;
        size_t want = (size_t)llround(study_rates[j] * (double)st->validation.n);
        if (flagged != want)
            fail_msg("rate %g: expected %zu of %zu validation digits flagged, got %zu", study_rates[j], want,
                     st->validation.n, flagged);
    }
}

/* The example is a digit right clean and wrong corrupted, and its answers
 * are the ones its sets gave. */
static void test_example(void **state)
{
    struct fixture *f = *state;
    const struct study *st = &f->st;
    const struct study_example *ex = &st->example;
    const struct study_run *c = &st->clean.pipe, *k = &st->corrupt[ex->kind].pipe;
    assert_true(c->correct[ex->index] && !k->correct[ex->index]);
    assert_int_equal(ex->a_clean.pr.predicted, ex->label);
    assert_true(ex->a_corrupted.pr.predicted != ex->label);
    assert_true((float)ex->a_clean.pr.epistemic == (float)c->epistemic[ex->index]);
    assert_true((float)ex->a_corrupted.pr.epistemic == (float)k->epistemic[ex->index]);
    assert_int_equal(ex->a_corrupted.reasons != 0, k->flagged[ex->index]);
}

static void test_writers(void **state)
{
    struct fixture *f = *state;
    char err[BNN_ERR_LEN], dir[] = "/tmp/test_study_XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    assert_int_equal(study_write_plots(&f->st, dir, err), BNN_OK);
    snprintf(path, sizeof path, "%s/n.md", dir);
    assert_int_equal(study_write_markdown(&f->st, path, err), BNN_OK);
    FILE *md = fopen(path, "r");
    assert_non_null(md);
    char text[1 << 16];
    size_t len = fread(text, 1, sizeof text - 1, md);
    text[len] = '\0';
    fclose(md);
    assert_non_null(strstr(text, "### Targets (issue 9)"));
    assert_non_null(strstr(text, "Corruptions that still defeat the model"));
    assert_non_null(strstr(text, "| **clean** |"));
    snprintf(path, sizeof path, "%s/r.json", dir);
    assert_int_equal(study_write_json(&f->st, path, err), BNN_OK);
    /* an unwritable place is reported by name */
    assert_int_equal(study_write_plots(&f->st, "/nonexistent/dir", err), BNN_E_IO);
    assert_non_null(strstr(err, "/nonexistent/dir/corruptions.tsv"));
    assert_int_equal(study_write_markdown(&f->st, "/nonexistent/n.md", err), BNN_E_IO);
    assert_non_null(strstr(err, "/nonexistent/n.md"));
    assert_int_equal(study_write_json(&f->st, "/nonexistent/r.json", err), BNN_E_IO);
    assert_non_null(strstr(err, "/nonexistent/r.json"));
    const char *names[] = {"corruptions.tsv",
                           "reliability.tsv",
                           "rotation.tsv",
                           "ood_hist.tsv",
                           "selective.tsv",
                           "policy.txt",
                           "example.tsv",
                           "example.txt",
                           "example_clean.mat",
                           "example_corrupted.mat",
                           "gallery.mat",
                           "n.md",
                           "r.json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (remove(path) != 0)
            fail_msg("expected %s to have been written", path);
    }
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_config), cmocka_unit_test(test_sets_agree),
        cmocka_unit_test(test_candidates), cmocka_unit_test(test_example),
        cmocka_unit_test(test_writers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
