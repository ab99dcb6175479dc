/*
 * rpc_nng.c — the nng transports: ipc:///path and tcp://host:port.
 *
 * Each connection is one nng byte stream (nng_stream: a Unix socket or a TCP
 * connection) carrying frames, each a 4-byte big-endian length followed by one
 * shoal.rpc.Frame in the protobuf wire format (schemas/shoal/rpc.proto), so a peer
 * needs nothing of shoal but that schema. A frame longer than MAX_FRAME closes the
 * connection (a peer cannot make us allocate without bound).
 *
 * Receiving runs one small state machine (rx_*): read the 4 length bytes, then the
 * body, then hand the frame over. The client drives it with blocking reads (with the
 * caller's timeout; a read that times out keeps what it got for the next call). The
 * server drives it from nng's completion callbacks, which run on nng's threads: each
 * complete frame goes into its listener's inbox, and an eventfd watched by the
 * server's loop says the inbox is not empty, so the call machinery only ever runs on
 * the loop's thread, as it does for shm://. Accepted connections, and connections
 * lost, reach the loop the same way, in order. Sends are synchronous, under a
 * per-connection mutex, from whichever thread sends.
 *
 * Lifetime: a connection counts its references — the call machinery's, one per inbox
 * entry naming it — and is freed when the last goes. Stopping it (connection lost,
 * server shut down) closes the stream and waits for its reader's callback, so nothing
 * more is posted; a listener is closed after its connections were stopped and drops
 * what its inbox still holds.
 *
 * Access: the Unix socket file of an ipc:// listener is created mode 0600 (owner
 * only; shoal_attr.mode overrides).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "rpc_internal.h"

#ifndef SHOAL_HAVE_NNG

int rpc__nng_connect(rpc_conn **out, const char *url, const shoal_rpc_channel_config *cfg)
{
    (void)out, (void)cfg;
    return shoal__err(SHOAL_EINVAL, "rpc %s: this libshoal was built without nng", url);
}

int rpc__nng_listen(shoal_rpc_server *s, const char *url, const shoal_attr *attr)
{
    (void)s, (void)attr;
    return shoal__err(SHOAL_EINVAL, "rpc %s: this libshoal was built without nng", url);
}

#else

#include <nng/nng.h>

#define MAX_FRAME (64u << 20)

typedef struct nconn {
    rpc_conn base;
    nng_stream *st;
    pthread_mutex_t send_mu;
    nng_aio *send_aio;
    nng_aio *recv_aio;
    /* the receiver's state machine */
    uint8_t hdr[4];
    uint8_t *body;
    size_t need, have; /* of the part being read: header (need 4) or body */
    int in_body;
    /* server side */
    shoal_loop *loop;
    struct nlistener *listener;
    _Atomic int refs;
    _Atomic int stopped;
} nconn;

static int nng_rc(int rv, const char *what, const char *url)
{
    return shoal__err(rv == NNG_ENOMEM      ? SHOAL_ENOMEM
                      : rv == NNG_ETIMEDOUT ? SHOAL_ETIMEDOUT
                      : rv == NNG_EINVAL || rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP
                          ? SHOAL_EINVAL
                      : rv == NNG_EADDRINUSE                       ? SHOAL_EBUSY
                      : rv == NNG_ECONNREFUSED || rv == NNG_ENOENT ? SHOAL_ENOENT
                      : rv == NNG_EPERM                            ? SHOAL_EACCES
                                                                   : SHOAL_ESYS,
                      "rpc %s: %s: %s", url, what, nng_strerror(rv));
}

/* ---- receiving: the state machine -------------------------------------------------- */

/* Where the next read goes. */
static nng_iov rx_want(nconn *c)
{
    nng_iov iov = {c->in_body ? c->body + c->have : c->hdr + c->have, c->need - c->have};
    return iov;
}

/* Accounts `got` bytes read. Returns 1 when a frame is complete (c->body, c->need; the
 * caller takes c->body and calls rx_reset), 0 when more is needed, or a negative code
 * for a frame we refuse. */
static int rx_got(nconn *c, size_t got)
{
    c->have += got;
    if (c->have < c->need)
        return 0;
    if (c->in_body)
        return 1;
    uint32_t n = (uint32_t)c->hdr[0] << 24 | (uint32_t)c->hdr[1] << 16 |
                 (uint32_t)c->hdr[2] << 8 | c->hdr[3];
    if (n > MAX_FRAME)
        return shoal__err(SHOAL_EMSGSIZE, "rpc %s: a frame of %u bytes", c->base.peer, n);
    c->body = malloc(n ? n : 1);
    if (!c->body)
        return shoal__err(SHOAL_ENOMEM, "rpc %s: no memory for a frame", c->base.peer);
    c->in_body = 1;
    c->need = n;
    c->have = 0;
    return n == 0;
}

static void rx_reset(nconn *c)
{
    c->body = NULL;
    c->in_body = 0;
    c->need = 4;
    c->have = 0;
}

/* ---- the connection ---------------------------------------------------------------- */

static int n_send(rpc_conn *base, const void *buf, size_t len, shoal_duration timeout)
{
    nconn *c = (nconn *)base;
    if (len > MAX_FRAME)
        return shoal__err(SHOAL_EMSGSIZE, "rpc %s: a frame of %zu bytes", c->base.peer,
                          len);
    uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                      (uint8_t)len};
    pthread_mutex_lock(&c->send_mu);
    int rc = 0;
    size_t off = 0, total = len + 4;
    nng_aio_set_timeout(c->send_aio, timeout < 0 ? NNG_DURATION_INFINITE
                                                 : (nng_duration)(timeout / 1000000 + 1));
    while (off < total && rc == 0) {
        nng_iov iov[2];
        unsigned n = 0;
        if (off < 4)
            iov[n++] = (nng_iov){hdr + off, 4 - off};
        if (len)
            iov[n++] = (nng_iov){(uint8_t *)buf + (off > 4 ? off - 4 : 0),
                                 len - (off > 4 ? off - 4 : 0)};
        nng_aio_set_iov(c->send_aio, n, iov);
        nng_stream_send(c->st, c->send_aio);
        nng_aio_wait(c->send_aio);
        int rv = nng_aio_result(c->send_aio);
        if (rv == NNG_ETIMEDOUT)
            rc = shoal__err(SHOAL_ETIMEDOUT, "rpc %s: send timed out", c->base.peer);
        else if (rv != 0)
            rc = shoal__err(SHOAL_EPEERDEAD, "rpc %s: connection lost: %s", c->base.peer,
                            nng_strerror(rv));
        off += nng_aio_count(c->send_aio);
    }
    pthread_mutex_unlock(&c->send_mu);
    return rc;
}

/* Client side: blocking reads until a frame is complete or the timeout expires. */
static int n_recv(rpc_conn *base, const uint8_t **buf, size_t *len,
                  shoal_duration timeout)
{
    nconn *c = (nconn *)base;
    if (c->in_body && c->have == c->need) { /* the previous frame: done with it */
        free(c->body);
        rx_reset(c);
    }
    nng_aio_set_timeout(c->recv_aio, timeout < 0
                                         ? NNG_DURATION_INFINITE
                                         : (nng_duration)((timeout + 999999) / 1000000));
    for (;;) {
        nng_iov iov = rx_want(c);
        nng_aio_set_iov(c->recv_aio, 1, &iov);
        nng_stream_recv(c->st, c->recv_aio);
        nng_aio_wait(c->recv_aio);
        int rv = nng_aio_result(c->recv_aio);
        if (rv == NNG_ETIMEDOUT)
            return 0;
        if (rv != 0)
            return shoal__err(SHOAL_EPEERDEAD, "rpc %s: connection lost: %s",
                              c->base.peer, nng_strerror(rv));
        int rc = rx_got(c, nng_aio_count(c->recv_aio));
        if (rc < 0)
            return rc;
        if (rc == 1) {
            *buf = c->body;
            *len = c->need;
            return 1;
        }
    }
}

static void conn_unref(nconn *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    free(c->body);
    pthread_mutex_destroy(&c->send_mu);
    free(c);
}

/* Server side, on the loop's thread: no frame is delivered any more, and the reader
 * stops (nng_aio_stop waits for a callback running). */
static void n_stop(rpc_conn *base)
{
    nconn *c = (nconn *)base;
    atomic_store(&c->stopped, 1);
    nng_stream_close(c->st);
    nng_aio_stop(c->recv_aio);
}

static void n_close(rpc_conn *base)
{
    nconn *c = (nconn *)base;
    atomic_store(&c->stopped, 1);
    nng_stream_close(c->st);
    nng_aio_stop(c->recv_aio);
    nng_aio_stop(c->send_aio);
    nng_aio_free(c->recv_aio);
    nng_aio_free(c->send_aio);
    nng_stream_free(c->st);
    conn_unref(c);
}

static const rpc_conn_ops nng_ops = {n_send, n_recv, n_stop, n_close};

static void server_recv_cb(void *arg);

static nconn *conn_new(nng_stream *st, const char *url, int server)
{
    nconn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    if (nng_aio_alloc(&c->send_aio, NULL, NULL) != 0 ||
        nng_aio_alloc(&c->recv_aio, server ? server_recv_cb : NULL, c) != 0) {
        nng_aio_free(c->send_aio);
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->send_mu, NULL);
    c->st = st;
    c->base.ops = &nng_ops;
    c->base.t = c;
    snprintf(c->base.peer, sizeof(c->base.peer), "%s", url);
    atomic_init(&c->refs, 1);
    rx_reset(c);
    return c;
}

/* ---- client ------------------------------------------------------------------------ */

int rpc__nng_connect(rpc_conn **out, const char *url, const shoal_rpc_channel_config *cfg)
{
    if (strncmp(url, "tls+tcp://", 10) == 0)
        return shoal__err(SHOAL_EINVAL, "rpc %s: tls+tcp:// is not supported yet", url);
    nng_stream_dialer *d;
    nng_aio *aio;
    int rv = nng_stream_dialer_alloc(&d, url);
    if (rv != 0)
        return nng_rc(rv, "bad address", url);
    if (strncmp(url, "tcp://", 6) == 0) /* frames are small and sent whole: no Nagle */
        nng_stream_dialer_set_bool(d, NNG_OPT_TCP_NODELAY, true);
    if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
        nng_stream_dialer_free(d);
        return nng_rc(rv, "aio", url);
    }
    shoal_duration t =
        cfg && cfg->connect_timeout > 0 ? cfg->connect_timeout : SHOAL_SEC(2);
    nng_aio_set_timeout(aio, (nng_duration)(t / 1000000));
    nng_stream_dialer_dial(d, aio);
    nng_aio_wait(aio);
    rv = nng_aio_result(aio);
    nng_stream *st = rv == 0 ? nng_aio_get_output(aio, 0) : NULL;
    nng_aio_free(aio);
    nng_stream_dialer_free(d);
    if (rv != 0)
        return nng_rc(rv, "cannot connect", url);
    nconn *c = conn_new(st, url, 0);
    if (!c) {
        nng_stream_free(st);
        return shoal__err(SHOAL_ENOMEM, "rpc %s: out of memory", url);
    }
    *out = &c->base;
    return 0;
}

/* ---- server ------------------------------------------------------------------------ */

/* What nng's threads hand to the loop's thread, in order. */
typedef struct posted {
    struct posted *next;
    enum { P_ADOPT, P_FRAME, P_LOST } kind;
    nconn *c;
    uint8_t *frame;
    size_t len;
} posted;

typedef struct nlistener {
    rpc_listener base;
    shoal_rpc_server *s;
    nng_stream_listener *l;
    nng_aio *aio;
    char url[256];
    pthread_mutex_t mu; /* guards the inbox */
    posted *head, *tail;
    int efd; /* signalled when the inbox becomes non-empty */
    shoal_loop_source *src;
    int needs_auth; /* tcp://: connections answer the token challenge first */
} nlistener;

/* From nng's threads: queues p for the loop and signals the eventfd. */
static void post(nlistener *l, nconn *c, int kind, uint8_t *frame, size_t len)
{
    posted *p = malloc(sizeof(*p));
    if (!p) {
        free(frame);
        return;
    }
    *p = (posted){NULL, kind, c, frame, len};
    if (kind != P_ADOPT)
        atomic_fetch_add(&c->refs, 1);
    pthread_mutex_lock(&l->mu);
    int was_empty = !l->head;
    if (l->tail)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
    pthread_mutex_unlock(&l->mu);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t w = write(l->efd, &one, sizeof(one));
        (void)w; /* a full eventfd is still readable */
    }
}

static void server_read(nconn *c)
{
    nng_iov iov = rx_want(c);
    nng_aio_set_iov(c->recv_aio, 1, &iov);
    nng_stream_recv(c->st, c->recv_aio);
}

static void server_recv_cb(void *arg)
{
    nconn *c = arg;
    int rv = nng_aio_result(c->recv_aio);
    int rc = rv == 0 ? rx_got(c, nng_aio_count(c->recv_aio)) : -1;
    if (rc == 1) {
        post(c->listener, c, P_FRAME, c->body, c->need);
        rx_reset(c);
    }
    if (rc < 0) {
        if (!atomic_load(&c->stopped))
            post(c->listener, c, P_LOST, NULL, 0);
        return;
    }
    server_read(c);
}

/* On the loop's thread (or at close, with run = 0: dropped). */
static void handle(nlistener *l, posted *p, int run)
{
    nconn *c = p->c;
    if (p->kind == P_ADOPT) {
        if (!run)
            n_close(&c->base);
        else if (rpc__server_conn_new(l->s, &c->base) < 0)
            rpc__server_conn_lost(&c->base);
        else
            server_read(c);
    } else {
        if (run && !atomic_load(&c->stopped)) {
            if (p->kind == P_FRAME)
                rpc__server_frame(&c->base, p->frame, p->len);
            else
                rpc__server_conn_lost(&c->base);
        }
        conn_unref(c);
    }
    free(p->frame);
    free(p);
}

static void drain(nlistener *l, int run)
{
    pthread_mutex_lock(&l->mu);
    posted *p = l->head;
    l->head = l->tail = NULL;
    pthread_mutex_unlock(&l->mu);
    while (p) {
        posted *next = p->next;
        handle(l, p, run);
        p = next;
    }
}

static void on_inbox(shoal_loop *loop, shoal_loop_source *src, int events, void *arg)
{
    (void)loop, (void)src, (void)events;
    nlistener *l = arg;
    uint64_t n;
    ssize_t r = read(l->efd, &n, sizeof(n));
    (void)r;
    drain(l, 1);
}

static void accept_cb(void *arg)
{
    nlistener *l = arg;
    int rv = nng_aio_result(l->aio);
    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
        return;
    if (rv == 0) {
        nng_stream *st = nng_aio_get_output(l->aio, 0);
        nconn *c = conn_new(st, l->url, 1);
        if (c) {
            c->loop = rpc__server_loop(l->s);
            c->listener = l;
            c->base.needs_auth = l->needs_auth;
            post(l, c, P_ADOPT, NULL, 0);
        } else {
            nng_stream_free(st);
        }
    }
    nng_stream_listener_accept(l->l, l->aio);
}

/* Closed after the server's connections were stopped (no reader posts any more). */
static void n_listener_close(rpc_listener *base)
{
    nlistener *l = (nlistener *)base;
    nng_stream_listener_close(l->l);
    nng_aio_stop(l->aio); /* no accept_cb runs after this */
    shoal_loop_remove(rpc__server_loop(l->s), l->src);
    drain(l, 0);
    close(l->efd);
    nng_aio_free(l->aio);
    nng_stream_listener_free(l->l);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

int rpc__nng_listen(shoal_rpc_server *s, const char *url, const shoal_attr *attr)
{
    if (strncmp(url, "tls+tcp://", 10) == 0)
        return shoal__err(SHOAL_EINVAL, "rpc %s: tls+tcp:// is not supported yet", url);
    int tcp = strncmp(url, "tcp://", 6) == 0;
    if (tcp && !rpc__server_token(s))
        return shoal__err(SHOAL_EINVAL,
                          "rpc %s: tcp:// needs a token "
                          "(shoal_rpc_server_set_token)",
                          url);
    nlistener *l = calloc(1, sizeof(*l));
    if (!l)
        return shoal__err(SHOAL_ENOMEM, "rpc %s: out of memory", url);
    l->needs_auth = tcp;
    snprintf(l->url, sizeof(l->url), "%s", url);
    l->s = s;
    pthread_mutex_init(&l->mu, NULL);
    l->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->efd < 0) {
        free(l);
        return shoal__err(SHOAL_ESYS, "rpc %s: eventfd: %s", url, strerror(errno));
    }
    int rv = nng_stream_listener_alloc(&l->l, url);
    if (rv == 0 && strncmp(url, "tcp://", 6) == 0)
        nng_stream_listener_set_bool(l->l, NNG_OPT_TCP_NODELAY, true);
    if (rv == 0 && strncmp(url, "ipc://", 6) == 0)
        rv = nng_stream_listener_set_int(l->l, NNG_OPT_IPC_PERMISSIONS,
                                         attr && attr->mode ? (int)attr->mode : 0600);
    if (rv == 0)
        rv = nng_stream_listener_listen(l->l);
    if (rv == 0)
        rv = nng_aio_alloc(&l->aio, accept_cb, l);
    int rc = rv ? nng_rc(rv, "cannot listen", url)
                : shoal_loop_add_fd(rpc__server_loop(s), l->efd, SHOAL_LOOP_READABLE,
                                    on_inbox, l, &l->src);
    if (rc < 0) {
        nng_aio_free(l->aio);
        if (l->l)
            nng_stream_listener_free(l->l);
        close(l->efd);
        free(l);
        return rc;
    }
    l->base.close = n_listener_close;
    rpc__server_add_listener(s, &l->base);
    nng_stream_listener_accept(l->l, l->aio);
    return 0;
}

#endif
