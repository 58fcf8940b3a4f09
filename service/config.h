/* config.h - the daemon's configuration: one table of keys (name, type,
 * bounds, default, help) read in order built-in defaults < file
 * (--config F, default config/bnn-serve.conf when present) < environment
 * (BNN_SERVE_<KEY upper-case>) < command-line flags (--key value, with '_'
 * written '-'). Read once at start-up into a struct cfg that is then
 * passed as const; nothing changes it while serving.
 */
#ifndef BNN_CONFIG_H
#define BNN_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#define CFG_ERR_LEN 256

struct cfg {
    char host[256];                   /* listen address, default 127.0.0.1 */
    unsigned port;                    /* 0..65535, default 8080; 0 = any free port */
    char model[1024];                 /* weights path, default model/weights/mnist-bnn.safetensors */
    char model_name[64];              /* the model's name in the Open Inference Protocol, default mnist-bnn */
    char web_root[1024];              /* static files for GET /, default service/web */
    unsigned workers;                 /* compute threads, 0 = number of CPUs */
    unsigned http_threads;            /* libmicrohttpd polling threads, default 1 */
    unsigned queue_depth;             /* requests in flight before 503, default 64 */
    unsigned queue_cost;              /* queued work in lrt passes before 503, default 1000000 */
    unsigned overload_status;         /* 503 (default) or 429 */
    unsigned retry_after;             /* seconds in Retry-After, default 1 */
    unsigned default_samples;         /* T when the request says nothing, default 100 */
    unsigned max_samples;             /* requests above get 400, default 10000 */
    unsigned max_samples_weights;     /* the same for mode=weights, default 1000 */
    unsigned weights_pass_cost;       /* a weights pass in lrt passes; 0 = measured (infer.h) */
    double default_interval;          /* coverage, default 0.95, in (0,1) */
    double uncertain_entropy;         /* flag above this entropy (nats); NAN = the model's calibrated value */
    double uncertain_epistemic;       /* flag above this epistemic part (nats); NAN = the model's */
    double default_set_coverage;      /* conformal prediction-set coverage when the request does not say */
    size_t max_body_bytes;            /* default 1 MiB */
    unsigned max_image_side;          /* width and height cap before decoding, default 4096 */
    unsigned max_batch;               /* images per /predict/batch, default 64 */
    unsigned connection_limit;        /* default 512 */
    unsigned per_ip_connection_limit; /* default 0 = none */
    unsigned connection_timeout;      /* seconds idle before close, default 30 */
    size_t connection_memory_limit;   /* bytes per connection, default 64 KiB */
    unsigned job_timeout_ms;          /* deadline from enqueue to result (wait and compute), default 30000 */
    unsigned drain_timeout;           /* seconds to finish in-flight work on SIGTERM, default 20 */
    char log_format[8];               /* text (default) or json */
    char log_level[16];               /* error, warn, info (default), debug */
    int access_log;                   /* 1 (default) = one line per request */
    char cors_origins[1024];          /* comma-separated allowed origins, default empty */
};

/* Fills c with the built-in defaults. */
void cfg_defaults(struct cfg *c);

/* Sets one key from its text form; returns 0, or -1 with err naming the key,
 * the value and the accepted range ("workers: expected 0..256, got 'x'"). */
int cfg_set(struct cfg *c, const char *key, const char *value, char err[CFG_ERR_LEN]);

/* Parses a config file text ("key = value", '#' comments, blank lines).
 * origin names the file in messages ("bnn-serve.conf:12: ..."). */
int cfg_parse_text(struct cfg *c, const char *text, size_t len, const char *origin, char err[CFG_ERR_LEN]);
int cfg_load_file(struct cfg *c, const char *path, char err[CFG_ERR_LEN]);

/* Applies BNN_SERVE_* from envp (NULL-terminated, like environ). */
int cfg_apply_env(struct cfg *c, char *const *envp, char err[CFG_ERR_LEN]);

/* Cross-key checks (default_samples <= max_samples, ...). */
int cfg_validate(const struct cfg *c, char err[CFG_ERR_LEN]);

/* Prints the effective configuration in config-file syntax. */
void cfg_print(const struct cfg *c, FILE *out);

/* Key table access for --help and flag parsing: number of keys, and name /
 * one-line help of key i (NULL past the end). */
size_t cfg_key_count(void);
const char *cfg_key_name(size_t i);
const char *cfg_key_help(size_t i);

#endif
