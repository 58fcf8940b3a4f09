/* eval.h - evaluates a bnn_model on a set of images: T Monte-Carlo passes per
 * image (infer.h), then metrics of the mean prediction p_bar.
 *
 *   accuracy        argmax p_bar == label, fraction in [0, 1]
 *   nll             mean -log p_bar[label] (p clamped at 1e-15), nats
 *   brier           the paper's form (Ovadia et al. 2019):
 *                   (1/K) sum_k (p_bar_k - [k == label])^2, mean over images
 *   brier_sum       the same without 1/K (squared distance, in [0, 2])
 *   ece             15 equal-width bins of max p_bar (stats_ece)
 *   interval_width  mean over images of the predicted class's interval
 *                   (upper - lower at the given coverage)
 *   entropy, aleatoric, epistemic   means over images (nats), infer.h's
 *
 * Per-image results are reduced in index order and every image's noise is
 * addressed by (seed, image index), so the figures depend only on (model,
 * images, options), never on the thread count. Images are 8-bit 28x28
 * pictures (n, 784), so corrupted or out-of-distribution sets plug in as
 * they are. By default each goes the daemon's whole way (answer.h:
 * canonicalisation, passes, abstain rule, prediction set): the figures are
 * what callers get. o->pipeline = 0 measures the model alone on pixel/255.
 * Labels may be NULL (out-of-distribution sets): label metrics are then NAN.
 *
 *   flagged         share of answers flagged uncertain (any reason)
 *   errors_flagged  share of the wrong answers that are flagged
 *   no_digit        share of pictures the canonicalisation found no digit in
 *   set_coverage    share of prediction sets holding the label
 *   set_size        mean number of classes in the prediction set
 *
 * Part of the lab (model/lab/): linked by the tools and tests, never by
 * the daemon, which links only the runtime in model/.
 */
#ifndef BNN_EVAL_H
#define BNN_EVAL_H

#include "bnn.h"
#include "decide.h"
#include "infer.h"

struct eval_options {
    size_t samples; /* T, passes per image (>= 1) */
    uint64_t seed;
    enum bnn_mode mode;              /* lrt or weights */
    size_t threads;                  /* worker threads, one workspace each (>= 1) */
    double coverage;                 /* interval coverage in (0, 1) */
    int pipeline;                    /* 1: the daemon's path; 0: the model on pixel/255 */
    const struct bnn_policy *policy; /* abstain rule and sets; NULL = none */
    int set_level;                   /* policy's conformal level for the sets, or -1 */
};

/* T 100, seed 1, LRT, 2 threads, coverage 0.95, the pipeline, no policy. */
void eval_options_default(struct eval_options *o);

/* The seed of image i's passes under o: a replay of one image with
 * bnn_answer_gray (or, with pipeline 0, bnn_answer_canonical on
 * pixel / 255.0f), this seed and one BLAS thread - eval_model runs its
 * workers so - gives the answer eval_model gave it, bit for bit. */
uint64_t eval_image_seed(const struct eval_options *o, size_t i);

struct eval_metrics {
    size_t n, samples;
    double accuracy, nll, brier, brier_sum, ece;
    double interval_width;
    double entropy, aleatoric, epistemic;
    double flagged, errors_flagged, no_digit; /* NAN where undefined */
    double set_coverage, set_size;            /* NAN without sets or labels */
};

/* One image's result (for corruption and OOD studies). */
struct eval_image {
    int predicted;
    float confidence;     /* max p_bar */
    float label_prob;     /* p_bar[label], NAN without labels */
    float interval_width; /* of the predicted class */
    float entropy, aleatoric, epistemic;
    unsigned char digit_found; /* the canonicalisation found a digit */
    unsigned reasons;          /* decide.h reasons to flag; 0 = trusted */
    unsigned set;              /* prediction set bits (when a level is set) */
};

/* Metrics from mean probabilities probs (n, k) (rows summing to 1) and
 * labels (n, each < k): accuracy, nll, brier, brier_sum, ece and entropy;
 * the sample-based fields are set to NAN and samples to 0. Returns BNN_OK, or
 * BNN_E_INVALID (n == 0, k out of range, a label >= k) / BNN_E_NOMEM with err
 * filled. */
int eval_metrics_from_probs(struct eval_metrics *out, const double *probs, const uint8_t *labels, size_t n,
                            size_t k, char err[BNN_ERR_LEN]);

/* Runs the model on pixels (n, n_in) with o->threads pthreads, each with its
 * own bnn_workspace; OpenBLAS is set to one thread meanwhile and restored
 * after. Fills *out; per_image (n entries, caller-allocated) and mean_probs
 * (n * n_classes doubles, caller-allocated) may be NULL. labels may be NULL.
 * Returns BNN_OK or an error with err filled (bad options, out of memory, or
 * an inference error naming the image). */
int eval_model(struct eval_metrics *out, struct eval_image *per_image, double *mean_probs,
               const struct bnn_model *m, const uint8_t *pixels, const uint8_t *labels, size_t n,
               const struct eval_options *o, char err[BNN_ERR_LEN]);

/* Records test-set figures in m's metadata, as bnn-train and bnn-eval
 * --write-meta do: test_accuracy, test_nll, test_ece, test_brier,
 * test_interval_width, test_samples, test_flagged and, when e has sets,
 * test_set_coverage_C and test_set_size_C for C = set_coverage (e.g.
 * "test_set_coverage_0.95"). BNN_OK or BNN_E_NOMEM. */
int eval_metrics_to_meta(struct bnn_model *m, const struct eval_metrics *e, double set_coverage);

#endif
