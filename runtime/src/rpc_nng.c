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
 * complete frame is posted to the server's loop (shoal_loop_post), so the call
 * machinery only ever runs on the loop's thread, as it does for shm://. Accepted
 * connections, and connections lost, reach the loop the same way. Sends are
 * synchronous, under a per-connection mutex, from whichever thread sends.
 *
 * Lifetime: a connection counts its references — the call machinery's, one per frame
 * posted and not yet delivered — and is freed when the last goes; closing it first
 * stops its reader (nng_aio_stop waits for a callback running).
 *
 * Access: the Unix socket file of an ipc:// listener is created mode 0600 (owner
 * only; shoal_attr.mode overrides).
 */
#include <stdlib.h>
#include <string.h>

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

static void n_stop(rpc_conn *base)
{
    atomic_store(&((nconn *)base)->stopped, 1);
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

/* Something for the loop's thread: a frame, a lost connection, a new connection. */
typedef struct posted {
    nconn *c;
    uint8_t *frame; /* NULL: the connection is lost */
    size_t len;
} posted;

static void deliver(shoal_loop *loop, void *arg)
{
    (void)loop;
    posted *p = arg;
    if (!atomic_load(&p->c->stopped)) {
        if (p->frame)
            rpc__server_frame(&p->c->base, p->frame, p->len);
        else
            rpc__server_conn_lost(&p->c->base); /* stops c; c stays while p holds it */
    }
    free(p->frame);
    conn_unref(p->c);
    free(p);
}

static void post(nconn *c, uint8_t *frame, size_t len)
{
    posted *p = malloc(sizeof(*p));
    if (!p) {
        free(frame);
        return;
    }
    *p = (posted){c, frame, len};
    atomic_fetch_add(&c->refs, 1);
    if (shoal_loop_post(c->loop, deliver, p) < 0) {
        atomic_fetch_sub(&c->refs, 1);
        free(frame);
        free(p);
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
        post(c, c->body, c->need);
        rx_reset(c);
    }
    if (rc < 0) {
        if (!atomic_load(&c->stopped))
            post(c, NULL, 0);
        return;
    }
    server_read(c);
}

typedef struct nlistener {
    rpc_listener base;
    shoal_rpc_server *s;
    nng_stream_listener *l;
    nng_aio *aio;
    char url[256];
    int closed; /* on the loop's thread */
    _Atomic int pending_posts;
} nlistener;

/* On the loop's thread: a new connection is adopted and starts reading. */
static void adopt(shoal_loop *loop, void *arg)
{
    (void)loop;
    posted *p = arg;
    nlistener *l = (nlistener *)p->frame;
    nconn *c = p->c;
    free(p);
    int closed = l->closed;
    if (atomic_fetch_sub(&l->pending_posts, 1) == 1 && closed)
        free(l); /* the last connection accepted before the listener closed */
    if (closed || rpc__server_conn_new(l->s, &c->base) < 0) {
        c->base.srv ? rpc__server_conn_lost(&c->base) : n_close(&c->base);
        return;
    }
    server_read(c);
}

static void accept_cb(void *arg)
{
    nlistener *l = arg;
    int rv = nng_aio_result(l->aio);
    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
        return;
    if (rv != 0) {
        nng_stream_listener_accept(l->l, l->aio); /* a failed accept: keep going */
        return;
    }
    nng_stream *st = nng_aio_get_output(l->aio, 0);
    nconn *c = conn_new(st, l->url, 1);
    posted *p = c ? malloc(sizeof(*p)) : NULL;
    if (!p) {
        if (c)
            n_close(&c->base);
        else
            nng_stream_free(st);
    } else {
        c->loop = rpc__server_loop(l->s);
        *p = (posted){c, (uint8_t *)l, 0};
        atomic_fetch_add(&l->pending_posts, 1);
        if (shoal_loop_post(c->loop, adopt, p) < 0) {
            atomic_fetch_sub(&l->pending_posts, 1);
            free(p);
            n_close(&c->base);
        }
    }
    nng_stream_listener_accept(l->l, l->aio);
}

static void n_listener_close(rpc_listener *base)
{
    nlistener *l = (nlistener *)base;
    l->closed = 1;
    nng_stream_listener_close(l->l);
    nng_aio_stop(l->aio); /* no accept_cb runs after this */
    nng_aio_free(l->aio);
    nng_stream_listener_free(l->l);
    if (atomic_load(&l->pending_posts) == 0)
        free(l); /* else the last adopt() frees it (or the loop, never run again, keeps
                    it) */
}

int rpc__nng_listen(shoal_rpc_server *s, const char *url, const shoal_attr *attr)
{
    if (strncmp(url, "tls+tcp://", 10) == 0)
        return shoal__err(SHOAL_EINVAL, "rpc %s: tls+tcp:// is not supported yet", url);
    nlistener *l = calloc(1, sizeof(*l));
    if (!l)
        return shoal__err(SHOAL_ENOMEM, "rpc %s: out of memory", url);
    snprintf(l->url, sizeof(l->url), "%s", url);
    l->s = s;
    int rv = nng_stream_listener_alloc(&l->l, url);
    if (rv != 0) {
        free(l);
        return nng_rc(rv, "bad address", url);
    }
    if (strncmp(url, "tcp://", 6) == 0)
        nng_stream_listener_set_bool(l->l, NNG_OPT_TCP_NODELAY, true);
    if (strncmp(url, "ipc://", 6) == 0)
        rv = nng_stream_listener_set_int(l->l, NNG_OPT_IPC_PERMISSIONS,
                                         attr && attr->mode ? (int)attr->mode : 0600);
    if (rv == 0)
        rv = nng_stream_listener_listen(l->l);
    if (rv == 0)
        rv = nng_aio_alloc(&l->aio, accept_cb, l);
    if (rv != 0) {
        nng_stream_listener_free(l->l);
        free(l);
        return nng_rc(rv, "cannot listen", url);
    }
    l->base.close = n_listener_close;
    rpc__server_add_listener(s, &l->base);
    nng_stream_listener_accept(l->l, l->aio);
    return 0;
}

#endif
