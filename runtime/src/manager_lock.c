/*
 * manager_lock.c — a broker's Lock and RLock objects taken in shared memory
 * (manager_lock.h has the format).
 *
 * A broker listening on shm://NAME with a read view (and no data directory) backs
 * each Lock and RLock object with a slot of the SharedMemory block NAME:locks, which
 * it fills when the object is made (broker/locks.c) and marks gone when it is
 * deleted; a slot is never given to another object. A client connected over shm://
 * finds an object's slot by its name and takes, releases and reads the lock there,
 * without a message to the broker (manager.c); the broker takes the same word for
 * the requests that reach it (remote clients, batches, clients without the table).
 *
 * The word. `state` holds the holder — an owner id of NAME:locks (owner.c: one per
 * open handle, so per connection; alive while its process has the block open, from
 * the kernel's locks, never from a pid) — and the depth, changed by compare-and-swap
 * only; `thread` is the holder's thread (the requests' thread field), written by the
 * taker while SHOAL_LW_TAKING is set and cleared before the lock is freed, so a
 * thread of the holder's process never mistakes another thread's hold for its own.
 * A Lock may be released by anyone (as threading.Lock and the broker allow); an RLock
 * only by its holder's thread, and an RLock its thread holds goes one deeper.
 *
 * Waiting (shoal__lw_acquire) is shoal__wait on the word `seq`, which every release
 * moves after freeing `state`: ready() tries to take the lock, arm / disarm count
 * the sleepers in `sleepers`, and a release makes the futex-wake call only when
 * there are some (one is woken; a waiter that leaves without the lock — its timeout,
 * an error — passes a wake-up on if the lock is free). check(), once a millisecond
 * while spinning and once per sleep slice (at most 50 ms), looks whether the holder
 * is alive: a dead holder's lock is taken, SHOAL_EOWNERDEAD, as the broker reports
 * the death of a holding session; and whether the caller's `live` still holds (the
 * broker gone, the session closed): so no waiter hangs for ever. ready() asks `live`
 * too (two loads) before it takes the lock, so a connection closing — which frees
 * its own locks — wakes its waiting threads with its error, never with a lock.
 *
 * Owner-died. A lock freed because its holder went (a dead process, found by a
 * taker; a connection closed holding it, or a broker session ended: shoal__lw_abandon)
 * is free with SHOAL_LW_DIED, and the taker that clears the flag gets
 * SHOAL_EOWNERDEAD with the lock held.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "manager_lock.h"
#include "manager_view.h" /* shoal__view_hash hashes the names too */
#include "platform.h"
#include "wait.h"

struct shoal__locks {
    shoal__seg *seg;
    shoal_lockword *slots;
    uint32_t nslots;
    char name[SHOAL_NAME_MAX + 16];
    shoal_attr attr;
};

static size_t table_size(void)
{
    return sizeof(shoal_locks_header) +
           (size_t)SHOAL_LOCKS_SLOTS * sizeof(shoal_lockword);
}

static int init_table(shoal__seg *seg, void *arg)
{
    (void)arg;
    shoal_locks_header *h = (shoal_locks_header *)seg->payload;
    h->magic = SHOAL_LOCKS_MAGIC;
    h->version = SHOAL_LOCKS_VERSION;
    h->nslots = SHOAL_LOCKS_SLOTS;
    h->size = table_size();
    return 0;
}

static shoal__locks *mapped(shoal__locks *l)
{
    shoal_locks_header *h = (shoal_locks_header *)l->seg->payload;
    size_t size = l->seg->hdr->payload_size;
    if (size < sizeof(*h) || h->magic != SHOAL_LOCKS_MAGIC ||
        h->version != SHOAL_LOCKS_VERSION || !h->nslots || h->nslots > (1u << 20) ||
        sizeof(*h) + (uint64_t)h->nslots * sizeof(shoal_lockword) > size ||
        !l->seg->owner) {
        shoal__locks_close(l, false);
        return NULL;
    }
    l->nslots = h->nslots;
    l->slots = (shoal_lockword *)(l->seg->payload + sizeof(*h));
    return l;
}

static shoal__locks *alloc_locks(const char *name, const shoal_attr *attr)
{
    shoal__locks *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    snprintf(l->name, sizeof(l->name), "%s:locks", name);
    if (attr)
        l->attr = *attr;
    if (strlen(l->name) > SHOAL_NAME_MAX) {
        free(l);
        return NULL;
    }
    return l;
}

int shoal__locks_create(shoal__locks **out, const char *name, const shoal_attr *attr)
{
    shoal__locks *l = alloc_locks(name, attr);
    if (!l)
        return shoal__err(SHOAL_ENAME, "broker lock table: shm://%s: %s", name,
                          "name too long (or out of memory)");
    shoal__seg_spec spec = {.kind = SHOAL_KIND_SHM,
                            .what = "broker lock table",
                            .count = table_size(),
                            .check_count = true,
                            .payload_size = table_size(),
                            .init = init_table};
    int rc = shoal__seg_open(&l->seg, l->name, SHOAL_CREATE, &spec, attr);
    if (rc == SHOAL_EEXIST) { /* an earlier broker's on this name: ours to replace */
        shoal_unlink(l->name, attr);
        rc = shoal__seg_open(&l->seg, l->name, SHOAL_CREATE, &spec, attr);
    }
    if (rc < 0) {
        free(l);
        return rc;
    }
    *out = mapped(l);
    return *out ? 0 : shoal__err(SHOAL_ESYS, "broker lock table: no owner id");
}

shoal__locks *shoal__locks_open(const char *name, const shoal_attr *attr)
{
    shoal__locks *l = alloc_locks(name, attr);
    shoal__seg_spec spec = {.kind = SHOAL_KIND_SHM, .what = "broker lock table"};
    if (!l || shoal__seg_open(&l->seg, l->name, SHOAL_OPEN, &spec, attr) < 0) {
        free(l);
        shoal__err_clear(); /* no table: lock requests go to the broker */
        return NULL;
    }
    return mapped(l);
}

void shoal__locks_close(shoal__locks *l, bool unlink)
{
    if (!l)
        return;
    if (l->seg)
        shoal__seg_close(l->seg);
    if (unlink)
        shoal_unlink(l->name, &l->attr);
    free(l);
}

/* The i-th slot of the probe sequence of hash h: its index in *k. */
static shoal_lockword *probe(shoal__locks *l, uint64_t h, uint32_t i, uint32_t *k)
{
    *k = (uint32_t)((h + i) % l->nslots);
    return &l->slots[*k];
}

int shoal__locks_find(shoal__locks *l, const char *name, size_t n, int *kind)
{
    if (!l || n == 0 || n > SHOAL_LOCKS_NAME)
        return -1;
    uint64_t h = shoal__view_hash((const uint8_t *)name, n);
    for (uint32_t i = 0; i < SHOAL_LOCKS_PROBE; i++) {
        uint32_t k;
        shoal_lockword *w = probe(l, h, i, &k);
        uint32_t kd = atomic_load_explicit(&w->kind, memory_order_acquire);
        if (kd == SHOAL_LW_FREE)
            return -1; /* slots fill in probe order and are never freed */
        if ((kd == SHOAL_LW_LOCK || kd == SHOAL_LW_RLOCK) && w->namelen == n &&
            !memcmp(w->name, name, n)) {
            *kind = (int)kd;
            return (int)k;
        }
    }
    return -1;
}

int shoal__locks_add(shoal__locks *l, const char *name, int kind)
{
    size_t n = strlen(name);
    if (!l || n == 0 || n > SHOAL_LOCKS_NAME)
        return -1;
    uint64_t h = shoal__view_hash((const uint8_t *)name, n);
    for (uint32_t i = 0; i < SHOAL_LOCKS_PROBE; i++) {
        uint32_t k;
        shoal_lockword *w = probe(l, h, i, &k);
        if (atomic_load_explicit(&w->kind, memory_order_relaxed) != SHOAL_LW_FREE)
            continue;
        memcpy(w->name, name, n);
        w->namelen = (uint32_t)n;
        atomic_store(&w->state, 0);
        atomic_store(&w->thread, 0);
        atomic_store_explicit(&w->kind, (uint32_t)kind, memory_order_release);
        return (int)k;
    }
    return -1;
}

shoal_lockword *shoal__locks_word(shoal__locks *l, int slot)
{
    return &l->slots[slot];
}

uint32_t shoal__locks_self(shoal__locks *l)
{
    return l ? l->seg->owner : 0;
}

bool shoal__locks_alive(shoal__locks *l, uint32_t owner)
{
    return shoal__owner_alive(l->seg, owner);
}

int32_t shoal__locks_pid(shoal__locks *l, uint32_t owner)
{
    return shoal__owner_pid(l->seg, owner);
}

/* ---- the word ---- */

/* After state moved to free: the seq word moves and a sleeper is woken. */
static void moved(shoal_lockword *w)
{
    atomic_fetch_add(&w->seq, 1);
    if (atomic_load(&w->sleepers))
        shoal__futex_wake(&w->seq, 1);
}

void shoal__locks_drop(shoal__locks *l, int slot)
{
    shoal_lockword *w = &l->slots[slot];
    atomic_store(&w->kind, SHOAL_LW_GONE);
    atomic_store(&w->thread, 0);
    atomic_store(&w->state, 0);
    atomic_fetch_add(&w->seq, 1);
    shoal__futex_wake(&w->seq, INT32_MAX); /* its waiters find it gone */
}

int shoal__lw_try(shoal__locks *l, int slot, uint32_t self, uint64_t thread,
                  bool alive_check)
{
    shoal_lockword *w = &l->slots[slot];
    uint64_t s = atomic_load(&w->state);
    for (;;) {
        uint32_t owner = SHOAL_LW_OWNER(s);
        bool died;
        if (owner == self && !(s & SHOAL_LW_TAKING) &&
            atomic_load(&w->thread) == thread) {
            if (atomic_load_explicit(&w->kind, memory_order_relaxed) != SHOAL_LW_RLOCK)
                return SHOAL_EDEADLK;
            if (atomic_compare_exchange_weak(&w->state, &s, s + SHOAL_LW_ONE))
                return 0;
            continue;
        }
        if (owner) {
            if (!alive_check || (s & SHOAL_LW_TAKING) ||
                shoal__owner_alive(l->seg, owner))
                return 1;
            died = true;
        } else {
            died = (s & SHOAL_LW_DIED) != 0;
        }
        if (!atomic_compare_exchange_weak(&w->state, &s,
                                          self | SHOAL_LW_TAKING | SHOAL_LW_ONE))
            continue;
        atomic_store(&w->thread, thread);
        atomic_fetch_and(&w->state, ~SHOAL_LW_TAKING);
        return died ? SHOAL_EOWNERDEAD : 0;
    }
}

int shoal__lw_release(shoal__locks *l, int slot, uint32_t self, uint64_t thread)
{
    shoal_lockword *w = &l->slots[slot];
    bool rlock = atomic_load_explicit(&w->kind, memory_order_relaxed) == SHOAL_LW_RLOCK;
    uint64_t s = atomic_load(&w->state);
    for (;;) {
        uint32_t owner = SHOAL_LW_OWNER(s);
        if (!owner)
            return SHOAL_EPERM; /* unlocked */
        if (rlock &&
            ((s & SHOAL_LW_TAKING) || owner != self || atomic_load(&w->thread) != thread))
            return SHOAL_EDEADLK; /* not the holder: the caller says so */
        uint64_t next = rlock && SHOAL_LW_DEPTH(s) > 1 ? s - SHOAL_LW_ONE : 0;
        if (!next && !(s & SHOAL_LW_TAKING))
            atomic_store(&w->thread, 0);
        if (atomic_compare_exchange_weak(&w->state, &s, next)) {
            if (next)
                return 0;
            moved(w);
            return 1;
        }
    }
}

bool shoal__lw_abandon(shoal__locks *l, int slot, uint32_t owner)
{
    shoal_lockword *w = &l->slots[slot];
    uint64_t s = atomic_load(&w->state);
    while (owner && SHOAL_LW_OWNER(s) == owner && !(s & SHOAL_LW_TAKING)) {
        atomic_store(&w->thread, 0);
        if (atomic_compare_exchange_weak(&w->state, &s, SHOAL_LW_DIED)) {
            moved(w);
            return true;
        }
    }
    return false;
}

/* One acquisition as a shoal__waitable. */
typedef struct lw_wait {
    shoal__locks *l;
    int slot;
    uint64_t thread;
    int rc, done;
    int (*live)(void *);
    void *arg;
} lw_wait;

static int lw_take(lw_wait *x, bool alive_check)
{
    if (x->done)
        return 1;
    if (atomic_load(&x->l->slots[x->slot].kind) == SHOAL_LW_GONE) {
        x->done = 1;
        x->rc = SHOAL_ENOENT;
        return 1;
    }
    int rc = shoal__lw_try(x->l, x->slot, x->l->seg->owner, x->thread, alive_check);
    if (rc == 1)
        return 0;
    x->rc = rc;
    x->done = 1;
    return 1;
}

static int lw_ready(void *obj)
{
    lw_wait *x = obj;
    int rc = x->live && !x->done ? x->live(x->arg) : 0; /* a closed session first */
    return rc < 0 ? rc : lw_take(x, false);
}

static uint32_t lw_arm(void *obj)
{
    lw_wait *x = obj;
    atomic_fetch_add(&x->l->slots[x->slot].sleepers, 1);
    return 0;
}

static void lw_disarm(void *obj, uint32_t token)
{
    (void)token;
    lw_wait *x = obj;
    atomic_fetch_sub(&x->l->slots[x->slot].sleepers, 1);
}

static int lw_check(void *obj)
{
    lw_wait *x = obj;
    if (lw_take(x, true))
        return 1;
    return x->live ? x->live(x->arg) : 0;
}

int shoal__lw_acquire(shoal__locks *l, int slot, uint64_t thread,
                      const shoal__deadline *d, int (*live)(void *), void *arg)
{
    lw_wait x = {l, slot, thread, 0, 0, live, arg};
    int rc = live ? live(arg) : 0;
    if (rc < 0)
        return rc;
    if (lw_take(&x, false) || lw_take(&x, true))
        return x.rc;
    shoal_lockword *w = &l->slots[slot];
    shoal__waitable wt = {&w->seq, lw_ready, lw_arm, lw_disarm, lw_check, &x, NULL};
    rc = d->at_ns <= shoal__now_ns() ? SHOAL_ETIMEDOUT : shoal__wait(&wt, d);
    if (rc == 1)
        return x.rc;
    if (SHOAL_LW_OWNER(atomic_load(&w->state)) == 0 && atomic_load(&w->sleepers))
        shoal__futex_wake(&w->seq, 1); /* a wake-up this waiter may have taken */
    return rc;
}
