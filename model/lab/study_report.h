/* study_report.h - writes a robustness study (study.h) out: one JSON
 * document with every figure (study_report.c), the data files the gnuplot
 * scripts in docs/ plot (study_report.c), and the markdown of
 * docs/report.md's numbers and findings (study_markdown.c), in which every
 * sentence that states a result is generated from the figures, so none
 * can go stale.
 *
 * JSON has no NaN or infinity: unknown figures are null, and so is a
 * threshold that never flags. Each function returns BNN_OK, or BNN_E_IO /
 * BNN_E_NOMEM with err naming the file and the problem.
 *
 * Part of the lab (model/lab/): linked by the tools and tests, never by
 * the daemon, which links only the runtime in model/.
 */
#ifndef BNN_STUDY_REPORT_H
#define BNN_STUDY_REPORT_H

#include "study.h"

/* The JSON document to path, or to stdout when path is NULL. */
int study_write_json(const struct study *st, const char *path, char err[BNN_ERR_LEN]);

/* Into the existing directory dir: corruptions.tsv, reliability.tsv,
 * rotation.tsv, ood_hist.tsv, selective.tsv, policy.txt, example.tsv,
 * example.txt, example_clean.mat, example_corrupted.mat, gallery.mat. */
int study_write_plots(const struct study *st, const char *dir, char err[BNN_ERR_LEN]);

/* The markdown fragment docs/report.md is built around. */
int study_write_markdown(const struct study *st, const char *path, char err[BNN_ERR_LEN]);

#endif
