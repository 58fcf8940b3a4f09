/* predict_input.c - the parsed input of a prediction (predict.h): its
 * parameters with the configured defaults, and its images, which move in
 * here (a request parser hands over each one it decodes) and out into the
 * job. The one check that an image is not empty lives here.
 */
#include "predict.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"

void predict_params_init(struct predict_params *p, const struct cfg *c)
{
    memset(p, 0, sizeof *p);
    p->samples = c->default_samples;
    p->interval = c->default_interval;
    p->set_coverage = c->default_set_coverage;
    p->mode = BNN_MODE_LRT;
}

void predict_input_init(struct predict_input *in, const struct cfg *c, int batch)
{
    memset(in, 0, sizeof *in);
    predict_params_init(&in->params, c);
    in->batch = batch;
}

const char *predict_image_name(const struct predict_input *in, size_t i, char buf[PREDICT_NAME_LEN])
{
    if (!in->batch)
        return "image";
    snprintf(buf, PREDICT_NAME_LEN, "images[%zu]", i);
    return buf;
}

/* Room for one more image; frees owned (the image offered) on failure. */
static int input_grow(struct predict_input *in, void *owned, struct api_error *e)
{
    char name[PREDICT_NAME_LEN];
    if (in->n_images < in->cap_images)
        return 0;
    size_t cap = in->cap_images ? 2 * in->cap_images : 4;
    struct predict_image *images = bnn_fault_realloc(in->images, cap * sizeof *images);
    if (!images) {
        free(owned);
        return api_fail(e, API_E_INTERNAL, "%s: out of memory", predict_image_name(in, in->n_images, name));
    }
    in->images = images;
    in->cap_images = cap;
    return 0;
}

int predict_input_add_image(struct predict_input *in, uint8_t *png, size_t len, struct api_error *e)
{
    char name[PREDICT_NAME_LEN];
    if (len == 0) {
        free(png);
        return api_fail(e, API_E_INVALID_PNG, "%s: empty image", predict_image_name(in, in->n_images, name));
    }
    int rc = input_grow(in, png, e);
    if (rc == 0)
        in->images[in->n_images++] = (struct predict_image){.png = png, .len = len};
    return rc;
}

int predict_input_add_gray(struct predict_input *in, uint8_t *gray, size_t width, size_t height,
                           struct api_error *e)
{
    int rc = input_grow(in, gray, e);
    if (rc == 0)
        in->images[in->n_images++] = (struct predict_image){.gray = gray, .width = width, .height = height};
    return rc;
}

void predict_input_free(struct predict_input *in)
{
    if (!in)
        return;
    for (size_t i = 0; i < in->n_images; i++) {
        free(in->images[i].png);
        free(in->images[i].gray);
    }
    free(in->images);
    in->images = NULL;
    in->n_images = in->cap_images = 0;
}
