/* answer.c - canonicalise, predict, decide (answer.h). */
#include "answer.h"

#include <string.h>

void bnn_answer_finish(struct bnn_answer *a, const struct bnn_policy *pol, int digit_found, int set_level)
{
    a->reasons = bnn_decide(pol, a->pr.entropy, a->pr.epistemic, digit_found);
    a->set = 0;
    if (set_level >= 0) {
        double mean[BNN_MAX_CLASSES];
        for (size_t k = 0; k < a->pr.n_classes; k++)
            mean[k] = a->pr.classes[k].mean;
        a->set = bnn_prediction_set(pol, (size_t)set_level, mean, a->pr.n_classes);
    }
}

int bnn_answer_canonical(struct bnn_answer *a, struct bnn_workspace *ws, const struct bnn_model *m,
                         const struct bnn_policy *pol, const float *image, int digit_found,
                         const struct bnn_question *q, char err[BNN_ERR_LEN])
{
    int rc = bnn_predict(&a->pr, ws, m, image, q->samples, q->seed, q->interval, q->mode, err);
    if (rc != BNN_OK)
        return rc;
    bnn_answer_finish(a, pol, digit_found, q->set_level);
    return BNN_OK;
}

int bnn_answer_gray(struct bnn_answer *a, struct bnn_workspace *ws, const struct bnn_model *m,
                    const struct bnn_policy *pol, const uint8_t *gray, size_t width, size_t height,
                    const struct bnn_question *q, char err[BNN_ERR_LEN])
{
    float image[BNN_MNIST_PIXELS];
    prep_canonical(image, &a->prep, gray, width, height);
    return bnn_answer_canonical(a, ws, m, pol, image, a->prep.verdict == PREP_DIGIT, q, err);
}
