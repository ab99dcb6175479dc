/*
 * watch.c — the Broker service's Watch method: a stream of the changes to one object,
 * or to one key of a dict or Namespace.
 *
 * Watchers. A Watch call is served on a thread of its own (a server-streaming
 * handler). It registers a broker_watcher on the object (o->watchers) and sends a
 * first "resync" change carrying the current state, so the client starts from a known
 * value. From then on core.c reports every write to the object, under the broker's
 * mutex:
 *
 *   broker__watch_args    before the operation: a copy of its arguments, made only
 *                         when an object watcher will report them (operations take
 *                         their arguments over);
 *   broker__watch_change  after it: o->seq counts the write, and each watcher stages
 *                         a Change — an object watcher the operation, path,
 *                         arguments and result; a key watcher the key's value, only
 *                         when it differs from the value it reported last (so any
 *                         write that reaches the key counts: set, del, pop, update,
 *                         clear, incr, a change nested under it);
 *   broker__watch_flush   at the end of the request, once the writes are committed
 *                         (docs/broker.md, "Durability"): the staged changes become
 *                         ready to send (dropped when the commit failed), so no watcher
 *                         sees a change a crash could lose;
 *   broker__watch_deleted the object is deleted: a last "deleted" change, and the
 *                         watcher is detached.
 *
 * Slow watchers: drop to resync. The handler thread sends the ready changes one by
 * one; the rpc stream's window stops it while the client has not consumed
 * SHOAL_RPC_WINDOW of them. Behind that, a watcher keeps at most WATCH_MAX_CHANGES
 * ready changes or WATCH_MAX_BYTES bytes: one more and it drops them all and marks
 * itself behind; further changes are dropped too. When the handler comes to send, it
 * takes the broker's mutex and builds one "resync" change with the current state and
 * seq. So a watcher that reads slowly (or not at all) costs a bounded amount of
 * memory, never holds up a writer, and still ends on the right state; the gap in seq
 * (and the "resync") tells it changes were skipped.
 *
 * Locking: the broker's mutex, then a watcher's. A watcher's own mutex guards its ready
 * list and flags between the broker's threads and its handler; its staged list and
 * its place on the object are only touched under the broker's mutex. The handler
 * wakes every WATCH_POLL to notice a cancelled call (the client closed the watch, or
 * died), then detaches itself under the broker's mutex.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker_internal.h"
#include "internal.h"

#define WATCH_MAX_CHANGES 1024
#define WATCH_MAX_BYTES   ((size_t)4 << 20)
#define WATCH_POLL_NS     50000000 /* 50 ms */

typedef Shoal__Broker__Change bchange;

struct wchange {
    struct wchange *next;
    void *buf;
    size_t len;
};

struct wlist {
    struct wchange *head, *tail;
    size_t n, bytes;
};

typedef struct broker_watcher {
    struct broker_watcher *next;        /* on its object */
    struct broker_watcher *staged_next; /* on b->wstaged */
    bobj *o;                            /* NULL once the object was deleted */
    bv *key;                            /* NULL: the whole object */
    bv *last; /* key watch: the value reported last (NULL: none) */
    struct wlist staged, ready;
    int on_staged;
    int behind; /* changes were dropped: a resync comes next */
    int ended;  /* the "deleted" change is the last */
    pthread_mutex_t mu;
    pthread_cond_t cv;
} broker_watcher;

/* ---- change lists ---- */

static void list_push(struct wlist *l, void *buf, size_t len)
{
    struct wchange *c = malloc(sizeof(*c));
    if (!c)
        return free(buf);
    *c = (struct wchange){NULL, buf, len};
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
    l->n++;
    l->bytes += len;
}

static struct wchange *list_pop(struct wlist *l)
{
    struct wchange *c = l->head;
    if (c && !(l->head = c->next))
        l->tail = NULL;
    if (c) {
        l->n--;
        l->bytes -= c->len;
    }
    return c;
}

static void list_clear(struct wlist *l)
{
    for (struct wchange *c; (c = list_pop(l));) {
        free(c->buf);
        free(c);
    }
}

/* ---- building changes ---- */

/* The value key has in o's data (NULL: absent, or o is not a map). */
static const bv *key_value(const bobj *o, const bv *key)
{
    const bv *d = o->st ? o->st->data : NULL;
    long at = !d || d->kind_case != BV_MAP ? -1
              : o->idx                     ? broker__index_find(o->idx, d, key)
                                           : shoal__bv_map_find(d, key);
    return at >= 0 ? d->map->entries[at]->value : NULL;
}

/* Packs a change; value, result (borrowed) may be NULL. */
static void *pack_change(uint64_t seq, const char *op, const breq *req, bv *args,
                         const bv *result, const bv *value, int present, size_t *len)
{
    bchange c = SHOAL__BROKER__CHANGE__INIT;
    c.seq = seq;
    c.op = (char *)op;
    if (req) {
        c.path = req->path;
        c.n_path = req->n_path;
    }
    if (args) {
        c.args = args->list->items;
        c.n_args = args->list->n_items;
    }
    c.result = (bv *)result;
    c.value = (bv *)value;
    c.present = present;
    return shoal__bv_pack(&c.base, len);
}

/* The "resync" change of w: its object's current state (under b->mu). */
static void *pack_resync(const broker_watcher *w, size_t *len)
{
    if (!w->key)
        broker__settle(w->o); /* packed whole */
    const bv *v = w->key ? key_value(w->o, w->key) : w->o->st->data;
    return pack_change(w->o->seq, "resync", NULL, NULL, NULL, v, v != NULL, len);
}

/* ---- the hooks core.c calls (under b->mu) ---- */

static int has_object_watcher(const bobj *o)
{
    for (const broker_watcher *w = o->watchers; w; w = w->next)
        if (!w->key)
            return 1;
    return 0;
}

size_t broker__watch_count(const bobj *o)
{
    size_t n = 0;
    for (const broker_watcher *w = o->watchers; w; w = w->next)
        n++;
    return n;
}

bv *broker__watch_args(const bobj *o, const breq *req)
{
    if (!has_object_watcher(o))
        return NULL;
    bv *l = shoal__bv_seq(BV_LIST);
    for (size_t i = 0; l && i < req->n_args; i++) {
        bv *a = req->args[i] ? shoal__bv_clone(req->args[i]) : shoal__bv_none();
        if (!a || shoal__bv_seq_insert(l, i, a) < 0) {
            shoal__bv_free(l);
            l = NULL;
        }
    }
    return l;
}

static void stage(shoal_broker *b, broker_watcher *w, void *buf, size_t len)
{
    if (!buf)
        return;
    list_push(&w->staged, buf, len);
    if (!w->on_staged) {
        w->on_staged = 1;
        w->staged_next = b->wstaged;
        b->wstaged = w;
    }
}

/* A key watcher: stages the key's value when it is not the one reported last. */
static void stage_key(shoal_broker *b, broker_watcher *w, const char *op, const breq *req)
{
    const bv *v = key_value(w->o, w->key);
    if (v == w->last || (v && w->last && shoal__bv_equal(v, w->last)))
        return;
    bv *copy = v ? shoal__bv_clone(v) : NULL;
    if (v && !copy)
        return;
    shoal__bv_free(w->last);
    w->last = copy;
    size_t len;
    void *buf = pack_change(w->o->seq, op, req, NULL, NULL, v, v != NULL, &len);
    stage(b, w, buf, len);
}

void broker__watch_change(shoal_broker *b, bobj *o, const breq *req, bv *args,
                          const bv *result)
{
    o->seq++;
    if (!o->watchers && !args) /* the common case: nobody watches */
        return;
    const char *op = req ? req->op : "released";
    for (broker_watcher *w = o->watchers; w; w = w->next) {
        if (w->key) {
            stage_key(b, w, op, req);
        } else {
            size_t len;
            void *buf = pack_change(o->seq, op, req, args, result, NULL, 0, &len);
            stage(b, w, buf, len);
        }
    }
    shoal__bv_free(args);
}

void broker__watch_deleted(shoal_broker *b, bobj *o)
{
    o->seq++;
    for (broker_watcher *w = o->watchers, *next; w; w = next) {
        next = w->next;
        size_t len;
        void *buf = pack_change(o->seq, "deleted", NULL, NULL, NULL, NULL, 0, &len);
        stage(b, w, buf, len);
        w->o = NULL;
        w->next = NULL;
    }
    o->watchers = NULL;
}

/* Moves w's staged changes to its ready list, or drops them all when it is behind. */
static void make_ready(broker_watcher *w)
{
    pthread_mutex_lock(&w->mu);
    for (struct wchange *c; (c = list_pop(&w->staged));) {
        if (!w->o) /* deleted: the last changes always go out, after a resync if due */
            w->ended = 1;
        else if (w->behind || w->ready.n >= WATCH_MAX_CHANGES ||
                 w->ready.bytes + c->len > WATCH_MAX_BYTES) {
            w->behind = 1;
            list_clear(&w->ready);
            free(c->buf);
            free(c);
            continue;
        }
        c->next = NULL;
        if (w->ready.tail)
            w->ready.tail->next = c;
        else
            w->ready.head = c;
        w->ready.tail = c;
        w->ready.n++;
        w->ready.bytes += c->len;
    }
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void broker__watch_flush(shoal_broker *b, int committed)
{
    while (b->wstaged) {
        broker_watcher *w = b->wstaged;
        b->wstaged = w->staged_next;
        w->on_staged = 0;
        if (committed)
            make_ready(w);
        else
            list_clear(&w->staged);
    }
}

/* ---- the handler ---- */

static void watcher_free(broker_watcher *w)
{
    list_clear(&w->staged);
    list_clear(&w->ready);
    shoal__bv_free(w->key);
    shoal__bv_free(w->last);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

/* Registers a watcher for the request in buf[len] and sends nothing yet: the
 * handler's status code on failure (with the detail set). */
static int attach(shoal_broker *b, shoal_rpc_ctx *ctx, const void *buf, size_t len,
                  broker_watcher **out)
{
    Shoal__Broker__WatchRequest *r = (Shoal__Broker__WatchRequest *)shoal__bv_unpack(
        &shoal__broker__watch_request__descriptor, buf, len);
    if (!r) {
        shoal_rpc_ctx_set_detail(ctx, "%s", shoal_errdetail());
        return SHOAL_RPC_INVALID_ARGUMENT;
    }
    broker_watcher *w = calloc(1, sizeof(*w));
    int code = w ? SHOAL_RPC_OK : SHOAL_RPC_RESOURCE_EXHAUSTED;
    if (w) {
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        w->key = r->key;
        r->key = NULL;
    }
    pthread_mutex_lock(&b->mu);
    bobj *o = w ? broker__find(b, r->object) : NULL;
    int k = o ? o->st->kind : 0;
    if (w && !o) {
        shoal_rpc_ctx_set_detail(ctx, "broker: no object \"%.255s\"", r->object);
        code = SHOAL_RPC_NOT_FOUND;
    } else if (w && w->key && k != SHOAL__BROKER__KIND__DICT &&
               k != SHOAL__BROKER__KIND__NAMESPACE) {
        shoal_rpc_ctx_set_detail(ctx,
                                 "broker: \"%.255s\" is not a dict or Namespace: "
                                 "no key to watch",
                                 r->object);
        code = SHOAL_RPC_INVALID_ARGUMENT;
    } else if (w) {
        const bv *v = w->key ? key_value(o, w->key) : NULL;
        w->last = v ? shoal__bv_clone(v) : NULL;
        w->o = o;
        size_t rlen;
        void *rbuf = pack_resync(w, &rlen);
        if (rbuf)
            list_push(&w->ready, rbuf, rlen);
        w->next = o->watchers;
        o->watchers = w;
        b->nwatchers++;
    }
    pthread_mutex_unlock(&b->mu);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    if (code != SHOAL_RPC_OK && w) {
        watcher_free(w);
        w = NULL;
    } else if (!w) {
        shoal_rpc_ctx_set_detail(ctx, "broker: out of memory");
    }
    *out = w;
    return code;
}

static void detach(shoal_broker *b, broker_watcher *w)
{
    pthread_mutex_lock(&b->mu);
    if (w->o) {
        broker_watcher **p = &w->o->watchers;
        while (*p != w)
            p = &(*p)->next;
        *p = w->next;
    }
    if (w->on_staged) {
        broker_watcher **p = &b->wstaged;
        while (*p != w)
            p = &(*p)->staged_next;
        *p = w->staged_next;
    }
    b->nwatchers--;
    pthread_mutex_unlock(&b->mu);
}

/* The next change to send (NULL: the watch is over, or the call was cancelled). */
static struct wchange *next_change(shoal_broker *b, broker_watcher *w, shoal_rpc_ctx *ctx)
{
    pthread_mutex_lock(&w->mu);
    while (!w->ready.head && !w->behind && !w->ended && !shoal_rpc_ctx_cancelled(ctx)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += WATCH_POLL_NS;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
    }
    int behind = w->behind;
    pthread_mutex_unlock(&w->mu);
    if (behind) { /* under both mutexes: nothing staged, the snapshot is current */
        pthread_mutex_lock(&b->mu);
        pthread_mutex_lock(&w->mu);
        w->behind = 0;
        if (w->o) {
            list_clear(&w->ready);
            size_t len;
            void *buf = pack_resync(w, &len);
            if (buf)
                list_push(&w->ready, buf, len);
        }
        pthread_mutex_unlock(&w->mu);
        pthread_mutex_unlock(&b->mu);
        pthread_mutex_lock(&w->mu);
    } else {
        pthread_mutex_lock(&w->mu);
    }
    struct wchange *c = shoal_rpc_ctx_cancelled(ctx) ? NULL : list_pop(&w->ready);
    pthread_mutex_unlock(&w->mu);
    return c;
}

int broker_watch(shoal_rpc_ctx *ctx, void *arg)
{
    shoal_broker *b = arg;
    void *msg;
    size_t len;
    if (shoal_rpc_ctx_recv(ctx, &msg, &len) != 1)
        return SHOAL_RPC_CANCELLED;
    broker_watcher *w = NULL;
    int code = attach(b, ctx, msg, len, &w);
    free(msg);
    if (code != SHOAL_RPC_OK)
        return code;
    int rc = 0;
    for (struct wchange *c; rc == 0 && (c = next_change(b, w, ctx));) {
        rc = shoal_rpc_ctx_send(ctx, c->buf, c->len);
        free(c->buf);
        free(c);
    }
    detach(b, w);
    watcher_free(w);
    return rc == 0 && !shoal_rpc_ctx_cancelled(ctx) ? SHOAL_RPC_OK : SHOAL_RPC_CANCELLED;
}
