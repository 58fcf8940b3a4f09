/* study_markdown.c - a study as the markdown of docs/report.md's numbers
 * (study_report.h). Every statement of a result is generated here from the
 * figures: which corruptions still defeat the model, where wrong answers
 * slip through unflagged, where the conformal sets lose their coverage.
 */
#include "study_report.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define ACCURACY_BAR 0.85 /* the mean-accuracy target, used per corruption */
#define CAUGHT_BAR 0.90   /* the share of wrong answers flagged */

/* A figure as text; "n/a" for NaN. Valid until the end of the full
 * expression that called the function. */
struct text {
    char s[48];
};

static struct text pct(double v, int digits)
{
    struct text t;
    if (isnan(v))
        snprintf(t.s, sizeof t.s, "n/a");
    else
        snprintf(t.s, sizeof t.s, "%.*f %%", digits, 100 * v);
    return t;
}

static struct text fix(double v, int digits)
{
    struct text t;
    if (isnan(v))
        snprintf(t.s, sizeof t.s, "n/a");
    else if (isinf(v))
        snprintf(t.s, sizeof t.s, "never");
    else
        snprintf(t.s, sizeof t.s, "%.*f", digits, v);
    return t;
}

static void header(FILE *f, const struct study *st)
{
    const struct study_config *c = &st->cfg;
    const struct bnn_policy *p = c->eval.policy;
    fprintf(f,
            "Model `%s` (%s). Every figure comes from the daemon's path (answer.h: the canonicalisation, "
            "T = %zu passes, then the abstain rule and the prediction sets of the policy)",
            c->model_name ? c->model_name : "?", st->arch, c->eval.samples);
    if (c->model_samples)
        fprintf(
            f,
            ", except the \"model alone\" columns: the network on pixel/255 without the canonicalisation, "
            "T = %zu",
            c->model_samples);
    fprintf(
        f,
        ". Seed %llu, %s mode, %.0f %% intervals; %zu MNIST test images per set, %zu Fashion-MNIST images, "
        "%zu per rotation angle, %zu pictures without a digit. Run time %.0f s on %zu threads.\n\n",
        (unsigned long long)c->eval.seed, bnn_mode_name(c->eval.mode), 100 * c->eval.coverage,
        st->data.n_test, st->data.n_fashion, c->n_rotation, c->n_no_digit, st->seconds, c->eval.threads);
    fprintf(f, "The policy (%s): flag an answer when the picture holds no digit",
            c->policy_source ? c->policy_source : "?");
    if (isfinite(p->entropy_max))
        fprintf(f, ", or when its entropy is above %.4g nats", p->entropy_max);
    if (isfinite(p->epistemic_max))
        fprintf(f, ", or when its epistemic part is above %.4g nats", p->epistemic_max);
    fprintf(f, ".");
    if (!isfinite(p->entropy_max) || !isfinite(p->epistemic_max))
        fprintf(f, " There is no %s threshold.",
                isfinite(p->epistemic_max) ? "entropy"
                : isfinite(p->entropy_max) ? "epistemic"
                                           : "entropy or epistemic");
    if (!isnan(p->clean_flag_rate))
        fprintf(f, " The thresholds were calibrated at T = %zu to flag %s of the validation digits.",
                p->samples, pct(p->clean_flag_rate, 1).s);
    fprintf(f, " Conformal levels:");
    for (size_t l = 0; l < p->n_levels; l++)
        fprintf(f, "%s %.2f (mean probability >= %.4g)", l ? "," : "", p->coverage[l], p->min_prob[l]);
    fprintf(f, "%s.\n\n", p->n_levels ? "" : " none, so no prediction-set figures");
}

static void targets(FILE *f, const struct study *st)
{
    fprintf(f, "### Targets (issue 9)\n\n| target | measured | status |\n|---|---:|---|\n");
    for (int i = 0; i < STUDY_TARGETS; i++) {
        const struct study_target *g = &st->targets[i];
        struct text v = g->percent ? pct(g->value, 2) : fix(g->value, 4);
        if (strcmp(g->key, "rise_on_corruptions") == 0)
            snprintf(v.s, sizeof v.s, "%.0f of %d", g->value, CORRUPT_COUNT);
        const char *status = g->status == 1   ? "met"
                             : g->status == 2 ? "**missed** (above the floor)"
                                              : "**missed**";
        fprintf(f, "| %s | %s | %s |\n", g->what, v.s, isnan(g->value) ? "not measured" : status);
    }
    fprintf(f, "\n");
}

/* The corruptions, worst accuracy first, into order[]. */
static void by_accuracy(int order[CORRUPT_COUNT], const struct study *st)
{
    for (int k = 0; k < CORRUPT_COUNT; k++)
        order[k] = k;
    for (int a = 1; a < CORRUPT_COUNT; a++)
        for (int b = a;
             b > 0 && st->corrupt[order[b]].pipe.m.accuracy < st->corrupt[order[b - 1]].pipe.m.accuracy;
             b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
}

static void finding_defeats(FILE *f, const struct study *st)
{
    int order[CORRUPT_COUNT], n = 0;
    by_accuracy(order, st);
    fprintf(f,
            "* Corruptions that still defeat the model (accuracy below %.0f %% through the daemon's path), "
            "worst first:",
            100 * ACCURACY_BAR);
    for (int i = 0; i < CORRUPT_COUNT; i++) {
        const struct study_set *s = &st->corrupt[order[i]];
        if (!(s->pipe.m.accuracy < ACCURACY_BAR))
            continue;
        fprintf(f, "%s **%s %s** (model alone %s; %s of its %zu wrong answers flagged)", n++ ? ";" : "",
                s->name, pct(s->pipe.m.accuracy, 1).s, pct(s->model.m.n ? s->model.m.accuracy : NAN, 1).s,
                pct(s->pipe.m.errors_flagged, 0).s, s->pipe.wrong);
    }
    fprintf(f, "%s\n", n ? "." : " none.");
}

static void finding_slips(FILE *f, const struct study *st)
{
    int n = 0;
    fprintf(f, "* Where wrong answers slip through (fewer than %.0f %% of them flagged):", 100 * CAUGHT_BAR);
    for (int k = 0; k < CORRUPT_COUNT; k++) {
        const struct study_set *s = &st->corrupt[k];
        if (s->pipe.wrong && s->pipe.m.errors_flagged < CAUGHT_BAR)
            fprintf(f, "%s %s %s of %zu", n++ ? "," : "", s->name, pct(s->pipe.m.errors_flagged, 0).s,
                    s->pipe.wrong);
    }
    fprintf(f, "%s\n", n ? "." : " nowhere.");
}

static void finding_no_digit(FILE *f, const struct study *st)
{
    size_t clean = (size_t)llround(st->clean.pipe.m.no_digit * (double)st->clean.n);
    int n = 0;
    fprintf(f, "* The canonicalisation finds no digit in %zu of the %zu clean test digits", clean,
            st->clean.n);
    for (int k = 0; k < CORRUPT_COUNT; k++) {
        const struct study_set *s = &st->corrupt[k];
        size_t c = (size_t)llround(s->pipe.m.no_digit * (double)s->n);
        if (c)
            fprintf(f, "%s %s %zu", n++ ? "," : "; among corrupted digits:", s->name, c);
    }
    fprintf(f, "%s Such answers are always flagged.\n", n ? "." : "; in none of the corrupted ones.");
}

static void finding_sets(FILE *f, const struct study *st)
{
    int level = study_level(st, STUDY_SET_COVERAGE), below = 0, worst = 0;
    if (level < 0) {
        fprintf(f, "* No 0.95 conformal level in the policy: no prediction-set figures.\n");
        return;
    }
    for (int k = 0; k < CORRUPT_COUNT; k++) {
        below += st->corrupt[k].pipe.set_coverage[level] < STUDY_SET_COVERAGE;
        if (st->corrupt[k].pipe.set_coverage[level] < st->corrupt[worst].pipe.set_coverage[level])
            worst = k;
    }
    fprintf(
        f,
        "* Conformal 0.95 sets hold the label for %s of clean test digits (mean size %s). The guarantee "
        "holds only for pictures like the calibration images (clean MNIST validation digits), and the "
        "corruptions show it: coverage %s over the 15 pooled, below 95 %% for %d of 15, lowest %s (%s).\n",
        pct(st->clean.pipe.set_coverage[level], 2).s, fix(st->clean.pipe.set_size[level], 3).s,
        pct(st->t.set_coverage, 1).s, below, pct(st->corrupt[worst].pipe.set_coverage[level], 1).s,
        st->corrupt[worst].name);
}

static void finding_rise(FILE *f, const struct study *st)
{
    int n = 0;
    fprintf(f, "* Mean epistemic above clean for %d of 15 corruptions, mean interval width for %d of 15",
            st->t.epistemic_up, st->t.width_up);
    for (int k = 0; k < CORRUPT_COUNT; k++) {
        const struct study_set *s = &st->corrupt[k];
        int e = s->pipe.m.epistemic > st->clean.pipe.m.epistemic;
        int w = s->pipe.m.interval_width > st->clean.pipe.m.interval_width;
        if (!(e && w))
            fprintf(f, "%s %s (%s)", n++ ? "," : "; not both:", s->name,
                    !e && !w ? "neither"
                    : !e     ? "epistemic"
                             : "width");
    }
    fprintf(f, ".\n");
}

static void findings(FILE *f, const struct study *st)
{
    const struct study_totals *t = &st->t;
    fprintf(f, "### Findings\n\n");
    fprintf(f,
            "* Over the 15 corruptions `uncertain` is true for %s of the %zu wrong answers (%zu flagged), "
            "while it flags %s of clean test digits and %s of all corrupted pictures.\n",
            pct(t->errors_flagged, 1).s, t->wrong, t->wrong_flagged, pct(st->clean.pipe.m.flagged, 2).s,
            pct(t->flagged, 1).s);
    fprintf(
        f,
        "* Mean accuracy over the 15 corruptions: %s through the daemon's path, %s for the model alone on "
        "pixel/255; clean: %s and %s.\n",
        pct(t->mean_accuracy, 2).s, pct(t->mean_accuracy_model, 2).s, pct(st->clean.pipe.m.accuracy, 2).s,
        pct(st->clean.model.m.n ? st->clean.model.m.accuracy : NAN, 2).s);
    finding_defeats(f, st);
    finding_slips(f, st);
    finding_no_digit(f, st);
    finding_sets(f, st);
    fprintf(f, "* Fashion-MNIST: AUROC %s by entropy, %s by epistemic; %s of its pictures flagged.\n",
            fix(t->auroc_entropy, 4).s, fix(t->auroc_epistemic, 4).s, pct(st->fashion.pipe.m.flagged, 1).s);
    finding_rise(f, st);
    fprintf(f, "\n");
}

static void per_set(FILE *f, const struct study *st)
{
    int level = study_level(st, STUDY_SET_COVERAGE);
    fprintf(
        f,
        "### Per set\n\n\"model alone\": accuracy of the network on pixel/255, without the "
        "canonicalisation. \"flagged\": answers with `uncertain` true; \"wrong flagged\": the share of the "
        "wrong answers among them; \"no digit\": pictures the canonicalisation found no digit in.\n\n");
    fprintf(
        f,
        "| set | accuracy | model alone | NLL | ECE | interval width | epistemic | flagged | wrong flagged "
        "| no digit | 0.95-set coverage | set size "
        "|\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < STUDY_TABLE_SETS; i++) {
        const struct study_set *s = study_table_set(st, i);
        const struct eval_metrics *m = &s->pipe.m;
        if (!s->n)
            continue;
        fprintf(f, "| %s%s%s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", i ? "" : "**",
                s->name, i ? "" : "**", pct(m->accuracy, 2).s,
                pct(s->model.m.n ? s->model.m.accuracy : NAN, 2).s, fix(m->nll, 3).s, pct(m->ece, 2).s,
                fix(m->interval_width, 3).s, fix(m->epistemic, 4).s, pct(m->flagged, 1).s,
                pct(m->errors_flagged, 1).s, pct(m->no_digit, 1).s,
                pct(level >= 0 ? s->pipe.set_coverage[level] : NAN, 1).s,
                fix(level >= 0 ? s->pipe.set_size[level] : NAN, 2).s);
    }
    fprintf(f, "\n");
}

static void sets_clean(FILE *f, const struct study *st)
{
    const struct bnn_policy *p = st->cfg.eval.policy;
    if (!p->n_levels)
        return;
    fprintf(
        f, "### Conformal prediction sets on clean test digits\n\n| level | in the set when mean probability "
           ">= | coverage | mean size |\n|---:|---:|---:|---:|\n");
    for (size_t l = 0; l < p->n_levels; l++)
        fprintf(f, "| %.2f | %.4g | %s | %s |\n", p->coverage[l], p->min_prob[l],
                pct(st->clean.pipe.set_coverage[l], 2).s, fix(st->clean.pipe.set_size[l], 3).s);
    fprintf(f, "\nSplit conformal on the validation digits promises coverage >= the level for pictures "
               "exchangeable with them, nothing under shift (the corruptions' column above).\n\n");
}

static void ood(FILE *f, const struct study *st)
{
    const struct study_totals *t = &st->t;
    const struct eval_metrics *o = &st->fashion.pipe.m, *c = &st->clean.pipe.m;
    fprintf(f, "### Out of distribution: Fashion-MNIST test images vs MNIST test digits\n\n");
    fprintf(f, "| score | AUROC, daemon's path | AUROC, model alone |\n|---|---:|---:|\n");
    fprintf(f, "| predictive entropy | %s | %s |\n", fix(t->auroc_entropy, 4).s,
            fix(t->auroc_model_entropy, 4).s);
    fprintf(f, "| epistemic (mutual information) | %s | %s |\n", fix(t->auroc_epistemic, 4).s,
            fix(t->auroc_model_epistemic, 4).s);
    fprintf(f, "| 1 - max mean probability (baseline) | %s | |\n\n", fix(t->auroc_max_prob, 4).s);
    fprintf(
        f,
        "Means on Fashion-MNIST: entropy %s, aleatoric %s, epistemic %s (MNIST: %s, %s, %s); %s flagged, %s "
        "with no digit found.\n\n",
        fix(o->entropy, 3).s, fix(o->aleatoric, 3).s, fix(o->epistemic, 4).s, fix(c->entropy, 3).s,
        fix(c->aleatoric, 3).s, fix(c->epistemic, 4).s, pct(o->flagged, 1).s, pct(o->no_digit, 1).s);
}

static void no_digit(FILE *f, const struct study *st)
{
    const struct study_set *s = &st->no_digit;
    if (!s->n)
        return;
    size_t blank = (s->n + 1) / 2, fb = 0, fn = 0, db = 0, dn = 0, model = 0;
    for (size_t i = 0; i < s->n; i++) {
        *(i < blank ? &fb : &fn) += s->pipe.flagged[i];
        *(i < blank ? &db : &dn) += !s->pipe.digit[i];
        model += s->model.m.n && s->model.flagged[i];
    }
    fprintf(f,
            "### Pictures without a digit\n\n%zu blank pages (grey levels 0 to 255) and %zu pictures of "
            "uniform noise: flagged %zu and %zu, the canonicalisation finding no digit in %zu and %zu.",
            blank, s->n - blank, fb, fn, db, dn);
    if (s->model.m.n)
        fprintf(f, " The model alone, with only its thresholds, would flag %zu of the %zu.", model, s->n);
    fprintf(f, "\n\n");
}

static void rotation(FILE *f, const struct study *st)
{
    fprintf(f,
            "### Rotation\n\n| degrees | accuracy | model alone | ECE | epistemic | interval width | flagged "
            "|\n|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int a = 0; a < STUDY_ANGLES; a++) {
        const struct study_set *s = &st->rotation[a];
        fprintf(f, "| %d | %s | %s | %s | %s | %s | %s |\n", 15 * a, pct(s->pipe.m.accuracy, 2).s,
                pct(s->model.m.n ? s->model.m.accuracy : NAN, 2).s, pct(s->pipe.m.ece, 2).s,
                fix(s->pipe.m.epistemic, 4).s, fix(s->pipe.m.interval_width, 3).s,
                pct(s->pipe.m.flagged, 1).s);
    }
    fprintf(f, "\n");
}

static void selective(FILE *f, const struct study *st)
{
    fprintf(f,
            "### Selective prediction (accuracy on the answers kept)\n\n| abstain on | clean, by epistemic | "
            "clean, by entropy | clean + 15 corruptions, by epistemic | clean + 15 corruptions, by entropy "
            "|\n|---:|---:|---:|---:|---:|\n");
    for (int j = 0; j < STUDY_FRACTIONS; j += 5)
        fprintf(f, "| %d %% | %s | %s | %s | %s |\n", j, pct(st->sel_clean_epi[j], 2).s,
                pct(st->sel_clean_ent[j], 2).s, pct(st->sel_pool_epi[j], 2).s, pct(st->sel_pool_ent[j], 2).s);
    fprintf(f, "\n");
}

static void flag_rates(FILE *f, const struct study *st)
{
    if (!st->n_cand)
        return;
    fprintf(f,
            "### The flag rate\n\nEach row: the abstain rule calibrated (calibrate.h) to flag that share of "
            "the %zu validation digits, at T = %zu, applied to the test sets. \"corrupted\": the 15 sets "
            "pooled.\n\n",
            st->data.n_val, st->cfg.eval.samples);
    fprintf(
        f,
        "| validation flagged | entropy > | epistemic > | clean flagged | clean errors flagged | corrupted "
        "flagged | corrupted errors flagged | Fashion-MNIST flagged "
        "|\n|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    const struct study_candidate *first_met = NULL;
    for (size_t j = 0; j < st->n_cand; j++) {
        const struct study_candidate *c = &st->cand[j];
        fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", pct(c->rate, 0).s,
                fix(c->policy.entropy_max, 4).s, fix(c->policy.epistemic_max, 4).s,
                pct(c->clean_flagged, 1).s, pct(c->clean_errors_flagged, 1).s, pct(c->corrupted_flagged, 1).s,
                pct(c->corrupted_errors_flagged, 1).s, pct(c->fashion_flagged, 1).s);
        if (!first_met && c->corrupted_errors_flagged >= CAUGHT_BAR)
            first_met = c;
    }
    if (first_met)
        fprintf(f,
                "\nThe least flagging row that catches %.0f %% of the corrupted errors flags %s of the "
                "validation digits and %s of clean test digits.\n\n",
                100 * CAUGHT_BAR, pct(first_met->rate, 0).s, pct(first_met->clean_flagged, 1).s);
    else
        fprintf(f,
                "\nNo row up to %s of validation digits flagged catches %.0f %% of the corrupted errors.\n\n",
                pct(st->cand[st->n_cand - 1].rate, 0).s, 100 * CAUGHT_BAR);
}

static const char *verdict(unsigned reasons)
{
    if (!reasons)
        return "not flagged";
    return reasons & BNN_REASON_NO_DIGIT                            ? "flagged: no digit"
           : reasons == (BNN_REASON_ENTROPY | BNN_REASON_EPISTEMIC) ? "flagged: entropy and epistemic"
           : reasons & BNN_REASON_ENTROPY                           ? "flagged: entropy"
                                                                    : "flagged: epistemic";
}

static void example(FILE *f, const struct study *st)
{
    const struct study_example *ex = &st->example;
    fprintf(f,
            "### Example (figure 1)\n\nTest image %zu (label %d): clean, predicted %d with epistemic %.3g "
            "nats, %s; under %s, predicted %d with epistemic %.3g nats, %s.\n",
            ex->index, ex->label, ex->a_clean.pr.predicted, ex->a_clean.pr.epistemic,
            verdict(ex->a_clean.reasons), corrupt_name(ex->kind), ex->a_corrupted.pr.predicted,
            ex->a_corrupted.pr.epistemic, verdict(ex->a_corrupted.reasons));
}

int study_write_markdown(const struct study *st, const char *path, char err[BNN_ERR_LEN])
{
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, BNN_ERR_LEN, "open %.180s: %s", path, strerror(errno));
        return BNN_E_IO;
    }
    header(f, st);
    targets(f, st);
    findings(f, st);
    per_set(f, st);
    sets_clean(f, st);
    ood(f, st);
    no_digit(f, st);
    rotation(f, st);
    selective(f, st);
    flag_rates(f, st);
    example(f, st);
    if ((ferror(f) | fclose(f)) != 0) {
        snprintf(err, BNN_ERR_LEN, "write %.180s: %s", path, strerror(errno ? errno : EIO));
        return BNN_E_IO;
    }
    return BNN_OK;
}
