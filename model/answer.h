/* answer.h - the whole path from a decoded picture to an answer, as the
 * daemon runs it and the evaluation tools measure it: canonicalise
 * (preprocess.h), T Monte-Carlo passes (infer.h), then the abstain rule and
 * the conformal prediction set (decide.h). One function, so that what is
 * measured is what callers get.
 *
 * A picture with no digit is still predicted (on the all-black canonical
 * image, so every answer has the same shape) and always flagged.
 */
#ifndef BNN_ANSWER_H
#define BNN_ANSWER_H

#include <stddef.h>
#include <stdint.h>

#include "decide.h"
#include "infer.h"
#include "preprocess.h"

struct bnn_question {
    size_t samples; /* T >= 1 */
    uint64_t seed;
    double interval; /* per-class interval coverage in (0,1) */
    enum bnn_mode mode;
    int set_level; /* conformal level of the policy, or -1 for no set */
};

struct bnn_answer {
    struct prep_result prep;
    struct bnn_prediction pr;
    unsigned reasons; /* enum bnn_reason bits; 0 = trusted */
    unsigned set;     /* prediction set, bit k = class k (valid when set_level >= 0) */
};

/* The decisions on a computed answer: a->reasons from the policy (a->prep
 * says whether there was a digit) and a->set at set_level (-1: none). The
 * daemon calls this after computing a->pr its own way (in blocks of passes). */
void bnn_answer_finish(struct bnn_answer *a, const struct bnn_policy *pol, int digit_found, int set_level);

/* gray (height, width) 8-bit as decoded; ws a workspace for m (one per
 * thread); pol the policy (shared). BNN_OK, or the inference error with err
 * filled. */
int bnn_answer_gray(struct bnn_answer *a, struct bnn_workspace *ws, const struct bnn_model *m,
                    const struct bnn_policy *pol, const uint8_t *gray, size_t width, size_t height,
                    const struct bnn_question *q, char err[BNN_ERR_LEN]);

/* The same from model inputs already canonical (784 floats in [0,1]), with
 * digit_found saying what the canonicalisation found. */
int bnn_answer_canonical(struct bnn_answer *a, struct bnn_workspace *ws, const struct bnn_model *m,
                         const struct bnn_policy *pol, const float *image, int digit_found,
                         const struct bnn_question *q, char err[BNN_ERR_LEN]);

#endif
