/*
 * rpc_server.c — servers: connections, dispatch of calls to handlers, deadlines.
 *
 * A server is driven by the caller's shoal_loop. Its transports (rpc_shm.c,
 * rpc_nng.c) accept connections and deliver each frame to rpc__server_frame() on the
 * loop's thread, and report a connection gone (peer closed, peer died) with
 * rpc__server_conn_lost(). A START frame makes a call (shoal_rpc_ctx) and starts its
 * handler:
 *
 *   - a unary call whose request came with START (the client's usual form) runs its
 *     handler at once on the loop's thread — no thread switch, no system call;
 *   - every other call (streams, blocking unary handlers) runs its handler off the
 *     loop's thread, where it may block in shoal_rpc_ctx_recv / _send: on a thread of
 *     its own, or, with a worker pool (shoal_rpc_server_set_workers), on one of the
 *     pool's threads — the call waits in a FIFO queue until a worker is free, and a
 *     worker that takes a call already ended (cancelled, deadline passed) while it
 *     waited only reports its end. s->threads counts the calls off the loop's thread
 *     (running or waiting); beyond the server's bound a call ends at once with
 *     RESOURCE_EXHAUSTED. Without a pool, threads of the caller's may serve the same
 *     queue (shoal_rpc_server_work: a binding's own threads, on which its callbacks
 *     are cheap): while one of them waits idle (ext_idle counts them, less the calls
 *     already queued for them), a call is queued for it instead of getting a thread.
 *
 * Frames for a running call (MESSAGE, HALF_CLOSE, WINDOW, CANCEL) update its rpc_call
 * under the server's mutex and wake its handler. Staged frames: the thread reading a
 * connection during a turn (below), or a handler's in direct receive for its own call,
 * takes a run of one call's requests (MESSAGE frames that do not end them) and WINDOW
 * frames without the lock — each request copied, the credit summed, on the
 * connection's stage (only that thread uses it) — and applies them in one hold of the
 * lock, before any other frame is dispatched and at the turn's (or the read's) end: a
 * client's burst of requests costs one hold, not one a request, and wakes its reader
 * once. A stream's response goes without the lock (ctx_send) once its headers went:
 * the call's credit is taken atomically (credit and done change atomically; what
 * adds credit does so under the lock and wakes the senders waiting there). The call
 * ends (rpc_call.done) on the
 * first of: the handler returning (TRAILERS with its code), the client's CANCEL, the
 * deadline (a loop timer armed for the earliest deadline; TRAILERS with
 * DEADLINE_EXCEEDED), an invalid request (INVALID_ARGUMENT), the connection lost.
 * The call's memory stays until its handler has returned; a connection's, until its
 * last call is freed. Nothing a client sends is trusted: an undecodable frame, an
 * unknown method or call number, a frame of the wrong type, a second START — each is
 * answered with a status or dropped and counted, never acted upon.
 *
 * Direct receive (shoal_rpc_ctx_set_direct): waking a handler thread from the loop's
 * costs a thread hand-off per request. A streaming handler that opts in reads its
 * connection itself instead, while its call is the connection's only one and the
 * transport can give the connection back (rpc_conn_ops.watch: shm://, ipc://, tcp://).
 * After a turn of frames the loop hands such a connection over (rpc__server_handoff: it
 * stops watching it, sc->owner = the call); from then on the handler's thread, whenever
 * it would wait for its call (recv, or send waiting for the client's window), receives
 * frames itself — spinning, then sleeping on the pipe, so the client's next request
 * wakes it directly — and dispatches them exactly as the loop does
 * (rpc__server_frame; its own requests wake nobody, as it is the one thread that takes
 * them, and whether it still owns the connection is checked in the same hold of the
 * server's lock). It keeps the connection between two receives. It gives it back
 * (give_back: the connection goes on s->rewatch and an eventfd tells the loop, which
 * watches it again) when its handler returns, when a frame of another call arrives
 * (after dispatching it, so the loop never reads while the frame's buffer is in use),
 * or when direct receive is turned off. Only the owner's thread reads or gives back
 * (current_ctx), so at every instant exactly one thread reads the connection. The
 * owner's receive notices a dead client as the loop would, and wakes at least every
 * SLICE and at the call's deadline to see its call ended by a cancel or the timer.
 * While the owner has a further request queued, or says a further response follows
 * (shoal_rpc_ctx_send_more), its responses go through rpc__send_later, and so do its
 * window frames always: a transport with
 * rpc_conn.send_later writes them together once the owner's receive finds nothing more
 * to read, with the next frame sent (the response to the last request at hand), or
 * when the connection is given back.
 *
 * Inline receive (shoal_rpc_ctx_set_inline): a streaming handler whose work per
 * request is short gives a function instead, and whichever thread reads the
 * connection — the loop's, or an owner's in direct receive for another call — runs it
 * for each request, as a unary handler runs on the loop's thread: one thread then
 * serves any number of busy connections, where direct receive needs a thread per
 * connection. rpc__server_frame queues the request as usual; the thread that finds
 * no function running (msg_busy) runs it for the inbox until that is empty, taking
 * the requests queued together and letting the lock go once for them, so requests
 * reach it in order and one at a time (whether the call ended, or the function was
 * turned off, is read atomically before each; the window's credit for them is
 * counted after them). A transport
 * that reads a turn of frames at once (shm://: a batch message) brackets it with
 * rpc__server_turn_begin / _end, and the function runs at the turn's end for the
 * requests the turn brought, in a row: each knows whether more are at hand. The inbox's
 * arrivals wake nobody then (rpc_call.quiet), nor do WINDOW frames unless a sender
 * waits for credit; the handler's thread waits in its receive for the end of the
 * call (and for the function to return: the handler's memory stays while it runs), or
 * for the function to turn inline receive off (SHOAL_EAGAIN). A connection whose
 * transport writes a batch's responses together (rpc_conn.send_later) is not offered
 * it, unless the loop's turns write their responses together too
 * (rpc_conn.turn_batches: shm://, tcp://): its handler in direct receive does better.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "rpc_internal.h"

#define SLICE        SHOAL_MS(50)
#define SEND_TIMEOUT SHOAL_SEC(5)

struct rpc_server_conn {
    shoal_rpc_server *s;
    rpc_conn *c;
    struct shoal_rpc_ctx *calls;
    int lost;
    int authed; /* the client answered the challenge (or none was needed) */
    uint8_t challenge[RPC_CHALLENGE_LEN];
    struct rpc_server_conn *next, *prev;
    /* direct receive: the call whose handler thread reads the connection (the loop
     * does not watch it meanwhile), and whether it must give it back */
    struct shoal_rpc_ctx *owner;
    int give_back;
    int rewatching; /* on the server's list of connections for the loop to watch */
    int in_turn;    /* rpc__server_turn_begin: inline receive waits for turn_end */
    struct rpc_server_conn *rewatch_next;
    /* the staged frames (see the top): those of call st_call taken without the lock by
     * the thread reading the connection, for stage_apply; only that thread uses them,
     * as it does in_turn */
    uint64_t st_call;
    rpc_msg *st_head, *st_tail; /* the messages' copies */
    unsigned st_msgs, st_frames;
    uint32_t st_credit; /* what the WINDOW frames among them returned */
};

struct shoal_rpc_ctx {
    rpc_call c;
    pthread_cond_t cv;
    struct rpc_server_conn *sc;
    struct shoal_rpc_ctx *next, *prev;
    const shoal_rpc_service *svc;
    char *method;
    shoal_rpc_md md, headers, trailers;
    int headers_sent;
    int on_thread;
    int direct;              /* shoal_rpc_ctx_set_direct */
    shoal_rpc_msg_fn on_msg; /* shoal_rpc_ctx_set_inline (NULL: off); set_on_msg */
    void *on_msg_arg;
    int msg_busy;    /* a thread runs on_msg for the inbox's messages */
    int msg_stopped; /* on_msg turned inline receive off: recv says so once */
    struct shoal_rpc_ctx *job_next; /* in the pool's queue */
    rpc_msg *response;              /* unary / client streaming: sent with the trailers */
    char *detail; /* shoal_rpc_ctx_set_detail's (SHOAL_RPC_DETAIL_MAX bytes), or NULL */
    size_t name_cap; /* the room for name */
    char name[];     /* the method's full name: method points here */
};

struct shoal_rpc_server {
    shoal_loop *loop;
    pthread_mutex_t mu;
    pthread_cond_t idle;
    unsigned threads;   /* calls off the loop's thread: running or waiting for a worker */
    unsigned max_calls; /* bound on threads (0: none) */
    /* the worker pool (n_workers 0: a thread per call) */
    unsigned n_workers;
    pthread_t *workers;
    struct shoal_rpc_ctx *jobs, *jobs_tail;
    pthread_cond_t work;
    /* the caller's threads serving the queue (shoal_rpc_server_work): reserved or
     * running, and idle ones not yet given a call */
    unsigned ext_workers, ext_idle;
    int stopping;
    const shoal_rpc_service **svcs;
    size_t n_svcs;
    struct rpc_server_conn *conns;
    struct shoal_rpc_ctx *spare; /* the last call's memory, for the next one */
    rpc_listener *listeners;
    shoal_loop_source *timer;
    int64_t timer_at;
    uint64_t bad_frames;
    /* connections given back by a handler thread, for the loop to watch again: the
     * loop learns of them by rewatch_fd (an eventfd) */
    struct rpc_server_conn *rewatch;
    int rewatch_fd;
    shoal_loop_source *rewatch_src;
    char *token;
    rpc_tls tls;
    int has_tls;
    shoal_rpc_service reflection;
    rpc_descriptors *descs;
    size_t n_descs;
};

void rpc__server_lock(shoal_rpc_server *s)
{
    pthread_mutex_lock(&s->mu);
}

void rpc__server_unlock(shoal_rpc_server *s)
{
    pthread_mutex_unlock(&s->mu);
}

const shoal_rpc_service *const *rpc__server_services(shoal_rpc_server *s, size_t *n)
{
    *n = s->n_svcs;
    return s->svcs;
}

const rpc_descriptors *rpc__server_descriptors(shoal_rpc_server *s, size_t *n)
{
    *n = s->n_descs;
    return s->descs;
}

int shoal_rpc_server_add_descriptors(shoal_rpc_server *s, const void *set, size_t len)
{
    if (!s || (!set && len) || rpc__descriptors_check(set, len) < 0)
        return shoal__err(SHOAL_EINVAL, "rpc server: NULL, or not a FileDescriptorSet "
                                        "(a sequence of field-1 entries)");
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    size_t i = 0;
    while (i < s->n_descs && s->descs[i].set != set)
        i++;
    if (i == s->n_descs) { /* not registered yet */
        rpc_descriptors *d = realloc(s->descs, (s->n_descs + 1) * sizeof(*d));
        if (d) {
            d[s->n_descs++] = (rpc_descriptors){set, len};
            s->descs = d;
        } else {
            rc = shoal__err(SHOAL_ENOMEM, "rpc server: out of memory");
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

const char *rpc__server_token(shoal_rpc_server *s)
{
    return s->token;
}

int shoal_rpc_server_set_token(shoal_rpc_server *s, const char *token)
{
    if (!s || !token || strlen(token) < 8)
        return shoal__err(SHOAL_EINVAL,
                          "rpc server: a token needs at least 8 characters");
    char *t = strdup(token);
    if (!t)
        return shoal__err(SHOAL_ENOMEM, "rpc server: out of memory");
    free(s->token);
    s->token = t;
    return 0;
}

const rpc_tls *rpc__server_tls(shoal_rpc_server *s)
{
    return s->has_tls ? &s->tls : NULL;
}

static void tls_clear(rpc_tls *t)
{
    free(t->cert_file);
    free(t->key_file);
    free(t->ca_file);
    *t = (rpc_tls){0};
}

int shoal_rpc_server_set_tls(shoal_rpc_server *s, const char *cert_file,
                             const char *key_file, const char *ca_file,
                             int require_client_cert)
{
    if (!s || !cert_file || !key_file)
        return shoal__err(SHOAL_EINVAL,
                          "rpc server: TLS needs a certificate file and a key file");
    if (require_client_cert && !ca_file)
        return shoal__err(SHOAL_EINVAL,
                          "rpc server: requiring client certificates needs a CA file "
                          "to check them against");
    rpc_tls t = {strdup(cert_file), strdup(key_file), ca_file ? strdup(ca_file) : NULL,
                 require_client_cert != 0};
    if (!t.cert_file || !t.key_file || (ca_file && !t.ca_file)) {
        tls_clear(&t);
        return shoal__err(SHOAL_ENOMEM, "rpc server: out of memory");
    }
    tls_clear(&s->tls);
    s->tls = t;
    s->has_tls = 1;
    return 0;
}

static void *worker(void *arg);

int shoal_rpc_server_set_workers(shoal_rpc_server *s, unsigned workers,
                                 unsigned max_calls)
{
    if (!s || workers > 4096)
        return shoal__err(SHOAL_EINVAL, "rpc server: NULL, or over 4096 workers");
    pthread_mutex_lock(&s->mu);
    int busy = s->n_workers || s->threads || s->conns || s->ext_workers;
    pthread_mutex_unlock(&s->mu);
    if (busy)
        return shoal__err(SHOAL_EINVAL,
                          "rpc server: workers are set once, before any connection");
    pthread_t *t = workers ? calloc(workers, sizeof(*t)) : NULL;
    if (workers && !t)
        return shoal__err(SHOAL_ENOMEM, "rpc server: out of memory");
    for (unsigned i = 0; i < workers; i++) {
        if (pthread_create(&t[i], NULL, worker, s) == 0)
            continue;
        pthread_mutex_lock(&s->mu); /* undo: stop the ones started */
        s->stopping = 1;
        pthread_cond_broadcast(&s->work);
        pthread_mutex_unlock(&s->mu);
        while (i--)
            pthread_join(t[i], NULL);
        free(t);
        s->stopping = 0;
        return shoal__err(SHOAL_ESYS, "rpc server: cannot start worker threads");
    }
    pthread_mutex_lock(&s->mu);
    s->workers = t;
    s->n_workers = workers;
    s->max_calls = max_calls;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

shoal_loop *rpc__server_loop(shoal_rpc_server *s)
{
    return s->loop;
}

void rpc__server_add_listener(shoal_rpc_server *s, rpc_listener *l)
{
    l->next = s->listeners;
    s->listeners = l;
}

/* ---- ending calls ------------------------------------------------------------------ */

/* Sends the response headers if there are some and they were not sent (mu held). */
static int send_headers(struct shoal_rpc_ctx *x)
{
    if (x->headers_sent)
        return 0;
    __atomic_store_n(&x->headers_sent, 1, __ATOMIC_RELAXED); /* read by ctx_send */
    if (!x->headers.count)
        return 0;
    rpc_frame f = {.call = x->c.id, .type = RPC_F_HEADERS};
    return rpc__send(x->c.conn, &f, &x->headers, SEND_TIMEOUT);
}

/* Ends the call with a status and tells the client (mu held). */
static void finish(struct shoal_rpc_ctx *x, int code, const char *detail)
{
    if (x->c.done)
        return;
    size_t detail_len = strlen(detail);
    rpc__call_end_str(&x->c, code, detail, detail_len);
    if (x->sc->lost)
        return;
    send_headers(x);
    rpc_frame f = {.call = x->c.id,
                   .type = RPC_F_TRAILERS,
                   .code = (uint32_t)code,
                   .detail = detail,
                   .detail_len = detail_len};
    if (code == SHOAL_RPC_OK && x->response) { /* the single response rides along */
        f.payload = x->response->data;
        f.payload_len = x->response->len;
        f.has_payload = 1;
    }
    if (rpc__send(x->c.conn, &f, &x->trailers, SEND_TIMEOUT) == SHOAL_EMSGSIZE) {
        static const char *big = "the response is larger than the transport carries";
        rpc_frame e = {.call = x->c.id,
                       .type = RPC_F_TRAILERS,
                       .code = SHOAL_RPC_RESOURCE_EXHAUSTED,
                       .detail = big,
                       .detail_len = strlen(big)};
        x->c.code = SHOAL_RPC_RESOURCE_EXHAUSTED;
        rpc__send(x->c.conn, &e, NULL, SEND_TIMEOUT);
    }
}

static void msgs_free(rpc_msg *m)
{
    while (m) {
        rpc_msg *next = m->next;
        rpc__msg_free(m);
        m = next;
    }
}

static void conn_free(struct rpc_server_conn *sc)
{
    sc->c->ops->close(sc->c);
    msgs_free(sc->st_head); /* none: a turn and an owner's read apply theirs */
    free(sc);
}

/* A call's memory for a method name of len bytes: the server's spare if it fits,
 * else a new block (mu held). Cleared but for the call's detail (rpc__call_init clears
 * that); small enough for the allocator's fast path. */
#define NAME_ROOM 64
static struct shoal_rpc_ctx *ctx_new(shoal_rpc_server *s, size_t len)
{
    struct shoal_rpc_ctx *x = s->spare;
    if (x && x->name_cap > len) {
        s->spare = NULL;
    } else {
        size_t cap = len < NAME_ROOM ? NAME_ROOM : len + 1;
        if (!(x = malloc(sizeof(*x) + cap)))
            return NULL;
        pthread_cond_init(&x->cv, NULL);
        x->name_cap = cap;
    }
    memset(&x->sc, 0,
           offsetof(struct shoal_rpc_ctx, name_cap) - offsetof(struct shoal_rpc_ctx, sc));
    return x;
}

/* Frees what the call holds, keeping the block. */
static void ctx_clear(struct shoal_rpc_ctx *x)
{
    rpc__call_drain(&x->c);
    rpc__msg_free(x->response);
    shoal_rpc_md_clear(&x->md);
    shoal_rpc_md_clear(&x->headers);
    shoal_rpc_md_clear(&x->trailers);
    free(x->detail);
}

static void ctx_free_block(struct shoal_rpc_ctx *x)
{
    if (!x)
        return;
    pthread_cond_destroy(&x->cv);
    free(x);
}

/* ---- direct receive ---------------------------------------------------------------- */

/* The handler running on this thread (NULL: none): the only thread that reads a
 * connection its call owns. */
static __thread struct shoal_rpc_ctx *current_ctx;

/* The owner's thread gives the connection back to the loop (mu held): it reads it no
 * more, and the loop watches it again on its next turn (on_rewatch), unless it is
 * lost. */
static void give_back(struct rpc_server_conn *sc)
{
    shoal_rpc_server *s = sc->s;
    __atomic_store_n(&sc->owner, NULL, __ATOMIC_RELAXED); /* owns_unlocked */
    sc->give_back = 0;
    if (sc->lost || sc->rewatching)
        return;
    sc->rewatching = 1;
    sc->rewatch_next = s->rewatch;
    s->rewatch = sc;
    uint64_t one = 1;
    if (write(s->rewatch_fd, &one, sizeof(one)) < 0) {
        /* the counter is full: the loop has a wake-up pending already */
    }
}

/* Takes sc off the list of connections to watch again (mu held). */
static void rewatch_unlink(struct rpc_server_conn *sc)
{
    if (!sc->rewatching)
        return;
    struct rpc_server_conn **p = &sc->s->rewatch;
    while (*p != sc)
        p = &(*p)->rewatch_next;
    *p = sc->rewatch_next;
    sc->rewatching = 0;
}

/* On the loop's thread: watches the connections given back. */
static void on_rewatch(shoal_loop *loop, shoal_loop_source *src, int events, void *arg)
{
    (void)loop, (void)src, (void)events;
    shoal_rpc_server *s = arg;
    uint64_t n;
    if (read(s->rewatch_fd, &n, sizeof(n)) < 0) {
        /* nothing to read: another turn took the count */
    }
    for (;;) {
        pthread_mutex_lock(&s->mu);
        struct rpc_server_conn *sc = s->rewatch;
        if (sc) {
            s->rewatch = sc->rewatch_next;
            sc->rewatching = 0;
        }
        pthread_mutex_unlock(&s->mu);
        if (!sc)
            return;
        /* not lost meanwhile: only this thread loses a connection nobody reads */
        if (sc->c->ops->watch(sc->c) < 0)
            rpc__server_conn_lost(sc->c);
    }
}

int rpc__server_handoff(rpc_conn *c)
{
    struct rpc_server_conn *sc = c->srv;
    pthread_mutex_lock(&sc->s->mu);
    struct shoal_rpc_ctx *x = sc->calls;
    int take = x && !x->next && x->direct && x->on_thread && !x->c.done && !sc->lost &&
               !sc->owner && c->ops->watch;
    if (take) {
        if (c->ops->unwatch)
            c->ops->unwatch(c);
        else
            c->ops->stop(c);
        __atomic_store_n(&sc->owner, x, __ATOMIC_RELEASE); /* owns_unlocked */
        pthread_cond_broadcast(&x->cv); /* a handler waiting for a frame reads now */
    }
    pthread_mutex_unlock(&sc->s->mu);
    return take;
}

static int still_owns(struct shoal_rpc_ctx *x);
static int server_frame(rpc_conn *c, const uint8_t *buf, size_t len,
                        struct shoal_rpc_ctx *owner);
static void stage_apply(struct rpc_server_conn *sc, struct shoal_rpc_ctx *owner);

/* The owner's thread reads its connection: waits up to `wait` for a frame, then
 * dispatches it and those already there, as the loop would (mu held on entry and
 * return); its own requests are staged, and join its inbox in the hold of the lock
 * that ends the read. A frame of another call, or the direct mode turned off, makes it
 * give the connection back; a failed receive loses the connection. */
static void own_read(struct shoal_rpc_ctx *x, shoal_duration wait)
{
    struct rpc_server_conn *sc = x->sc;
    shoal_rpc_server *s = sc->s;
    rpc_conn *c = sc->c;
    const uint8_t *buf;
    size_t len;
    int rc, n = 0, owned = 1;
    pthread_mutex_unlock(&s->mu);
    do {
        rc = c->ops->recv(c, &buf, &len, n ? SHOAL_NOWAIT : wait);
        if (rc != 1)
            break;
        owned = server_frame(c, buf, len, x);
        if (owned < 0) {
            pthread_mutex_lock(&s->mu);
            owned = still_owns(x);
            pthread_mutex_unlock(&s->mu);
        }
    } while (owned && ++n < 64);
    pthread_mutex_lock(&s->mu);
    if (sc->owner == x) { /* else the stage was applied as it gave the connection up */
        stage_apply(sc, x);
        still_owns(x);
    }
    if (rc < 0) {
        pthread_mutex_unlock(&s->mu);
        rpc__server_conn_lost(c);
        pthread_mutex_lock(&s->mu);
    }
}

/* Whether this thread reads x's connection (mu held). */
static int owns(const struct shoal_rpc_ctx *x)
{
    return x->sc->owner == x && current_ctx == x;
}

/* owns() without the lock: only this thread (x's) lets the connection go, and while it
 * reads it only this thread changes x's inbox, so that it may read the inbox's head
 * then too (what the loop queued before handing the connection over included:
 * rpc__server_handoff stores the owner with release). */
static int owns_unlocked(const struct shoal_rpc_ctx *x)
{
    return current_ctx == x && __atomic_load_n(&x->sc->owner, __ATOMIC_ACQUIRE) == x;
}

/* ---- inline receive ---------------------------------------------------------------- */

/* Whether x's function is to run for a further request: it is on and the call not
 * over. Read without the lock too (run_inline): both are stored atomically. */
static int inline_on(struct shoal_rpc_ctx *x)
{
    return __atomic_load_n(&x->on_msg, __ATOMIC_RELAXED) &&
           !__atomic_load_n(&x->c.done, __ATOMIC_RELAXED);
}

static void set_on_msg(struct shoal_rpc_ctx *x, shoal_rpc_msg_fn fn)
{
    __atomic_store_n(&x->on_msg, fn, __ATOMIC_RELAXED);
}

/* Puts the messages m (linked by next), taken off c's inbox and not consumed, back at
 * its head (mu held). */
static void inbox_unshift(rpc_call *c, rpc_msg *m)
{
    if (!m)
        return;
    rpc_msg *last = m;
    while (last->next)
        last = last->next;
    last->next = c->head;
    c->head = m;
    if (!c->tail)
        c->tail = last;
}

/* Gives the inbox's requests to the call's function, in order, until it is empty, the
 * call ends or the function turns inline receive off (mu held on entry and return;
 * the caller set msg_busy: this thread is the only one running the function). The
 * requests queued are taken together and run with the lock let go once for them (each
 * knows whether another follows: `more`); before each, whether the call ended or the
 * function was turned off is read without the lock (inline_on). Those not run go back
 * to the inbox's head, and the window's credit for the ones run is counted after them
 * (rpc__call_consumed) and returned before the next ones run or on the way out. */
static void run_inline(struct shoal_rpc_ctx *x)
{
    uint32_t credit = 0;
    for (;;) {
        rpc_msg *m = inline_on(x) ? x->c.head : NULL;
        if (!m && !credit)
            break;
        x->c.head = m ? NULL : x->c.head;
        x->c.tail = m ? NULL : x->c.tail;
        shoal_rpc_msg_fn fn = x->on_msg;
        void *arg = x->on_msg_arg;
        pthread_mutex_unlock(x->c.mu);
        if (credit)
            rpc__send_simple(x->c.conn, x->c.id, RPC_F_WINDOW, credit);
        unsigned n = 0;
        int stop = 0, bad = 0;
        for (; m && !stop && inline_on(x); n++) {
            if (x->c.m->check_request && x->c.m->check_request(m->data, m->len) != 0) {
                bad = 1;
                break;
            }
            rpc_msg *next = m->next;
            void *msg;
            size_t len;
            rpc__msg_hand_out(m, &msg, &len);
            stop = fn(x, msg, len, next != NULL, arg);
            m = next;
        }
        pthread_mutex_lock(x->c.mu);
        if (bad) { /* the call ends; the requests after it stay queued, unread */
            rpc_msg *b = m;
            m = m->next;
            rpc__msg_free(b);
            n++;
            finish(x, SHOAL_RPC_INVALID_ARGUMENT, "invalid request");
        }
        inbox_unshift(&x->c, m);
        credit = n ? rpc__call_consumed(&x->c, n) : 0;
        if (stop) {
            set_on_msg(x, NULL);
            x->msg_stopped = 1;
        }
    }
    x->msg_busy = 0;
    x->c.quiet = x->on_msg != NULL;
    if (!x->on_msg || x->c.peer_done) /* the handler's thread has work, or it ends */
        pthread_cond_broadcast(&x->cv);
}

/* After a frame for x (mu held): whether this thread is to run x's function for the
 * request it brought (msg_busy then set). */
static int inline_due(struct shoal_rpc_ctx *x)
{
    if (!x || !x->on_msg || x->msg_busy || !x->c.head || x->c.done)
        return 0;
    x->msg_busy = 1;
    return 1;
}

/* The handler returned: report its status, forget the call, and close the connection
 * if it was lost and this was its last call. */
static void handler_done(struct shoal_rpc_ctx *x, int code)
{
    shoal_rpc_server *s = x->sc->s;
    struct rpc_server_conn *sc = x->sc;
    pthread_mutex_lock(&s->mu);
    set_on_msg(x, NULL); /* and the memory stays until a function running returned */
    while (x->msg_busy)
        pthread_cond_wait(&x->cv, &s->mu);
    if (code < 0 || code > SHOAL_RPC_UNAUTHENTICATED)
        code = SHOAL_RPC_UNKNOWN;
    if (code == SHOAL_RPC_OK && x->c.sent == 0 &&
        (x->c.m->kind == SHOAL_RPC_UNARY || x->c.m->kind == SHOAL_RPC_CLIENT_STREAMING))
        finish(x, SHOAL_RPC_INTERNAL, "the handler returned OK without a response");
    else
        finish(x, code, x->detail ? x->detail : "");
    if (sc->owner == x)
        give_back(sc);
    RPC_UNLINK(sc->calls, x);
    int close_conn = sc->lost && !sc->calls;
    if (x->on_thread && --s->threads == 0)
        pthread_cond_broadcast(&s->idle);
    ctx_clear(x);
    if (!s->spare) { /* kept for the next call */
        s->spare = x;
        x = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    ctx_free_block(x);
    if (close_conn)
        conn_free(sc);
}

static void run_handler(struct shoal_rpc_ctx *x)
{
    int64_t outer = rpc__inherited_deadline();
    struct shoal_rpc_ctx *outer_ctx = current_ctx; /* a unary handler inside own_read */
    rpc__set_current_deadline(x->c.deadline);
    current_ctx = x;
    int code = x->c.m->handler(x, x->svc->arg);
    current_ctx = outer_ctx;
    rpc__set_current_deadline(outer);
    handler_done(x, code);
}

static void *handler_thread(void *arg)
{
    run_handler(arg);
    return NULL;
}

/* Runs the queued calls' handlers, in order, until the server stops: a thread of the
 * pool, or (external) one of the caller's, counted idle while it waits. */
static void serve_jobs(shoal_rpc_server *s, int external)
{
    pthread_mutex_lock(&s->mu);
    for (;;) {
        s->ext_idle += (unsigned)external;
        while (!s->jobs && !s->stopping)
            pthread_cond_wait(&s->work, &s->mu);
        struct shoal_rpc_ctx *x = s->jobs;
        if (!x) {
            s->ext_idle -= (unsigned)external;
            break;
        }
        s->jobs = x->job_next;
        if (!s->jobs)
            s->jobs_tail = NULL;
        int ended = x->c.done; /* cancelled or out of time while it waited */
        pthread_mutex_unlock(&s->mu);
        if (ended)
            handler_done(x, x->c.code);
        else
            run_handler(x);
        pthread_mutex_lock(&s->mu);
    }
    if (external) {
        s->ext_workers--;
        pthread_cond_broadcast(&s->idle);
    }
    pthread_mutex_unlock(&s->mu);
}

static void *worker(void *arg)
{
    serve_jobs(arg, 0);
    return NULL;
}

int shoal_rpc_server_reserve_workers(shoal_rpc_server *s, unsigned n)
{
    if (!s)
        return shoal__err(SHOAL_EINVAL, "rpc server: NULL");
    pthread_mutex_lock(&s->mu);
    int bad = s->n_workers || s->stopping;
    if (!bad)
        s->ext_workers += n;
    pthread_mutex_unlock(&s->mu);
    return bad ? shoal__err(SHOAL_EINVAL, "rpc server: it has a worker pool of its own")
               : 0;
}

void shoal_rpc_server_work(shoal_rpc_server *s)
{
    if (s)
        serve_jobs(s, 1);
}

/* Hands call x to a thread: the pool's queue or a new thread (mu held). Returns 0 or
 * a negative code (the bound reached, no thread), with x not handed over. */
static int offload(shoal_rpc_server *s, struct shoal_rpc_ctx *x)
{
    if (s->max_calls && s->threads >= s->max_calls)
        return shoal__err(SHOAL_EAGAIN,
                          "server: %u calls already running or waiting (the server's "
                          "bound)",
                          s->threads);
    x->on_thread = 1;
    s->threads++;
    if (s->n_workers || s->ext_idle) {
        if (!s->n_workers)
            s->ext_idle--; /* that idle thread of the caller's is this call's */
        x->job_next = NULL;
        if (s->jobs_tail)
            s->jobs_tail->job_next = x;
        else
            s->jobs = x;
        s->jobs_tail = x;
        pthread_cond_signal(&s->work);
        return 0;
    }
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, handler_thread, x);
    pthread_attr_destroy(&attr);
    if (rc == 0)
        return 0;
    s->threads--;
    x->on_thread = 0;
    return shoal__err(SHOAL_ESYS, "server: no thread for the handler");
}

/* ---- deadlines --------------------------------------------------------------------- */

static void arm_timer(shoal_rpc_server *s, int64_t at)
{
    if (at >= s->timer_at)
        return;
    s->timer_at = at;
    int64_t after = at - shoal__now_ns();
    shoal_loop_timer_set(s->loop, s->timer, after > 0 ? after : 0, 0);
}

static void on_timer(shoal_loop *loop, shoal_loop_source *src, int events, void *arg)
{
    (void)loop, (void)src, (void)events;
    shoal_rpc_server *s = arg;
    pthread_mutex_lock(&s->mu);
    int64_t now = shoal__now_ns(), next = INT64_MAX;
    for (struct rpc_server_conn *sc = s->conns; sc; sc = sc->next)
        for (struct shoal_rpc_ctx *x = sc->calls; x; x = x->next) {
            if (x->c.done || x->c.deadline == INT64_MAX)
                continue;
            if (x->c.deadline <= now)
                finish(x, SHOAL_RPC_DEADLINE_EXCEEDED, "deadline exceeded");
            else if (x->c.deadline < next)
                next = x->c.deadline;
        }
    s->timer_at = INT64_MAX;
    if (next != INT64_MAX)
        arm_timer(s, next);
    pthread_mutex_unlock(&s->mu);
}

/* ---- frames from clients ----------------------------------------------------------- */

static const shoal_rpc_method *lookup(shoal_rpc_server *s, const char *name, size_t len,
                                      const shoal_rpc_service **svc)
{
    for (size_t i = 0; i < s->n_svcs; i++) {
        size_t n = strlen(s->svcs[i]->name);
        if (len <= n + 1 || memcmp(name, s->svcs[i]->name, n) != 0 || name[n] != '/')
            continue;
        for (size_t j = 0; j < s->svcs[i]->n_methods; j++) {
            const shoal_rpc_method *m = &s->svcs[i]->methods[j];
            if (strlen(m->name) == len - n - 1 &&
                memcmp(m->name, name + n + 1, len - n - 1) == 0) {
                *svc = s->svcs[i];
                return m;
            }
        }
    }
    return NULL;
}

static struct shoal_rpc_ctx *find_call(struct rpc_server_conn *sc, uint64_t id)
{
    for (struct shoal_rpc_ctx *x = sc->calls; x; x = x->next)
        if (x->c.id == id)
            return x;
    return NULL;
}

static void reply_status(rpc_conn *c, uint64_t id, int code, const char *detail)
{
    rpc_frame f = {.call = id,
                   .type = RPC_F_TRAILERS,
                   .code = (uint32_t)code,
                   .detail = detail,
                   .detail_len = strlen(detail)};
    rpc__send(c, &f, NULL, SEND_TIMEOUT);
}

/* START: makes the call (mu held). Returns it when its handler must be started. */
static struct shoal_rpc_ctx *start_call(struct rpc_server_conn *sc, const rpc_frame *f,
                                        shoal_rpc_md *md)
{
    shoal_rpc_server *s = sc->s;
    const shoal_rpc_service *svc = NULL;
    const shoal_rpc_method *m =
        lookup(s, f->method ? f->method : "", f->method_len, &svc);
    if (!m || !m->handler) {
        char detail[300];
        snprintf(detail, sizeof(detail), "unknown method \"%.*s\"",
                 (int)(f->method_len > 200 ? 200 : f->method_len),
                 f->method ? f->method : "");
        reply_status(sc->c, f->call, SHOAL_RPC_UNIMPLEMENTED, detail);
        return NULL;
    }
    struct shoal_rpc_ctx *x = ctx_new(s, f->method_len);
    if (!x) {
        reply_status(sc->c, f->call, SHOAL_RPC_RESOURCE_EXHAUSTED,
                     "server out of memory");
        return NULL;
    }
    memcpy(x->name, f->method, f->method_len);
    x->name[f->method_len] = 0;
    char *name = x->name;
    int64_t deadline = f->timeout_ns > 0 && f->timeout_ns < INT64_MAX / 2
                           ? shoal__now_ns() + f->timeout_ns
                           : INT64_MAX;
    rpc__call_init(&x->c, &s->mu, &x->cv, sc->c, f->call, m, deadline,
                   rpc__peer_window(sc->c, f->credit));
    x->sc = sc;
    x->svc = svc;
    x->method = name;
    x->md = *md;
    *md = (shoal_rpc_md){0};
    RPC_LINK(sc->calls, x);
    if (f->has_payload)
        rpc__call_push(&x->c, f->payload, f->payload_len);
    if (f->flags & RPC_FLAG_END)
        x->c.peer_done = 1;
    if (deadline != INT64_MAX)
        arm_timer(s, deadline);
    return x;
}

/* The first frame of a connection that must answer the challenge: the token's proof
 * when the server has a token, and a verified TLS client certificate when the
 * listener requires one (the handshake is over once a frame arrived). */
static void authenticate(struct rpc_server_conn *sc, const uint8_t *buf, size_t len)
{
    rpc_frame f;
    rpc_conn *c = sc->c;
    const char *token = sc->s->token;
    const char *why = NULL;
    if (rpc__frame_decode(buf, len, &f, NULL) < 0 || f.type != RPC_F_AUTH)
        why = "the connection did not answer the challenge";
    else if (c->needs_cert && !(c->ops->peer_verified && c->ops->peer_verified(c)))
        why = "no valid client certificate";
    else if (token && !rpc__auth_check(token, sc->challenge, f.payload, f.payload_len))
        why = "missing or wrong token";
    if (!why) {
        sc->authed = 1;
        rpc_frame ok = {.type = RPC_F_ACCEPT, .credit = (uint32_t)rpc__own_window(c)};
        if (rpc__send(c, &ok, NULL, SEND_TIMEOUT) == 0)
            return;
    } else {
        reply_status(c, 0, SHOAL_RPC_UNAUTHENTICATED, why);
    }
    rpc__server_conn_lost(c);
}

/* Whether owner x reads its connection on (mu held): gives it back when a frame of
 * another call came or direct receive was turned off. */
static int still_owns(struct shoal_rpc_ctx *x)
{
    struct rpc_server_conn *sc = x->sc;
    if (sc->give_back || !x->direct)
        give_back(sc);
    return sc->owner == x;
}

/* Stages frame f when the thread reading the connection may take it without the lock
 * (see the top): in a turn, or as the owner for its own call, a MESSAGE with a payload
 * that does not end the requests, or a WINDOW frame, of the call whose frames are
 * staged (or of any, when none is). Returns 1 when it did. */
static int stage(struct rpc_server_conn *sc, const rpc_frame *f,
                 const struct shoal_rpc_ctx *owner)
{
    int msg = f->type == RPC_F_MESSAGE && f->has_payload && !(f->flags & RPC_FLAG_END);
    if ((!msg && (f->type != RPC_F_WINDOW || f->credit > RPC_WINDOW_MAX)) ||
        (owner ? f->call != owner->c.id : !sc->in_turn) ||
        (sc->st_frames && f->call != sc->st_call))
        return 0;
    if (msg) {
        rpc_msg *m = rpc__msg_new(f->payload, f->payload_len);
        if (!m)
            return 0; /* the frame's dispatch says so */
        if (sc->st_tail)
            sc->st_tail->next = m;
        else
            sc->st_head = m;
        sc->st_tail = m;
        sc->st_msgs++;
    } else {
        sc->st_credit += f->credit;
    }
    sc->st_call = f->call;
    sc->st_frames++;
    return 1;
}

/* Applies the staged frames (mu held) as rpc__call_frame would have one by one: the
 * messages join their call's inbox (dropped after its end), the credit its window;
 * frames of no call are counted bad. owner: the call whose thread staged them in direct
 * receive (the one thread that takes its requests: they wake nobody). */
static void stage_apply(struct rpc_server_conn *sc, struct shoal_rpc_ctx *owner)
{
    if (!sc->st_frames)
        return;
    struct shoal_rpc_ctx *x = find_call(sc, sc->st_call);
    rpc_msg *drop = sc->st_head;
    if (!x) {
        sc->s->bad_frames += sc->st_frames;
    } else {
        if (drop && !x->c.peer_done) {
            int quiet = x->c.quiet;
            x->c.quiet = quiet || x == owner;
            rpc__call_append(&x->c, drop, sc->st_tail, sc->st_msgs);
            x->c.quiet = quiet;
            drop = NULL;
        }
        __atomic_fetch_add(&x->c.credit, (int)sc->st_credit, __ATOMIC_RELAXED);
        if (sc->st_credit && (!x->c.quiet || x->c.credit_wait))
            pthread_cond_broadcast(x->c.cv);
    }
    msgs_free(drop);
    sc->st_head = sc->st_tail = NULL;
    sc->st_msgs = sc->st_frames = 0;
    sc->st_credit = 0;
}

/* Dispatches a frame; owner: the call whose thread read it in direct receive (NULL:
 * the loop did). Returns, for an owner, whether it reads on (still_owns, checked in
 * the same hold of the lock; 1 for a frame staged, which changes nothing of that), or
 * -1 when the frame ran what may change that (a unary handler; the first frame): the
 * owner asks again. */
static int server_frame(rpc_conn *c, const uint8_t *buf, size_t len,
                        struct shoal_rpc_ctx *owner)
{
    struct rpc_server_conn *sc = c->srv;
    shoal_rpc_server *s = sc->s;
    if (!sc->authed) {
        authenticate(sc, buf, len);
        return -1;
    }
    rpc_frame f;
    shoal_rpc_md md = {0};
    struct shoal_rpc_ctx *start = NULL;
    int rc = rpc__frame_decode(buf, len, &f, &md);
    if (rc == 0 && stage(sc, &f, owner)) {
        if (md.items) /* a MESSAGE's metadata means nothing */
            shoal_rpc_md_clear(&md);
        return 1;
    }
    pthread_mutex_lock(&s->mu);
    stage_apply(sc, owner); /* first: the frames before this one */
    struct shoal_rpc_ctx *x = rc == 0 ? find_call(sc, f.call) : NULL;
    if (rc < 0)
        s->bad_frames++;
    else if (f.type == RPC_F_START && !x)
        start = start_call(sc, &f, &md);
    else if (x && f.type == RPC_F_CANCEL)
        rpc__call_end(&x->c, SHOAL_RPC_CANCELLED, "cancelled by the client");
    else if (x && x == owner && f.type == RPC_F_MESSAGE && !x->c.quiet) {
        x->c.quiet = 1; /* the one thread that receives it is this one: wake nobody */
        rpc__call_frame(&x->c, &f);
        x->c.quiet = 0;
    } else if (!x || !rpc__call_frame(&x->c, &f))
        s->bad_frames++; /* a frame of no call, or of a type clients do not send */
    if (sc->owner && (!x || x != sc->owner))
        sc->give_back = 1; /* not the owner's alone any more: the loop reads it */
    int inline_run = start && start->c.m->kind == SHOAL_RPC_UNARY &&
                     !start->c.m->blocking && start->c.peer_done;
    if (start && !inline_run && offload(s, start) < 0) {
        char why[SHOAL_RPC_DETAIL_MAX];
        snprintf(why, sizeof(why), "%s", shoal_errdetail());
        finish(start, SHOAL_RPC_RESOURCE_EXHAUSTED, why);
        pthread_mutex_unlock(&s->mu);
        handler_done(start, SHOAL_RPC_RESOURCE_EXHAUSTED);
        shoal_rpc_md_clear(&md);
        return -1;
    }
    if (!sc->in_turn && inline_due(x))
        run_inline(x);
    int owned = owner && !inline_run ? still_owns(owner) : -1;
    pthread_mutex_unlock(&s->mu);
    shoal_rpc_md_clear(&md);
    if (inline_run)
        run_handler(start);
    return owned;
}

void rpc__server_frame(rpc_conn *c, const uint8_t *buf, size_t len)
{
    server_frame(c, buf, len, NULL);
}

void rpc__server_turn_begin(rpc_conn *c)
{
    c->srv->in_turn = 1; /* only the thread reading c looks at it */
}

void rpc__server_turn_end(rpc_conn *c)
{
    struct rpc_server_conn *sc = c->srv;
    pthread_mutex_lock(&sc->s->mu);
    sc->in_turn = 0;
    stage_apply(sc, NULL);
    /* run_inline lets go of the lock meanwhile; x stays linked while it runs
     * (handler_done waits for msg_busy), so x->next is read with the lock held */
    for (struct shoal_rpc_ctx *x = sc->calls; x; x = x->next)
        if (inline_due(x))
            run_inline(x);
    pthread_mutex_unlock(&sc->s->mu);
}

/* ---- connections ------------------------------------------------------------------- */

int rpc__server_conn_new(shoal_rpc_server *s, rpc_conn *c)
{
    struct rpc_server_conn *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return shoal__err(SHOAL_ENOMEM, "rpc server: out of memory");
    sc->s = s;
    sc->c = c;
    c->srv = sc;
    pthread_mutex_lock(&s->mu);
    RPC_LINK(s->conns, sc);
    pthread_mutex_unlock(&s->mu);
    rpc_frame f = {.type = RPC_F_ACCEPT, .credit = (uint32_t)rpc__own_window(c)};
    sc->authed = !c->needs_auth;
    if (c->needs_auth) { /* token and/or client certificate: see authenticate() */
        int rc = rpc__auth_challenge(sc->challenge);
        if (rc < 0)
            return rc;
        f.payload = sc->challenge;
        f.payload_len = RPC_CHALLENGE_LEN;
        f.has_payload = 1;
    }
    return rpc__send(c, &f, NULL, SEND_TIMEOUT);
}

void rpc__server_conn_lost(rpc_conn *c)
{
    struct rpc_server_conn *sc = c->srv;
    shoal_rpc_server *s = sc->s;
    pthread_mutex_lock(&s->mu);
    int again = sc->lost, owned = sc->owner != NULL;
    pthread_mutex_unlock(&s->mu);
    if (again) /* its owner's receive and the server's end may both find it gone */
        return;
    if (!owned) /* else the loop does not watch it */
        c->ops->stop(c);
    pthread_mutex_lock(&s->mu);
    if (sc->lost) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    sc->lost = 1;
    rewatch_unlink(sc);
    for (struct shoal_rpc_ctx *x = sc->calls; x; x = x->next)
        rpc__call_end(&x->c, SHOAL_RPC_CANCELLED, "the client went away");
    RPC_UNLINK(s->conns, sc);
    int close_now = !sc->calls;
    pthread_mutex_unlock(&s->mu);
    if (close_now)
        conn_free(sc);
}

/* ---- public: the server ------------------------------------------------------------ */

int shoal_rpc_server_create(shoal_rpc_server **out, shoal_loop *loop)
{
    if (!out || !loop)
        return shoal__err(SHOAL_EINVAL, "rpc server: NULL argument");
    shoal_rpc_server *s = calloc(1, sizeof(*s));
    if (!s)
        return shoal__err(SHOAL_ENOMEM, "rpc server: out of memory");
    int rc = shoal_loop_add_timer(loop, SHOAL_SEC(3600), 0, on_timer, s, &s->timer);
    if (rc < 0) {
        free(s);
        return rc;
    }
    shoal_loop_timer_set(loop, s->timer, -1, 0);
    s->loop = loop;
    s->timer_at = INT64_MAX;
    s->rewatch_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->rewatch_fd < 0 || shoal_loop_add_fd(loop, s->rewatch_fd, SHOAL_LOOP_READABLE,
                                               on_rewatch, s, &s->rewatch_src) < 0) {
        if (s->rewatch_fd >= 0)
            close(s->rewatch_fd);
        shoal_loop_remove(loop, s->timer);
        free(s);
        return shoal__err(SHOAL_ESYS, "rpc server: no eventfd for its loop");
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    pthread_cond_init(&s->work, NULL);
    rc = shoal_rpc_server_add_service(s, rpc__reflection_service(&s->reflection, s));
    if (rc < 0) {
        shoal_rpc_server_destroy(s);
        return rc;
    }
    *out = s;
    return 0;
}

int shoal_rpc_server_add_service(shoal_rpc_server *s, const shoal_rpc_service *svc)
{
    if (!s || !svc || !svc->name || (!svc->methods && svc->n_methods))
        return shoal__err(SHOAL_EINVAL, "rpc server: NULL service");
    for (size_t i = 0; i < svc->n_methods; i++)
        if (!svc->methods[i].name || svc->methods[i].kind < 0 || svc->methods[i].kind > 3)
            return shoal__err(SHOAL_EINVAL,
                              "rpc service %s: method %zu has no name or a "
                              "bad kind",
                              svc->name, i);
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    for (size_t i = 0; i < s->n_svcs && rc == 0; i++)
        if (strcmp(s->svcs[i]->name, svc->name) == 0)
            rc =
                shoal__err(SHOAL_EEXIST, "rpc server: service %s added twice", svc->name);
    const shoal_rpc_service **v =
        rc ? NULL : realloc(s->svcs, (s->n_svcs + 1) * sizeof(*v));
    if (!rc && !v)
        rc = shoal__err(SHOAL_ENOMEM, "rpc server: out of memory");
    if (!rc) {
        v[s->n_svcs++] = svc;
        s->svcs = v;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int shoal_rpc_server_listen(shoal_rpc_server *s, const char *address,
                            const shoal_attr *attr)
{
    if (!s || !address)
        return shoal__err(SHOAL_EINVAL, "rpc server: NULL argument");
    if (strncmp(address, "shm://", 6) == 0)
        return rpc__shm_listen(s, address + 6, attr);
    if (strncmp(address, "ipc://", 6) == 0 || strncmp(address, "tcp://", 6) == 0 ||
        strncmp(address, "tls+tcp://", 10) == 0)
        return rpc__nng_listen(s, address, attr);
    return shoal__err(SHOAL_EINVAL,
                      "rpc address \"%s\": expected shm://name, ipc:///path, "
                      "tcp://host:port or tls+tcp://host:port",
                      address);
}

int shoal_rpc_server_wait_idle(shoal_rpc_server *s, shoal_duration timeout)
{
    if (!s)
        return shoal__err(SHOAL_EINVAL, "rpc server: NULL argument");
    int64_t deadline = timeout < 0 ? INT64_MAX : shoal__now_ns() + timeout;
    pthread_mutex_lock(&s->mu);
    while (s->threads > 0 && shoal__now_ns() < deadline)
        rpc__cond_wait(&s->idle, &s->mu, rpc__until(deadline, SLICE));
    unsigned left = s->threads;
    pthread_mutex_unlock(&s->mu);
    return left ? shoal__err(SHOAL_ETIMEDOUT, "rpc server: %u calls still running", left)
                : 0;
}

void shoal_rpc_server_destroy(shoal_rpc_server *s)
{
    if (!s)
        return;
    while (s->conns) /* first: their readers stop, so listeners get nothing more */
        rpc__server_conn_lost(s->conns->c);
    while (s->listeners) {
        rpc_listener *l = s->listeners;
        s->listeners = l->next;
        l->close(l);
    }
    pthread_mutex_lock(&s->mu);
    while (s->threads > 0)
        pthread_cond_wait(&s->idle, &s->mu);
    s->stopping = 1;
    pthread_cond_broadcast(&s->work);
    while (s->ext_workers) /* the caller's threads, reserved ones included, leave */
        pthread_cond_wait(&s->idle, &s->mu);
    pthread_mutex_unlock(&s->mu);
    for (unsigned i = 0; i < s->n_workers; i++)
        pthread_join(s->workers[i], NULL);
    free(s->workers);
    shoal_loop_remove(s->loop, s->timer);
    shoal_loop_remove(s->loop, s->rewatch_src);
    close(s->rewatch_fd);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->idle);
    pthread_cond_destroy(&s->work);
    ctx_free_block(s->spare);
    free(s->svcs);
    free(s->descs);
    free(s->token);
    tls_clear(&s->tls);
    free(s);
}

/* ---- public: inside a handler ------------------------------------------------------ */

/* Waits on the call's condition for at most a slice, ending the call at its deadline
 * (mu held). */
static void ctx_wait(struct shoal_rpc_ctx *x)
{
    if (shoal__now_ns() >= x->c.deadline) {
        finish(x, SHOAL_RPC_DEADLINE_EXCEEDED, "deadline exceeded");
        return;
    }
    if (owns(x))
        own_read(x, rpc__until(x->c.deadline, SLICE));
    else
        rpc__cond_wait(&x->cv, x->c.mu, rpc__until(x->c.deadline, SLICE));
}

/* Whether shoal_rpc_ctx_recv waits (mu held): for a request, the end of the requests
 * or of the call; in inline receive, for the end only, and until the function has
 * returned. */
static int recv_waits(const struct shoal_rpc_ctx *x)
{
    if (x->msg_busy)
        return 1;
    if (x->c.done || x->c.peer_done || x->msg_stopped)
        return 0;
    return x->on_msg || !x->c.head;
}

int shoal_rpc_ctx_recv(shoal_rpc_ctx *x, void **msg, size_t *len)
{
    if (!x || !msg || !len)
        return shoal__err(SHOAL_EINVAL, "rpc ctx: NULL argument");
    pthread_mutex_lock(x->c.mu);
    while (recv_waits(x))
        ctx_wait(x);
    rpc_msg *m = NULL;
    uint32_t credit = 0;
    int stopped = x->msg_stopped;
    x->msg_stopped = 0;
    int rc = x->c.done ? shoal__err(SHOAL_ECLOSED, "rpc %s: %s", x->method, x->c.detail)
             : stopped ? shoal__err(SHOAL_EAGAIN, "rpc %s: inline receive turned off",
                                    x->method)
                       : rpc__call_pop(&x->c, &m, &credit);
    if (rc == 1 && x->c.m->check_request && x->c.m->check_request(m->data, m->len) != 0) {
        finish(x, SHOAL_RPC_INVALID_ARGUMENT, "invalid request");
        rc = shoal__err(SHOAL_EINVALID_DATA, "rpc %s: invalid request", x->method);
        rpc__msg_free(m);
    }
    if (credit) /* later: with the response to come (see rpc_conn.send_later) */
        rpc__send_simple_later(x->c.conn, x->c.id, RPC_F_WINDOW, credit, owns(x));
    pthread_mutex_unlock(x->c.mu);
    return rc == 1 ? rpc__msg_hand_out(m, msg, len) : rc;
}

/* Takes one of the call's credits, if it has one: 1, else 0. The credit is changed
 * atomically, so that a stream's send needs no lock (ctx_send); what adds to it does
 * so under mu too, and wakes the senders waiting for it there. */
static int take_credit(rpc_call *c)
{
    int credit = __atomic_load_n(&c->credit, __ATOMIC_RELAXED);
    while (credit > 0)
        if (__atomic_compare_exchange_n(&c->credit, &credit, credit - 1, 1,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return 1;
    return 0;
}

/* A single-response method's response: kept for the trailers frame, which ends the
 * call. */
static int ctx_send_single(struct shoal_rpc_ctx *x, const void *msg, size_t len)
{
    pthread_mutex_lock(x->c.mu);
    rpc_msg *m = NULL;
    int rc = x->c.sent   ? shoal__err(SHOAL_EINVAL,
                                      "rpc %s: a second response to a single-response "
                                        "method",
                                      x->method)
             : x->c.done ? shoal__err(SHOAL_ECLOSED, "rpc %s: %s", x->method, x->c.detail)
             : !(m = rpc__msg_new(msg, len))
                 ? shoal__err(SHOAL_ENOMEM, "rpc %s: out of memory", x->method)
                 : 0;
    if (rc == 0) {
        x->response = m;
        x->c.sent = 1;
    }
    pthread_mutex_unlock(x->c.mu);
    return rc;
}

/* A stream's response waiting for the headers or the client's window, or the call
 * over (mu held): 0 with a credit taken, or SHOAL_ECLOSED. */
static int ctx_send_wait(struct shoal_rpc_ctx *x)
{
    if (!x->c.done && send_headers(x) < 0)
        finish(x, SHOAL_RPC_UNAVAILABLE, "connection lost");
    x->c.credit_wait++;
    while (!x->c.done && !take_credit(&x->c))
        ctx_wait(x);
    x->c.credit_wait--;
    return x->c.done ? shoal__err(SHOAL_ECLOSED, "rpc %s: %s", x->method, x->c.detail)
                     : 0;
}

/* shoal_rpc_ctx_send; more: shoal_rpc_ctx_send_more. A stream's response whose
 * headers went, on a call not over and with credit, takes no lock: the credit is taken
 * atomically (take_credit), the call's end read so (a call ending meanwhile is one
 * that ends just after the send, as when the send had taken the lock), and whether
 * this thread reads the connection (direct receive) too: owns_unlocked. */
static int ctx_send(shoal_rpc_ctx *x, const void *msg, size_t len, int more)
{
    if (!x || (!msg && len))
        return shoal__err(SHOAL_EINVAL, "rpc ctx: NULL argument");
    if (x->c.m->kind == SHOAL_RPC_UNARY || x->c.m->kind == SHOAL_RPC_CLIENT_STREAMING)
        return ctx_send_single(x, msg, len);
    if (!__atomic_load_n(&x->headers_sent, __ATOMIC_RELAXED) ||
        __atomic_load_n(&x->c.done, __ATOMIC_RELAXED) || !take_credit(&x->c)) {
        pthread_mutex_lock(x->c.mu);
        int rc = ctx_send_wait(x);
        pthread_mutex_unlock(x->c.mu);
        if (rc < 0)
            return rc;
    }
    /* this thread reads the connection and has a further request or response at
     * hand: the response goes out with the next ones (rpc_conn.send_later) */
    int later = owns_unlocked(x) && (x->c.head || more);
    rpc_frame f = {.call = x->c.id,
                   .type = RPC_F_MESSAGE,
                   .payload = msg,
                   .payload_len = len,
                   .has_payload = 1};
    shoal_duration t = x->c.deadline == INT64_MAX
                           ? SEND_TIMEOUT
                           : rpc__until(x->c.deadline, SEND_TIMEOUT);
    int rc = later ? rpc__send_later(x->c.conn, &f, NULL, t)
                   : rpc__send(x->c.conn, &f, NULL, t);
    if (rc == SHOAL_EMSGSIZE || rc == 0)
        return rc;
    return shoal__err(SHOAL_ECLOSED, "rpc %s: could not send: %s", x->method,
                      shoal_strerror(rc));
}

int shoal_rpc_ctx_send(shoal_rpc_ctx *x, const void *msg, size_t len)
{
    return ctx_send(x, msg, len, 0);
}

int shoal_rpc_ctx_send_more(shoal_rpc_ctx *x, const void *msg, size_t len)
{
    return ctx_send(x, msg, len, 1);
}

shoal_duration shoal_rpc_ctx_time_remaining(const shoal_rpc_ctx *x)
{
    if (!x || x->c.deadline == INT64_MAX)
        return SHOAL_FOREVER;
    return rpc__until(x->c.deadline, INT64_MAX);
}

int shoal_rpc_ctx_cancelled(const shoal_rpc_ctx *cx)
{
    if (!cx)
        return 1;
    struct shoal_rpc_ctx *x = (struct shoal_rpc_ctx *)cx; /* may end the call */
    pthread_mutex_lock(x->c.mu);
    if (!x->c.done && shoal__now_ns() >= x->c.deadline)
        finish(x, SHOAL_RPC_DEADLINE_EXCEEDED, "deadline exceeded");
    int done = x->c.done;
    pthread_mutex_unlock(x->c.mu);
    return done;
}

int shoal_rpc_ctx_send_room(const shoal_rpc_ctx *cx)
{
    if (!cx)
        return 0;
    struct shoal_rpc_ctx *x = (struct shoal_rpc_ctx *)cx;
    /* without the lock: both change atomically (see ctx_send) */
    int credit = __atomic_load_n(&x->c.credit, __ATOMIC_RELAXED);
    return __atomic_load_n(&x->c.done, __ATOMIC_RELAXED) ? SHOAL_RPC_WINDOW
           : credit > 0                                  ? credit
                                                         : 0;
}

int shoal_rpc_ctx_send_ready(const shoal_rpc_ctx *cx)
{
    return shoal_rpc_ctx_send_room(cx) > 0;
}

int shoal_rpc_ctx_recv_ready(const shoal_rpc_ctx *cx)
{
    if (!cx)
        return 1;
    struct shoal_rpc_ctx *x = (struct shoal_rpc_ctx *)cx;
    if (owns_unlocked(x) && x->c.head)
        return 1;
    pthread_mutex_lock(x->c.mu);
    if (!x->c.head && !x->c.peer_done && !x->c.done && owns(x))
        own_read(x, SHOAL_NOWAIT); /* what the client sent is in the connection still */
    int ready = x->c.head || x->c.peer_done || x->c.done;
    pthread_mutex_unlock(x->c.mu);
    return ready;
}

int shoal_rpc_ctx_set_direct(shoal_rpc_ctx *x, int on)
{
    if (!x || current_ctx != x)
        return shoal__err(SHOAL_EINVAL, "rpc ctx: NULL, or not on the call's handler "
                                        "thread");
    pthread_mutex_lock(x->c.mu);
    x->direct = on != 0;
    if (!x->direct && x->sc->owner == x)
        give_back(x->sc);
    pthread_mutex_unlock(x->c.mu);
    return 0;
}

int shoal_rpc_ctx_set_inline(shoal_rpc_ctx *x, shoal_rpc_msg_fn fn, void *arg)
{
    if (!x || current_ctx != x || x->c.m->kind == SHOAL_RPC_UNARY ||
        x->c.m->kind == SHOAL_RPC_SERVER_STREAMING)
        return shoal__err(SHOAL_EINVAL, "rpc ctx: NULL, not on the call's handler "
                                        "thread, or a method of one request");
    if (fn && x->c.conn->send_later && !x->c.conn->turn_batches) /* see the top */
        return shoal__err(SHOAL_EINVAL,
                          "rpc %s: no inline receive on a connection that writes "
                          "responses together (ipc://): use direct receive",
                          x->method);
    pthread_mutex_lock(x->c.mu);
    set_on_msg(x, NULL); /* a function running stops before the next request */
    while (x->msg_busy)
        ctx_wait(x);
    set_on_msg(x, fn);
    x->on_msg_arg = arg;
    x->msg_stopped = 0;
    x->c.quiet = fn != NULL;
    if (fn && x->sc->owner == x)
        give_back(x->sc); /* the loop reads: it runs fn */
    if (inline_due(x))    /* the requests already there: on this thread */
        run_inline(x);
    pthread_mutex_unlock(x->c.mu);
    return 0;
}

const shoal_rpc_md *shoal_rpc_ctx_metadata(const shoal_rpc_ctx *x)
{
    return &x->md;
}

const char *shoal_rpc_ctx_method(const shoal_rpc_ctx *x)
{
    return x->method;
}

int shoal_rpc_ctx_add_header(shoal_rpc_ctx *x, const char *key, const char *value)
{
    pthread_mutex_lock(x->c.mu);
    int rc = x->headers_sent
                 ? shoal__err(SHOAL_EINVAL, "rpc %s: headers already sent", x->method)
                 : shoal_rpc_md_add(&x->headers, key, value);
    pthread_mutex_unlock(x->c.mu);
    return rc;
}

int shoal_rpc_ctx_add_trailer(shoal_rpc_ctx *x, const char *key, const char *value)
{
    pthread_mutex_lock(x->c.mu);
    int rc = shoal_rpc_md_add(&x->trailers, key, value);
    pthread_mutex_unlock(x->c.mu);
    return rc;
}

void shoal_rpc_ctx_set_detail(shoal_rpc_ctx *x, const char *fmt, ...)
{
    if (!x->detail && !(x->detail = malloc(SHOAL_RPC_DETAIL_MAX)))
        return; /* out of memory: the status goes without its detail */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->detail, SHOAL_RPC_DETAIL_MAX, fmt, ap);
    va_end(ap);
}
