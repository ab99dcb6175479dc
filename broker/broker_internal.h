/*
 * broker_internal.h — what core.c, store.c and session.c share.
 */
#ifndef SHOAL_BROKER_INTERNAL_H
#define SHOAL_BROKER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "broker.h"
#include "view.h"

/* A request parked on an object until it can complete or its deadline passes. */
typedef struct waiter {
    struct waiter *next, *prev; /* on its object, in arrival order */
    broker_session *s;
    uint64_t sid;
    breq *req;
    int64_t deadline; /* monotonic ns; INT64_MAX: none */
    int64_t since;    /* when it parked (monotonic ns) */
    int64_t stage;    /* condition: 0 until notified; barrier: its generation */
    int64_t saved;    /* condition: the lock depth to take back; barrier: its index */
    int timed_out;
} waiter;

struct broker_watcher;

/* index.c: a dict's hash index (see its top comment). */
typedef struct broker_index broker_index;
/* The hash of a key, agreeing with shoal__bv_equal (1, 1.0 and True hash alike). */
uint64_t broker__bv_hash(const bv *v);
broker_index *broker__index_new(void);
void broker__index_free(broker_index *x);
/* (Re)builds x over map m's entries, dropping a repeated key (the first stays, with
 * the last value); ids: their record ids, in increasing order (NULL: new ones). 0 or
 * -1 (out of memory: x and m unchanged). */
int broker__index_build(broker_index *x, bv *m, const uint64_t *ids);
/* The position of key in m, or -1. */
long broker__index_find(const broker_index *x, const bv *m, const bv *key);
/* m[key] = v (both taken over; an existing entry keeps its key and place). Returns
 * the entry's position (*added: whether it is new), or -1 (out of memory: both
 * freed). */
long broker__index_put(broker_index *x, bv *m, bv *key, bv *v, int *added);
/* Removes entry pos of m, returning its value (its key freed) and its record id. The
 * entry's place becomes a hole (a NULL entry: the positions of the others stay) until
 * the map is compacted, which this does itself once the holes outnumber the entries. */
bv *broker__index_take(broker_index *x, bv *m, size_t pos, uint64_t *id);
/* The number of entries of m, holes not counted. */
size_t broker__index_len(const broker_index *x, const bv *m);
/* Squeezes the holes out of m (positions change; record ids stay). */
void broker__index_compact(broker_index *x, bv *m);
/* The record id of entry pos. */
uint64_t broker__index_id(const broker_index *x, size_t pos);

typedef struct bobj {
    char *name;
    bobjstate *st;
    waiter *wh, *wt;
    struct bobj *next; /* hash chain */
    int dirty;
    uint64_t seq;                    /* writes since the broker started (Watch) */
    struct broker_watcher *watchers; /* watch.c */
    broker_index *idx;               /* dict, Namespace: the index of data's keys */
    uint64_t *keys; /* list, Array, queue with a data directory: each item's record key,
                     * beside it (keys[i] for items[i], holes included; store.c) */
    size_t capkeys;
    size_t front;     /* list, queue: holes (NULL items) before item 0 */
    int hdr;          /* store: its header record must be written */
    int full;         /* store: all its records must be rewritten */
    int64_t grant_at; /* Lock, RLock freed with waiters: when the first gets it (core.c,
                       * Barging); 0: none */
    uint32_t vslot;   /* its slot in the read view's generation table (view.c); 0: none */
    uint32_t lslot;   /* Lock, RLock: its slot in the lock table + 1 (locks.c); 0: none */
} bobj;

/* Whether objects of kind k keep their items or entries in records of their own. */
bool broker__records_kind(int k);

/* A change to one record of an object, waiting for the commit (store.c). */
struct broker_rec {
    bobj *o;
    int what; /* 0: put buf under id; 1: delete id; 2: delete all of o's records */
    uint64_t id;
    void *buf; /* the packed record (put) */
    size_t len;
};

struct broker_store;

struct shoal_broker {
    pthread_mutex_t mu;
    bobj **tab;
    size_t ntab, nobj;
    bobj *recent; /* the object broker__find found last (NULL: none, or it went) */
    broker_deliver deliver;
    struct broker_store *store; /* NULL: memory only */
    int store_failed;
    _Atomic int sessions; /* Session streams open (session.c: how they receive) */
    _Atomic int batching; /* sessions in a batch of deferred requests (group commit) */
    uint64_t boot, next_sid;
    uint64_t requests, bad_requests;
    uint64_t parked;        /* requests parked as waiters since the start (stats) */
    uint64_t barge_windows; /* freed locks kept free for a barger (core.c, Barging) */
    size_t nwaiters;
    bobj **dirty; /* changed by the request running now */
    size_t ndirty, capdirty;
    broker_reply *pend; /* its replies, handed over once durable */
    size_t npend, cappend;
    struct broker_rec *recs; /* the record changes of the writes not committed yet */
    size_t nrecs, caprecs;
    int recs_lost; /* one could not be kept (out of memory): the commit must fail */
    shoal_rpc_service svc;          /* session.c's table, bound to this broker */
    struct broker_watcher *wstaged; /* watchers with changes waiting for the commit */
    size_t nwatchers;
    pthread_t timer;
    pthread_cond_t timer_cv;
    int stop;
    struct broker_view *view;   /* view.c: NULL without one */
    struct broker_locks *locks; /* locks.c: the lock table, NULL without one */
    const void *raw;            /* the request running now, as it came (view.c's key) */
    size_t rawlen;
};

bobj *broker__find(shoal_broker *b, const char *name);

/* ---- the lock table (locks.c): Lock and RLock objects shm:// clients take in shared
 * memory. All but open and close run under the mutex, on objects with an lslot. ---- */

/* Makes NAME:locks beside the broker's shm://name: 0 or a SHOAL_E* code (the broker
 * then keeps its locks to itself). */
int broker__locks_open(shoal_broker *b, const char *name, const shoal_attr *attr);
/* Removes it (its objects keep their state in the broker from then on). */
void broker__locks_close(shoal_broker *b);
/* Session sid's client takes locks in the table as owner (the broker-wide request
 * "lock_owner"): the broker takes them for it under that id. 0 or SHOAL_EINVAL. */
int broker__locks_hello(shoal_broker *b, uint64_t sid, int64_t owner);
/* Session sid ended: forgotten. */
void broker__locks_bye(shoal_broker *b, uint64_t sid);
/* A Lock or RLock o was made: its slot (none when the table is full). */
void broker__locks_add(shoal_broker *b, bobj *o);
/* o is deleted: its slot is marked gone (clients waiting on it stop: SHOAL_ENOENT). */
void broker__locks_drop(shoal_broker *b, bobj *o);
/* acquire for session sid's thread: 0, 1 (held: block), or a SHOAL_E* code
 * (SHOAL_EOWNERDEAD: taken, its last holder died); waiter: a parked request. */
int broker__lw_take(shoal_broker *b, bobj *o, uint64_t sid, uint64_t thread, int waiter);
/* release for session sid's thread: 0 or SHOAL_EPERM (unlocked, not the holder). */
int broker__lw_release(shoal_broker *b, bobj *o, uint64_t sid, uint64_t thread);
bool broker__lw_locked(shoal_broker *b, bobj *o);
/* Session sid (0: every one) ended: a lock the broker held for it is freed with the
 * owner-died mark. Whether it was. */
bool broker__lw_end(shoal_broker *b, bobj *o, uint64_t sid);
/* Whether o's parked acquires may succeed now (free, or its client holder dead). */
bool broker__lw_retry(shoal_broker *b, bobj *o);
/* What describe shows of the word: the holder's pid (0: free), whether it is free
 * because its last holder died, the holder's thread and the depth. */
void broker__lw_describe(shoal_broker *b, bobj *o, int64_t *holder_pid, int *died,
                         uint64_t *thread, int64_t *depth);
bobj *broker__insert(shoal_broker *b, const char *name, bobjstate *st);
/* Frees an object (its state may be NULL: a deleted object). */
void broker__free_obj(bobj *o);
void broker__dirty(shoal_broker *b, bobj *o);
/* Squeezes out the holes that removals left in o's own dict entries or list / queue
 * items (index.c's top comment; a list's record keys move with its items): what reads
 * or packs o's whole data calls it first. */
void broker__settle(bobj *o);

/* store.c: LMDB. Opens (creating) the environment in dir, loads every object into b
 * (broker__insert) and reads and bumps the boot counter. */
int broker__store_open(shoal_broker *b, const char *dir, int sync);
/* Log a change to o's records for the next commit (nothing without a data
 * directory): entry pos of its dict, or item pos of its list, was set or added; the
 * record id went; all of its records went (o deleted). The record is packed now. */
void broker__store_entry(shoal_broker *b, bobj *o, size_t pos);
void broker__store_item(shoal_broker *b, bobj *o, size_t pos);
void broker__store_gone(shoal_broker *b, bobj *o, uint64_t id);
/* Item pos of o's own list was inserted (the items after it moved up): gives it a key
 * between its neighbours' (renumbering a few around it when there is no room) and
 * logs the records that changed. */
void broker__store_item_added(shoal_broker *b, bobj *o, size_t pos);
/* Item pos of o's own list is about to go: logs its record's delete; its key goes
 * with it (hole: its slot becomes a hole before item 0, the others stay in place). */
void broker__store_item_going(shoal_broker *b, bobj *o, size_t pos, bool hole);
void broker__store_drop(shoal_broker *b, bobj *o);
/* Applies the logged record changes, then the headers of the changed objects (a
 * deleted one: o->st NULL) and the full rewrites (o->full), in one transaction, and
 * commits. The log is emptied either way. */
int broker__store_commit(shoal_broker *b, bobj **objs, size_t n);
void broker__store_close(shoal_broker *b);

/*
 * watch.c: the Watch method. Under b->mu: broker__watch_args clones a write's
 * arguments when an object watcher needs them (NULL otherwise; before the operation
 * takes them over); broker__watch_change records that o changed (op NULL: the broker
 * freed what an ended session held), counting o->seq and staging a Change for each
 * watcher (takes args); broker__watch_deleted ends o's watches with a "deleted"
 * change; broker__watch_flush hands the staged changes to their watchers once the
 * writes are durable (committed 0: drops them).
 */
bv *broker__watch_args(const bobj *o, const breq *req);
void broker__watch_change(shoal_broker *b, bobj *o, const breq *req, bv *args,
                          const bv *result);
void broker__watch_deleted(shoal_broker *b, bobj *o);
void broker__watch_flush(shoal_broker *b, int committed);
/* The number of watchers of o. */
size_t broker__watch_count(const bobj *o);
/* The Watch handler (session.c's method table). */
int broker_watch(shoal_rpc_ctx *ctx, void *arg);

/*
 * batch.c: a request with batch items, under b->mu. `run` is core.c's dispatcher for
 * an item (takes its request over): it runs the item with no reply of its own and
 * returns its status, 0 or a negative SHOAL_E* code with the error in
 * shoal_errdetail(). Returns 0 with *result the failures (NULL: none), or a negative
 * SHOAL_E* code for the whole batch.
 */
typedef int (*broker_run_fn)(shoal_broker *b, broker_session *s, uint64_t sid, breq *req);
int broker__batch(shoal_broker *b, broker_session *s, uint64_t sid, const breq *req,
                  broker_run_fn run, bv **result);

#endif
