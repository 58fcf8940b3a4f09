/* probe.c - see probe.h. */
#include "probe.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct probe_url {
    char host[256], port[8], path[1024];
};

/* Copies n bytes of s into out (size cap) as a string; -1 when empty or too long. */
static int take(char *out, size_t cap, const char *s, size_t n)
{
    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

static int parse_url(struct probe_url *u, const char *url, char err[PROBE_ERR_LEN])
{
    snprintf(u->port, sizeof u->port, "80");
    snprintf(u->path, sizeof u->path, "/");
    if (strncmp(url, "http://", 7) != 0) {
        snprintf(err, PROBE_ERR_LEN, "expected http://host:port/path, got '%.400s'", url);
        return -1;
    }
    const char *p = url + 7;
    size_t n;
    int bad;
    if (*p == '[') { /* [IPv6]:port */
        n = strcspn(p + 1, "]");
        bad = p[1 + n] != ']' || take(u->host, sizeof u->host, p + 1, n) != 0;
        p += n + 2;
    } else {
        n = strcspn(p, ":/");
        bad = take(u->host, sizeof u->host, p, n) != 0;
        p += n;
    }
    if (bad) {
        snprintf(err, PROBE_ERR_LEN, "bad host in '%.400s'", url);
        return -1;
    }
    if (*p == ':') {
        n = strcspn(p + 1, "/");
        if (take(u->port, sizeof u->port, p + 1, n) != 0) {
            snprintf(err, PROBE_ERR_LEN, "bad port in '%.400s'", url);
            return -1;
        }
        p += n + 1;
    }
    if (*p == '/')
        snprintf(u->path, sizeof u->path, "%s", p);
    return 0;
}

/* A connected socket with send and receive timeouts, or -1 with err. */
static int connect_to(const struct probe_url *u, char err[PROBE_ERR_LEN])
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(u->host, u->port, &hints, &res);
    if (rc != 0) {
        snprintf(err, PROBE_ERR_LEN, "%s: %s", u->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    struct timeval tv = {PROBE_TIMEOUT_MS / 1000, (PROBE_TIMEOUT_MS % 1000) * 1000};
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0)
            continue;
        /* On Linux SO_SNDTIMEO also bounds connect(). */
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        snprintf(err, PROBE_ERR_LEN, "cannot connect to %s:%s: %s", u->host, u->port, strerror(errno));
    return fd;
}

int probe_get(const char *url, int *status, char err[PROBE_ERR_LEN])
{
    struct probe_url u;
    if (parse_url(&u, url, err) != 0)
        return -1;
    int fd = connect_to(&u, err);
    if (fd < 0)
        return -1;
    char req[1400];
    int len = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s:%s\r\nConnection: close\r\n\r\n", u.path,
                       u.host, u.port);
    char resp[64] = "";
    size_t got = 0;
    if (send(fd, req, (size_t)len, MSG_NOSIGNAL) == len) {
        while (got < sizeof resp - 1) {
            ssize_t k = recv(fd, resp + got, sizeof resp - 1 - got, 0);
            if (k <= 0)
                break;
            got += (size_t)k;
        }
    }
    close(fd);
    resp[got] = '\0';
    if (sscanf(resp, "HTTP/%*d.%*d %d", status) != 1) {
        snprintf(err, PROBE_ERR_LEN, "no HTTP answer from %.400s", url);
        return -1;
    }
    return 0;
}
