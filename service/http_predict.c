/* http_predict.c - see http_predict.h. */
#include "http_predict.h"

#include <microhttpd.h>
#include <stdlib.h>

#include "api_request.h"
#include "api_response.h"
#include "predict.h"

/* libmicrohttpd's post processor buffer (bytes): a field arrives in pieces of at most this. */
#define POST_BUFFER 16384

struct http_predict {
    struct MHD_Connection *conn;
    struct predict_input in;      /* filled by rq, then moved into the job */
    struct api_request rq;        /* headers and body */
    struct MHD_PostProcessor *pp; /* multipart framing, else NULL */
    struct predict_job *job;
};

/* The query string's walk, with its own error slot. */
struct query_walk {
    struct predict_params *params;
    const struct cfg *cfg;
    struct api_error err;
};

static enum MHD_Result query_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct query_walk *w = cls;
    return api_param_set(w->params, w->cfg, key, value, &w->err) == 0 ? MHD_YES : MHD_NO;
}

static enum MHD_Result post_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                  const char *content_type, const char *transfer_encoding, const char *data,
                                  uint64_t off, size_t size)
{
    (void)kind, (void)filename, (void)content_type, (void)transfer_encoding;
    struct http_predict *p = cls;
    return api_request_field(&p->rq, key, off, data, size) == 0 ? MHD_YES : MHD_NO;
}

static const char *header(struct MHD_Connection *conn, const char *name)
{
    return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

unsigned http_predict_begin(struct http_request *r, int batch, struct http_response *out)
{
    const struct http_server *srv = r->srv;
    struct api_error e = {0};
    struct http_predict *p = calloc(1, sizeof *p);
    if (!p)
        return http_fail(srv, out, API_E_INTERNAL, "out of memory");
    r->predict = p;
    p->conn = r->conn;
    predict_input_init(&p->in, srv->cfg, batch);
    if (api_request_begin(&p->rq, &p->in, srv->cfg, header(r->conn, MHD_HTTP_HEADER_CONTENT_TYPE),
                          header(r->conn, MHD_HTTP_HEADER_CONTENT_LENGTH), &e) != 0)
        return http_error(srv, out, &e);
    /* Fast path: a full queue or a stopped pool is answered now, so that
     * the body is never read; predict_submit still has the last word. */
    if (predict_admit(srv->predict, &e) != 0)
        return http_error(srv, out, &e);
    struct query_walk w = {.params = &p->in.params, .cfg = srv->cfg};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_param, &w);
    if (w.err.code != API_OK)
        return http_error(srv, out, &w.err);
    if (p->rq.kind == API_BODY_MULTIPART) {
        p->pp = MHD_create_post_processor(r->conn, POST_BUFFER, post_field, p);
        if (!p->pp)
            return http_fail(srv, out, API_E_INVALID_REQUEST,
                             "multipart/form-data without a usable boundary");
    }
    return 0;
}

void http_predict_body(struct http_request *r, const char *data, size_t size)
{
    struct http_predict *p = r->predict;
    if (api_request_admit(&p->rq, size) != 0)
        return; /* over the cap, or failed before: read and dropped */
    if (!p->pp)
        api_request_append(&p->rq, data, size);
    else if (MHD_post_process(p->pp, data, size) != MHD_YES)
        api_request_malformed(&p->rq);
}

/* The job is done (on a worker, or at once when refused): the access
 * handler is called again and takes the answer. */
static void on_job_done(void *cls)
{
    struct http_predict *p = cls;
    MHD_resume_connection(p->conn);
}

unsigned http_predict_submit(struct http_request *r, struct http_response *out)
{
    struct http_server *srv = r->srv;
    struct http_predict *p = r->predict;
    struct api_error e = {0};
    if (api_request_finish(&p->rq, &e) != 0)
        return http_error(srv, out, &e);
    p->job = predict_job_new(srv->predict, &p->in, api_predict_body, NULL, on_job_done, p, r->request_id, &e);
    if (!p->job)
        return http_error(srv, out, &e);
    /* Counted before the job can possibly finish, uncounted on completion:
     * http_free waits for this to reach zero. */
    atomic_fetch_add(&srv->in_jobs, 1);
    r->had_job = 1;
    r->phase = HTTP_PH_QUEUED;
    /* Suspended before the job can possibly finish: resuming a connection
     * that is not suspended is undefined in libmicrohttpd. */
    MHD_suspend_connection(p->conn);
    predict_submit(p->job);
    return 0;
}

unsigned http_predict_answer(struct http_request *r, struct http_response *out)
{
    struct predict_answer a;
    if (!predict_job_answer(r->predict->job, &a))
        return 0; /* spurious: still running */
    if (!a.body)
        return http_fail(r->srv, out, API_E_INTERNAL, "out of memory encoding the response");
    out->body = a.body;
    out->len = a.len;
    out->content_type = "application/json";
    out->retry_after = api_code_retryable(a.code);
    return a.status;
}

unsigned http_predict_samples(const struct http_predict *p)
{
    return p ? predict_job_samples(p->job) : 0;
}

void http_predict_free(struct http_predict *p)
{
    if (!p)
        return;
    if (p->pp)
        MHD_destroy_post_processor(p->pp);
    api_request_free(&p->rq);
    predict_input_free(&p->in);
    predict_job_free(p->job);
    free(p);
}
