/*
 * manager.c — the client of a Manager broker (shoal/manager.h).
 *
 * A connection is one rpc channel and, on it, one call of the Broker service's
 * bidirectional Session method: requests go out as stream messages (the rpc channel
 * serialises the threads sending), replies come back in any order, each carrying
 * its request's id.
 *
 * Replies are read by whichever waiting thread gets there first: a thread waiting
 * for reply N becomes the reader if nobody is reading, receives one reply — keeps it
 * when it is N, else files it under its id in the `arrived` list —, wakes the other
 * waiters and looks again; the others sleep on the condition variable. (A round trip
 * of a thread alone on m so files nothing: its reply goes straight to it.) So any number
 * of threads may each wait for their own replies with no thread dedicated to reading, and
 * a pipelining thread (many submits, then the waits) reads its replies in whatever order
 * they came. When the session ends (the broker died or closed it) every waiter returns
 * SHOAL_EPEERDEAD.
 *
 * Pipelined sends: shoal_manager_submit sends with shoal_rpc_call_send_more, so its
 * request may stay in the transport's buffer (over shm://, one batch message) and a
 * burst of submits leaves in one write. `unsent` counts the
 * submits since the last flush; a thread about to block in shoal_manager_wait (its
 * reply not there yet) flushes first, whether it then reads or sleeps while another
 * thread reads, so no request stays unsent while any thread waits for a reply; the
 * reading thread's rpc layer flushes too before each receive. A wait whose reply is
 * already there sends nothing: a pipelining thread that submits after each wait
 * accumulates its submits until a wait must block, then sends them in one write. Over
 * shm://, a submit with nothing ahead of it (no request of m in flight, none kept) is
 * written at once: the broker's session, spinning for it, starts on it while the next
 * ones are kept, and a client that waits after each submit pays nothing for the
 * keeping. Not over a socket: there a write costs both sides a system call and the
 * broker a turn of its own, so the first request of a burst leaves with the others
 * (one write and one read for the burst, as a Redis client pipelines).
 * shoal_manager_send_raw writes at once (the Python client batches its writes itself).
 *
 * Closing without losing what was sent: shoal_manager_shutdown writes what submits
 * kept, half-closes the stream and lets the session drain — the broker runs every
 * request before the half-close, sends their replies and ends the stream — reading the
 * replies meanwhile (or sleeping while another thread reads them: the broker may
 * wait for the client's window), then cancels the call. So a fire-and-forget write
 * (a submit nobody waits for) is in the broker once the close returned. The wait is
 * bounded (CLOSE_DRAIN, 5 s): a broker that stopped answering delays the close, it
 * does not hang it; a dead one ends it at once.
 *
 * Closing while other threads are inside a call: every public call on m runs between
 * enter() and leave(), which count the threads inside (`users`). shoal_manager_shutdown
 * sets `closing` — later calls fail SHOAL_ECLOSED at once — and ends the session as
 * above: the broker drops the session's parked operations (a get, an acquire) when it
 * sees the half-close, the reader's receive returns the end of the stream, the threads
 * sleeping on the condition variable wake, and every wait whose reply did not come
 * returns SHOAL_ECLOSED. shoal_manager_close does the same, then waits for
 * `users` to fall to 0 before it frees anything, so a thread still inside a call
 * (a binding's thread blocked in a get while its process exits) never touches freed
 * memory. A caller must still not start a call on m once shoal_manager_close returned:
 * a binding that takes m in one place and calls it later, while another thread may
 * close m, counts its thread in the same `users` first (shoal_manager_enter, before
 * it can drop its handle; see bindings/python, ManagerBase).
 *
 * The view. A connection to shm://NAME maps the broker's read view NAME:view
 * (manager_view.c explains it), if there is a valid one: the connection completes
 * only once the broker's loop serves it, and the broker publishes its view before
 * its loop runs, so a connection to a broker that has one finds it. shoal_manager_submit
 * (and so shoal_manager_call) of a pure operation (SHOAL_VIEW_PURE_OPS, manager_view.h),
 * and shoal_manager_call_raw of a request whose op is one, look the request up there
 * first: a hit is the broker's current reply, filed under the request's id as if it
 * had arrived — nothing is sent. The
 * view is consulted only while `inflight`, the requests sent on m whose replies have
 * not arrived (counted before each send, by every send path, and down as each reply
 * is filed), is 0: a request of m's own still in flight (a pipelined set) might not
 * have run yet, and its reply proves that it has, so m always reads its own writes.
 * A request sent with id 0 has no reply to prove it: it sets `unacked`, and m stops
 * using the view. Watches, blocking operations and writes never look.
 *
 * Locks. A connection with a view also maps the broker's lock table NAME:locks, if
 * there is one (manager_lock.c explains it), and tells the broker its owner id there
 * (the broker-wide request "lock_owner", one round trip at connect; a broker that
 * refuses it leaves the table unused). Then acquire, release and locked of a Lock or
 * RLock with a slot there run in the table, at the same places as the view's reads:
 * shoal_manager_call_raw and shoal_manager_call (an acquire waits in the table,
 * shoal__lw_acquire), shoal_manager_submit (an acquire only tried: one that must wait
 * goes to the broker, which parks it and takes the word for this connection's owner
 * id, so a submit never blocks), and shoal_manager_send_raw for a release sent alone
 * or as the only item of a batch (Python's pipelined release). The reply is made
 * here and filed or returned as if it had come; a release that fails (not held) goes
 * to the broker, whose error it then is. A release and a locked run here only while
 * `inflight` is 0 and `unacked` is not set, as the view's reads: the broker then has
 * run every earlier request of m, so what m wrote under the lock is in the broker
 * before the next holder takes it; otherwise they go to the broker, which runs them
 * in order. The slots of the locks taken here are kept in `held`; ending the session
 * frees those m still holds with the owner-died mark, as the broker does a session's.
 * A table whose broker is gone (the view's liveness lock free) is not used.
 *
 * Values are broker.proto's Value messages (manager_value.c); shoal_mv is their
 * public name. A submit packs its Request with shoal__bv_pack_request (by hand, on
 * the stack, for scalar arguments) and a wait decodes its Reply with
 * shoal__bv_unpack_reply (one pass for no result or a scalar one), both as
 * protobuf-c would.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "manager_internal.h"
#include "manager_lock.h"
#include "manager_view.h"
#include "pb_wire.h"
#include "rpc_internal.h"
#include "shoal/manager.h"
#include "shoal/rpc.h"

/* How long closing waits for the broker to end the session (see the top). */
#define CLOSE_DRAIN SHOAL_SEC(5)

#define MV(v)  ((bv *)(v))
#define CMV(v) ((const bv *)(v))

static const shoal_rpc_method session_method = {
    "Session", SHOAL_RPC_BIDI_STREAMING, NULL, NULL, NULL, 0};

struct arrived {
    struct arrived *next;
    uint64_t id;
    void *buf;
    size_t len;
};

struct shoal_manager {
    shoal_rpc_channel *ch;
    shoal_rpc_call *call;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t next_id;
    int reading, ended;
    struct arrived *arrived;
    int unsent;            /* submits since the last flush (atomic) */
    int eager;             /* shm://: a submit with nothing ahead goes at once */
    int users;             /* threads inside a call of m (atomic) */
    int closing;           /* shoal_manager_shutdown began (atomic) */
    shoal__view *view;     /* shm://: the broker's read view, or NULL (see "The view") */
    int inflight;          /* requests sent whose replies have not arrived (atomic) */
    int unacked;           /* a request of id 0 was sent: the view is not used (atomic) */
    uint64_t hits, misses; /* view lookups (atomic) */
    shoal__locks *locks;   /* shm://: the broker's lock table, or NULL (see "Locks") */
    int *held;             /* slots of the locks taken here, not freed yet (under mu) */
    size_t nheld, capheld;
};

/* ---- values ---- */

shoal_mv *shoal_mv_none(void)
{
    return (shoal_mv *)shoal__bv_none();
}

shoal_mv *shoal_mv_bool(int b)
{
    return (shoal_mv *)shoal__bv_bool(b != 0);
}

shoal_mv *shoal_mv_int(int64_t i)
{
    return (shoal_mv *)shoal__bv_int(i);
}

shoal_mv *shoal_mv_double(double d)
{
    return (shoal_mv *)shoal__bv_double(d);
}

shoal_mv *shoal_mv_str(const char *s)
{
    return s ? (shoal_mv *)shoal__bv_str(s, strlen(s)) : NULL;
}

shoal_mv *shoal_mv_bytes(const void *p, size_t len)
{
    return (shoal_mv *)shoal__bv_bytes(BV_BYTES, p, len);
}

shoal_mv *shoal_mv_message(const char *type, const void *p, size_t len)
{
    if (!type || !*type || (!p && len))
        return NULL;
    return (shoal_mv *)shoal__bv_message(type, p, len);
}

shoal_mv *shoal_mv_pickle(const void *p, size_t len)
{
    return !p && len ? NULL : (shoal_mv *)shoal__bv_bytes(BV_PICKLE, p, len);
}

shoal_mv *shoal_mv_list(void)
{
    return (shoal_mv *)shoal__bv_seq(BV_LIST);
}

shoal_mv *shoal_mv_tuple(void)
{
    return (shoal_mv *)shoal__bv_seq(BV_TUPLE);
}

shoal_mv *shoal_mv_map(void)
{
    return (shoal_mv *)shoal__bv_map();
}

static bool is_seq(const bv *v)
{
    return v && (v->kind_case == BV_LIST || v->kind_case == BV_TUPLE);
}

static Shoal__Broker__Seq *seq(const bv *v)
{
    return v->kind_case == BV_TUPLE ? v->tuple : v->list;
}

int shoal_mv_append(shoal_mv *s, shoal_mv *item)
{
    if (!is_seq(MV(s))) {
        shoal__bv_free(MV(item));
        return shoal__err(SHOAL_EINVAL, "shoal_mv_append: not a list or tuple");
    }
    if (!item)
        return shoal__err(SHOAL_ENOMEM, "shoal_mv_append: no item (out of memory?)");
    return shoal__bv_seq_insert(MV(s), seq(MV(s))->n_items, MV(item)) < 0
               ? shoal__err(SHOAL_ENOMEM, "shoal_mv_append: out of memory")
               : 0;
}

int shoal_mv_put(shoal_mv *map, shoal_mv *key, shoal_mv *value)
{
    if (!map || MV(map)->kind_case != BV_MAP || !shoal__bv_is_key(MV(key)) || !value) {
        int rc = !key || !value
                     ? shoal__err(SHOAL_ENOMEM, "shoal_mv_put: no key or value")
                     : shoal__err(SHOAL_EINVAL, "shoal_mv_put: not a map, or a "
                                                "key that cannot be one");
        shoal__bv_free(MV(key));
        shoal__bv_free(MV(value));
        return rc;
    }
    return shoal__bv_map_put(MV(map), MV(key), MV(value)) < 0
               ? shoal__err(SHOAL_ENOMEM, "shoal_mv_put: out of memory")
               : 0;
}

shoal_mv *shoal_mv_copy(const shoal_mv *v)
{
    return v ? (shoal_mv *)shoal__bv_clone(CMV(v)) : NULL;
}

void shoal_mv_free(shoal_mv *v)
{
    shoal__bv_free(MV(v));
}

int shoal_mv_type(const shoal_mv *v)
{
    return v ? (int)CMV(v)->kind_case : 0;
}

int shoal_mv_as_bool(const shoal_mv *v)
{
    return v && CMV(v)->kind_case == BV_BOOL ? CMV(v)->b : 0;
}

int64_t shoal_mv_as_int(const shoal_mv *v)
{
    return v && CMV(v)->kind_case == BV_INT    ? CMV(v)->i
           : v && CMV(v)->kind_case == BV_BOOL ? CMV(v)->b
                                               : 0;
}

double shoal_mv_as_double(const shoal_mv *v)
{
    return v && CMV(v)->kind_case == BV_DOUBLE ? CMV(v)->d : (double)shoal_mv_as_int(v);
}

const char *shoal_mv_as_str(const shoal_mv *v)
{
    return v && CMV(v)->kind_case == BV_STR ? CMV(v)->s : "";
}

const void *shoal_mv_as_bytes(const shoal_mv *v, size_t *len)
{
    const ProtobufCBinaryData *b = !v                               ? NULL
                                   : CMV(v)->kind_case == BV_BYTES  ? &CMV(v)->bytes
                                   : CMV(v)->kind_case == BV_PICKLE ? &CMV(v)->pickle
                                   : CMV(v)->kind_case == BV_MSG ? &CMV(v)->message->data
                                                                 : NULL;
    *len = b ? b->len : 0;
    return b ? b->data : NULL;
}

const char *shoal_mv_message_type(const shoal_mv *v)
{
    return v && CMV(v)->kind_case == BV_MSG && CMV(v)->message->type
               ? CMV(v)->message->type
               : "";
}

size_t shoal_mv_len(const shoal_mv *v)
{
    return is_seq(CMV(v))                     ? seq(CMV(v))->n_items
           : v && CMV(v)->kind_case == BV_MAP ? CMV(v)->map->n_entries
                                              : 0;
}

const shoal_mv *shoal_mv_item(const shoal_mv *v, size_t i)
{
    return is_seq(CMV(v)) && i < seq(CMV(v))->n_items ? (shoal_mv *)seq(CMV(v))->items[i]
                                                      : NULL;
}

const shoal_mv *shoal_mv_key(const shoal_mv *v, size_t i)
{
    return v && CMV(v)->kind_case == BV_MAP && i < CMV(v)->map->n_entries
               ? (shoal_mv *)CMV(v)->map->entries[i]->key
               : NULL;
}

const shoal_mv *shoal_mv_value(const shoal_mv *v, size_t i)
{
    return v && CMV(v)->kind_case == BV_MAP && i < CMV(v)->map->n_entries
               ? (shoal_mv *)CMV(v)->map->entries[i]->value
               : NULL;
}

const shoal_mv *shoal_mv_get(const shoal_mv *map, const shoal_mv *key)
{
    long i = map && CMV(map)->kind_case == BV_MAP && key
                 ? shoal__bv_map_find(CMV(map), CMV(key))
                 : -1;
    return i >= 0 ? shoal_mv_value(map, (size_t)i) : NULL;
}

int shoal_mv_equal(const shoal_mv *a, const shoal_mv *b)
{
    return shoal__bv_equal(CMV(a), CMV(b));
}

/* ---- repr ---- */

typedef struct fmt {
    char *buf;
    size_t cap, len;
} fmt;

static void put(fmt *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++, f->len++)
        if (f->len + 1 < f->cap)
            f->buf[f->len] = s[i];
}

static void putf(fmt *f, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void putf(fmt *f, const char *format, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(tmp, sizeof(tmp), format, ap);
    va_end(ap);
    put(f, tmp, n < 0 ? 0 : (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void put_quoted(fmt *f, const char *s, size_t n, const char *prefix)
{
    put(f, prefix, strlen(prefix));
    put(f, "'", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\'' || c == '\\')
            putf(f, "\\%c", c);
        else if (c == '\n')
            put(f, "\\n", 2);
        else if (c < 0x20 || (c >= 0x7f && *prefix))
            putf(f, "\\x%02x", c);
        else
            put(f, (const char *)&c, 1);
    }
    put(f, "'", 1);
}

static void put_double(fmt *f, double d)
{
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) { /* the shortest form that reads back */
        snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    put(f, tmp, strlen(tmp));
    if (!strpbrk(tmp, ".einn")) /* 3.0, not 3 */
        put(f, ".0", 2);
}

static void format_value(fmt *f, const bv *v)
{
    switch (v ? v->kind_case : BV_NONE) {
    case BV_NONE:
        return put(f, "None", 4);
    case BV_BOOL:
        return v->b ? put(f, "True", 4) : put(f, "False", 5);
    case BV_INT:
        return putf(f, "%lld", (long long)v->i);
    case BV_DOUBLE:
        return put_double(f, v->d);
    case BV_STR:
        return put_quoted(f, v->s, strlen(v->s), "");
    case BV_BYTES:
        return put_quoted(f, (const char *)v->bytes.data, v->bytes.len, "b");
    case BV_PICKLE:
        return putf(f, "<pickle of %zu bytes>", v->pickle.len);
    case BV_MSG:
        return putf(f, "<%.40s of %zu bytes>", v->message->type, v->message->data.len);
    case BV_LIST:
    case BV_TUPLE: {
        Shoal__Broker__Seq *s = seq(v);
        put(f, v->kind_case == BV_LIST ? "[" : "(", 1);
        for (size_t i = 0; i < s->n_items; i++) {
            if (i)
                put(f, ", ", 2);
            format_value(f, s->items[i]);
        }
        if (v->kind_case == BV_TUPLE && s->n_items == 1)
            put(f, ",", 1);
        return put(f, v->kind_case == BV_LIST ? "]" : ")", 1);
    }
    case BV_MAP:
        put(f, "{", 1);
        for (size_t i = 0; i < v->map->n_entries; i++) {
            if (i)
                put(f, ", ", 2);
            format_value(f, v->map->entries[i]->key);
            put(f, ": ", 2);
            format_value(f, v->map->entries[i]->value);
        }
        return put(f, "}", 1);
    default:
        return put(f, "?", 1);
    }
}

size_t shoal_mv_format(const shoal_mv *v, char *buf, size_t cap)
{
    fmt f = {buf, cap, 0};
    format_value(&f, CMV(v));
    if (cap)
        buf[f.len < cap ? f.len : cap - 1] = 0;
    return f.len;
}

/* ---- the session ---- */

static int locks_hello(shoal_manager *m);

int shoal_manager_connect(shoal_manager **out, const char *address,
                          const shoal_manager_config *cfg)
{
    if (!out || !address)
        return shoal__err(SHOAL_EINVAL, "shoal_manager_connect: NULL argument");
    shoal_manager *m = calloc(1, sizeof(*m));
    if (!m)
        return shoal__err(SHOAL_ENOMEM, "shoal_manager_connect: out of memory");
    shoal_rpc_channel_config cc = {0};
    if (cfg) {
        cc.connect_timeout = cfg->connect_timeout;
        cc.token = cfg->token;
        cc.attr = cfg->attr;
        cc.tls_ca_file = cfg->tls_ca_file;
        cc.tls_cert_file = cfg->tls_cert_file;
        cc.tls_key_file = cfg->tls_key_file;
        cc.tls_server_name = cfg->tls_server_name;
    }
    int rc = shoal_rpc_channel_open(&m->ch, address, &cc);
    if (rc == 0)
        rc = shoal_rpc_call_start(&m->call, m->ch, "shoal.broker.Broker", &session_method,
                                  NULL);
    if (rc < 0) {
        shoal_rpc_channel_close(m->ch);
        free(m);
        return rc;
    }
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    int shm = !strncmp(address, "shm://", 6);
    m->eager = shm;
    if (shm)
        m->view = shoal__view_open(address + 6, cfg ? cfg->attr : NULL);
    if (m->view) /* its liveness is the table's: see "Locks" */
        m->locks = shoal__locks_open(address + 6, cfg ? cfg->attr : NULL);
    if (m->locks && locks_hello(m) < 0) {
        shoal__locks_close(m->locks, false);
        m->locks = NULL;
        shoal__err_clear(); /* no table: lock requests go to the broker */
    }
    *out = m;
    return 0;
}

/* A thread leaves a call of m; the last one out of a closing m wakes the closer. */
static void leave(shoal_manager *m)
{
    if (__atomic_sub_fetch(&m->users, 1, __ATOMIC_SEQ_CST) == 0 &&
        __atomic_load_n(&m->closing, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&m->mu);
        pthread_cond_broadcast(&m->cv);
        pthread_mutex_unlock(&m->mu);
    }
}

/* A thread enters a call of m: 0, or SHOAL_ECLOSED once m is shutting down. */
static int enter(shoal_manager *m, const char *what)
{
    __atomic_add_fetch(&m->users, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&m->closing, __ATOMIC_SEQ_CST))
        return 0;
    leave(m);
    return shoal__err(SHOAL_ECLOSED, "%s: the manager session is closed", what);
}

static bool read_one(shoal_manager *m, uint64_t mine, struct arrived *own);

/* Becomes the reader for at most `left` (m->mu held, nobody reading): files the reply
 * or notes the end of the session when one comes in time. */
static void drain_read(shoal_manager *m, shoal_duration left)
{
    m->reading = 1; /* kept while waiting: no other thread starts a receive */
    pthread_mutex_unlock(&m->mu);
    int ready = shoal_rpc_call_wait(m->call, left) == 1;
    pthread_mutex_lock(&m->mu);
    if (ready)
        read_one(m, 0, NULL); /* does not block: a reply or the end is there */
    else
        m->reading = 0;
}

/* Lets the broker run what was sent: waits (reading replies, or while another thread
 * reads) until the broker ends the session or CLOSE_DRAIN passed (see the top). */
static void drain(shoal_manager *m)
{
    int64_t limit = shoal__now_ns() + CLOSE_DRAIN;
    pthread_mutex_lock(&m->mu);
    for (int64_t left; !m->ended && (left = limit - shoal__now_ns()) > 0;) {
        if (m->reading)
            rpc__cond_wait(&m->cv, &m->mu, left);
        else
            drain_read(m, left);
    }
    pthread_mutex_unlock(&m->mu);
}

int shoal_manager_enter(shoal_manager *m)
{
    return m ? enter(m, "shoal_manager_enter")
             : shoal__err(SHOAL_EINVAL, "shoal_manager_enter: NULL argument");
}

void shoal_manager_leave(shoal_manager *m)
{
    if (m)
        leave(m);
}

static void locks_abandon(shoal_manager *m);

/* Ends the session: see "Closing without losing what was sent" above. */
static void end_session(shoal_manager *m)
{
    locks_abandon(m); /* as the broker frees an ended session's locks */
    __atomic_store_n(&m->unsent, 0, __ATOMIC_SEQ_CST);
    shoal_rpc_channel_flush(m->ch); /* what submits kept goes first */
    if (shoal_rpc_call_close_send(m->call) == 0)
        drain(m);
    shoal_rpc_call_cancel(m->call); /* the reader's receive returns: the call is over */
    pthread_mutex_lock(&m->mu);
    m->ended = 1;
    pthread_cond_broadcast(&m->cv); /* the sleepers see it */
    pthread_mutex_unlock(&m->mu);
}

void shoal_manager_shutdown(shoal_manager *m)
{
    if (!m)
        return;
    /* counted as inside a call: a close from another thread waits for the drain */
    __atomic_add_fetch(&m->users, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_exchange_n(&m->closing, 1, __ATOMIC_SEQ_CST))
        end_session(m);
    leave(m);
}

void shoal_manager_close(shoal_manager *m)
{
    if (!m)
        return;
    shoal_manager_shutdown(m);
    pthread_mutex_lock(&m->mu);
    while (m->reading || __atomic_load_n(&m->users, __ATOMIC_SEQ_CST))
        pthread_cond_wait(&m->cv, &m->mu);
    pthread_mutex_unlock(&m->mu);
    shoal_rpc_call_free(m->call);
    shoal_rpc_channel_close(m->ch);
    for (struct arrived *a = m->arrived, *next; a; a = next) {
        next = a->next;
        free(a->buf);
        free(a);
    }
    shoal__view_close(m->view);
    shoal__locks_close(m->locks, false);
    free(m->held);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m);
}

uint64_t shoal_manager_next_id(shoal_manager *m)
{
    return __atomic_add_fetch(&m->next_id, 1, __ATOMIC_RELAXED);
}

/* The session is over: SHOAL_ECLOSED when closed here, else SHOAL_EPEERDEAD. */
static int session_over(shoal_manager *m)
{
    return __atomic_load_n(&m->closing, __ATOMIC_SEQ_CST)
               ? shoal__err(SHOAL_ECLOSED, "manager: the session was closed")
               : shoal__err(SHOAL_EPEERDEAD, "manager: the broker session is over (%s)",
                            "the broker closed it or died");
}

static uint64_t reply_id(const void *buf, size_t len);

/* Sends an encoded request (its id: id): at once, or (later) kept in the transport's
 * buffer (m entered). The rpc channel serialises the threads sending. */
static int send_entered(shoal_manager *m, const void *req, size_t len, uint64_t id,
                        int later)
{
    if (later && id && m->eager && !__atomic_load_n(&m->unsent, __ATOMIC_SEQ_CST) &&
        !__atomic_load_n(&m->inflight, __ATOMIC_SEQ_CST))
        later = 0; /* nothing ahead of it: at once (see "Pipelined sends") */
    if (id)        /* counted before it can be answered: see "The view" */
        __atomic_add_fetch(&m->inflight, 1, __ATOMIC_SEQ_CST);
    else
        __atomic_store_n(&m->unacked, 1, __ATOMIC_SEQ_CST);
    int rc = later ? shoal_rpc_call_send_more(m->call, req, len)
                   : shoal_rpc_call_send(m->call, req, len);
    if (rc < 0 && id)
        __atomic_sub_fetch(&m->inflight, 1, __ATOMIC_SEQ_CST);
    if (rc == 0 && later) /* counted once kept: see "Pipelined sends" above */
        __atomic_add_fetch(&m->unsent, 1, __ATOMIC_SEQ_CST);
    return rc == SHOAL_ECLOSED ? session_over(m) : rc;
}

/* send_entered as a call of m. */
static int send_request(shoal_manager *m, const void *req, size_t len, uint64_t id,
                        int later)
{
    int rc = enter(m, "manager send");
    if (rc < 0)
        return rc;
    rc = send_entered(m, req, len, id, later);
    leave(m);
    return rc;
}

static int lock_send(shoal_manager *m, const void *req, size_t len);

int shoal_manager_send_raw(shoal_manager *m, const void *req, size_t len)
{
    if (!m || (!req && len))
        return shoal__err(SHOAL_EINVAL, "shoal_manager_send_raw: NULL argument");
    int rc = m->locks ? lock_send(m, req, len) : 1;
    return rc <= 0 ? rc : send_request(m, req, len, reply_id(req, len), 0);
}

/* Writes the requests submits kept (a failure shows at the receive that follows). */
static void flush_unsent(shoal_manager *m)
{
    if (__atomic_load_n(&m->unsent, __ATOMIC_RELAXED) &&
        __atomic_exchange_n(&m->unsent, 0, __ATOMIC_SEQ_CST))
        shoal_rpc_channel_flush(m->ch);
}

int shoal_manager_flush(shoal_manager *m)
{
    if (!m)
        return shoal__err(SHOAL_EINVAL, "shoal_manager_flush: NULL argument");
    int rc = enter(m, "shoal_manager_flush");
    if (rc < 0)
        return rc;
    __atomic_store_n(&m->unsent, 0, __ATOMIC_SEQ_CST);
    rc = shoal_rpc_channel_flush(m->ch) < 0 ? session_over(m) : 0;
    leave(m);
    return rc;
}

/* The id field of an encoded Reply or Request (0 when absent or undecodable). */
static uint64_t reply_id(const void *buf, size_t len)
{
    uint64_t id;
    return shoal__bv_lead_id(buf, len, &id) ? id : shoal__pb_varint_of(buf, len, 1);
}

static struct arrived *take_arrived(shoal_manager *m, uint64_t id)
{
    for (struct arrived **p = &m->arrived; *p; p = &(*p)->next)
        if ((*p)->id == id) {
            struct arrived *a = *p;
            *p = a->next;
            return a;
        }
    return NULL;
}

/* Receives one reply (m->mu held, nobody reading) and files it under its id, unless
 * it is the reply to `mine` (0: none): that one is the reader's own, handed back in
 * *own (true) without being filed. A receive that fails ends the session here. */
static bool read_one(shoal_manager *m, uint64_t mine, struct arrived *own)
{
    m->reading = 1;
    pthread_mutex_unlock(&m->mu);
    void *buf;
    size_t len;
    int rc = shoal_rpc_call_recv(m->call, &buf, &len);
    uint64_t id = rc == 1 ? reply_id(buf, len) : 0;
    bool mine_now = rc == 1 && mine && id == mine;
    struct arrived *a = rc == 1 && !mine_now ? malloc(sizeof(*a)) : NULL;
    pthread_mutex_lock(&m->mu);
    m->reading = 0;
    if (id && __atomic_load_n(&m->inflight, __ATOMIC_SEQ_CST) > 0) /* the only taker */
        __atomic_sub_fetch(&m->inflight, 1, __ATOMIC_SEQ_CST);
    if (mine_now) {
        *own = (struct arrived){NULL, id, buf, len};
    } else if (a) {
        *a = (struct arrived){m->arrived, id, buf, len};
        m->arrived = a;
    } else if (rc == 1) {
        free(buf);
    } else {
        m->ended = 1;
    }
    pthread_cond_broadcast(&m->cv); /* a sleeper's reply, or the reader's turn free */
    return mine_now;
}

/* Waits for the reply to id (m->mu held): true with it in *r, false when the session
 * ended. */
static bool await_reply(shoal_manager *m, uint64_t id, struct arrived *r)
{
    struct arrived *a = take_arrived(m, id);
    if (!a && !m->ended && __atomic_load_n(&m->unsent, __ATOMIC_RELAXED)) {
        pthread_mutex_unlock(&m->mu);
        flush_unsent(m); /* this thread blocks: what submits kept goes first */
        pthread_mutex_lock(&m->mu);
    }
    while (!a && !(a = take_arrived(m, id)) && !m->ended) {
        if (m->reading)
            pthread_cond_wait(&m->cv, &m->mu);
        else if (read_one(m, id, r))
            return true;
    }
    if (!a)
        return false;
    *r = *a;
    free(a);
    return true;
}

/* shoal_manager_wait_raw of an entered m. */
static int wait_entered(shoal_manager *m, uint64_t id, void **reply, size_t *len)
{
    struct arrived a;
    pthread_mutex_lock(&m->mu);
    bool got = await_reply(m, id, &a);
    pthread_mutex_unlock(&m->mu);
    if (!got)
        return session_over(m);
    *reply = a.buf;
    *len = a.len;
    return 0;
}

int shoal_manager_wait_raw(shoal_manager *m, uint64_t id, void **reply, size_t *len)
{
    if (!m || !reply || !len)
        return shoal__err(SHOAL_EINVAL, "shoal_manager_wait_raw: NULL argument");
    int rc = enter(m, "manager wait");
    if (rc < 0)
        return rc;
    rc = wait_entered(m, id, reply, len);
    leave(m);
    return rc;
}

void shoal_manager_free(void *p)
{
    free(p);
}

/* ---- the view ---- */

/* The reply to encoded request req[len] from the broker's read view (malloc'd, its id
 * the request's: *rlen bytes), or NULL: no view, a request of m's own still waiting
 * for its reply, or no current reply in the view. m entered. */
static void *view_read(shoal_manager *m, const void *req, size_t len, size_t *rlen)
{
    if (!m->view || __atomic_load_n(&m->inflight, __ATOMIC_SEQ_CST) ||
        __atomic_load_n(&m->unacked, __ATOMIC_RELAXED) ||
        __atomic_load_n(&m->ended, __ATOMIC_RELAXED))
        return NULL;
    uint8_t key[SHOAL_VIEW_SLOT], reply[SHOAL_VIEW_SLOT];
    uint64_t id;
    size_t k = shoal__view_key(req, len, key, sizeof(key), &id);
    size_t n = k && id ? shoal__view_lookup(m->view, key, k, shoal__view_hash(key, k),
                                            reply, sizeof(reply))
                       : 0;
    uint8_t *out = n ? malloc(n + 11) : NULL;
    __atomic_add_fetch(out ? &m->hits : &m->misses, 1, __ATOMIC_RELAXED);
    if (!out)
        return NULL;
    pb_out o = {out, n + 11, 0};
    pb_put_tag(&o, 1, WT_VARINT);
    pb_put_varint(&o, id);
    pb_put(&o, reply, n);
    *rlen = o.len;
    return out;
}

/* view_read as a call of m (entered; NULL when m is closing: the send then fails). */
static void *view_answer(shoal_manager *m, const void *req, size_t len, size_t *rlen)
{
    if (!m->view || enter(m, "manager call") < 0)
        return NULL;
    void *r = view_read(m, req, len, rlen);
    leave(m);
    return r;
}

/* The id of encoded request req[len] (0 when it has none) and its op field (*op NULL
 * when it has none): the first of each, in one pass that stops once both are found. */
static uint64_t req_head(const void *req, size_t len, const char **op, size_t *oplen)
{
    pb_in in = {req, (const uint8_t *)req + len};
    pb_field f = {0};
    uint64_t id = 0;
    *op = NULL;
    *oplen = 0;
    while ((!id || !*op) && in.p < in.end && pb_get_field(&in, &f))
        if (f.number == 1 && f.wt == WT_VARINT && !id)
            id = f.value;
        else if (f.number == 4 && f.wt == WT_LEN && !*op)
            *op = (const char *)f.sub, *oplen = f.len;
    return id;
}

/* Files reply buf[len] to id as arrived (a view hit of submit): whether it could (out
 * of memory: buf freed, the request is to be sent). */
static bool file_arrived(shoal_manager *m, uint64_t id, void *buf, size_t len)
{
    struct arrived *a = buf ? malloc(sizeof(*a)) : NULL;
    if (!a) {
        free(buf);
        return false;
    }
    pthread_mutex_lock(&m->mu);
    *a = (struct arrived){m->arrived, id, buf, len};
    m->arrived = a;
    pthread_mutex_unlock(&m->mu);
    return true;
}

/* ---- locks in the broker's lock table (see "Locks" at the top) ---- */

enum { L_ACQUIRE = 1, L_RELEASE, L_LOCKED };

/* The lock operation op[n] names, or 0. */
static int lock_op(const char *op, size_t n)
{
    return n == 7 && !memcmp(op, "acquire", 7)   ? L_ACQUIRE
           : n == 7 && !memcmp(op, "release", 7) ? L_RELEASE
           : n == 6 && !memcmp(op, "locked", 6)  ? L_LOCKED
                                                 : 0;
}

/* What a lock request carries, or (batch) its one item. */
typedef struct lock_req {
    uint64_t id, thread;
    int64_t timeout_ms;
    const char *name;
    size_t nlen;
    int op;
    const uint8_t *item; /* a batch's only item */
    size_t ilen;
    int items, other; /* batch items; a path, arguments or fields not looked for */
} lock_req;

/* Decodes the fields of encoded Request req[len] a lock request has: whether it is one
 * (for a batch: whether it is a batch). */
static bool lock_parse(const void *req, size_t len, lock_req *q)
{
    *q = (lock_req){0};
    pb_in in = {req, (const uint8_t *)req + len};
    pb_field f = {0};
    while (in.p < in.end) {
        if (!pb_get_field(&in, &f))
            return false;
        if (f.number == 1 && f.wt == WT_VARINT)
            q->id = f.value;
        else if (f.number == 2 && f.wt == WT_LEN)
            q->name = (const char *)f.sub, q->nlen = f.len;
        else if (f.number == 4 && f.wt == WT_LEN) {
            if (!(q->op = lock_op((const char *)f.sub, f.len)))
                return false; /* not a lock's operation: the rest need not be read */
        } else if (f.number == 6 && f.wt == WT_VARINT)
            q->timeout_ms = pb_unzigzag(f.value);
        else if (f.number == 7 && f.wt == WT_VARINT)
            q->thread = f.value;
        else if (f.number == 8 && f.wt == WT_LEN)
            q->item = f.sub, q->ilen = f.len, q->items++;
        else
            q->other = 1;
    }
    return q->items ? !q->other && !q->op : q->op && !q->other && q->name;
}

/* Tells the broker the owner id this connection takes locks under (see "Locks"). */
static int locks_hello(shoal_manager *m)
{
    return shoal_manager_call(m, "", "lock_owner", SHOAL_SEC(10), NULL, 1,
                              shoal_mv_int(shoal__locks_self(m->locks)));
}

/* Notes slot as taken here (for the close) or, gone, as freed. */
static void held_note(shoal_manager *m, int slot, bool taken)
{
    pthread_mutex_lock(&m->mu);
    size_t i = 0;
    while (i < m->nheld && m->held[i] != slot)
        i++;
    if (!taken && i < m->nheld)
        m->held[i] = m->held[--m->nheld];
    if (taken && i == m->nheld && m->nheld == m->capheld) {
        size_t cap = m->capheld ? m->capheld * 2 : 8;
        int *h = realloc(m->held, cap * sizeof(*h));
        if (h) {
            m->held = h;
            m->capheld = cap;
        }
    }
    if (taken && i == m->nheld && m->nheld < m->capheld)
        m->held[m->nheld++] = slot;
    pthread_mutex_unlock(&m->mu);
}

/* A connection that ends holding locks frees them, owner-died, as the broker does a
 * session's. */
static void locks_abandon(shoal_manager *m)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; m->locks && i < m->nheld; i++)
        shoal__lw_abandon(m->locks, m->held[i], shoal__locks_self(m->locks));
    m->nheld = 0;
    pthread_mutex_unlock(&m->mu);
}

/* shoal__lw_acquire's `live`: 0 while the broker runs and m is open. */
static int lock_live(void *arg)
{
    shoal_manager *m = arg;
    if (__atomic_load_n(&m->closing, __ATOMIC_SEQ_CST))
        return shoal__err(SHOAL_ECLOSED, "manager: the session was closed");
    if (!shoal__view_live(m->view))
        return shoal__err(SHOAL_EPEERDEAD, "manager: the broker is gone (%s)",
                          "its read view's liveness lock is free");
    return 0;
}

/* Takes or tries q's lock (slot) here: the reply's status and text in *status, err. */
static int lock_acquire_here(shoal_manager *m, const lock_req *q, int slot, int kind,
                             bool wait, char *err, size_t cap)
{
    shoal_duration t = q->timeout_ms < 0 ? SHOAL_FOREVER : q->timeout_ms * 1000000;
    shoal__deadline d = shoal__deadline_from(wait ? t : 0);
    int rc = shoal__lw_acquire(m->locks, slot, q->thread, &d, lock_live, m);
    if (rc == SHOAL_ETIMEDOUT && !wait && q->timeout_ms)
        return 1; /* the broker waits for it: see "Locks" */
    const char *k = kind == SHOAL_LW_LOCK ? "Lock" : "RLock";
    int n = (int)q->nlen;
    if (rc == 0 || rc == SHOAL_EOWNERDEAD)
        held_note(m, slot, true);
    if (rc == SHOAL_EOWNERDEAD)
        snprintf(err, cap, "%s \"%.*s\": its previous holder died holding it", k, n,
                 q->name);
    else if (rc == SHOAL_EDEADLK)
        snprintf(err, cap, "Lock \"%.*s\": already held by this thread", n, q->name);
    else if (rc == SHOAL_ETIMEDOUT)
        snprintf(err, cap, "%s \"%.*s\": acquire %s", k, n, q->name,
                 q->timeout_ms ? "timed out" : "would have to wait");
    else if (rc == SHOAL_ENOENT)
        snprintf(err, cap, "broker: \"%.*s\" was deleted", n, q->name);
    return rc;
}

/*
 * Runs lock request q here, in the lock table: 0 with the reply in *reply (*rlen
 * bytes), 1 when it is the broker's to run (no lock of the table; a release or a
 * locked() while requests of m are in flight, which the broker must run first; a
 * release that fails, whose error the broker gives), or a negative code (the
 * session over, out of memory).
 */
static int lock_here(shoal_manager *m, const lock_req *q, bool wait, void **reply,
                     size_t *rlen)
{
    int kind, slot = shoal__locks_find(m->locks, q->name, q->nlen, &kind);
    if (slot < 0 || !shoal__view_live(m->view) || /* a dead broker's: it says so */
        (q->op != L_ACQUIRE && (__atomic_load_n(&m->inflight, __ATOMIC_SEQ_CST) ||
                                __atomic_load_n(&m->unacked, __ATOMIC_RELAXED))))
        return 1;
    int rc = enter(m, "manager call");
    if (rc < 0)
        return rc;
    char err[256] = "";
    bv *result = NULL;
    if (q->op == L_ACQUIRE) {
        rc = lock_acquire_here(m, q, slot, kind, wait, err, sizeof(err));
    } else if (q->op == L_RELEASE) {
        rc = shoal__lw_release(m->locks, slot, shoal__locks_self(m->locks), q->thread);
        if (rc == 1)
            held_note(m, slot, false);
        rc = rc < 0 ? 1 : 0;
    } else {
        uint64_t s = atomic_load(&shoal__locks_word(m->locks, slot)->state);
        result = shoal__bv_bool(SHOAL_LW_OWNER(s) != 0);
        rc = result ? 0 : shoal__err(SHOAL_ENOMEM, "manager: out of memory");
    }
    leave(m);
    if (rc == SHOAL_ECLOSED || rc == SHOAL_EPEERDEAD || rc == SHOAL_ENOMEM || rc == 1)
        return rc;
    *reply = shoal__bv_pack_reply(q->id, rc, err, result, rlen);
    shoal__bv_free(result);
    return *reply ? 0 : shoal__err(SHOAL_ENOMEM, "manager: out of memory");
}

/* lock_here for encoded request req[len], when it is a lock request. */
static int lock_call(shoal_manager *m, const void *req, size_t len, bool wait,
                     void **reply, size_t *rlen)
{
    lock_req q;
    return lock_parse(req, len, &q) && !q.items && q.id
               ? lock_here(m, &q, wait, reply, rlen)
               : 1;
}

/* A release sent without waiting (alone, or the only item of a batch: a pipelined
 * Python release): freed here, its reply (the batch's: no failed item) filed as
 * arrived. 0, 1 when the broker is to run it, or a negative code. */
static int lock_send(shoal_manager *m, const void *req, size_t len)
{
    lock_req b, q;
    if (!lock_parse(req, len, &b) || !b.id)
        return 1;
    if (b.items && (b.items != 1 || !lock_parse(b.item, b.ilen, &q) || q.items))
        return 1;
    if (!b.items)
        q = b;
    if (q.op != L_RELEASE)
        return 1;
    q.id = b.id;
    void *reply;
    size_t rlen;
    int rc = lock_here(m, &q, false, &reply, &rlen);
    if (rc != 0)
        return rc;
    return file_arrived(m, b.id, reply, rlen) ? 0 : 1;
}

int shoal_manager_call_raw(shoal_manager *m, const void *req, size_t len, void **reply,
                           size_t *rlen)
{
    const char *op;
    size_t oplen;
    uint64_t id = req ? req_head(req, len, &op, &oplen) : 0;
    if (!m || !req || !reply || !rlen || !id)
        return shoal__err(SHOAL_EINVAL, "shoal_manager_call_raw: %s",
                          id || !req ? "NULL argument" : "a request without an id");
    /* a lock's operation may run in the lock table, a pure one in the view */
    int rc = m->locks && op && lock_op(op, oplen)
                 ? lock_call(m, req, len, true, reply, rlen)
                 : 1;
    if (rc <= 0)
        return rc;
    if (m->view && oplen && shoal__view_pure(op, oplen) &&
        (*reply = view_answer(m, req, len, rlen)))
        return 0;
    if ((rc = enter(m, "manager call")) < 0)
        return rc;
    rc = send_entered(m, req, len, id, 0);
    if (rc == 0)
        rc = wait_entered(m, id, reply, rlen);
    leave(m);
    return rc;
}

int shoal_manager_view_stats(shoal_manager *m, uint64_t *hits, uint64_t *misses)
{
    if (!m)
        return shoal__err(SHOAL_EINVAL, "shoal_manager_view_stats: NULL argument");
    if (hits)
        *hits = __atomic_load_n(&m->hits, __ATOMIC_RELAXED);
    if (misses)
        *misses = __atomic_load_n(&m->misses, __ATOMIC_RELAXED);
    return m->view != NULL;
}

/* ---- typed requests ---- */

static int64_t timeout_ms(shoal_duration t)
{
    return t < 0 ? -1 : t == 0 ? 0 : (t + 999999) / 1000000;
}

static void free_all(shoal_mv **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        shoal__bv_free(MV(v[i]));
}

/* shoal_manager_submit; wait: an acquire of the lock table may wait there (a call's:
 * shoal_manager_wait follows at once), else it is only tried (see "Locks"). */
static int submit(shoal_manager *m, const shoal_manager_request *r, uint64_t *id,
                  bool wait)
{
    int rc = !m || !r || !r->name || !r->op || !id
                 ? shoal__err(SHOAL_EINVAL, "shoal_manager_submit: NULL argument")
                 : 0;
    for (size_t i = 0; rc == 0 && i < r->npath; i++)
        if (!r->path[i])
            rc = shoal__err(SHOAL_ENOMEM,
                            "manager: a path element is NULL (out of memory?)");
    for (size_t i = 0; rc == 0 && i < r->nargs; i++)
        if (!r->args[i])
            rc =
                shoal__err(SHOAL_ENOMEM, "manager: an argument is NULL (out of memory?)");
    if (rc == 0) {
        breq q = SHOAL__BROKER__REQUEST__INIT;
        q.id = *id = shoal_manager_next_id(m);
        q.object = (char *)r->name;
        q.op = (char *)r->op;
        q.path = (bv **)r->path;
        q.n_path = r->npath;
        q.args = (bv **)r->args;
        q.n_args = r->nargs;
        q.timeout_ms = timeout_ms(r->timeout);
        q.thread = (uint64_t)pthread_self(); /* locks are held per thread */
        uint8_t stack[512];
        size_t len, rlen = 0;
        void *buf = shoal__bv_pack_request(&q, stack, sizeof(stack), &len);
        void *hit = NULL;
        size_t oplen = strlen(r->op);
        int lk = buf && m->locks && !r->npath && !r->nargs && lock_op(r->op, oplen)
                     ? lock_call(m, buf, len, wait, &hit, &rlen) /* 1: the broker's */
                     : 1;
        if (lk == 1 && buf && m->view && shoal__view_pure(r->op, oplen))
            hit = view_answer(m, buf, len, &rlen);
        if (lk < 0)
            rc = lk;
        else if (!file_arrived(m, q.id, hit, rlen)) /* a hit is answered: nothing sent */
            rc = buf ? send_request(m, buf, len, q.id, 1)
                     : shoal__err(SHOAL_ENOMEM, "manager: out of memory");
        if (buf != stack)
            free(buf);
    }
    if (r) {
        free_all(r->path, r->npath);
        free_all(r->args, r->nargs);
    }
    return rc;
}

int shoal_manager_submit(shoal_manager *m, const shoal_manager_request *r, uint64_t *id)
{
    return submit(m, r, id, false);
}

int shoal_manager_wait(shoal_manager *m, uint64_t id, shoal_mv **result)
{
    if (result)
        *result = NULL;
    void *buf;
    size_t len;
    int rc = shoal_manager_wait_raw(m, id, &buf, &len);
    if (rc < 0)
        return rc;
    shoal_bv_reply r;
    rc = shoal__bv_unpack_reply(buf, len, &r);
    if (rc == 0) {
        rc = r.status;
        if (rc < 0) /* the text is in the frame, not terminated (an int for %.*s) */
            shoal__err(rc, "%.*s", (int)(r.error_len < 65536 ? r.error_len : 65536),
                       r.error);
        else if (result) {
            *result = (shoal_mv *)r.result;
            r.result = NULL;
        }
        shoal__bv_reply_free(&r);
    }
    free(buf);
    return rc;
}

static int call_args(shoal_manager *m, const char *name, const char *op,
                     shoal_duration timeout, shoal_mv **result, shoal_mv **args, size_t n)
{
    shoal_manager_request r = {name, op, NULL, 0, args, n, timeout};
    uint64_t id;
    if (result)
        *result = NULL;
    int rc = submit(m, &r, &id, true);
    return rc < 0 ? rc : shoal_manager_wait(m, id, result);
}

int shoal_manager_call(shoal_manager *m, const char *name, const char *op,
                       shoal_duration timeout, shoal_mv **result, size_t nargs, ...)
{
    shoal_mv *args[16];
    va_list ap;
    va_start(ap, nargs);
    for (size_t i = 0; i < nargs; i++) {
        shoal_mv *v = va_arg(ap, shoal_mv *);
        if (i < 16)
            args[i] = v;
        else
            shoal__bv_free(MV(v));
    }
    va_end(ap);
    if (nargs > 16) {
        free_all(args, 16);
        return shoal__err(SHOAL_EINVAL, "shoal_manager_call: more than 16 arguments");
    }
    return call_args(m, name, op, timeout, result, args, nargs);
}

int shoal_manager_create(shoal_manager *m, const char *name, shoal_manager_kind kind,
                         shoal_mv *init, const char *typecode)
{
    shoal_mv *args[3] = {shoal_mv_int(kind), init ? init : shoal_mv_none(),
                         shoal_mv_str(typecode ? typecode : "")};
    shoal_mv *created;
    int rc = call_args(m, name, "create", 0, &created, args, 3);
    if (rc == 0)
        rc = shoal_mv_as_bool(created);
    shoal_mv_free(created);
    return rc;
}

int shoal_manager_delete(shoal_manager *m, const char *name)
{
    return call_args(m, name, "delete", 0, NULL, NULL, 0);
}

/* ---- watches ---- */

/*
 * A watch is a call of the Broker service's server-streaming Watch method on m's
 * channel, next to its session. shoal_manager_watch waits for the first change (the
 * broker's "resync") so that a watch of nothing fails there, and keeps it for the
 * first shoal_manager_watch_next.
 */
static const shoal_rpc_method watch_method = {
    "Watch", SHOAL_RPC_SERVER_STREAMING, NULL, NULL, NULL, 0};

struct shoal_manager_watch {
    shoal_rpc_call *call;
    void *first; /* the first change, not taken yet */
    size_t first_len;
    int over; /* the stream ended: its code */
};

typedef struct change_full {
    shoal_manager_change pub;
    Shoal__Broker__Change *msg;
    bv *path, *args;
} change_full;

/* The code for a watch whose stream ended, from the call's rpc status. */
static int watch_end_code(shoal_rpc_call *c)
{
    char detail[256];
    int st = shoal_rpc_call_finish(c, detail, sizeof(detail));
    switch (st) {
    case SHOAL_RPC_OK:
        return shoal__err(SHOAL_ECLOSED, "manager: the watch is over (object deleted)");
    case SHOAL_RPC_NOT_FOUND:
        return shoal__err(SHOAL_ENOENT, "%s", detail);
    case SHOAL_RPC_INVALID_ARGUMENT:
        return shoal__err(SHOAL_EINVAL, "%s", detail);
    case SHOAL_RPC_RESOURCE_EXHAUSTED:
        return shoal__err(SHOAL_ENOMEM, "%s", detail);
    default:
        return shoal__err(SHOAL_EPEERDEAD, "manager: the watch ended: %s", detail);
    }
}

int shoal_manager_watch_next_raw(shoal_manager_watch *w, shoal_duration timeout,
                                 void **buf, size_t *len)
{
    if (!w || !buf || !len)
        return shoal__err(SHOAL_EINVAL, "shoal_manager_watch_next: NULL argument");
    if (w->first) {
        *buf = w->first;
        *len = w->first_len;
        w->first = NULL;
        return 1;
    }
    if (w->over)
        return shoal__err(w->over, "manager: the watch is over");
    int rc = shoal_rpc_call_wait(w->call, timeout);
    if (rc <= 0)
        return rc;
    rc = shoal_rpc_call_recv(w->call, buf, len);
    if (rc == 0)
        rc = w->over = watch_end_code(w->call);
    return rc;
}

int shoal_manager_watch_open_raw(shoal_manager *m, const void *req, size_t len,
                                 shoal_manager_watch **out)
{
    if (!m || !req || !out)
        return shoal__err(SHOAL_EINVAL, "shoal_manager_watch_open: NULL argument");
    int rc = enter(m, "shoal_manager_watch_open");
    if (rc < 0)
        return rc;
    shoal_manager_watch *w = calloc(1, sizeof(*w));
    if (!w) {
        leave(m);
        return shoal__err(SHOAL_ENOMEM, "shoal_manager_watch_open: out of memory");
    }
    rc = shoal_rpc_call_start_request(&w->call, m->ch, "shoal.broker.Broker",
                                      &watch_method, req, len, NULL);
    leave(m);
    if (rc == 0) {
        rc = shoal_manager_watch_next_raw(w, SHOAL_FOREVER, &w->first, &w->first_len);
        rc = rc == 1 ? 0 : rc < 0 ? rc : SHOAL_ETIMEDOUT;
    }
    if (rc < 0) {
        shoal_manager_watch_close(w);
        return rc;
    }
    *out = w;
    return 0;
}

int shoal_manager_watch_open(shoal_manager *m, const char *name, shoal_mv *key,
                             shoal_manager_watch **out)
{
    int rc = !name ? shoal__err(SHOAL_EINVAL, "shoal_manager_watch_open: NULL argument")
             : key && !shoal__bv_is_key(MV(key))
                 ? shoal__err(SHOAL_EINVAL,
                              "shoal_manager_watch_open: a key that cannot be one")
                 : 0;
    if (rc == 0) {
        Shoal__Broker__WatchRequest r = SHOAL__BROKER__WATCH_REQUEST__INIT;
        r.object = (char *)name;
        r.key = MV(key);
        size_t len;
        void *buf = shoal__bv_pack(&r.base, &len);
        rc = buf ? shoal_manager_watch_open_raw(m, buf, len, out)
                 : shoal__err(SHOAL_ENOMEM, "shoal_manager_watch_open: out of memory");
        free(buf);
    }
    shoal__bv_free(MV(key));
    return rc;
}

/* Moves the n items of a repeated Value field into a new list. */
static bv *take_list(bv **items, size_t *n)
{
    bv *l = shoal__bv_seq(BV_LIST);
    for (size_t i = 0; l && i < *n; i++)
        if (shoal__bv_seq_insert(l, i, items[i]) < 0) {
            shoal__bv_free(l);
            l = NULL;
            for (size_t j = i + 1; j < *n; j++) /* item i was freed */
                shoal__bv_free(items[j]);
        }
    *n = 0;
    return l;
}

int shoal_manager_watch_next(shoal_manager_watch *w, shoal_duration timeout,
                             shoal_manager_change **ch)
{
    if (!ch)
        return shoal__err(SHOAL_EINVAL, "shoal_manager_watch_next: NULL argument");
    void *buf;
    size_t len;
    int rc = shoal_manager_watch_next_raw(w, timeout, &buf, &len);
    if (rc != 1)
        return rc;
    change_full *f = calloc(1, sizeof(*f));
    if (f)
        f->msg = (Shoal__Broker__Change *)shoal__bv_unpack(
            &shoal__broker__change__descriptor, buf, len);
    free(buf);
    if (!f || !f->msg) {
        free(f);
        return f ? SHOAL_EINVALID_DATA
                 : shoal__err(SHOAL_ENOMEM, "manager: out of memory");
    }
    f->path = take_list(f->msg->path, &f->msg->n_path);
    f->args = take_list(f->msg->args, &f->msg->n_args);
    f->pub = (shoal_manager_change){f->msg->seq,
                                    f->msg->op,
                                    (shoal_mv *)f->path,
                                    (shoal_mv *)f->args,
                                    (shoal_mv *)f->msg->result,
                                    f->msg->present ? (shoal_mv *)f->msg->value : NULL,
                                    f};
    if (!f->path || !f->args) {
        shoal_manager_change_free(&f->pub);
        return shoal__err(SHOAL_ENOMEM, "manager: out of memory");
    }
    *ch = &f->pub;
    return 1;
}

void shoal_manager_change_free(shoal_manager_change *ch)
{
    if (!ch)
        return;
    change_full *f = ch->priv_;
    shoal__bv_free(f->path);
    shoal__bv_free(f->args);
    protobuf_c_message_free_unpacked(&f->msg->base, NULL);
    free(f);
}

void shoal_manager_watch_close(shoal_manager_watch *w)
{
    if (!w)
        return;
    shoal_rpc_call_free(w->call); /* cancels it: the broker drops the watcher */
    free(w->first);
    free(w);
}
