/* probe.h - bnn-serve --probe: a plain-socket HTTP/1.0 GET with a short
 * timeout, so that a container health check needs no curl.
 *
 * Invariant: never waits longer than PROBE_TIMEOUT_MS per connect, send or
 * receive; only the status line is read.
 * Ownership: nothing is kept; the caller's buffers are borrowed for the call.
 */
#ifndef BNN_PROBE_H
#define BNN_PROBE_H

#define PROBE_TIMEOUT_MS 3000
#define PROBE_ERR_LEN 512

/* GETs url (http://host[:port]/path, host may be [IPv6]). Returns 0 with the
 * answer's HTTP status in *status, or -1 with err saying what failed
 * ("cannot connect to 127.0.0.1:9: Connection refused"). */
int probe_get(const char *url, int *status, char err[PROBE_ERR_LEN]);

#endif
