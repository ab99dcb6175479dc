/*
 * core.c — the broker's objects and the operations on them.
 *
 * Objects. Each named object is a bobj: its name and its state, one protobuf-c
 * Object message (broker.proto) — kind, data (a Value: the dict's map, the list, the
 * queue's items, ...), typecode, count, limit, owner, flag. A dict or Namespace also
 * has a hash index of its keys (index.c): the map ops go through find_key / put_key /
 * take_key, which use it for the object's own map and scan a nested one. Objects live
 * in a hash table by name.
 *
 * Decoding. broker_run_all decodes the requests a session has at hand into one arena
 * on its stack (shoal__bv_unpack_in: manager_value.c's Request decoder), outside the
 * mutex, then runs them in a row in one hold of it (with a data directory, one hold
 * each: see Group commit below), and drops the arena whole once
 * they are done: what an object keeps of a request is copied out with malloc (keep,
 * take_arg) — or, a string or bytes no longer than the value it replaces, into that
 * value's own block (copy_in_place) — and a request that parks is copied whole (park:
 * own_request), so that a waiter's arguments are taken over as they are. Finding the
 * object: the one the last request found is tried first (b->recent), as a client's
 * pipelined requests mostly go to one object.
 *
 * Requests. One mutex serialises every operation, so each is atomic: increment,
 * compare-and-set, setdefault, pop, extend need no lock in the client. A request runs
 * its operation (the ops[] table: name, kinds it applies to, whether it writes,
 * whether it may block) on the object — or, with a path, on a container nested in
 * the object (a list inside a dict is reached by its key, so d['x'].append(1) changes
 * the stored list). Its outcome is the Reply: status 0 or a SHOAL_E* code, an error
 * text, a result Value.
 *
 * Blocking. An operation that cannot complete now (queue get on an empty queue, lock
 * acquire of a held lock, event / condition / barrier wait) returns BLOCK; with a
 * timeout other than 0 the request is parked as a waiter on the object: no thread
 * waits for it. After every operation that writes, pump() retries the object's
 * waiters in arrival order, and each one that completes gets its reply then. A timer
 * thread wakes at the earliest deadline and answers the waiters whose time is up
 * (SHOAL_ETIMEDOUT). Condition waiters go through two stages (waiting for a notify,
 * then for the lock back); barrier waiters complete when their generation passes.
 *
 * Barging. A Lock or RLock freed while requests wait for it does not go to the first
 * waiter at once: for BARGE_WINDOW_NS it stays free, and an acquire arriving meanwhile
 * takes it — typically the session that just freed it, coming back for it, as a thread
 * takes a process-local mutex again before the woken waiter runs. Handing it over
 * instead costs a wake-up of the waiting client per turn, usually asleep by then: four
 * Python clients taking turns at one lock made about 60 k turns a second that way,
 * 130-140 k with barging. A window that closes with the lock still free (the timer
 * thread watches grant_at) hands it to the first waiter; and a waiter that has waited
 * BARGE_WAIT_NS is passed over no more: the next release hands the lock to it, so
 * barging delays a waiter by milliseconds at most. Conditions, semaphores and the rest
 * serve their waiters in arrival order at once. A Lock or RLock in the lock table
 * (locks.c: shm:// clients take it in shared memory) has no window: its word goes to
 * whoever takes it first, and the timer retries its parked requests every LW_POLL_NS.
 *
 * Durability and replies. Every object an operation changed is marked dirty, and
 * with a data directory the operation logs the records it changed (store.c: one per
 * dict entry or list / queue item; the rec_* helpers, which nested paths leave to
 * run(): it logs the top element the path went through); at the end of the request
 * (or timer pass, or of a session's batch of pipelined requests: broker_run_all, with or
 * without a data directory) store.c
 * writes the log and the changed objects' headers in one LMDB transaction, and only
 * after it commits are the replies handed to their sessions (pending list). So a
 * client never sees an acknowledgement for a write that a crash could lose. Group
 * commit: while a session runs a batch (broker_batching), the requests of the other
 * sessions that end in the meantime leave their commit to the end of that batch, so
 * one transaction and one fsync cover every session's requests that ran meanwhile (as
 * Redis's appendfsync always covers an event loop turn), up to GROUP_MAX replies
 * waiting. A request runs in two steps: execute (the operation, or parking it) and
 * its reply (dispatch: pend packs it with shoal__bv_pack_reply_in, by hand for the
 * common shapes, into its own place in the pending list when it fits there — no
 * allocation; finish hands a session's replies in a row to it together); a batch's
 * items (batch.c) take the first step only (run_item), which returns each one's status
 * and error to the batch.
 *
 * The read view (view.c). Every change to an object moves its generation in the
 * view (broker__dirty, on every call, not only the first of a request; a write that
 * failed part way; the deletion), before any reply of the change is handed over. A
 * request whose operation is F_PURE (its result depends on the object's state and
 * its arguments only) and that succeeded stages its reply, keyed by the request's
 * bytes as they came (b->raw); finish() publishes the staged replies after the
 * commit, those whose objects did not change meanwhile.
 *
 * Sessions and ownership. Locks are held by (session, client thread); semaphore units
 * are counted per session in the semaphore's data map. When a session ends (the client
 * disconnected or died) its waiters are dropped, its locks freed with the owner-died
 * flag (the next acquirer gets SHOAL_EOWNERDEAD) and its semaphore units returned. A
 * restarted broker does the same for every session of its previous life. A Lock or
 * RLock in the lock table keeps its holder in its word (locks.c), and its owner
 * fields follow the word.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker_internal.h"
#include "internal.h"
#include "manager_view.h"

#define BLOCK 1

/* Barging (see the top comment): how long a freed lock waits for a taker other than
 * its first waiter, and how long a waiter may be passed over. */
#define BARGE_WINDOW_NS (50 * 1000LL)
#define BARGE_WAIT_NS   (2 * 1000000LL)

/* How often the timer retries requests parked on a lock of the lock table (locks.c). */
#define LW_POLL_NS (200 * 1000LL)

/* The stack space the requests run together are decoded into (broker_run_all: about
 * 400 bytes a common request); more take blocks from malloc as well. */
#define ARENA_BYTES 8192

/* Group commit: replies waiting for a batch in progress, at most; one more and the
 * request that ends commits them (so a stream of batches cannot delay them forever). */
#define GROUP_MAX 256

/* ---- objects ----------------------------------------------------------------------- */

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

bobj *broker__find(shoal_broker *b, const char *name)
{
    if (b->recent && !strcmp(b->recent->name, name)) /* the same as the last request's */
        return b->recent;
    for (bobj *o = b->tab[hash_name(name) % b->ntab]; o; o = o->next)
        if (!strcmp(o->name, name))
            return b->recent = o;
    return NULL;
}

static int rehash(shoal_broker *b)
{
    size_t n = b->ntab * 2;
    bobj **t = calloc(n, sizeof(*t));
    if (!t)
        return -1;
    for (size_t i = 0; i < b->ntab; i++)
        for (bobj *o = b->tab[i], *next; o; o = next) {
            next = o->next;
            o->next = t[hash_name(o->name) % n];
            t[hash_name(o->name) % n] = o;
        }
    free(b->tab);
    b->tab = t;
    b->ntab = n;
    return 0;
}

bobj *broker__insert(shoal_broker *b, const char *name, bobjstate *st)
{
    if (b->nobj >= b->ntab && rehash(b) < 0)
        return NULL;
    bobj *o = calloc(1, sizeof(*o));
    char *n = strdup(name);
    bool map = st->kind == SHOAL__BROKER__KIND__DICT ||
               st->kind == SHOAL__BROKER__KIND__NAMESPACE;
    if (o && map && st->data->kind_case == BV_MAP &&
        (!(o->idx = broker__index_new()) ||
         broker__index_build(o->idx, st->data, NULL) < 0)) {
        broker__index_free(o->idx); /* out of memory */
        o->idx = NULL;
        free(n);
        n = NULL;
    }
    if (!o || !n) {
        free(o);
        free(n);
        return NULL;
    }
    o->name = n;
    o->st = st;
    size_t h = hash_name(name) % b->ntab;
    o->next = b->tab[h];
    b->tab[h] = o;
    b->nobj++;
    return o;
}

static void unlink_obj(shoal_broker *b, bobj *o)
{
    bobj **p = &b->tab[hash_name(o->name) % b->ntab];
    if (b->recent == o)
        b->recent = NULL;
    while (*p != o)
        p = &(*p)->next;
    *p = o->next;
    b->nobj--;
}

void broker__settle(bobj *o)
{
    bv *d = o->st ? o->st->data : NULL;
    if (d && o->idx && d->kind_case == BV_MAP)
        broker__index_compact(o->idx, d);
    if (d && o->front && d->kind_case == BV_LIST) {
        Shoal__Broker__Seq *s = d->list;
        memmove(s->items, s->items + o->front,
                (s->n_items - o->front) * sizeof(*s->items));
        if (o->keys) /* they stay beside their items */
            memmove(o->keys, o->keys + o->front,
                    (s->n_items - o->front) * sizeof(*o->keys));
        s->n_items -= o->front;
        o->front = 0;
    }
}

void broker__free_obj(bobj *o)
{
    broker__settle(o);
    if (o->st)
        protobuf_c_message_free_unpacked(&o->st->base, NULL);
    broker__index_free(o->idx);
    free(o->keys);
    free(o->name);
    free(o);
}

void broker__dirty(shoal_broker *b, bobj *o)
{
    broker__view_bump(b, o, 0); /* every change, not only the first of a request */
    if (o->dirty)
        return;
    if (b->ndirty == b->capdirty) {
        size_t cap = b->capdirty ? b->capdirty * 2 : 16;
        bobj **d = realloc(b->dirty, cap * sizeof(*d));
        if (!d)
            return; /* not kept this time: it is in memory, written with its next change
                     */
        b->dirty = d;
        b->capdirty = cap;
    }
    o->dirty = 1;
    b->dirty[b->ndirty++] = o;
}

/* ---- replies ----------------------------------------------------------------------- */

/* Packs the reply to request id (result taken over, unless lent: still the object's)
 * for the session, to be handed over by finish(). */
static void pend(shoal_broker *b, broker_session *s, uint64_t id, int rc, bv *result,
                 bool lent)
{
    if (s && b->npend == b->cappend) {
        size_t cap = b->cappend ? b->cappend * 2 : 16;
        broker_reply *p = realloc(b->pend, cap * sizeof(*p));
        if (p) {
            b->pend = p;
            b->cappend = cap;
        }
    }
    if (s && b->npend < b->cappend) { /* packed in its place (small) when it fits */
        broker_reply *r = &b->pend[b->npend];
        void *buf = shoal__bv_pack_reply_in(
            r->small, sizeof(r->small), id, rc < 0 ? rc : 0,
            rc < 0 ? shoal_errdetail() : NULL, rc < 0 ? NULL : result, &r->len);
        if (buf) {
            r->s = s;
            r->id = id;
            r->buf = buf == r->small ? NULL : buf;
            b->npend++;
        }
    }
    if (!lent)
        shoal__bv_free(result);
}

/* Makes the changes durable, then hands the replies over (under b->mu). */
static void finish(shoal_broker *b)
{
    int rc = 0;
    if (b->ndirty && b->store) {
        shoal__test_point("broker.before_commit");
        rc = broker__store_commit(b, b->dirty, b->ndirty);
        if (rc == 0)
            shoal__test_point("broker.after_commit");
    }
    for (size_t i = 0; i < b->ndirty; i++) {
        b->dirty[i]->dirty = b->dirty[i]->hdr = b->dirty[i]->full = 0;
        if (!b->dirty[i]->st) /* deleted */
            broker__free_obj(b->dirty[i]);
    }
    b->ndirty = 0;
    broker__view_publish(b, rc == 0); /* after the commit: nothing a crash could lose */
    if (rc < 0) { /* not durable: no acknowledgement may claim it is */
        fprintf(stderr, "shoal broker: %s\n", shoal_errdetail());
        b->store_failed = 1;
        for (size_t i = 0; i < b->npend; i++)
            free(b->pend[i].buf);
        b->npend = 0;
        broker__watch_flush(b, 0);
        return;
    }
    for (size_t i = 0, n; i < b->npend; i += n) { /* a session's in a row together */
        for (n = 1; i + n < b->npend && b->pend[i + n].s == b->pend[i].s; n++)
            ;
        b->deliver(b->pend[i].s, &b->pend[i], n);
    }
    b->npend = 0;
    broker__watch_flush(b, 1);
}

/* ---- operations -------------------------------------------------------------------- */

typedef struct op_ctx {
    shoal_broker *b;
    bobj *o;
    bv *target; /* the container the path leads to (the object's data without one) */
    breq *req;
    uint64_t sid;
    struct waiter *w; /* the waiter being retried, or NULL */
    bv *result;
    bool lent;        /* result is a value of the object's, packed into the reply as is */
    int64_t saved;    /* what a blocked first run leaves for its waiter */
    int parked_state; /* a blocked first run changed the object (condition, barrier) */
    size_t top;       /* with a path: the position of its first element in the data */
    size_t slot;      /* incr, cas: the position of the entry or item changed */
    bool pure;        /* the operation is F_PURE */
} op_ctx;

#define K(k)     (1u << SHOAL__BROKER__KIND__##k)
#define K_MAPS   (K(DICT) | K(NAMESPACE) | K(LIST))
#define K_SEQS   (K(DICT) | K(NAMESPACE) | K(LIST) | K(ARRAY))
#define K_LOCKS  (K(LOCK) | K(RLOCK) | K(CONDITION))
#define K_SEMS   (K(SEMAPHORE) | K(BOUNDED_SEMAPHORE))
#define K_QUEUES (K(QUEUE) | K(JOINABLE_QUEUE))
#define F_WRITE  1
#define F_BLOCK  2
#define F_MAP    4  /* acts on a map (the target must be one) */
#define F_SEQ    8  /* acts on a list (the target must be one) */
#define F_RESIZE 16 /* changes a list's length: not on an Array */
#define F_HOLES  32 /* works with the holes removals leave in the object's own data */
#define F_PURE                                                                           \
    64 /* its result depends on the object's state and the arguments only                \
        * (nothing session-dependent, never blocks): its reply may be                    \
        * published in the read view (view.c). Its name must be in                       \
        * SHOAL_VIEW_PURE_OPS (manager_view.h), the clients' list: see                   \
        * broker__view_ops_check */

static const char *kind_name(int k)
{
    static const char *names[] = {"none",
                                  "dict",
                                  "list",
                                  "Namespace",
                                  "Value",
                                  "Array",
                                  "Queue",
                                  "Lock",
                                  "RLock",
                                  "Semaphore",
                                  "BoundedSemaphore",
                                  "Event",
                                  "Condition",
                                  "Barrier",
                                  "JoinableQueue"};
    return k >= 0 && k < (int)(sizeof(names) / sizeof(names[0])) ? names[k] : "?";
}

static int bad_args(op_ctx *c, const char *want)
{
    return shoal__err(SHOAL_EINVAL, "%s \"%s\": %s takes %s",
                      c->o ? kind_name(c->o->st->kind) : "object",
                      c->o ? c->o->name : c->req->object, c->req->op, want);
}

static bv *arg(op_ctx *c, size_t i)
{
    return i < c->req->n_args ? c->req->args[i] : NULL;
}

/* Part v of the request, for the object to keep (the caller clears its place in the
 * request): a copy out of the arena the request was decoded into (run_all), or,
 * from a parked request (malloc'd: park), v itself. NULL: out of memory. */
static bv *keep(const op_ctx *c, bv *v)
{
    return c->w ? v : shoal__bv_clone(v);
}

/* Takes argument i (keep). */
static bv *take_arg(op_ctx *c, size_t i)
{
    bv *v = keep(c, c->req->args[i]);
    c->req->args[i] = NULL;
    return v;
}

static int out_of_memory(void)
{
    return shoal__err(SHOAL_ENOMEM, "broker: out of memory");
}

static bool is_int(const bv *v)
{
    return v && v->kind_case == BV_INT;
}

static Shoal__Broker__Seq *seq(bv *v)
{
    return v->kind_case == BV_TUPLE ? v->tuple : v->list;
}

/* The holes before item 0 of the target list (only the object's own one has any). */
static size_t front_of(const op_ctx *c)
{
    return c->target == c->o->st->data ? c->o->front : 0;
}

/* The number of items of the target list, holes not counted. */
static size_t seq_len(const op_ctx *c)
{
    return seq(c->target)->n_items - front_of(c);
}

/* Where item i of the target list is. */
static bv **item_at(const op_ctx *c, size_t i)
{
    return &seq(c->target)->items[front_of(c) + i];
}

/* Resolves list index v (negative: from the end) against n items. */
static int index_at(op_ctx *c, const bv *v, size_t n, bool end_ok, size_t *out)
{
    if (!is_int(v))
        return bad_args(c, "an integer index");
    int64_t i = v->i < 0 ? v->i + (int64_t)n : v->i;
    if (i < 0 || (uint64_t)i > n || ((uint64_t)i == n && !end_ok))
        return shoal__err(SHOAL_ERANGE, "%s \"%s\": index %lld out of range (%zu items)",
                          kind_name(c->o->st->kind), c->o->name, (long long)v->i, n);
    *out = (size_t)i;
    return 0;
}

static int key_error(op_ctx *c)
{
    return shoal__err(SHOAL_ENOENT, "%s \"%s\": no such key", kind_name(c->o->st->kind),
                      c->o->name);
}

static int set_result(op_ctx *c, bv *v)
{
    c->result = v;
    return v ? 0 : shoal__err(SHOAL_ENOMEM, "broker: out of memory");
}

static int clone_result(op_ctx *c, const bv *v)
{
    return set_result(c, shoal__bv_clone(v));
}

/* The result is v itself, which a read leaves in place until its reply is packed
 * (right after the operation, under the same lock): no copy. */
static int lend_result(op_ctx *c, bv *v)
{
    c->result = v;
    c->lent = true;
    return 0;
}

/* Checks a value an Array or a Value of typecode tc is given; makes doubles of ints
 * for 'f' and 'd'. */
static int check_typed(op_ctx *c, bv *v)
{
    const char *tc = c->o->st->typecode;
    if (!tc || !*tc)
        return 0;
    bool fp = tc[0] == 'f' || tc[0] == 'd';
    if (v->kind_case == BV_BOOL && tc[0] != 'c') { /* as ctypes: True is 1 */
        int64_t i = v->b;
        v->kind_case = BV_INT;
        v->i = i;
    }
    if (fp && v->kind_case == BV_INT) {
        v->kind_case = BV_DOUBLE;
        v->d = (double)v->i;
        return 0;
    }
    if ((fp && v->kind_case == BV_DOUBLE) || (!fp && v->kind_case == BV_INT))
        return 0;
    if (tc[0] == 'c' && v->kind_case == BV_BYTES)
        return 0;
    return shoal__err(SHOAL_ETYPE, "%s \"%s\": typecode '%s' takes %s",
                      kind_name(c->o->st->kind), c->o->name, tc,
                      fp ? "numbers" : "integers");
}

/* ---- records: what a write changes in the data directory (store.c) ---- */

/* Whether the operation changes the object's own entries or items (not those of a
 * nested container, whose top element run() writes, nor the state of a kind whose
 * header holds it all), with a data directory. */
static bool own_records(op_ctx *c)
{
    return c->b->store && c->req->n_path == 0 && broker__records_kind(c->o->st->kind);
}

/* Every record of the object is to be rewritten (items moved). */
static void rec_full(op_ctx *c)
{
    if (own_records(c))
        c->o->full = 1;
}

static void rec_entry(op_ctx *c, size_t pos)
{
    if (own_records(c))
        broker__store_entry(c->b, c->o, pos);
}

static void rec_item(op_ctx *c, size_t i)
{
    if (own_records(c))
        broker__store_item(c->b, c->o, i);
}

/* Item i was inserted: it gets a key of its own between its neighbours' (store.c). */
static void rec_item_added(op_ctx *c, size_t i)
{
    if (own_records(c))
        broker__store_item_added(c->b, c->o, i);
}

/* Item i is about to go (hole: its slot stays, a hole before item 0): its record goes,
 * nothing else. */
static void rec_item_going(op_ctx *c, size_t i, bool hole)
{
    if (own_records(c))
        broker__store_item_going(c->b, c->o, i, hole);
}

/* ---- maps: the object's own dict through its index, a nested one by a scan ---- */

static broker_index *index_of(op_ctx *c)
{
    return c->target == c->o->st->data ? c->o->idx : NULL;
}

static long find_key(op_ctx *c, const bv *key)
{
    if (!key)
        return -1;
    broker_index *x = index_of(c);
    return x ? broker__index_find(x, c->target, key) : shoal__bv_map_find(c->target, key);
}

/* target[key] = v (both taken over): the entry's position, or an error. */
static long put_key(op_ctx *c, bv *key, bv *v)
{
    broker_index *x = index_of(c);
    long pos;
    if (!key || !v) { /* take_arg ran out of memory */
        shoal__bv_free(key);
        shoal__bv_free(v);
        return out_of_memory();
    }
    if (x) {
        int added;
        pos = broker__index_put(x, c->target, key, v, &added);
    } else {
        long at = key ? shoal__bv_map_find(c->target, key) : -1;
        pos = shoal__bv_map_put(c->target, key, v) < 0 ? -1
              : at >= 0                                ? at
                        : (long)c->target->map->n_entries - 1;
    }
    if (pos < 0)
        return shoal__err(SHOAL_ENOMEM, "broker: out of memory");
    rec_entry(c, (size_t)pos);
    return pos;
}

/* Removes entry pos, returning its value. */
static bv *take_key(op_ctx *c, size_t pos)
{
    broker_index *x = index_of(c);
    if (!x)
        return shoal__bv_map_take(c->target, pos);
    uint64_t id;
    bv *v = broker__index_take(x, c->target, pos, &id);
    if (own_records(c))
        broker__store_gone(c->b, c->o, id);
    return v;
}

static int need_key(op_ctx *c, const bv *key)
{
    return shoal__bv_is_key(key) ? 0 : bad_args(c, "a scalar (or tuple) key");
}

static int map_get(op_ctx *c)
{
    long i = find_key(c, arg(c, 0));
    if (i >= 0)
        return lend_result(c, c->target->map->entries[i]->value);
    return c->req->n_args >= 2 ? clone_result(c, arg(c, 1)) : key_error(c);
}

static bool plain_scalar(const bv *v)
{
    return !v->base.n_unknown_fields &&
           (v->kind_case == BV_NONE || v->kind_case == BV_BOOL ||
            v->kind_case == BV_INT || v->kind_case == BV_DOUBLE);
}

/* The bytes of a string, bytes or pickle value v with no unknown fields (NULL: v is
 * none of these). */
static ProtobufCBinaryData *bin_of(bv *v)
{
    if (v->base.n_unknown_fields)
        return NULL;
    return v->kind_case == BV_BYTES    ? &v->bytes
           : v->kind_case == BV_PICKLE ? &v->pickle
                                       : NULL;
}

/* Copies the string, bytes or pickle n into o's own block when o is of the same kind
 * and its block holds them (o's length shrinks to n's): a write of a value no longer
 * than the one it replaces (a counter's text, a fixed-size record) allocates nothing
 * and frees nothing. Whether it did. */
static bool copy_in_place(bv *o, bv *n)
{
    if (o->kind_case != n->kind_case || o->base.n_unknown_fields)
        return false;
    if (o->kind_case == BV_STR) {
        size_t len = strlen(n->s);
        if (len > strlen(o->s))
            return false;
        memcpy(o->s, n->s, len + 1);
        return true;
    }
    ProtobufCBinaryData *ob = bin_of(o), *nb = bin_of(n);
    if (!ob || !nb || nb->len > ob->len)
        return false;
    if (nb->len)
        memcpy(ob->data, nb->data, nb->len);
    ob->len = nb->len; /* its block keeps the larger size: malloc's to know */
    return true;
}

/* *slot = argument i (taken over): a scalar over a scalar is copied in place, and so
 * is a string or bytes over one at least as long (copy_in_place). */
static int replace(op_ctx *c, bv **slot, size_t i)
{
    if (!c->w && plain_scalar(*slot) && plain_scalar(c->req->args[i])) {
        **slot = *c->req->args[i]; /* no part of either is allocated on its own */
        return 0;
    }
    if (!c->w && copy_in_place(*slot, c->req->args[i]))
        return 0;
    bv *v = take_arg(c, i);
    if (!v)
        return out_of_memory();
    shoal__bv_free(*slot);
    *slot = v;
    return 0;
}

static int map_set(op_ctx *c)
{
    if (c->req->n_args != 2 || need_key(c, arg(c, 0)) < 0)
        return bad_args(c, "a key and a value");
    long at = find_key(c, arg(c, 0));
    if (at >= 0) { /* the entry keeps its key */
        int rc = replace(c, &c->target->map->entries[at]->value, 1);
        if (rc == 0)
            rec_entry(c, (size_t)at);
        return rc;
    }
    bv *k = take_arg(c, 0), *v = take_arg(c, 1);
    long rc = put_key(c, k, v);
    return rc < 0 ? (int)rc : 0;
}

static int map_pop(op_ctx *c)
{
    long i = find_key(c, arg(c, 0));
    if (i < 0)
        return c->req->n_args >= 2 ? clone_result(c, arg(c, 1)) : key_error(c);
    return set_result(c, take_key(c, (size_t)i));
}

static int map_del(op_ctx *c)
{
    int rc = map_pop(c);
    shoal__bv_free(c->result);
    c->result = NULL;
    return rc;
}

static int map_contains(op_ctx *c)
{
    return set_result(c, shoal__bv_bool(find_key(c, arg(c, 0)) >= 0));
}

static int map_setdefault(op_ctx *c)
{
    long i = find_key(c, arg(c, 0));
    if (i >= 0)
        return clone_result(c, c->target->map->entries[i]->value);
    int rc = need_key(c, arg(c, 0));
    if (rc < 0)
        return rc;
    bv *dflt = c->req->n_args >= 2 ? take_arg(c, 1) : shoal__bv_none();
    bv *copy = dflt ? shoal__bv_clone(dflt) : NULL;
    long at = put_key(c, take_arg(c, 0), dflt);
    if (at >= 0 && !copy)
        return out_of_memory();
    if (at < 0) {
        shoal__bv_free(copy);
        return (int)at;
    }
    return set_result(c, copy);
}

/* keys / values / items: a list of the keys, the values, or (key, value) tuples. */
static int map_listing(op_ctx *c, int which)
{
    bv *out = shoal__bv_seq(BV_LIST);
    Shoal__Broker__Map *m = c->target->map;
    for (size_t i = 0; out && i < m->n_entries; i++) {
        bv *item;
        if (which == 2) {
            item = shoal__bv_seq(BV_TUPLE);
            if (item &&
                (shoal__bv_seq_insert(item, 0, shoal__bv_clone(m->entries[i]->key)) < 0 ||
                 shoal__bv_seq_insert(item, 1, shoal__bv_clone(m->entries[i]->value)) <
                     0)) {
                shoal__bv_free(item);
                item = NULL;
            }
        } else {
            item = shoal__bv_clone(which ? m->entries[i]->value : m->entries[i]->key);
        }
        if (shoal__bv_seq_insert(out, seq(out)->n_items, item) < 0) {
            shoal__bv_free(out);
            out = NULL;
        }
    }
    return set_result(c, out);
}

static int map_keys(op_ctx *c)
{
    return map_listing(c, 0);
}

static int map_values(op_ctx *c)
{
    return map_listing(c, 1);
}

static int map_items(op_ctx *c)
{
    return map_listing(c, 2);
}

static int map_update(op_ctx *c)
{
    bv *src = arg(c, 0);
    if (!src || src->kind_case != BV_MAP)
        return bad_args(c, "a map");
    for (size_t i = 0; i < src->map->n_entries; i++) {
        Shoal__Broker__Entry *e = src->map->entries[i];
        if (!shoal__bv_is_key(e->key))
            return bad_args(c, "a map with scalar keys");
    }
    for (size_t i = 0; i < src->map->n_entries; i++) {
        Shoal__Broker__Entry *e = src->map->entries[i];
        long at = put_key(c, keep(c, e->key), keep(c, e->value));
        e->key = e->value = NULL;
        if (at < 0)
            return (int)at;
    }
    return 0;
}

/* ---- numbers: increment and compare-and-set on a slot (map entry, list item, Value) */

/* The slot the operation acts on: &entry->value, &list item, or the Value's data. */
static int slot_of(op_ctx *c, bv ***slot, size_t *nargs_used, bool create)
{
    bv *t = c->target;
    if (c->o->st->kind == SHOAL__BROKER__KIND__VALUE && c->req->n_path == 0) {
        *slot = &c->o->st->data;
        *nargs_used = 0;
        return 0;
    }
    *nargs_used = 1;
    if (t->kind_case == BV_MAP) {
        long i = find_key(c, arg(c, 0));
        if (i < 0 && create) {
            if (need_key(c, arg(c, 0)) < 0)
                return SHOAL_EINVAL;
            i = put_key(c, shoal__bv_clone(arg(c, 0)), shoal__bv_none());
            if (i < 0)
                return (int)i;
        }
        if (i < 0)
            return key_error(c);
        *slot = &t->map->entries[i]->value;
        c->slot = (size_t)i;
        return 0;
    }
    size_t i;
    int rc = index_at(c, arg(c, 0), seq_len(c), false, &i);
    if (rc == 0) {
        *slot = item_at(c, i);
        c->slot = i;
    }
    return rc;
}

/* incr and cas changed the slot slot_of found. */
static void rec_slot(op_ctx *c)
{
    if (c->o->st->kind == SHOAL__BROKER__KIND__VALUE && c->req->n_path == 0)
        return; /* its header */
    if (c->target->kind_case == BV_MAP)
        rec_entry(c, c->slot);
    else
        rec_item(c, c->slot);
}

/* incr([key,] delta[, initial]): adds delta (an int or a double) and returns the sum;
 * a missing map key starts at initial (default 0). */
static int op_incr(op_ctx *c)
{
    bv **slot;
    size_t k;
    int rc = slot_of(c, &slot, &k, true);
    if (rc < 0)
        return rc;
    bv *delta = arg(c, k), *init = arg(c, k + 1);
    if (!delta || (delta->kind_case != BV_INT && delta->kind_case != BV_DOUBLE))
        return bad_args(c, "a numeric delta");
    bv *v = *slot;
    if (v->kind_case == BV_NONE) { /* just created */
        v->kind_case = BV_INT;
        v->i = is_int(init) ? init->i : 0;
        if (init && init->kind_case == BV_DOUBLE) {
            v->kind_case = BV_DOUBLE;
            v->d = init->d;
        }
    }
    if (v->kind_case == BV_INT && delta->kind_case == BV_INT) {
        v->i = (int64_t)((uint64_t)v->i + (uint64_t)delta->i);
    } else if (v->kind_case == BV_INT || v->kind_case == BV_DOUBLE) {
        if (c->o->st->typecode[0] && c->o->st->typecode[0] != 'd' &&
            c->o->st->typecode[0] != 'f')
            return bad_args(c, "an integer delta on an integer typecode");
        double x = v->kind_case == BV_INT ? (double)v->i : v->d;
        v->kind_case = BV_DOUBLE;
        v->d = x + (delta->kind_case == BV_INT ? (double)delta->i : delta->d);
    } else {
        return shoal__err(SHOAL_ETYPE, "%s \"%s\": incr on a value that is not a number",
                          kind_name(c->o->st->kind), c->o->name);
    }
    rec_slot(c);
    return clone_result(c, v);
}

/* cas([key,] expected, new): stores new when the slot equals expected; returns
 * whether it did. */
static int op_cas(op_ctx *c)
{
    bv **slot;
    size_t k;
    int rc = slot_of(c, &slot, &k, false);
    if (rc < 0)
        return rc;
    if (c->req->n_args != k + 2)
        return bad_args(c, "the expected and the new value");
    bool same = shoal__bv_equal(*slot, arg(c, k));
    if (same) {
        bv *v = take_arg(c, k + 1);
        if (!v)
            return out_of_memory();
        if ((c->o->st->kind == SHOAL__BROKER__KIND__VALUE ||
             c->o->st->kind == SHOAL__BROKER__KIND__ARRAY) &&
            (rc = check_typed(c, v)) < 0) {
            shoal__bv_free(v);
            return rc;
        }
        shoal__bv_free(*slot);
        *slot = v;
        rec_slot(c);
    }
    return set_result(c, shoal__bv_bool(same));
}

/* ---- lists (and arrays) ---- */

static int seq_get(op_ctx *c)
{
    size_t i;
    int rc = index_at(c, arg(c, 0), seq_len(c), false, &i);
    return rc < 0 ? rc : lend_result(c, *item_at(c, i));
}

static int seq_set(op_ctx *c)
{
    size_t i;
    int rc = c->req->n_args == 2 ? index_at(c, arg(c, 0), seq_len(c), false, &i)
                                 : bad_args(c, "an index and a value");
    if (rc == 0 && c->o->st->kind == SHOAL__BROKER__KIND__ARRAY)
        rc = check_typed(c, arg(c, 1));
    bv *v = rc < 0 ? NULL : take_arg(c, 1);
    if (!v)
        return rc < 0 ? rc : out_of_memory();
    shoal__bv_free(*item_at(c, i));
    *item_at(c, i) = v;
    rec_item(c, i);
    return 0;
}

static int seq_insert_at(op_ctx *c, size_t i, bv *v)
{
    if (!v || shoal__bv_seq_insert(c->target, front_of(c) + i, v) < 0)
        return out_of_memory();
    rec_item_added(c, i);
    return 0;
}

/* Removes item i and returns it. Item 0 of the object's own list or queue leaves a
 * hole instead of moving the others down (the holes are squeezed out once they are
 * more than the items left): a queue get or a pop from the front is O(1) amortized. */
static bv *seq_take_at(op_ctx *c, size_t i)
{
    Shoal__Broker__Seq *s = seq(c->target);
    bv *v;
    bool hole = i == 0 && c->target == c->o->st->data && c->target->kind_case == BV_LIST;
    rec_item_going(c, i, hole);
    if (hole) {
        v = s->items[c->o->front];
        s->items[c->o->front++] = NULL;
        if (c->o->front > 32 && c->o->front * 2 > s->n_items)
            broker__settle(c->o);
    } else {
        v = shoal__bv_seq_take(c->target, front_of(c) + i);
    }
    return v;
}

static int seq_append(op_ctx *c)
{
    if (c->req->n_args != 1)
        return bad_args(c, "one value");
    return seq_insert_at(c, seq_len(c), take_arg(c, 0));
}

static int seq_extend(op_ctx *c)
{
    bv *src = arg(c, 0);
    if (!src || (src->kind_case != BV_LIST && src->kind_case != BV_TUPLE))
        return bad_args(c, "a list");
    Shoal__Broker__Seq *s = seq(src);
    for (size_t i = 0; i < s->n_items; i++) {
        int rc = seq_insert_at(c, seq_len(c), keep(c, s->items[i]));
        s->items[i] = NULL;
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int seq_insert(op_ctx *c)
{
    if (c->req->n_args != 2 || !is_int(arg(c, 0)))
        return bad_args(c, "an index and a value");
    int64_t n = (int64_t)seq(c->target)->n_items, i = arg(c, 0)->i;
    i = i < 0 ? (i + n < 0 ? 0 : i + n) : (i > n ? n : i); /* as Python clamps */
    return seq_insert_at(c, (size_t)i, take_arg(c, 1));
}

static int seq_pop(op_ctx *c)
{
    size_t n = seq_len(c), i = n - 1;
    if (n == 0)
        return shoal__err(SHOAL_ERANGE, "list \"%s\": pop from an empty list",
                          c->o->name);
    int rc = c->req->n_args ? index_at(c, arg(c, 0), n, false, &i) : 0;
    return rc < 0 ? rc : set_result(c, seq_take_at(c, i));
}

static int seq_del(op_ctx *c)
{
    if (c->req->n_args != 1)
        return bad_args(c, "an index");
    int rc = seq_pop(c);
    shoal__bv_free(c->result);
    c->result = NULL;
    return rc;
}

static long seq_find(op_ctx *c, const bv *v)
{
    Shoal__Broker__Seq *s = seq(c->target);
    for (size_t i = 0; v && i < s->n_items; i++)
        if (shoal__bv_equal(s->items[i], v))
            return (long)i;
    return -1;
}

static int seq_index(op_ctx *c)
{
    long i = seq_find(c, arg(c, 0));
    return i < 0 ? shoal__err(SHOAL_ENOENT, "list \"%s\": value not in list", c->o->name)
                 : set_result(c, shoal__bv_int(i));
}

static int seq_remove(op_ctx *c)
{
    long i = seq_find(c, arg(c, 0));
    if (i < 0)
        return shoal__err(SHOAL_ENOENT, "list \"%s\": value not in list", c->o->name);
    shoal__bv_free(seq_take_at(c, (size_t)i));
    return 0;
}

static int seq_contains(op_ctx *c)
{
    return set_result(c, shoal__bv_bool(seq_find(c, arg(c, 0)) >= 0));
}

static int seq_count(op_ctx *c)
{
    Shoal__Broker__Seq *s = seq(c->target);
    int64_t n = 0;
    for (size_t i = 0; i < s->n_items; i++)
        n += shoal__bv_equal(s->items[i], arg(c, 0));
    return set_result(c, shoal__bv_int(n));
}

static int seq_reverse(op_ctx *c)
{
    Shoal__Broker__Seq *s = seq(c->target);
    for (size_t i = 0, j = s->n_items; i + 1 < j; i++, j--) {
        bv *t = s->items[i];
        s->items[i] = s->items[j - 1];
        s->items[j - 1] = t;
    }
    rec_full(c);
    return 0;
}

/* ---- both ---- */

static int op_len(op_ctx *c)
{
    bv *t = c->target;
    broker_index *x = t->kind_case == BV_MAP ? index_of(c) : NULL;
    size_t n = x                        ? broker__index_len(x, t)
               : t->kind_case == BV_MAP ? t->map->n_entries
                                        : seq_len(c);
    return set_result(c, shoal__bv_int((int64_t)n));
}

static int op_copy(op_ctx *c)
{
    return clone_result(c, c->target);
}

static int op_clear(op_ctx *c)
{
    bv *fresh = c->target->kind_case == BV_MAP ? shoal__bv_map() : shoal__bv_seq(BV_LIST);
    broker_index *x = c->target->kind_case == BV_MAP ? index_of(c) : NULL;
    if (!fresh || (x && broker__index_build(x, fresh, NULL) < 0)) {
        shoal__bv_free(fresh);
        return shoal__err(SHOAL_ENOMEM, "broker: out of memory");
    }
    rec_full(c);
    /* swap contents so that a nested container keeps its place */
    bv tmp = *c->target;
    *c->target = *fresh;
    *fresh = tmp;
    shoal__bv_free(fresh);
    return 0;
}

/* ---- Value ---- */

static int value_get(op_ctx *c)
{
    return lend_result(c, c->o->st->data);
}

static int value_set(op_ctx *c)
{
    if (c->req->n_args != 1)
        return bad_args(c, "one value");
    int rc = check_typed(c, arg(c, 0));
    bv *v = rc < 0 ? NULL : take_arg(c, 0);
    if (!v)
        return rc < 0 ? rc : out_of_memory();
    shoal__bv_free(c->o->st->data);
    c->o->st->data = v;
    return 0;
}

/* ---- Queue ---- */

static int queue_put(op_ctx *c)
{
    if (c->req->n_args != 1)
        return bad_args(c, "one value");
    if (c->o->st->limit > 0 && seq_len(c) >= (size_t)c->o->st->limit)
        return BLOCK;
    int rc = seq_insert_at(c, seq_len(c), take_arg(c, 0));
    if (rc == 0 && c->o->st->kind == SHOAL__BROKER__KIND__JOINABLE_QUEUE)
        c->o->st->count++; /* a task not done yet */
    return rc;
}

/* JoinableQueue: task_done counts a task done; join waits until all are. */
static int queue_task_done(op_ctx *c)
{
    if (c->o->st->count <= 0)
        return shoal__err(SHOAL_EOVERFLOW,
                          "JoinableQueue \"%s\": task_done() called too many "
                          "times",
                          c->o->name);
    c->o->st->count--;
    return 0;
}

static int queue_join(op_ctx *c)
{
    return c->o->st->count > 0 ? BLOCK : 0;
}

static int queue_get(op_ctx *c)
{
    if (seq_len(c) == 0)
        return BLOCK;
    return set_result(c, seq_take_at(c, 0));
}

static int queue_qsize(op_ctx *c)
{
    return set_result(c, shoal__bv_int((int64_t)seq_len(c)));
}

static int queue_empty(op_ctx *c)
{
    return set_result(c, shoal__bv_bool(seq_len(c) == 0));
}

static int queue_full(op_ctx *c)
{
    bobjstate *st = c->o->st;
    return set_result(c,
                      shoal__bv_bool(st->limit > 0 && seq_len(c) >= (size_t)st->limit));
}

/* ---- Lock, RLock (and a Condition's lock) ---- */

static bool owns(op_ctx *c)
{
    return c->o->st->owner == c->sid && c->o->st->owner_thread == c->req->thread;
}

static int lock_take(op_ctx *c, int64_t depth)
{
    bobjstate *st = c->o->st;
    if (c->o->lslot) /* in the lock table (locks.c): a Lock or RLock, depth 1 */
        return broker__lw_take(c->b, c->o, c->sid, c->req->thread, c->w != NULL);
    if (st->owner && owns(c) && st->kind != SHOAL__BROKER__KIND__LOCK) {
        st->count += depth;
        return 0;
    }
    if (st->owner && owns(c) && !c->w)
        return shoal__err(SHOAL_EDEADLK, "Lock \"%s\": already held by this thread",
                          c->o->name);
    if (st->owner)
        return BLOCK;
    c->o->grant_at = 0; /* taken, by a waiter or by barging: the window is over */
    st->owner = c->sid;
    st->owner_thread = c->req->thread;
    st->count = depth;
    if (st->flag) { /* its last holder died holding it: say so, once */
        st->flag = 0;
        return shoal__err(SHOAL_EOWNERDEAD,
                          "%s \"%s\": its previous holder died holding it",
                          kind_name(st->kind), c->o->name);
    }
    return 0;
}

static int lock_acquire(op_ctx *c)
{
    return lock_take(c, 1);
}

static int lock_release(op_ctx *c)
{
    bobjstate *st = c->o->st;
    if (c->o->lslot)
        return broker__lw_release(c->b, c->o, c->sid, c->req->thread);
    if (!st->owner)
        return shoal__err(SHOAL_EPERM, "%s \"%s\": release of an unlocked lock",
                          kind_name(st->kind), c->o->name);
    if (st->kind != SHOAL__BROKER__KIND__LOCK && !owns(c))
        return shoal__err(SHOAL_EPERM,
                          "%s \"%s\": released by a thread that does not hold it",
                          kind_name(st->kind), c->o->name);
    if (--st->count <= 0 || st->kind == SHOAL__BROKER__KIND__LOCK) {
        st->owner = st->owner_thread = 0;
        st->count = 0;
    }
    return 0;
}

static int lock_locked(op_ctx *c)
{
    return set_result(c, shoal__bv_bool(c->o->lslot ? broker__lw_locked(c->b, c->o)
                                                    : c->o->st->owner != 0));
}

/* ---- Semaphore, BoundedSemaphore: data maps a session to the units it holds ---- */

static int sem_holding(op_ctx *c, uint64_t sid, int64_t add)
{
    bv *m = c->o->st->data;
    bv *key = shoal__bv_int((int64_t)sid);
    long i = key ? shoal__bv_map_find(m, key) : -1;
    int64_t now = i >= 0 ? m->map->entries[i]->value->i : 0;
    if (now + add <= 0) {
        if (i >= 0)
            shoal__bv_free(shoal__bv_map_take(m, (size_t)i));
        shoal__bv_free(key);
        return 0;
    }
    return shoal__bv_map_put(m, key, shoal__bv_int(now + add)) < 0
               ? shoal__err(SHOAL_ENOMEM, "broker: out of memory")
               : 0;
}

static int sem_acquire(op_ctx *c)
{
    if (c->o->st->count <= 0)
        return BLOCK;
    c->o->st->count--;
    return sem_holding(c, c->sid, 1);
}

static int sem_release(op_ctx *c)
{
    bobjstate *st = c->o->st;
    int64_t n = is_int(arg(c, 0)) ? arg(c, 0)->i : 1;
    if (n < 1)
        return bad_args(c, "a count of at least 1");
    if (st->kind == SHOAL__BROKER__KIND__BOUNDED_SEMAPHORE && st->count + n > st->limit)
        return shoal__err(SHOAL_EOVERFLOW,
                          "BoundedSemaphore \"%s\": released too many times", c->o->name);
    st->count += n;
    return sem_holding(c, c->sid, -n);
}

static int sem_value(op_ctx *c)
{
    return set_result(c, shoal__bv_int(c->o->st->count));
}

/* ---- Event ---- */

static int event_set(op_ctx *c)
{
    c->o->st->flag = 1;
    return 0;
}

static int event_clear(op_ctx *c)
{
    c->o->st->flag = 0;
    return 0;
}

static int event_is_set(op_ctx *c)
{
    return set_result(c, shoal__bv_bool(c->o->st->flag));
}

static int event_wait(op_ctx *c)
{
    return c->o->st->flag ? set_result(c, shoal__bv_bool(true)) : BLOCK;
}

/* ---- Condition: its lock is the object's owner / count (an RLock) ---- */

static int cond_wait(op_ctx *c)
{
    struct waiter *w = c->w;
    if (!w) { /* first run: must hold the lock; release it entirely and wait */
        if (!c->o->st->owner || !owns(c))
            return shoal__err(SHOAL_EPERM,
                              "Condition \"%s\": wait without holding its lock",
                              c->o->name);
        c->o->st->owner = c->o->st->owner_thread = 0;
        c->saved = c->o->st->count;
        c->o->st->count = 0;
        c->parked_state = 1;
        return BLOCK;
    }
    if (w->stage == 0)
        return BLOCK; /* not notified yet */
    int rc = lock_take(c, w->saved);
    if (rc == BLOCK)
        return rc;
    if (rc == 0)
        rc = set_result(c, shoal__bv_bool(!w->timed_out));
    return rc;
}

static int cond_notify(op_ctx *c, int64_t n)
{
    if (!c->o->st->owner || !owns(c))
        return shoal__err(
            SHOAL_EPERM, "Condition \"%s\": notify without holding its lock", c->o->name);
    for (struct waiter *w = c->o->wh; w && n > 0; w = w->next)
        if (!strcmp(w->req->op, "wait") && w->stage == 0) {
            w->stage = 1;
            n--;
        }
    return 0;
}

static int cond_notify_n(op_ctx *c)
{
    return cond_notify(c, is_int(arg(c, 0)) ? arg(c, 0)->i : 1);
}

static int cond_notify_all(op_ctx *c)
{
    return cond_notify(c, INT64_MAX);
}

/* ---- Barrier: count = parties, limit = parties waiting, data = generation ---- */

static int barrier_wait(op_ctx *c)
{
    bobjstate *st = c->o->st;
    struct waiter *w = c->w;
    if (st->flag)
        return shoal__err(SHOAL_EBROKEN, "Barrier \"%s\": broken", c->o->name);
    if (w) /* retried: done once the generation it waited in has passed */
        return st->data->i != w->stage ? set_result(c, shoal__bv_int(w->saved)) : BLOCK;
    int64_t index = st->limit++;
    if (st->limit < st->count) {
        c->saved = index;
        c->parked_state = 1;
        return BLOCK;
    }
    st->limit = 0;
    st->data->i++;
    return set_result(c, shoal__bv_int(index));
}

static void barrier_break(shoal_broker *b, bobj *o);

static int barrier_abort(op_ctx *c)
{
    barrier_break(c->b, c->o);
    return 0;
}

static int barrier_reset(op_ctx *c)
{
    if (c->o->wh)
        barrier_break(c->b, c->o);
    c->o->st->flag = 0;
    c->o->st->limit = 0;
    return 0;
}

static int barrier_info(op_ctx *c)
{
    bobjstate *st = c->o->st;
    const char *op = c->req->op;
    return set_result(c, !strcmp(op, "parties")     ? shoal__bv_int(st->count)
                         : !strcmp(op, "n_waiting") ? shoal__bv_int(st->limit)
                                                    : shoal__bv_bool(st->flag));
}

/* ---- the table ---- */

typedef struct op_def {
    const char *name;
    unsigned kinds;
    int flags;
    int (*fn)(op_ctx *c);
} op_def;

static const op_def ops[] = {
    {"get", K_MAPS, F_MAP | F_HOLES | F_PURE, map_get},
    {"set", K_MAPS, F_MAP | F_WRITE | F_HOLES, map_set},
    {"del", K_MAPS, F_MAP | F_WRITE | F_HOLES, map_del},
    {"pop", K_MAPS, F_MAP | F_WRITE | F_HOLES, map_pop},
    {"contains", K_MAPS, F_MAP | F_HOLES | F_PURE, map_contains},
    {"setdefault", K_MAPS, F_MAP | F_WRITE | F_HOLES, map_setdefault},
    {"keys", K_MAPS, F_MAP | F_PURE, map_keys},
    {"values", K_MAPS, F_MAP | F_PURE, map_values},
    {"items", K_MAPS, F_MAP | F_PURE, map_items},
    {"update", K_MAPS, F_MAP | F_WRITE, map_update},
    {"get", K_SEQS, F_SEQ | F_HOLES | F_PURE, seq_get},
    {"set", K_SEQS, F_SEQ | F_WRITE | F_HOLES, seq_set},
    {"del", K_SEQS, F_SEQ | F_WRITE | F_RESIZE | F_HOLES, seq_del},
    {"pop", K_SEQS, F_SEQ | F_WRITE | F_RESIZE | F_HOLES, seq_pop},
    {"contains", K_SEQS, F_SEQ | F_PURE, seq_contains},
    {"append", K_SEQS, F_SEQ | F_WRITE | F_RESIZE | F_HOLES, seq_append},
    {"extend", K_SEQS, F_SEQ | F_WRITE | F_RESIZE | F_HOLES, seq_extend},
    {"insert", K_SEQS, F_SEQ | F_WRITE | F_RESIZE, seq_insert},
    {"remove", K_SEQS, F_SEQ | F_WRITE | F_RESIZE, seq_remove},
    {"index", K_SEQS, F_SEQ | F_PURE, seq_index},
    {"count", K_SEQS, F_SEQ | F_PURE, seq_count},
    {"reverse", K_SEQS, F_SEQ | F_WRITE, seq_reverse},
    {"len", K_SEQS, F_MAP | F_SEQ | F_HOLES | F_PURE, op_len},
    {"copy", K_SEQS, F_MAP | F_SEQ | F_PURE, op_copy},
    {"clear", K_SEQS, F_MAP | F_SEQ | F_WRITE | F_RESIZE, op_clear},
    {"incr", K_SEQS | K(VALUE), F_MAP | F_SEQ | F_WRITE | F_HOLES, op_incr},
    {"cas", K_SEQS | K(VALUE), F_MAP | F_SEQ | F_WRITE | F_HOLES, op_cas},
    {"get", K(VALUE), F_PURE, value_get},
    {"set", K(VALUE), F_WRITE, value_set},
    {"put", K_QUEUES, F_WRITE | F_BLOCK | F_HOLES, queue_put},
    {"get", K_QUEUES, F_WRITE | F_BLOCK | F_HOLES, queue_get},
    {"qsize", K_QUEUES, F_HOLES | F_PURE, queue_qsize},
    {"empty", K_QUEUES, F_HOLES | F_PURE, queue_empty},
    {"full", K_QUEUES, F_HOLES | F_PURE, queue_full},
    {"task_done", K(JOINABLE_QUEUE), F_WRITE | F_HOLES, queue_task_done},
    {"join", K(JOINABLE_QUEUE), F_BLOCK | F_HOLES, queue_join},
    {"acquire", K_LOCKS, F_WRITE | F_BLOCK, lock_acquire},
    {"release", K_LOCKS, F_WRITE, lock_release},
    {"locked", K_LOCKS, F_PURE, lock_locked},
    {"acquire", K_SEMS, F_WRITE | F_BLOCK, sem_acquire},
    {"release", K_SEMS, F_WRITE, sem_release},
    {"value", K_SEMS, F_PURE, sem_value},
    {"set", K(EVENT), F_WRITE, event_set},
    {"clear", K(EVENT), F_WRITE, event_clear},
    {"is_set", K(EVENT), F_PURE, event_is_set},
    {"wait", K(EVENT), F_BLOCK, event_wait},
    {"wait", K(CONDITION), F_WRITE | F_BLOCK, cond_wait},
    {"notify", K(CONDITION), F_WRITE, cond_notify_n},
    {"notify_all", K(CONDITION), F_WRITE, cond_notify_all},
    {"wait", K(BARRIER), F_WRITE | F_BLOCK, barrier_wait},
    {"abort", K(BARRIER), F_WRITE, barrier_abort},
    {"reset", K(BARRIER), F_WRITE, barrier_reset},
    {"parties", K(BARRIER), F_PURE, barrier_info},
    {"n_waiting", K(BARRIER), F_PURE, barrier_info},
    {"broken", K(BARRIER), F_PURE, barrier_info},
};

const char *broker__view_ops_check(void)
{
    static const char *const listed[] = {SHOAL_VIEW_PURE_OPS};
    size_t n = sizeof(ops) / sizeof(ops[0]);
    for (size_t i = 0; i < n; i++)
        if ((ops[i].flags & F_PURE) &&
            !shoal__view_pure(ops[i].name, strlen(ops[i].name)))
            return ops[i].name;
    for (size_t k = 0; k < sizeof(listed) / sizeof(listed[0]); k++) {
        size_t i = 0;
        while (i < n && !((ops[i].flags & F_PURE) && !strcmp(ops[i].name, listed[k])))
            i++;
        if (i == n)
            return listed[k];
    }
    return NULL;
}

/* Whether operation name op is `name` (most differ in their first letter). */
static inline bool is_op(const char *op, const char *name)
{
    return op[0] == name[0] && !strcmp(op, name);
}

/* The operation `name` for an object of kind `kind` whose target is `t`. */
static const op_def *find_op(const char *name, int kind, const bv *t, int path)
{
    bool map = t && t->kind_case == BV_MAP;
    bool list = t && (t->kind_case == BV_LIST || t->kind_case == BV_TUPLE);
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        const op_def *d = &ops[i];
        if (!is_op(name, d->name) || !(d->kinds & (1u << kind)))
            continue;
        if (kind == SHOAL__BROKER__KIND__VALUE && !path && (d->flags & (F_MAP | F_SEQ)) &&
            d->fn != op_incr && d->fn != op_cas)
            continue;
        if ((d->flags & (F_MAP | F_SEQ)) &&
            !(kind == SHOAL__BROKER__KIND__VALUE && !path) &&
            !((d->flags & F_MAP) && map) && !((d->flags & F_SEQ) && list))
            continue;
        return d;
    }
    return NULL;
}

/* Follows the request's path from the object's data to a nested container. */
static int resolve(op_ctx *c)
{
    bv *t = c->o->st->data;
    for (size_t i = 0; i < c->req->n_path; i++) {
        bv *k = c->req->path[i];
        if (t && t->kind_case == BV_MAP) {
            long at = i == 0 && c->o->idx ? broker__index_find(c->o->idx, t, k)
                                          : shoal__bv_map_find(t, k);
            t = at >= 0 ? t->map->entries[at]->value : NULL;
            c->top = i == 0 && at >= 0 ? (size_t)at : c->top;
        } else if (t && (t->kind_case == BV_LIST || t->kind_case == BV_TUPLE) &&
                   is_int(k)) {
            size_t n = seq(t)->n_items;
            int64_t at = k->i < 0 ? k->i + (int64_t)n : k->i;
            t = at >= 0 && (uint64_t)at < n ? seq(t)->items[at] : NULL;
            c->top = i == 0 && t ? (size_t)at : c->top;
        } else {
            t = NULL;
        }
        if (!t)
            return shoal__err(SHOAL_ENOENT, "%s \"%s\": path element %zu leads nowhere",
                              kind_name(c->o->st->kind), c->o->name, i);
    }
    if (c->req->n_path && t->kind_case != BV_MAP && t->kind_case != BV_LIST)
        return shoal__err(SHOAL_EKIND, "%s \"%s\": the path does not lead to a container",
                          kind_name(c->o->st->kind), c->o->name);
    c->target = t;
    return 0;
}

/* Runs (or retries) the request's operation. */
static int run(op_ctx *c)
{
    int kind = c->o->st->kind;
    if (c->req->n_path)
        broker__settle(c->o); /* a path's positions count no holes */
    int rc = resolve(c);
    if (rc < 0)
        return rc;
    const op_def *d = find_op(c->req->op, kind, c->target, c->req->n_path > 0);
    if (!d)
        return shoal__err(SHOAL_EKIND, "%s \"%s\": no operation \"%s\" here",
                          kind_name(kind), c->o->name, c->req->op);
    if (!(d->flags & F_HOLES))
        broker__settle(c->o);
    if ((d->flags & F_RESIZE) && kind == SHOAL__BROKER__KIND__ARRAY && !c->req->n_path)
        return shoal__err(SHOAL_EKIND, "Array \"%s\": %s would change its length",
                          c->o->name, c->req->op);
    c->pure = (d->flags & F_PURE) != 0;
    bv *wargs = (d->flags & F_WRITE) ? broker__watch_args(c->o, c->req) : NULL;
    rc = d->fn(c);
    if ((rc == 0 && (d->flags & F_WRITE)) || rc == SHOAL_EOWNERDEAD || c->parked_state) {
        if (c->req->n_path && c->b->store && broker__records_kind(kind)) {
            if (c->o->st->data->kind_case == BV_MAP) /* the nested one is in it */
                broker__store_entry(c->b, c->o, c->top);
            else
                broker__store_item(c->b, c->o, c->top);
        }
        broker__dirty(c->b, c->o);
        broker__watch_change(c->b, c->o, c->req, wargs, rc == BLOCK ? NULL : c->result);
    } else {
        shoal__bv_free(wargs);
        if ((d->flags & F_WRITE) && rc < 0) /* it may have changed part of the object */
            broker__view_bump(c->b, c->o, 0);
    }
    return rc;
}

/* ---- waiters ----------------------------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void unpark(shoal_broker *b, bobj *o, waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        o->wh = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        o->wt = w->prev;
    b->nwaiters--;
}

static void waiter_done(shoal_broker *b, bobj *o, waiter *w, int rc, bv *result)
{
    unpark(b, o, w);
    pend(b, w->s, w->req->id, rc, result, false);
    protobuf_c_message_free_unpacked(&w->req->base, NULL);
    free(w);
}

/* A copy of request r (in the arena) that outlives it, made with malloc, or NULL. */
static breq *own_request(const breq *r)
{
    size_t len;
    void *buf = shoal__bv_pack(&r->base, &len);
    breq *c = buf ? (breq *)protobuf_c_message_unpack(&shoal__broker__request__descriptor,
                                                      NULL, len, buf)
                  : NULL;
    free(buf);
    return c;
}

static int park(shoal_broker *b, op_ctx *c, broker_session *s)
{
    waiter *w = calloc(1, sizeof(*w));
    breq *req = w ? own_request(c->req) : NULL;
    if (!req) {
        free(w);
        return out_of_memory();
    }
    int64_t t = c->req->timeout_ms;
    w->s = s;
    w->sid = c->sid;
    w->req = req;
    w->since = now_ns();
    w->deadline = t < 0 ? INT64_MAX : w->since + t * 1000000;
    w->saved = c->saved;
    if (c->o->st->kind == SHOAL__BROKER__KIND__BARRIER)
        w->stage = c->o->st->data->i;
    w->prev = c->o->wt;
    if (c->o->wt)
        c->o->wt->next = w;
    else
        c->o->wh = w;
    c->o->wt = w;
    b->nwaiters++;
    b->parked++;
    pthread_cond_signal(&b->timer_cv);
    return 0;
}

/* Whether kind k's objects are handed over by barging (see Barging). */
static bool barging(int k)
{
    return k == SHOAL__BROKER__KIND__LOCK || k == SHOAL__BROKER__KIND__RLOCK;
}

/* Whether lock o, free with waiters, stays free for a while instead of going to its
 * first waiter (see Barging): opens the window, or is within it. */
static bool barge_defer(shoal_broker *b, bobj *o)
{
    if (!barging(o->st->kind) || o->lslot || o->st->owner || !o->wh)
        return false;
    int64_t now = now_ns();
    if (now - o->wh->since >= BARGE_WAIT_NS || (o->grant_at && o->grant_at <= now)) {
        o->grant_at = 0;
        return false;
    }
    if (!o->grant_at) {
        o->grant_at = now + BARGE_WINDOW_NS;
        b->barge_windows++;
        pthread_cond_signal(&b->timer_cv);
    }
    return true;
}

/* Retries the object's waiters in arrival order until none completes. */
static void pump_all(shoal_broker *b, bobj *o)
{
    for (int progress = 1; progress;) {
        progress = 0;
        for (waiter *w = o->wh, *next; w; w = next) {
            next = w->next;
            op_ctx c = {.b = b, .o = o, .req = w->req, .sid = w->sid, .w = w};
            int rc = run(&c);
            if (rc == BLOCK)
                continue;
            waiter_done(b, o, w, rc, c.result);
            progress = 1;
        }
    }
}

/* pump_all, unless o is a lock that barging keeps free for now. */
static void pump(shoal_broker *b, bobj *o)
{
    if (!barge_defer(b, o))
        pump_all(b, o);
}

static void barrier_break(shoal_broker *b, bobj *o)
{
    o->st->flag = 1;
    o->st->limit = 0;
    for (waiter *w = o->wh, *next; w; w = next) {
        next = w->next;
        waiter_done(b, o, w, shoal__err(SHOAL_EBROKEN, "Barrier \"%s\": broken", o->name),
                    NULL);
    }
    broker__dirty(b, o);
}

/* A waiter's deadline passed. */
static void expire(shoal_broker *b, bobj *o, waiter *w)
{
    int kind = o->st->kind;
    if (kind == SHOAL__BROKER__KIND__CONDITION && w->stage == 0) {
        w->stage = 1; /* take the lock back, then answer False */
        w->timed_out = 1;
        w->deadline = INT64_MAX;
        pump(b, o);
    } else if (kind == SHOAL__BROKER__KIND__BARRIER) {
        barrier_break(b, o);
    } else if (kind == SHOAL__BROKER__KIND__EVENT) {
        waiter_done(b, o, w, 0, shoal__bv_bool(false));
    } else {
        waiter_done(b, o, w,
                    shoal__err(SHOAL_ETIMEDOUT, "%s \"%s\": %s timed out",
                               kind_name(kind), o->name, w->req->op),
                    NULL);
    }
}

/* One pass over every waiter: expires the due ones; returns the next deadline. */
static int64_t expire_due(shoal_broker *b)
{
    int64_t now = now_ns(), next = INT64_MAX;
    for (size_t i = 0; b->nwaiters && i < b->ntab; i++)
        for (bobj *o = b->tab[i]; o; o = o->next) {
            if (o->lslot && o->wh) { /* a client's release tells nobody: poll (locks.c) */
                if (broker__lw_retry(b, o))
                    pump_all(b, o);
                if (o->wh && now + LW_POLL_NS < next)
                    next = now + LW_POLL_NS;
            }
            if (o->grant_at && o->grant_at <= now) {
                o->grant_at = 0; /* a barging window closed: the first waiter's turn */
                pump_all(b, o);
            } else if (o->grant_at && o->grant_at < next) {
                next = o->grant_at;
            }
            for (waiter *w = o->wh, *wn; w; w = wn) {
                wn = w->next;
                if (w->deadline <= now) {
                    expire(b, o, w);
                    wn = o->wh; /* the list may have changed: rescan the object */
                } else if (w->deadline < next) {
                    next = w->deadline;
                }
            }
        }
    return next;
}

static void *timer_main(void *arg)
{
    shoal_broker *b = arg;
    pthread_mutex_lock(&b->mu);
    while (!b->stop) {
        int64_t next = expire_due(b);
        finish(b);
        if (next == INT64_MAX) {
            pthread_cond_wait(&b->timer_cv, &b->mu);
        } else {
            struct timespec ts = {next / 1000000000, next % 1000000000};
            pthread_cond_timedwait(&b->timer_cv, &b->mu, &ts);
        }
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* ---- object life: create, delete, broker-wide requests ------------------------------
 */

/* The initial state of a new object of kind k: create's arguments are [kind, initial
 * value or size, typecode]. */
static int new_state(op_ctx *c, int k, bobjstate **out)
{
    bobjstate *st = malloc(sizeof(*st));
    if (!st)
        return shoal__err(SHOAL_ENOMEM, "broker: out of memory");
    shoal__broker__object__init(st);
    st->kind = (Shoal__Broker__Kind)k;
    bv *init = arg(c, 1), *tc = arg(c, 2);
    int rc = 0;
    st->typecode = strdup(tc && tc->kind_case == BV_STR ? tc->s : "");
    switch (k) {
    case SHOAL__BROKER__KIND__DICT:
    case SHOAL__BROKER__KIND__NAMESPACE:
        rc = init && init->kind_case != BV_MAP && init->kind_case != BV_NONE
                 ? bad_args(c, "a map to start from")
                 : 0;
        st->data = init && init->kind_case == BV_MAP ? take_arg(c, 1) : shoal__bv_map();
        break;
    case SHOAL__BROKER__KIND__LIST:
    case SHOAL__BROKER__KIND__ARRAY:
        rc = init && init->kind_case != BV_LIST && init->kind_case != BV_TUPLE &&
                     init->kind_case != BV_NONE
                 ? bad_args(c, "a list to start from")
                 : 0;
        if (init && init->kind_case == BV_TUPLE)
            init->kind_case = BV_LIST; /* list and tuple share the oneof's Seq */
        if (init && init->kind_case == BV_LIST) {
            st->data = take_arg(c, 1);
        } else {
            st->data = shoal__bv_seq(BV_LIST);
        }
        break;
    case SHOAL__BROKER__KIND__VALUE:
        st->data = init ? take_arg(c, 1) : shoal__bv_int(0);
        break;
    case SHOAL__BROKER__KIND__QUEUE:
    case SHOAL__BROKER__KIND__JOINABLE_QUEUE:
        st->limit = is_int(init) && init->i > 0 ? init->i : 0;
        st->data = shoal__bv_seq(BV_LIST);
        break;
    case SHOAL__BROKER__KIND__SEMAPHORE:
    case SHOAL__BROKER__KIND__BOUNDED_SEMAPHORE:
        st->count = st->limit = is_int(init) ? init->i : 1;
        rc = st->count < 0 ? bad_args(c, "a value of at least 0") : 0;
        st->data = shoal__bv_map();
        break;
    case SHOAL__BROKER__KIND__BARRIER:
        st->count = is_int(init) ? init->i : 0;
        rc = st->count < 1 ? bad_args(c, "a number of parties of at least 1") : 0;
        st->data = shoal__bv_int(0);
        break;
    case SHOAL__BROKER__KIND__LOCK:
    case SHOAL__BROKER__KIND__RLOCK:
    case SHOAL__BROKER__KIND__EVENT:
    case SHOAL__BROKER__KIND__CONDITION:
        st->data = shoal__bv_none();
        break;
    default:
        rc = shoal__err(SHOAL_EINVAL, "broker: create \"%s\": unknown kind %d",
                        c->req->object, k);
    }
    if (rc == 0 && (!st->data || !st->typecode))
        rc = shoal__err(SHOAL_ENOMEM, "broker: out of memory");
    if (rc == 0 && (k == SHOAL__BROKER__KIND__VALUE || k == SHOAL__BROKER__KIND__ARRAY)) {
        c->o = &(bobj){.name = c->req->object, .st = st};
        Shoal__Broker__Seq *s = k == SHOAL__BROKER__KIND__ARRAY ? seq(st->data) : NULL;
        rc = s ? 0 : check_typed(c, st->data);
        for (size_t i = 0; s && rc == 0 && i < s->n_items; i++)
            rc = check_typed(c, s->items[i]);
        c->o = NULL;
    }
    if (rc < 0) {
        protobuf_c_message_free_unpacked(&st->base, NULL);
        return rc;
    }
    *out = st;
    return 0;
}

static int valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 255)
        return shoal__err(SHOAL_ENAME,
                          "broker: object name \"%.40s\": empty or over 255 bytes", name);
    return 0;
}

/* create: open-or-create; the result says whether it was created. */
static int op_create(shoal_broker *b, op_ctx *c)
{
    bv *k = arg(c, 0);
    int rc = valid_name(c->req->object);
    if (rc < 0)
        return rc;
    if (!is_int(k))
        return shoal__err(SHOAL_EINVAL, "broker: create \"%s\": no kind", c->req->object);
    bobj *o = broker__find(b, c->req->object);
    if (o)
        return o->st->kind == k->i
                   ? set_result(c, shoal__bv_bool(false))
                   : shoal__err(SHOAL_EKIND, "broker: \"%s\" is a %s, not a %s", o->name,
                                kind_name(o->st->kind), kind_name((int)k->i));
    bobjstate *st = NULL;
    rc = new_state(c, (int)k->i, &st);
    if (rc < 0)
        return rc;
    o = broker__insert(b, c->req->object, st);
    if (!o) {
        protobuf_c_message_free_unpacked(&st->base, NULL);
        return shoal__err(SHOAL_ENOMEM, "broker: out of memory");
    }
    o->hdr = o->full = 1; /* all of it is new */
    broker__locks_add(b, o);
    broker__dirty(b, o);
    return set_result(c, shoal__bv_bool(true));
}

/* describe: what `shoal inspect --broker` shows — the object's whole state, its
 * size, and who waits on it: {kind, size, data, typecode, count, limit, owner,
 * owner_thread, flag, seq, watchers, waiters: [(session, op), ...]}. */
static int op_describe(op_ctx *c, bobj *o)
{
    broker__settle(o);
    const bobjstate *st = o->st;
    const bv *d = st->data;
    size_t size = d && d->kind_case == BV_MAP ? d->map->n_entries
                  : d && (d->kind_case == BV_LIST || d->kind_case == BV_TUPLE)
                      ? seq((bv *)d)->n_items
                      : 0;
    bv *waiting = shoal__bv_seq(BV_LIST);
    for (waiter *w = o->wh; waiting && w; w = w->next) {
        bv *t = shoal__bv_seq(BV_TUPLE);
        if (!t || shoal__bv_seq_insert(t, 0, shoal__bv_int((int64_t)w->sid)) < 0 ||
            shoal__bv_seq_insert(t, 1, shoal__bv_str(w->req->op, strlen(w->req->op))) <
                0 ||
            shoal__bv_seq_insert(waiting, seq(waiting)->n_items, t) < 0) {
            shoal__bv_free(waiting);
            waiting = NULL;
        }
    }
    const char *kind = kind_name(st->kind);
    int64_t holder_pid = 0, count = st->count;
    int flag = st->flag;
    uint64_t thread = st->owner_thread;
    if (o->lslot) /* the word says (locks.c); a client's hold: its pid */
        broker__lw_describe(c->b, o, &holder_pid, &flag, &thread, &count);
    struct {
        const char *k;
        bv *v;
    } f[] = {{"kind", shoal__bv_str(kind, strlen(kind))},
             {"size", shoal__bv_int((int64_t)size)},
             {"data", d ? shoal__bv_clone(d) : shoal__bv_none()},
             {"typecode", shoal__bv_str(st->typecode, strlen(st->typecode))},
             {"count", shoal__bv_int(count)},
             {"limit", shoal__bv_int(st->limit)},
             {"owner", shoal__bv_int((int64_t)st->owner)},
             {"owner_thread", shoal__bv_int((int64_t)thread)},
             {"flag", shoal__bv_bool(flag)},
             {"seq", shoal__bv_int((int64_t)o->seq)},
             {"watchers", shoal__bv_int((int64_t)broker__watch_count(o))},
             {"waiters", waiting},
             {"holder_pid", o->lslot ? shoal__bv_int(holder_pid) : NULL}};
    bv *m = shoal__bv_map();
    int ok = m != NULL;
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (ok && f[i].v)
            ok = shoal__bv_map_put(m, shoal__bv_str(f[i].k, strlen(f[i].k)), f[i].v) == 0;
        else if (f[i].v || strcmp(f[i].k, "holder_pid"))
            ok = (shoal__bv_free(f[i].v), 0);
    if (!ok) {
        shoal__bv_free(m);
        return shoal__err(SHOAL_ENOMEM, "broker: out of memory");
    }
    return set_result(c, m);
}

static int op_delete(shoal_broker *b, op_ctx *c, bobj *o)
{
    while (o->wh)
        waiter_done(b, o, o->wh,
                    shoal__err(SHOAL_ENOENT, "broker: \"%s\" was deleted", o->name),
                    NULL);
    broker__watch_deleted(b, o);
    broker__view_bump(b, o, 1); /* its cached replies are stale, its slot free */
    broker__locks_drop(b, o);
    broker__store_drop(b, o); /* its entry or item records */
    unlink_obj(b, o);
    broker__settle(o);
    protobuf_c_message_free_unpacked(&o->st->base, NULL);
    o->st = NULL; /* freed once its deletion is committed */
    if (!o->dirty)
        broker__dirty(b, o);
    (void)c;
    return 0;
}

/* Requests on no object (name ""): "stats", "names" and "noop". */
static int op_broker(shoal_broker *b, op_ctx *c)
{
    if (!strcmp(c->req->op, "stats")) {
        bv *m = shoal__bv_map();
        const struct {
            const char *k;
            uint64_t v;
        } f[] = {{"requests", b->requests},  {"bad_requests", b->bad_requests},
                 {"objects", b->nobj},       {"waiters", b->nwaiters},
                 {"parked", b->parked},      {"barge_windows", b->barge_windows},
                 {"watchers", b->nwatchers}, {"durable", b->store != NULL}};
        for (size_t i = 0; m && i < sizeof(f) / sizeof(f[0]); i++)
            if (shoal__bv_map_put(m, shoal__bv_str(f[i].k, strlen(f[i].k)),
                                  shoal__bv_int((int64_t)f[i].v)) < 0)
                m = NULL;
        return set_result(c, m);
    }
    if (!strcmp(c->req->op, "names")) {
        bv *l = shoal__bv_seq(BV_LIST);
        for (size_t i = 0; l && i < b->ntab; i++)
            for (bobj *o = b->tab[i]; l && o; o = o->next) {
                bv *t = shoal__bv_seq(BV_TUPLE);
                if (!t ||
                    shoal__bv_seq_insert(t, 0, shoal__bv_str(o->name, strlen(o->name))) <
                        0 ||
                    shoal__bv_seq_insert(t, 1, shoal__bv_int(o->st->kind)) < 0 ||
                    shoal__bv_seq_insert(l, seq(l)->n_items, t) < 0) {
                    shoal__bv_free(l);
                    l = NULL;
                }
            }
        return set_result(c, l);
    }
    if (!strcmp(c->req->op, "noop"))
        return 0;
    if (!strcmp(c->req->op, "lock_owner")) /* locks.c: [owner id] */
        return broker__locks_hello(b, c->sid, is_int(arg(c, 0)) ? arg(c, 0)->i : 0);
    return shoal__err(SHOAL_EINVAL, "broker: no broker-wide operation \"%s\"",
                      c->req->op);
}

/* ---- requests ---------------------------------------------------------------------- */

/* What execute returns for a request parked as a waiter (its reply comes later). */
#define PARKED 2

static int run_item(shoal_broker *b, broker_session *s, uint64_t sid, breq *req);

/* Runs request req: 0 or a negative SHOAL_E* code (detail in shoal_errdetail()), with
 * the result in c->result (c->lent: the object's own), or PARKED. *on: the object it
 * ran on (NULL: none). The reply is the caller's. */
static int execute(shoal_broker *b, broker_session *s, uint64_t sid, breq *req, op_ctx *c,
                   bobj **on)
{
    *c = (op_ctx){.b = b, .req = req, .sid = sid};
    bobj *o = *on = NULL;
    int rc;
    if (req->n_batch) /* batch.c: its items run through run_item */
        rc = broker__batch(b, s, sid, req, run_item, &c->result);
    else if (!*req->object)
        rc = op_broker(b, c);
    else if (is_op(req->op, "create"))
        rc = op_create(b, c);
    else if (!(o = *on = broker__find(b, req->object)))
        rc = shoal__err(SHOAL_ENOENT, "broker: no object \"%.255s\"", req->object);
    else if (is_op(req->op, "delete"))
        rc = op_delete(b, c, o);
    else if (is_op(req->op, "kind"))
        rc = set_result(c, shoal__bv_int(o->st->kind));
    else if (is_op(req->op, "describe"))
        rc = op_describe(c, o);
    else {
        c->o = o;
        rc = run(c);
    }
    if (rc == BLOCK && (req->timeout_ms != 0 || c->parked_state)) {
        rc = park(b, c, s);
        if (rc == 0) { /* the waiter has a copy of the request now */
            if (c->parked_state)
                pump(b, o);
            return PARKED;
        }
    }
    if (rc == BLOCK)
        rc = shoal__err(SHOAL_ETIMEDOUT, "%s \"%s\": %s would have to wait",
                        kind_name(o->st->kind), o->name, req->op);
    return rc;
}

/* After a request ran on o: retries o's waiters if it changed, keeping the request's
 * error detail (rc < 0) for its caller. */
static void wake(shoal_broker *b, bobj *o, int rc)
{
    if (!o || !o->st || !o->dirty || !o->wh)
        return;
    char error[512]; /* the waiters' runs may set the thread's error detail */
    if (rc < 0)
        snprintf(error, sizeof(error), "%s", shoal_errdetail());
    pump(b, o);
    if (rc < 0)
        shoal__err(rc, "%s", error);
}

/* Runs request req and leaves its reply pending (none for id 0 unless it failed). */
static void dispatch(shoal_broker *b, broker_session *s, uint64_t sid, breq *req)
{
    op_ctx c;
    bobj *o;
    int rc = execute(b, s, sid, req, &c, &o);
    if (rc == PARKED)
        return;
    if (req->id == 0 && rc == 0 && !c.lent) { /* id 0: no reply unless it failed */
        shoal__bv_free(c.result);
    } else {
        size_t n = b->npend;
        pend(b, s, req->id, rc, c.result, c.lent);
        if (c.pure && rc == 0 && b->view && b->npend > n &&
            !o->lslot) /* after the commit;
                        * a word's state is never cached */
            broker__view_stage(b, o, b->raw, b->rawlen, broker_reply_bytes(&b->pend[n]),
                               b->pend[n].len);
    }
    wake(b, o, 0);
}

/* A batch item (batch.c's `run`): runs req with no reply of its own, returning its
 * status (0 also when it parked) with the error in shoal_errdetail(). */
static int run_item(shoal_broker *b, broker_session *s, uint64_t sid, breq *req)
{
    op_ctx c;
    bobj *o;
    int rc = execute(b, s, sid, req, &c, &o);
    if (rc == PARKED)
        return 0;
    if (!c.lent)
        shoal__bv_free(c.result);
    wake(b, o, rc);
    return rc;
}

void broker_request(shoal_broker *b, broker_session *s, uint64_t sid, const void *buf,
                    size_t len)
{
    broker_run(b, s, sid, buf, len, 0);
}

/* Whether the request that just ended leaves its commit to a batch in progress (under
 * b->mu): see "Group commit" at the top. */
static bool group_joins(shoal_broker *b)
{
    return b->store && atomic_load_explicit(&b->batching, memory_order_acquire) > 0 &&
           b->npend < GROUP_MAX;
}

void broker_batching(shoal_broker *b, int on)
{
    if (b->store)
        atomic_fetch_add_explicit(&b->batching, on ? 1 : -1, memory_order_acq_rel);
}

/* Request buf[len], decoded (req; NULL: refused, `refusal` saying why), run under
 * b->mu. */
static void run_decoded(shoal_broker *b, broker_session *s, uint64_t sid, const void *buf,
                        size_t len, breq *req, const char *refusal)
{
    b->requests++;
    if (!req) {
        b->bad_requests++;
        /* Refused with the request's id if it reads (else 0), so the refusal reaches
         * the client waiting for that id. Detail: shoal__bv_unpack's. */
        pend(b, s, shoal__pb_varint_of(buf, len, 1),
             shoal__err(SHOAL_EINVALID_DATA, "%s", refusal), NULL, false);
    } else if (b->store_failed) {
        pend(b, s, req->id,
             shoal__err(SHOAL_ESYS,
                        "broker: the data directory failed; restart the broker"),
             NULL, false);
    } else {
        b->raw = buf;
        b->rawlen = len;
        dispatch(b, s, sid, req);
        b->raw = NULL;
    }
}

/* The requests at hand of a session (bufs[i], lens[i]), decoded one after the other
 * into one arena outside the mutex, then run in a row in one hold of it; finished
 * (committed, their replies handed over) after the last unless defer. */
static int run_all(shoal_broker *b, broker_session *s, uint64_t sid, void *const *bufs,
                   const size_t *lens, size_t n, int defer, int batching)
{
    max_align_t space[ARENA_BYTES / sizeof(max_align_t)];
    shoal_bv_arena arena;
    shoal__bv_arena_init(&arena, space, sizeof(space));
    breq *reqs[BROKER_RUN_MAX];
    char *refusals[BROKER_RUN_MAX];
    n = n < BROKER_RUN_MAX ? n : BROKER_RUN_MAX;
    for (size_t i = 0; i < n; i++) {
        reqs[i] = (breq *)shoal__bv_unpack_in(&shoal__broker__request__descriptor,
                                              bufs[i], lens[i], &arena);
        refusals[i] = reqs[i] ? NULL : strdup(shoal_errdetail()); /* NULL: no memory */
    }
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < n; i++) {
        if (i && b->store) { /* the other sessions' requests may run in between, and */
            pthread_mutex_unlock(&b->mu); /* share this batch's commit (group commit) */
            pthread_mutex_lock(&b->mu);
        }
        if (batching && i == n - 1) /* the last: the batch ends, its commit follows */
            broker_batching(b, 0);
        run_decoded(b, s, sid, bufs[i], lens[i], reqs[i],
                    refusals[i] ? refusals[i] : "broker message: does not decode");
    }
    /* defer: a commit to share, the next request's covers these (without a data
     * directory, the hand-over of the replies and the view's publication) */
    if (!defer && !group_joins(b))
        finish(b);
    pthread_mutex_unlock(&b->mu);
    for (size_t i = 0; i < n; i++)
        if (refusals[i])
            free(refusals[i]);
    if (arena.blocks) /* else nothing to free: the stack space goes with the frame */
        shoal__bv_arena_reset(&arena);
    return defer;
}

int broker_run(shoal_broker *b, broker_session *s, uint64_t sid, const void *buf,
               size_t len, int defer)
{
    void *bufs[1] = {(void *)buf};
    return run_all(b, s, sid, bufs, &len, 1, defer, 0);
}

void broker_run_all(shoal_broker *b, broker_session *s, uint64_t sid, void *const *bufs,
                    const size_t *lens, size_t n, int batching)
{
    run_all(b, s, sid, bufs, lens, n, 0, batching);
}

void broker_commit(shoal_broker *b)
{
    pthread_mutex_lock(&b->mu);
    finish(b);
    pthread_mutex_unlock(&b->mu);
}

uint64_t broker_session_id(shoal_broker *b)
{
    pthread_mutex_lock(&b->mu);
    uint64_t id = (b->boot << 32) | ++b->next_sid;
    pthread_mutex_unlock(&b->mu);
    return id;
}

/* Frees what a session held in o: sid 0 means every session (after a restart). */
static void release_held(shoal_broker *b, bobj *o, uint64_t sid)
{
    bobjstate *st = o->st;
    if (sid == BROKER_ANON)
        return;
    int was_dirty = o->dirty;
    if (o->lslot) {
        if (broker__lw_end(b, o, sid))
            broker__dirty(b, o);
    } else if ((st->kind == SHOAL__BROKER__KIND__LOCK ||
                st->kind == SHOAL__BROKER__KIND__RLOCK ||
                st->kind == SHOAL__BROKER__KIND__CONDITION) &&
               st->owner && (!sid || st->owner == sid)) {
        st->owner = st->owner_thread = 0;
        st->count = 0;
        st->flag = 1; /* the next acquirer is told */
        broker__dirty(b, o);
    }
    if (st->kind == SHOAL__BROKER__KIND__SEMAPHORE ||
        st->kind == SHOAL__BROKER__KIND__BOUNDED_SEMAPHORE) {
        Shoal__Broker__Map *m = st->data->map;
        for (size_t i = m->n_entries; i-- > 0;)
            if (!sid || (uint64_t)m->entries[i]->key->i == sid) {
                bv *units = shoal__bv_map_take(st->data, i);
                st->count += units->i;
                shoal__bv_free(units);
                broker__dirty(b, o);
            }
    }
    if (st->kind == SHOAL__BROKER__KIND__BARRIER && !sid && st->limit) {
        st->limit = 0; /* its waiters were in the previous life */
        broker__dirty(b, o);
    }
    if (o->dirty && !was_dirty)
        broker__watch_change(b, o, NULL, NULL, NULL);
}

void broker_session_end(shoal_broker *b, broker_session *s, uint64_t sid)
{
    pthread_mutex_lock(&b->mu);
    for (size_t i = 0; i < b->ntab; i++)
        for (bobj *o = b->tab[i]; o; o = o->next) {
            int broke = 0;
            for (waiter *w = o->wh, *next; w; w = next) {
                next = w->next;
                if (w->s != s)
                    continue;
                broke |= o->st->kind == SHOAL__BROKER__KIND__BARRIER;
                unpark(b, o, w);
                protobuf_c_message_free_unpacked(&w->req->base, NULL);
                free(w);
            }
            if (broke) /* a party is gone: the others would wait for ever */
                barrier_break(b, o);
            release_held(b, o, sid);
            if (o->dirty)
                pump(b, o);
        }
    broker__locks_bye(b, sid);
    /* replies to s not handed over yet go; the others keep their order */
    size_t kept = 0;
    for (size_t i = 0; i < b->npend; i++)
        if (b->pend[i].s == s)
            free(b->pend[i].buf);
        else
            b->pend[kept++] = b->pend[i];
    b->npend = kept;
    finish(b);
    pthread_mutex_unlock(&b->mu);
}

/* ---- the broker -------------------------------------------------------------------- */

int shoal_broker_create(shoal_broker **out, const shoal_broker_config *cfg,
                        broker_deliver deliver)
{
    shoal_broker *b = calloc(1, sizeof(*b));
    if (!b || !(b->tab = calloc(b->ntab = 64, sizeof(*b->tab)))) {
        free(b);
        return shoal__err(SHOAL_ENOMEM, "broker: out of memory");
    }
    b->deliver = deliver;
    b->boot = 1;
    pthread_mutex_init(&b->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->timer_cv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = cfg && cfg->data_dir ? broker__store_open(b, cfg->data_dir, cfg->sync) : 0;
    if (rc == 0) { /* locks and units held in a previous life are free, owner-died */
        pthread_mutex_lock(&b->mu);
        for (size_t i = 0; i < b->ntab; i++)
            for (bobj *o = b->tab[i]; o; o = o->next)
                release_held(b, o, 0);
        finish(b);
        rc = b->store_failed ? SHOAL_ESYS : 0;
        pthread_mutex_unlock(&b->mu);
    }
    if (rc == 0 && pthread_create(&b->timer, NULL, timer_main, b) != 0)
        rc = shoal__err(SHOAL_ESYS, "broker: cannot start the timer thread");
    if (rc < 0) {
        b->stop = 1;
        b->timer = 0;
        shoal_broker_destroy(b);
        return rc;
    }
    *out = b;
    return 0;
}

void shoal_broker_destroy(shoal_broker *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    int running = !b->stop;
    b->stop = 1;
    pthread_cond_signal(&b->timer_cv);
    pthread_mutex_unlock(&b->mu);
    if (running)
        pthread_join(b->timer, NULL);
    broker__locks_close(b);
    broker__view_close(b);
    for (size_t i = 0; i < b->ntab; i++)
        for (bobj *o = b->tab[i], *next; o; o = next) {
            next = o->next;
            while (o->wh) {
                waiter *w = o->wh;
                unpark(b, o, w);
                protobuf_c_message_free_unpacked(&w->req->base, NULL);
                free(w);
            }
            broker__free_obj(o);
        }
    for (size_t i = 0; i < b->npend; i++)
        free(b->pend[i].buf);
    for (size_t i = 0; i < b->nrecs; i++)
        free(b->recs[i].buf);
    free(b->recs);
    broker__store_close(b);
    free(b->pend);
    free(b->dirty);
    free(b->tab);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->timer_cv);
    free(b);
}
