/*
 * session.c — the Broker service (broker.proto) over the rpc runtime.
 *
 * Session (bidirectional stream): the rpc runtime runs the handler on a thread of its
 * own; it reads requests and runs each through core.c at once, so a client may have
 * any number in flight. It reads them in direct receive (shoal_rpc_ctx_set_direct):
 * over shm:// this thread takes the client's frames from the pipe itself, spinning
 * for the next request after each reply and then sleeping on the pipe, so a request
 * crosses no thread hand-off; it turns direct receive off while it waits for the
 * outbox to drain (wait_room), as the sender that drains it needs the client's window
 * frames read. While the sessions outnumber the CPUs the broker may run on (and it
 * has no data directory), a session takes its requests in inline receive instead
 * (shoal_rpc_ctx_set_inline, on_request): the server loop's thread runs every
 * session's requests as it reads them, one thread busy instead of more spinning
 * threads than CPUs handing the CPUs to each other — whether the clients pipeline or
 * wait for each reply (four clients in lock step on two CPUs: one thread polling four
 * pipes costs less than four session threads each waking for its own). A session
 * switches when it starts, or after a request, once the sessions outnumber the CPUs,
 * and back once they no longer do (on_request turns inline receive off, the session's
 * receive says SHOAL_EAGAIN), as when its outbox is full. The session's thread then
 * only waits for the stream's end. The replies are written as below, by the thread
 * running the request. core.c hands each reply, once durable, to the session's outbox
 * (broker_session_deliver, under the broker's mutex, never blocking): a ring of
 * (id, reply) that grows by doubling, so a reply costs no allocation of its own there.
 * Who writes the outbox to the stream:
 *
 *   - the session's own thread, after the request — or after the last of the
 *     requests at hand, when the client pipelines (below): most replies are ready at
 *     once, and this thread sends them itself, with no other thread woken, all but
 *     the last with shoal_rpc_ctx_send_more so that they leave in one write, taking
 *     the session's lock once for them — as long as the client's window has room
 *     (shoal_rpc_ctx_send_room), so this thread never blocks on a client that does not
 *     read its replies;
 *   - a sender thread per session for the rest: replies completed later by another
 *     session (the lock released, the item put) while this session's thread waits
 *     for its next request, and replies the window had no room for.
 *
 * A request whose successor is already there is not run on its own: the requests at
 * hand (up to BROKER_RUN_MAX) are kept (hold) and run together after the last
 * (run_held: broker_run_all), in one hold of the broker's mutex, sharing one commit
 * with a data directory and in any case one hand-over of their replies, and their
 * replies leave in one write, as a pipelining client sends them; inline receive does
 * the same with the requests the loop has at hand for the session (on_request's
 * `more`). And while a session gathers such a batch (broker_batching), the other
 * sessions' requests join its commit (group commit, core.c): their replies come to
 * their outboxes after it, and their sender threads write them.
 *
 * One writer at a time (`sending`), and the sender keeps out while the session's
 * thread runs a request (`in_request`: it sends what the request produced), so a
 * reply ready at once costs no hand-off, and a parked one reaches its session
 * without another client's thread touching this stream. A client that sends many
 * requests before reading replies does not stop the broker reading them — up to
 * OUTBOX_MAX bytes of replies waiting: then the session reads no more requests until
 * the client has taken some. When the stream ends (the client closed it,
 * disconnected or died), core.c drops the session's waiters and frees its locks, the
 * sender drains the outbox — direct receive off, so that the rpc runtime reads the
 * client's window frames the sender may wait for — and both threads are done.
 *
 * Call (unary): one request; the handler runs on a thread of its own (the method is
 * `blocking`) and waits for the one reply, which may be a parked operation's. Its
 * owner is BROKER_ANON: a lock taken with Call stays taken until released.
 *
 * A reply too large for the transport becomes an error reply (SHOAL_EMSGSIZE) with
 * the same id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_internal.h"
#include "internal.h"
#include "wait.h"

/* Replies queued for a client that does not read them: past this, the session stops
 * reading its requests until the client catches up (the broker never buffers without
 * bound). */
#define OUTBOX_MAX ((size_t)16 << 20)

struct broker_session {
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* the sender (or Call's handler): replies to write */
    pthread_cond_t room; /* the session's thread: the outbox shrank */
    broker_reply *box;   /* the outbox: a ring of cap replies, n of them from first */
    size_t first, n, cap;
    size_t queued;  /* bytes in the outbox */
    int closed;     /* the session's thread is done: the sender drains and ends */
    int sending;    /* a thread is writing a reply to the stream */
    int in_request; /* the session's thread runs a request: it sends the replies */
    int failed;     /* a send failed: the stream is gone, replies are dropped */
    int room_wait;  /* the session's thread waits on `room` */
    shoal_rpc_ctx *ctx;
    shoal_broker *b; /* Session: the broker and the session's id */
    uint64_t sid;
    int no_inline; /* its transport refused inline receive */
    size_t nheld;  /* the requests at hand, run together after the last (run_held) */
    void *held[BROKER_RUN_MAX];
    size_t held_len[BROKER_RUN_MAX];
};

/* Keeps request msg[len] (taken over) for run_held; the first kept makes the sender
 * keep out until the replies of the requests kept are written (send_ready). */
static void hold(broker_session *s, void *msg, size_t len)
{
    if (!s->nheld) {
        pthread_mutex_lock(&s->mu);
        s->in_request = 1;
        pthread_mutex_unlock(&s->mu);
    }
    s->held[s->nheld] = msg;
    s->held_len[s->nheld++] = len;
}

/* Runs the requests kept (broker_run_all: one commit, one hold of the broker's mutex,
 * one hand-over of their replies; batching: the session said broker_batching(on) for
 * them, said off there), then frees them. */
static void run_held(broker_session *s, int batching)
{
    broker_run_all(s->b, s, s->sid, s->held, s->held_len, s->nheld, batching);
    for (size_t i = 0; i < s->nheld; i++)
        free(s->held[i]);
    s->nheld = 0;
}

/* Room for `more` more replies in the outbox (under s->mu): the ring doubles until
 * they fit. */
static int out_room(broker_session *s, size_t more)
{
    if (s->n + more <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap * 2 : 64;
    while (cap < s->n + more)
        cap *= 2;
    broker_reply *box = malloc(cap * sizeof(*box));
    if (!box)
        return -1;
    for (size_t i = 0; i < s->n; i++)
        box[i] = s->box[(s->first + i) % s->cap];
    free(s->box);
    s->box = box;
    s->first = 0;
    s->cap = cap;
    return 0;
}

void broker_session_deliver(broker_session *s, broker_reply *r, size_t n)
{
    pthread_mutex_lock(&s->mu);
    if (out_room(s, n) < 0) {
        pthread_mutex_unlock(&s->mu);
        for (size_t i = 0; i < n; i++)
            free(r[i].buf);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        s->box[(s->first + s->n++) % s->cap] = r[i];
        s->queued += r[i].len;
    }
    if (!s->in_request && !s->sending) /* else the thread writing sends it next */
        pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Takes the outbox's first reply into *o (under s->mu): false when empty. */
static bool pop_out(broker_session *s, broker_reply *o)
{
    if (!s->n)
        return false;
    *o = s->box[s->first];
    s->first = (s->first + 1) % s->cap;
    s->n--;
    s->queued -= o->len;
    return true;
}

static bool next_out(broker_session *s, broker_reply *o)
{
    pthread_mutex_lock(&s->mu);
    bool got = pop_out(s, o);
    pthread_mutex_unlock(&s->mu);
    return got;
}

/* Sends a reply (more: others follow at once, shoal_rpc_ctx_send_more); one the
 * transport refuses as too large becomes an error reply. */
static int send_reply(shoal_rpc_ctx *ctx, broker_reply *o, int more)
{
    const void *bytes = broker_reply_bytes(o);
    int rc = more ? shoal_rpc_ctx_send_more(ctx, bytes, o->len)
                  : shoal_rpc_ctx_send(ctx, bytes, o->len);
    if (rc == SHOAL_EMSGSIZE) {
        char detail[96];
        snprintf(detail, sizeof(detail),
                 "broker: a reply of %zu bytes is larger than the "
                 "transport carries",
                 o->len);
        brep r = SHOAL__BROKER__REPLY__INIT;
        r.id = o->id;
        r.status = SHOAL_EMSGSIZE;
        r.error = detail;
        size_t len;
        void *buf = shoal__bv_pack(&r.base, &len);
        rc = buf ? shoal_rpc_ctx_send(ctx, buf, len) : SHOAL_ENOMEM;
        free(buf);
    }
    if (o->buf)
        free(o->buf);
    return rc;
}

/* Writes the outbox's first reply as the stream's one writer (called and returning
 * with s->mu held, s->sending set by the caller); after a failed send the rest are
 * only freed. */
static void write_out(broker_session *s)
{
    broker_reply o;
    pop_out(s, &o);
    pthread_mutex_unlock(&s->mu);
    int rc = 0;
    if (!s->failed)
        rc = send_reply(s->ctx, &o, 0);
    else
        free(o.buf);
    pthread_mutex_lock(&s->mu);
    if (rc < 0)
        s->failed = 1;
    s->sending = 0;
    if (s->room_wait)
        pthread_cond_signal(&s->room);
}

/* The most replies write_ready takes at once. */
#define WRITE_BATCH 64

/* Writes, as the stream's one writer, the outbox's first replies (up to WRITE_BATCH)
 * that the client's window has room for (only this thread uses the room up), with
 * s->mu taken once for them, not once per reply (held on entry and return). They stay in
 * the outbox while they are written (copied out: a delivery meanwhile may move the ring,
 * but only appends to it), and the ones written are dropped after. Returns how many were.
 */
static size_t write_ready(broker_session *s)
{
    broker_reply batch[WRITE_BATCH];
    size_t n = s->n < WRITE_BATCH ? s->n : WRITE_BATCH, sent = 0;
    if (!s->failed) { /* the window's room, asked once */
        size_t room = (size_t)shoal_rpc_ctx_send_room(s->ctx);
        n = n < room ? n : room;
    }
    for (size_t i = 0; i < n; i++)
        batch[i] = s->box[(s->first + i) % s->cap];
    int rc = 0, failed = s->failed;
    s->sending = 1;
    pthread_mutex_unlock(&s->mu);
    for (; sent < n && rc == 0; sent++) {
        if (!failed)
            rc = send_reply(s->ctx, &batch[sent], sent + 1 < n);
        else
            free(batch[sent].buf);
    }
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < sent; i++) {
        s->queued -= s->box[s->first].len;
        s->first = (s->first + 1) % s->cap;
        s->n--;
    }
    if (rc < 0)
        s->failed = 1;
    s->sending = 0;
    if (s->room_wait)
        pthread_cond_signal(&s->room);
    return sent;
}

/* After a request (or the requests at hand), on the thread that ran it: sends what is
 * ready while the client's window has room, and leaves the rest to the sender.
 * Returns whether the outbox is still over OUTBOX_MAX. */
static int send_ready(broker_session *s)
{
    pthread_mutex_lock(&s->mu);
    s->in_request = 0;
    while (s->n && !s->sending && write_ready(s))
        ;
    if (s->n) /* no room in the client's window: the sender waits for it */
        pthread_cond_signal(&s->cv);
    int full = s->queued > OUTBOX_MAX;
    pthread_mutex_unlock(&s->mu);
    return full;
}

static int outbox_full(broker_session *s)
{
    pthread_mutex_lock(&s->mu);
    int full = s->queued > OUTBOX_MAX;
    pthread_mutex_unlock(&s->mu);
    return full;
}

/* Whether the sessions are more than the CPUs: then the server's loop serves their
 * requests (inline receive), else each session's thread (direct receive). */
static int crowded(shoal_broker *b)
{
    return !b->store && atomic_load_explicit(&b->sessions, memory_order_relaxed) >
                            shoal__cpus_allowed();
}

/* A request in inline receive, on the thread that read it (the server's loop): run
 * and answered as the session's thread does (no data directory: nothing to commit),
 * the requests at hand (more) kept and run together after the last of them (up to
 * BROKER_RUN_MAX), their replies written together. A full outbox, or sessions no more
 * than the CPUs, turn inline receive off: the session's thread waits for room, or
 * takes its requests back. */
static int on_request(shoal_rpc_ctx *ctx, void *msg, size_t len, int more, void *arg)
{
    (void)ctx;
    broker_session *s = arg;
    hold(s, msg, len);
    if (more && s->nheld < BROKER_RUN_MAX)
        return 0; /* run with the last one, its reply leaving with the last one's */
    run_held(s, 0);
    return send_ready(s) || !crowded(s->b);
}

/* How the session's requests reach it: while the sessions outnumber the CPUs,
 * without a data directory, inline receive — the loop's one thread runs them all,
 * instead of more threads than CPUs each spinning for its client and handing the CPUs
 * to one another; else direct receive on the session's thread, which spins for its
 * client's next request and, with a data directory, shares a commit among the
 * requests at hand. */
static void receive_mode(broker_session *s)
{
    int crowd = !s->no_inline && crowded(s->b);
    shoal_rpc_ctx_set_direct(s->ctx, !crowd);
    if (crowd && shoal_rpc_ctx_set_inline(s->ctx, on_request, s) < 0) {
        s->no_inline = 1; /* ipc://: direct receive serves it better */
        shoal_rpc_ctx_set_direct(s->ctx, 1);
    }
}

/* On the session's thread: waits while the outbox is over OUTBOX_MAX (returns whether
 * it did). The sender that empties it needs the client's window, whose frames this
 * thread reads in direct receive: it gives the connection back to the server's loop
 * meanwhile, and takes up its receive mode again after. */
static int wait_room(broker_session *s, shoal_rpc_ctx *ctx)
{
    if (!outbox_full(s))
        return 0;
    shoal_rpc_ctx_set_direct(ctx, 0);
    pthread_mutex_lock(&s->mu);
    s->room_wait = 1;
    while (s->queued > OUTBOX_MAX && !shoal_rpc_ctx_cancelled(ctx))
        pthread_cond_wait(&s->room, &s->mu);
    s->room_wait = 0;
    pthread_mutex_unlock(&s->mu);
    receive_mode(s);
    return 1;
}

static void *sender_main(void *arg)
{
    broker_session *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while ((!s->n || s->sending || s->in_request) && !s->closed)
            pthread_cond_wait(&s->cv, &s->mu);
        if (!s->n)
            break;
        s->sending = 1;
        write_out(s);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void session_init(broker_session *s, shoal_rpc_ctx *ctx)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->room, NULL);
    s->ctx = ctx;
}

static void session_destroy(broker_session *s)
{
    for (broker_reply o; next_out(s, &o);)
        free(o.buf);
    free(s->box);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->room);
}

static int session(shoal_rpc_ctx *ctx, void *arg)
{
    shoal_broker *b = arg;
    broker_session s;
    session_init(&s, ctx);
    uint64_t sid = broker_session_id(b);
    s.b = b;
    s.sid = sid;
    pthread_t sender;
    if (pthread_create(&sender, NULL, sender_main, &s) != 0) {
        session_destroy(&s);
        shoal_rpc_ctx_set_detail(ctx, "broker: cannot start a thread");
        return SHOAL_RPC_RESOURCE_EXHAUSTED;
    }
    void *msg;
    size_t len;
    int batching = 0; /* whether it said it has a batch at hand */
    atomic_fetch_add(&b->sessions, 1);
    receive_mode(&s);
    int rc;
    while ((rc = shoal_rpc_ctx_recv(ctx, &msg, &len)) == 1 || rc == SHOAL_EAGAIN) {
        if (rc == SHOAL_EAGAIN) { /* on_request turned inline receive off */
            if (s.nheld) { /* (not expected: inline receive starts between turns) */
                run_held(&s, batching);
                batching = 0;
                send_ready(&s);
            }
            if (batching)
                broker_batching(b, batching = 0);
            if (!wait_room(&s, ctx))
                receive_mode(&s); /* the outbox has room: inline or direct now */
            continue;
        }
        hold(&s, msg, len);
        int more = s.nheld < BROKER_RUN_MAX && shoal_rpc_ctx_recv_ready(ctx);
        if (more && !batching) /* the other sessions' commits wait for its batch */
            broker_batching(b, batching = 1);
        if (more)
            continue; /* run with the last one, its reply leaving with the last one's */
        run_held(&s, batching); /* says its batch's end, once it holds the mutex */
        batching = 0;
        send_ready(&s);
        if (!wait_room(&s, ctx) && !s.no_inline && crowded(b))
            receive_mode(&s); /* sessions came: the loop serves */
    }
    /* the sender drains the outbox: the client's window frames must be read */
    shoal_rpc_ctx_set_inline(ctx, NULL, NULL);
    shoal_rpc_ctx_set_direct(ctx, 0);
    if (s.nheld) /* a batch the stream's end cut short */
        run_held(&s, batching);
    else if (batching)
        broker_batching(b, 0);
    broker_commit(b);
    atomic_fetch_sub(&b->sessions, 1);
    broker_session_end(b, &s, sid);
    pthread_mutex_lock(&s.mu);
    s.in_request = 0;
    s.closed = 1;
    pthread_cond_signal(&s.cv);
    pthread_mutex_unlock(&s.mu);
    pthread_join(sender, NULL);
    session_destroy(&s);
    return SHOAL_RPC_OK;
}

static int call(shoal_rpc_ctx *ctx, void *arg)
{
    shoal_broker *b = arg;
    broker_session s;
    session_init(&s, ctx);
    void *msg;
    size_t len;
    if (shoal_rpc_ctx_recv(ctx, &msg, &len) != 1) {
        session_destroy(&s);
        return SHOAL_RPC_CANCELLED;
    }
    broker_request(b, &s, BROKER_ANON, msg, len);
    free(msg);
    broker_reply o;
    while (!next_out(&s, &o)) { /* a parked operation: its reply comes later */
        if (shoal_rpc_ctx_cancelled(ctx)) {
            broker_session_end(b, &s, BROKER_ANON);
            session_destroy(&s);
            return SHOAL_RPC_CANCELLED;
        }
        pthread_mutex_lock(&s.mu);
        if (!s.n) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&s.cv, &s.mu, &ts);
        }
        pthread_mutex_unlock(&s.mu);
    }
    int rc = send_reply(ctx, &o, 0);
    session_destroy(&s);
    return rc == 0 ? SHOAL_RPC_OK : SHOAL_RPC_CANCELLED;
}

static const shoal_rpc_method methods[] = {
    {"Session", SHOAL_RPC_BIDI_STREAMING, NULL, NULL, session, 0},
    {"Call", SHOAL_RPC_UNARY, NULL, NULL, call, 1},
    {"Watch", SHOAL_RPC_SERVER_STREAMING, NULL, NULL, broker_watch, 0}, /* watch.c */
};

const shoal_rpc_service *broker_service(shoal_broker *b)
{
    b->svc = (shoal_rpc_service){"shoal.broker.Broker", methods, 3, b};
    return &b->svc;
}
