/* study_report.c - a study as JSON and as gnuplot data (study_report.h);
 * the markdown is study_markdown.c.
 */
#include "study_report.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "robust.h"

#define HIST_BINS 40
#define LN10 2.302585092994046

/* ---- JSON ----------------------------------------------------------------- */

/* JSON has no NaN or infinity: such a figure is null. */
static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *metrics_json(const struct eval_metrics *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "samples", json_integer((json_int_t)m->samples));
    json_object_set_new(o, "accuracy", num(m->accuracy));
    json_object_set_new(o, "nll", num(m->nll));
    json_object_set_new(o, "brier", num(m->brier));
    json_object_set_new(o, "ece", num(m->ece));
    json_object_set_new(o, "interval_width", num(m->interval_width));
    json_object_set_new(o, "entropy", num(m->entropy));
    json_object_set_new(o, "aleatoric", num(m->aleatoric));
    json_object_set_new(o, "epistemic", num(m->epistemic));
    json_object_set_new(o, "flagged", num(m->flagged));
    json_object_set_new(o, "errors_flagged", num(m->errors_flagged));
    json_object_set_new(o, "no_digit", num(m->no_digit));
    return o;
}

/* A set: the daemon's path's figures at the top level, the prediction sets
 * per policy level, and the model alone (null when not run). */
static json_t *set_json(const struct study *st, const struct study_set *s)
{
    json_t *o = metrics_json(&s->pipe.m);
    const struct bnn_policy *p = st->cfg.eval.policy;
    int level = study_level(st, STUDY_SET_COVERAGE);
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "n", json_integer((json_int_t)s->n));
    json_object_set_new(o, "wrong", s->labelled ? json_integer((json_int_t)s->pipe.wrong) : json_null());
    json_object_set_new(o, "wrong_flagged",
                        s->labelled ? json_integer((json_int_t)s->pipe.wrong_flagged) : json_null());
    json_object_set_new(o, "set_coverage", num(level >= 0 ? s->pipe.set_coverage[level] : NAN));
    json_object_set_new(o, "set_size", num(level >= 0 ? s->pipe.set_size[level] : NAN));
    json_t *sets = json_array();
    for (size_t l = 0; l < p->n_levels; l++) {
        json_t *e = json_object();
        json_object_set_new(e, "coverage", json_real(p->coverage[l]));
        json_object_set_new(e, "set_coverage", num(s->pipe.set_coverage[l]));
        json_object_set_new(e, "set_size", num(s->pipe.set_size[l]));
        json_array_append_new(sets, e);
    }
    json_object_set_new(o, "sets", sets);
    json_object_set_new(o, "model_only", s->model.m.n ? metrics_json(&s->model.m) : json_null());
    return o;
}

static json_t *policy_json(const struct study *st)
{
    const struct bnn_policy *p = st->cfg.eval.policy;
    json_t *o = json_object(), *levels = json_array();
    json_object_set_new(o, "source", json_string(st->cfg.policy_source ? st->cfg.policy_source : ""));
    json_object_set_new(o, "entropy_max", num(p->entropy_max));
    json_object_set_new(o, "epistemic_max", num(p->epistemic_max));
    json_object_set_new(o, "validation_flag_rate", num(p->clean_flag_rate));
    json_object_set_new(o, "samples", json_integer((json_int_t)p->samples));
    for (size_t l = 0; l < p->n_levels; l++) {
        json_t *e = json_object();
        json_object_set_new(e, "coverage", json_real(p->coverage[l]));
        json_object_set_new(e, "min_prob", json_real(p->min_prob[l]));
        json_array_append_new(levels, e);
    }
    json_object_set_new(o, "levels", levels);
    return o;
}

static json_t *config_json(const struct study *st)
{
    const struct study_config *c = &st->cfg;
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(c->model_name ? c->model_name : ""));
    json_object_set_new(o, "architecture", json_string(st->arch));
    json_object_set_new(o, "pipeline",
                        json_string("answer.h: canonicalise, predict, decide (the daemon's path)"));
    json_object_set_new(o, "samples", json_integer((json_int_t)c->eval.samples));
    json_object_set_new(o, "model_only_samples", json_integer((json_int_t)c->model_samples));
    json_object_set_new(o, "seed", json_integer((json_int_t)c->eval.seed));
    json_object_set_new(o, "mode", json_string(bnn_mode_name(c->eval.mode)));
    json_object_set_new(o, "interval", json_real(c->eval.coverage));
    json_object_set_new(o, "threads", json_integer((json_int_t)c->eval.threads));
    json_object_set_new(o, "images", json_integer((json_int_t)st->data.n_test));
    json_object_set_new(o, "ood_images", json_integer((json_int_t)st->data.n_fashion));
    json_object_set_new(o, "rotation_images", json_integer((json_int_t)c->n_rotation));
    json_object_set_new(o, "no_digit_images", json_integer((json_int_t)c->n_no_digit));
    json_object_set_new(o, "validation_images", json_integer((json_int_t)st->data.n_val));
    json_object_set_new(o, "set_coverage", json_real(STUDY_SET_COVERAGE));
    json_object_set_new(o, "policy", policy_json(st));
    return o;
}

static json_t *totals_json(const struct study *st)
{
    const struct study_totals *t = &st->t;
    json_t *o = json_object();
    json_object_set_new(o, "corruptions_mean_accuracy", num(t->mean_accuracy));
    json_object_set_new(o, "corruptions_mean_accuracy_model_only", num(t->mean_accuracy_model));
    json_object_set_new(o, "corruptions_wrong", json_integer((json_int_t)t->wrong));
    json_object_set_new(o, "corruptions_wrong_flagged", json_integer((json_int_t)t->wrong_flagged));
    json_object_set_new(o, "corruptions_errors_flagged", num(t->errors_flagged));
    json_object_set_new(o, "corruptions_flagged", num(t->flagged));
    json_object_set_new(o, "corruptions_set_coverage", num(t->set_coverage));
    json_object_set_new(o, "clean_flagged", num(st->clean.pipe.m.flagged));
    json_object_set_new(o, "corruptions_epistemic_above_clean", json_integer(t->epistemic_up));
    json_object_set_new(o, "corruptions_width_above_clean", json_integer(t->width_up));
    json_object_set_new(o, "corruptions_both_above_clean", json_integer(t->both_up));
    return o;
}

static json_t *targets_json(const struct study *st)
{
    json_t *a = json_array();
    for (int i = 0; i < STUDY_TARGETS; i++) {
        const struct study_target *g = &st->targets[i];
        json_t *o = json_object();
        json_object_set_new(o, "key", json_string(g->key));
        json_object_set_new(o, "target", json_string(g->what));
        json_object_set_new(o, "value", num(g->value));
        json_object_set_new(o, "min", num(g->lo));
        json_object_set_new(o, "max", num(g->hi));
        json_object_set_new(o, "floor", num(g->floor));
        json_object_set_new(o, "met", json_boolean(g->status == 1));
        json_object_set_new(o, "above_floor", g->status == 2 ? json_true() : json_false());
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *selective_json(const struct study *st)
{
    json_t *o = json_object();
    const char *names[] = {"abstain_fraction", "clean_by_epistemic", "clean_by_entropy",
                           "pooled_by_epistemic", "pooled_by_entropy"};
    const double *cols[] = {st->fractions, st->sel_clean_epi, st->sel_clean_ent, st->sel_pool_epi,
                            st->sel_pool_ent};
    for (int c = 0; c < 5; c++) {
        json_t *a = json_array();
        for (int j = 0; j < STUDY_FRACTIONS; j++)
            json_array_append_new(a, num(cols[c][j]));
        json_object_set_new(o, names[c], a);
    }
    return o;
}

static json_t *candidates_json(const struct study *st)
{
    json_t *a = json_array();
    for (size_t j = 0; j < st->n_cand; j++) {
        const struct study_candidate *c = &st->cand[j];
        json_t *o = json_object();
        json_object_set_new(o, "validation_flag_rate", json_real(c->rate));
        json_object_set_new(o, "entropy_max", num(c->policy.entropy_max));
        json_object_set_new(o, "epistemic_max", num(c->policy.epistemic_max));
        json_object_set_new(o, "clean_flagged", num(c->clean_flagged));
        json_object_set_new(o, "clean_errors_flagged", num(c->clean_errors_flagged));
        json_object_set_new(o, "corrupted_flagged", num(c->corrupted_flagged));
        json_object_set_new(o, "corrupted_errors_flagged", num(c->corrupted_errors_flagged));
        json_object_set_new(o, "fashion_flagged", num(c->fashion_flagged));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *example_json(const struct study *st)
{
    const struct study_example *ex = &st->example;
    json_t *o = json_object();
    json_object_set_new(o, "index", json_integer((json_int_t)ex->index));
    json_object_set_new(o, "label", json_integer(ex->label));
    json_object_set_new(o, "corruption", json_string(corrupt_name(ex->kind)));
    json_object_set_new(o, "clean_prediction", json_integer(ex->a_clean.pr.predicted));
    json_object_set_new(o, "clean_epistemic", num(ex->a_clean.pr.epistemic));
    json_object_set_new(o, "clean_flagged", json_boolean(ex->a_clean.reasons != 0));
    json_object_set_new(o, "corrupted_prediction", json_integer(ex->a_corrupted.pr.predicted));
    json_object_set_new(o, "corrupted_epistemic", num(ex->a_corrupted.pr.epistemic));
    json_object_set_new(o, "corrupted_flagged", json_boolean(ex->a_corrupted.reasons != 0));
    return o;
}

static json_t *study_json(const struct study *st)
{
    json_t *root = json_object(), *cor = json_array(), *rot = json_array();
    json_object_set_new(root, "config", config_json(st));
    json_object_set_new(root, "clean", set_json(st, &st->clean));
    for (int k = 0; k < CORRUPT_COUNT; k++)
        json_array_append_new(cor, set_json(st, &st->corrupt[k]));
    json_object_set_new(root, "corruptions", cor);
    for (int a = 0; a < STUDY_ANGLES; a++) {
        json_t *r = set_json(st, &st->rotation[a]);
        json_object_set_new(r, "degrees", json_integer(15 * a));
        json_array_append_new(rot, r);
    }
    json_object_set_new(root, "rotation", rot);
    json_t *ood = set_json(st, &st->fashion);
    json_object_set_new(ood, "auroc_entropy", num(st->t.auroc_entropy));
    json_object_set_new(ood, "auroc_epistemic", num(st->t.auroc_epistemic));
    json_object_set_new(ood, "auroc_max_prob", num(st->t.auroc_max_prob));
    json_object_set_new(ood, "auroc_entropy_model_only", num(st->t.auroc_model_entropy));
    json_object_set_new(ood, "auroc_epistemic_model_only", num(st->t.auroc_model_epistemic));
    json_object_set_new(root, "ood", ood);
    json_object_set_new(root, "no_digit", st->no_digit.n ? set_json(st, &st->no_digit) : json_null());
    json_object_set_new(root, "selective", selective_json(st));
    json_object_set_new(root, "candidates", candidates_json(st));
    json_object_set_new(root, "totals", totals_json(st));
    json_object_set_new(root, "targets", targets_json(st));
    json_object_set_new(root, "example", example_json(st));
    json_object_set_new(root, "seconds", json_real(st->seconds));
    return root;
}

int study_write_json(const struct study *st, const char *path, char err[BNN_ERR_LEN])
{
    json_t *root = study_json(st);
    int rc = BNN_OK;
    size_t flags = JSON_INDENT(2) | JSON_REAL_PRECISION(6);
    if (!root) {
        snprintf(err, BNN_ERR_LEN, "out of memory for the JSON document");
        return BNN_E_NOMEM;
    }
    if (path ? json_dump_file(root, path, flags) != 0
             : json_dumpf(root, stdout, flags) != 0 || fputc('\n', stdout) == EOF) {
        snprintf(err, BNN_ERR_LEN, "write %s failed", path ? path : "stdout");
        rc = BNN_E_IO;
    }
    json_decref(root);
    return rc;
}

/* ---- gnuplot data ------------------------------------------------------------ */

struct plot {
    FILE *f;
    char path[4200];
};

static int plot_open(struct plot *p, const char *dir, const char *name, char err[BNN_ERR_LEN])
{
    snprintf(p->path, sizeof p->path, "%s/%s", dir, name);
    p->f = fopen(p->path, "w");
    if (!p->f) {
        snprintf(err, BNN_ERR_LEN, "open %.180s: %s", p->path, strerror(errno));
        return BNN_E_IO;
    }
    return BNN_OK;
}

static int plot_close(struct plot *p, char err[BNN_ERR_LEN])
{
    int bad = ferror(p->f) | fclose(p->f);
    if (bad) {
        snprintf(err, BNN_ERR_LEN, "write %.180s: %s", p->path, strerror(errno ? errno : EIO));
        return BNN_E_IO;
    }
    return BNN_OK;
}

static void write_corruptions(FILE *f, const struct study *st)
{
    int level = study_level(st, STUDY_SET_COVERAGE);
    fprintf(f,
            "# name\taccuracy\taccuracy_model_only\tnll\tece\tinterval_width\tentropy\taleatoric\tepistemic\t"
            "flagged\terrors_flagged\tno_digit\tset_coverage\tset_size\n");
    for (int s = 0; s <= CORRUPT_COUNT; s++) {
        const struct study_set *r = study_table_set(st, (size_t)s);
        const struct eval_metrics *m = &r->pipe.m;
        fprintf(f, "%s\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\n",
                r->name, m->accuracy, r->model.m.n ? r->model.m.accuracy : NAN, m->nll, m->ece,
                m->interval_width, m->entropy, m->aleatoric, m->epistemic, m->flagged, m->errors_flagged,
                m->no_digit, level >= 0 ? r->pipe.set_coverage[level] : NAN,
                level >= 0 ? r->pipe.set_size[level] : NAN);
    }
}

static void write_reliability(FILE *f, const struct study *st)
{
    struct robust_reliability rel;
    robust_reliability(&rel, st->clean.pipe.confidence, st->clean.pipe.correct, st->clean.n);
    fprintf(f, "# bin_lo\tbin_hi\tcount\tconfidence\taccuracy\n");
    for (int b = 0; b < ROBUST_BINS; b++)
        fprintf(f, "%.6f\t%.6f\t%zu\t%.6f\t%.6f\n", b / 15.0, (b + 1) / 15.0, rel.count[b], rel.confidence[b],
                rel.accuracy[b]);
}

static void write_rotation(FILE *f, const struct study *st)
{
    fprintf(f,
            "# degrees\taccuracy\tece\tepistemic\tentropy\taleatoric\tinterval_width\taccuracy_model_only\t"
            "flagged\n");
    for (int a = 0; a < STUDY_ANGLES; a++) {
        const struct study_set *r = &st->rotation[a];
        const struct eval_metrics *m = &r->pipe.m;
        fprintf(f, "%d\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\n", 15 * a, m->accuracy, m->ece,
                m->epistemic, m->entropy, m->aleatoric, m->interval_width,
                r->model.m.n ? r->model.m.accuracy : NAN, m->flagged);
    }
}

static void write_ood_hist(FILE *f, const struct study *st)
{
    const struct study_run *c = &st->clean.pipe, *o = &st->fashion.pipe;
    size_t n = st->clean.n, n_ood = st->fashion.n;
    double h1[HIST_BINS], h2[HIST_BINS], h3[HIST_BINS], h4[HIST_BINS], top = 0.0;
    robust_histogram(h1, HIST_BINS, 0.0, LN10, c->entropy, n);
    robust_histogram(h2, HIST_BINS, 0.0, LN10, o->entropy, n_ood);
    for (size_t i = 0; i < n_ood; i++)
        top = fmax(top, o->epistemic[i]);
    for (size_t i = 0; i < n; i++)
        top = fmax(top, c->epistemic[i]);
    top = top > 0 ? top : 1.0;
    robust_histogram(h3, HIST_BINS, 0.0, top, c->epistemic, n);
    robust_histogram(h4, HIST_BINS, 0.0, top, o->epistemic, n_ood);
    fprintf(f, "# entropy_centre\tmnist\tfashion\tepistemic_centre\tmnist\tfashion\n");
    for (int b = 0; b < HIST_BINS; b++)
        fprintf(f, "%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\n", (b + 0.5) * LN10 / HIST_BINS, h1[b], h2[b],
                (b + 0.5) * top / HIST_BINS, h3[b], h4[b]);
}

static void write_selective(FILE *f, const struct study *st)
{
    fprintf(f, "# abstain\tclean_epistemic\tclean_entropy\tpooled_epistemic\tpooled_entropy\n");
    for (int j = 0; j < STUDY_FRACTIONS; j++)
        fprintf(f, "%.2f\t%.6f\t%.6f\t%.6f\t%.6f\n", st->fractions[j], st->sel_clean_epi[j],
                st->sel_clean_ent[j], st->sel_pool_epi[j], st->sel_pool_ent[j]);
}

/* One line: the percentages the policy flags on clean and on the 15
 * corruptions pooled, and the percentage of their wrong answers it flags. */
static void write_policy(FILE *f, const struct study *st)
{
    fprintf(f, "%.2f %.2f %.2f\n", 100 * st->clean.pipe.m.flagged, 100 * st->t.flagged,
            100 * st->t.errors_flagged);
}

static const char *reasons_word(unsigned reasons)
{
    if (!reasons)
        return "trusted";
    return reasons & BNN_REASON_NO_DIGIT                            ? "flagged:no_digit"
           : reasons == (BNN_REASON_ENTROPY | BNN_REASON_EPISTEMIC) ? "flagged:entropy+epistemic"
           : reasons & BNN_REASON_ENTROPY                           ? "flagged:entropy"
                                                                    : "flagged:epistemic";
}

static void write_example(FILE *f, const struct study *st)
{
    const struct bnn_prediction *a = &st->example.a_clean.pr, *b = &st->example.a_corrupted.pr;
    fprintf(
        f,
        "# class\tclean_mean\tclean_lower\tclean_upper\tcorrupted_mean\tcorrupted_lower\tcorrupted_upper\n");
    for (size_t c = 0; c < a->n_classes; c++)
        fprintf(f, "%zu\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\n", c, a->classes[c].mean, a->classes[c].lower,
                a->classes[c].upper, b->classes[c].mean, b->classes[c].lower, b->classes[c].upper);
}

static void write_example_txt(FILE *f, const struct study *st)
{
    const struct study_example *ex = &st->example;
    fprintf(f, "%zu %d %s %d %.3g %d %.3g %s %s\n", ex->index, ex->label, corrupt_name(ex->kind),
            ex->a_clean.pr.predicted, ex->a_clean.pr.epistemic, ex->a_corrupted.pr.predicted,
            ex->a_corrupted.pr.epistemic, reasons_word(ex->a_clean.reasons),
            reasons_word(ex->a_corrupted.reasons));
}

static void write_matrix(FILE *f, const uint8_t *px)
{
    for (int r = 27; r >= 0; r--) /* gnuplot's matrix rows go upwards */
        for (int c = 0; c < 28; c++)
            fprintf(f, "%d%c", px[r * 28 + c], c == 27 ? '\n' : ' ');
}

static void write_example_clean(FILE *f, const struct study *st)
{
    write_matrix(f, st->example.clean);
}

static void write_example_corrupted(FILE *f, const struct study *st)
{
    write_matrix(f, st->example.corrupted);
}

/* 16 rows (clean + the 15) x 8 digits, 1 px grey gaps, rows upwards. */
static void write_gallery(FILE *f, const struct study *st)
{
    for (int gr = 16 * 29 - 2; gr >= 0; gr--) {
        int set = gr / 29, r = gr % 29;
        for (int gc = 0; gc < 8 * 29 - 1; gc++) {
            int img = gc / 29, c = gc % 29, v = 96;
            if (r < 28 && c < 28 && (size_t)img < st->data.n_test) {
                uint8_t px[CORRUPT_PIXELS];
                const uint8_t *src = st->data.test + (size_t)img * CORRUPT_PIXELS;
                if (set == 0)
                    memcpy(px, src, CORRUPT_PIXELS);
                else
                    corrupt_apply(px, src, (enum corrupt_kind)(set - 1), st->cfg.eval.seed, (uint64_t)img);
                v = px[r * 28 + c];
            }
            fprintf(f, "%d%c", v, gc == 8 * 29 - 2 ? '\n' : ' ');
        }
    }
}

int study_write_plots(const struct study *st, const char *dir, char err[BNN_ERR_LEN])
{
    static const struct {
        const char *name;
        void (*write)(FILE *, const struct study *);
    } files[] = {
        {"corruptions.tsv", write_corruptions},
        {"reliability.tsv", write_reliability},
        {"rotation.tsv", write_rotation},
        {"ood_hist.tsv", write_ood_hist},
        {"selective.tsv", write_selective},
        {"policy.txt", write_policy},
        {"example.tsv", write_example},
        {"example.txt", write_example_txt},
        {"example_clean.mat", write_example_clean},
        {"example_corrupted.mat", write_example_corrupted},
        {"gallery.mat", write_gallery},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        struct plot p;
        int rc = plot_open(&p, dir, files[i].name, err);
        if (rc != BNN_OK)
            return rc;
        files[i].write(p.f, st);
        if ((rc = plot_close(&p, err)) != BNN_OK)
            return rc;
    }
    return BNN_OK;
}
