/*
 * view.c — the broker's read view: replies of pure reads published in shared memory,
 * so that a client on the same host answers the same read without a round trip.
 * runtime/src/manager_view.c explains the mechanism (keys, generations, liveness) and
 * reads it; this file writes it, always under the broker's mutex.
 *
 * Objects get a slot in the generation table the first time a read of theirs is
 * staged; the slot's generation is set from the broker-wide counter then, at every
 * change of the object (broker__dirty and the deletion in core.c call
 * broker__view_bump) and when the object goes, which also gives the slot back. Objects
 * beyond the table's size are simply never published.
 *
 * A pure read (an op flagged F_PURE in core.c's ops[]) stages its key and reply with
 * the object's generation at the time it ran, unless its window already holds that
 * key's reply at that generation (a still-current reply, as when a client's read
 * came by round trip because its own request was in flight): nothing to write then,
 * and a reply stays unchanged while its generation does. finish() calls
 * broker__view_publish after the commit — so with a data directory no reader ever sees a
 * value a crash could lose — and a staged reply is written only if the generation is
 * still the one it was read at. Writing a slot: seq made odd, the fields and bytes, seq
 * made even. The slot is the one of the window that holds the same key, else an empty or
 * stale one (its object changed since), else the next one in turn (the cache evicts).
 *
 * Liveness: a thread of the broker (live_main) holds the header's robust lock from
 * the view's publication until its withdrawal; the kernel clears the lock's holder if
 * the broker dies.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_internal.h"
#include "internal.h"
#include "manager_view.h"
#include "view.h"

/* A pure read's reply waiting for the commit. */
typedef struct staged {
    uint32_t obj;
    uint16_t klen, rlen;
    uint64_t gen, hash;
    uint8_t data[sizeof(((shoal_view_slot *)0)->data)];
} staged;

struct broker_view {
    shoal__seg *seg;
    shoal_view_header *h;
    _Atomic uint64_t *gens;
    shoal_view_slot *slots;
    uint64_t clock;      /* the last generation given */
    uint32_t next_obj;   /* object slots never used start here */
    uint32_t *free_objs; /* object slots given back */
    size_t nfree;
    staged *st;
    size_t nst, capst;
    uint32_t evict;
    pthread_t live;
    pthread_mutex_t mu; /* live_main's: held, stop */
    pthread_cond_t cv;
    int held, stop;
    char name[SHOAL_NAME_MAX + 16];
    shoal_attr attr;
};

/* ---- the segment ---- */

static int init_view(shoal__seg *seg, void *arg)
{
    (void)arg;
    shoal_view_header *h = (shoal_view_header *)seg->payload;
    h->magic = SHOAL_VIEW_MAGIC;
    h->version = SHOAL_VIEW_VERSION;
    h->slot_size = SHOAL_VIEW_SLOT;
    h->nslots = SHOAL_VIEW_SLOTS;
    h->nobjs = SHOAL_VIEW_OBJS;
    h->gens_off = sizeof(*h);
    h->slots_off = h->gens_off + (uint64_t)SHOAL_VIEW_OBJS * 8;
    h->size = shoal__view_size(SHOAL_VIEW_OBJS, SHOAL_VIEW_SLOTS);
    return shoal_lock_init(&h->live, 0);
}

/* Holds the liveness lock until the view is withdrawn. */
static void *live_main(void *arg)
{
    struct broker_view *v = arg;
    int rc = shoal_lock_acquire(&v->h->live, SHOAL_FOREVER);
    pthread_mutex_lock(&v->mu);
    v->held = rc == 0 || rc == SHOAL_EOWNERDEAD ? 1 : -1;
    pthread_cond_broadcast(&v->cv);
    while (!v->stop)
        pthread_cond_wait(&v->cv, &v->mu);
    pthread_mutex_unlock(&v->mu);
    if (v->held == 1)
        shoal_lock_release(&v->h->live);
    return NULL;
}

static void view_free(struct broker_view *v)
{
    if (v->seg)
        shoal__seg_close(v->seg);
    pthread_mutex_destroy(&v->mu);
    pthread_cond_destroy(&v->cv);
    free(v->free_objs);
    free(v->st);
    free(v);
}

/* Creates NAME:view, replacing what an earlier broker left there. */
static int create_segment(struct broker_view *v, const shoal_attr *attr)
{
    size_t size = shoal__view_size(SHOAL_VIEW_OBJS, SHOAL_VIEW_SLOTS);
    shoal__seg_spec spec = {.kind = SHOAL_KIND_SHM,
                            .what = "broker view",
                            .count = size,
                            .check_count = true,
                            .payload_size = size,
                            .init = init_view};
    int rc = shoal__seg_open(&v->seg, v->name, SHOAL_CREATE, &spec, attr);
    if (rc == SHOAL_EEXIST) { /* ours to replace: this process listens on the name */
        shoal_unlink(v->name, attr);
        rc = shoal__seg_open(&v->seg, v->name, SHOAL_CREATE, &spec, attr);
    }
    return rc;
}

/* Stops the liveness thread (the readers stop trusting the view), removes the
 * segment's name and frees v. */
static void withdraw(struct broker_view *v)
{
    pthread_mutex_lock(&v->mu);
    v->stop = 1;
    pthread_cond_broadcast(&v->cv);
    pthread_mutex_unlock(&v->mu);
    pthread_join(v->live, NULL);
    shoal_unlink(v->name, &v->attr);
    view_free(v);
}

int broker__view_open(shoal_broker *b, const char *name, const shoal_attr *attr)
{
    struct broker_view *v = calloc(1, sizeof(*v));
    if (!v)
        return shoal__err(SHOAL_ENOMEM, "broker view: out of memory");
    pthread_mutex_init(&v->mu, NULL);
    pthread_cond_init(&v->cv, NULL);
    snprintf(v->name, sizeof(v->name), "%s:view", name);
    if (attr)
        v->attr = *attr;
    int rc = strlen(v->name) > SHOAL_NAME_MAX
                 ? shoal__err(SHOAL_ENAME, "broker view: shm://%s: name too long", name)
                 : create_segment(v, attr);
    if (rc < 0) {
        view_free(v);
        return rc;
    }
    v->h = (shoal_view_header *)v->seg->payload;
    v->gens = (_Atomic uint64_t *)(v->seg->payload + v->h->gens_off);
    v->slots = (shoal_view_slot *)(v->seg->payload + v->h->slots_off);
    v->next_obj = 1; /* 0: no object */
    if (pthread_create(&v->live, NULL, live_main, v) != 0) {
        shoal_unlink(v->name, attr);
        view_free(v);
        return shoal__err(SHOAL_ESYS, "broker view: cannot start a thread");
    }
    pthread_mutex_lock(&v->mu);
    while (!v->held)
        pthread_cond_wait(&v->cv, &v->mu);
    pthread_mutex_unlock(&v->mu);
    if (v->held < 0) {
        withdraw(v);
        return shoal__err(SHOAL_ESYS, "broker view: cannot take its liveness lock");
    }
    pthread_mutex_lock(&b->mu);
    b->view = v;
    pthread_mutex_unlock(&b->mu);
    return 0;
}

void broker__view_close(shoal_broker *b)
{
    pthread_mutex_lock(&b->mu);
    struct broker_view *v = b->view;
    b->view = NULL;
    pthread_mutex_unlock(&b->mu);
    if (v)
        withdraw(v);
}

/* ---- generations ---- */

static void set_gen(struct broker_view *v, uint32_t obj)
{
    atomic_store_explicit(&v->gens[obj], ++v->clock, memory_order_seq_cst);
}

void broker__view_bump(shoal_broker *b, bobj *o, int gone)
{
    struct broker_view *v = b->view;
    if (!v || !o->vslot)
        return;
    set_gen(v, o->vslot);
    if (!gone)
        return;
    uint32_t *f = realloc(v->free_objs, (v->nfree + 1) * sizeof(*f));
    if (f) { /* else the slot is lost: its generation stays unique anyway */
        v->free_objs = f;
        v->free_objs[v->nfree++] = o->vslot;
    }
    o->vslot = 0;
}

/* Gives o a slot in the generation table, if there is one left: whether it has one. */
static bool obj_slot(struct broker_view *v, bobj *o)
{
    if (o->vslot)
        return true;
    if (v->nfree)
        o->vslot = v->free_objs[--v->nfree];
    else if (v->next_obj < v->h->nobjs)
        o->vslot = v->next_obj++;
    else
        return false;
    set_gen(v, o->vslot);
    return true;
}

/* ---- replies ---- */

/* Whether slot s holds key[klen] (hash h). */
static bool same_key(const shoal_view_slot *s, uint64_t h, const uint8_t *key,
                     size_t klen)
{
    return atomic_load_explicit(&s->hash, memory_order_relaxed) == h &&
           atomic_load_explicit(&s->klen, memory_order_relaxed) == klen &&
           !memcmp(s->data, key, klen);
}

/* The slot of the window of key[klen] (hash h) that holds it, or NULL. */
static shoal_view_slot *key_slot(struct broker_view *v, uint64_t h, const uint8_t *key,
                                 size_t klen)
{
    uint32_t mask = v->h->nslots - 1;
    for (uint32_t i = 0; i < SHOAL_VIEW_WINDOW; i++) {
        shoal_view_slot *s = &v->slots[(h + i) & mask];
        if (same_key(s, h, key, klen))
            return s;
    }
    return NULL;
}

void broker__view_stage(shoal_broker *b, bobj *o, const void *req, size_t len,
                        const void *reply, size_t rlen)
{
    struct broker_view *v = b->view;
    if (!v || !obj_slot(v, o))
        return;
    if (v->nst == v->capst) {
        size_t cap = v->capst ? v->capst * 2 : 16;
        staged *st = realloc(v->st, cap * sizeof(*st));
        if (!st)
            return; /* not cached: a reader asks the broker */
        v->st = st;
        v->capst = cap;
    }
    staged *e = &v->st[v->nst];
    uint64_t id;
    size_t k = shoal__view_key(req, len, e->data, sizeof(e->data), &id);
    if (!k)
        return; /* a batch, or too long for a slot */
    e->obj = o->vslot;
    e->gen = atomic_load_explicit(&v->gens[o->vslot], memory_order_relaxed);
    e->hash = shoal__view_hash(e->data, k);
    const shoal_view_slot *s = key_slot(v, e->hash, e->data, k);
    if (s && atomic_load_explicit(&s->obj, memory_order_relaxed) == e->obj &&
        atomic_load_explicit(&s->gen, memory_order_relaxed) == e->gen)
        return; /* the slot holds this read's reply, still current: nothing to write */
    size_t r = shoal__view_reply(reply, rlen, e->data + k, sizeof(e->data) - k);
    if (!r)
        return; /* too long for a slot */
    e->klen = (uint16_t)k;
    e->rlen = (uint16_t)r;
    v->nst++;
}

/* Whether slot s may be taken: empty, or its reply's object changed since. */
static bool stale(const struct broker_view *v, const shoal_view_slot *s)
{
    uint32_t obj = atomic_load_explicit(&s->obj, memory_order_relaxed);
    return !obj || obj >= v->h->nobjs ||
           atomic_load_explicit(&v->gens[obj], memory_order_relaxed) !=
               atomic_load_explicit(&s->gen, memory_order_relaxed);
}

/* The slot of e's window to write e to. */
static shoal_view_slot *slot_for(struct broker_view *v, const staged *e)
{
    shoal_view_slot *s = key_slot(v, e->hash, e->data, e->klen);
    if (s)
        return s;
    uint32_t mask = v->h->nslots - 1;
    for (uint32_t i = 0; i < SHOAL_VIEW_WINDOW; i++) {
        s = &v->slots[(e->hash + i) & mask];
        if (stale(v, s))
            return s;
    }
    return &v->slots[(e->hash + v->evict++ % SHOAL_VIEW_WINDOW) & mask];
}

static void write_slot(shoal_view_slot *s, const staged *e)
{
    uint32_t seq = atomic_load_explicit(&s->seq, memory_order_relaxed);
    atomic_store_explicit(&s->seq, seq + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&s->hash, e->hash, memory_order_relaxed);
    atomic_store_explicit(&s->klen, e->klen, memory_order_relaxed);
    atomic_store_explicit(&s->rlen, e->rlen, memory_order_relaxed);
    atomic_store_explicit(&s->obj, e->obj, memory_order_relaxed);
    atomic_store_explicit(&s->gen, e->gen, memory_order_relaxed);
    memcpy(s->data, e->data, (size_t)e->klen + e->rlen);
    atomic_store_explicit(&s->seq, seq + 2, memory_order_release);
}

void broker__view_publish(shoal_broker *b, int committed)
{
    struct broker_view *v = b->view;
    if (!v || !v->nst)
        return;
    for (size_t i = 0; committed && i < v->nst; i++) {
        const staged *e = &v->st[i];
        if (atomic_load_explicit(&v->gens[e->obj], memory_order_relaxed) == e->gen)
            write_slot(slot_for(v, e), e);
    }
    v->nst = 0;
}
