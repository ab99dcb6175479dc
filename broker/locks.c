/*
 * locks.c — the broker's side of the lock table (runtime/src/manager_lock.c explains
 * the words; docs/broker.md, "Locks over shm://", the guarantees). Everything but
 * open and close runs under the broker's mutex.
 *
 * A broker with a read view and no data directory makes NAME:locks beside NAME:view
 * and gives each Lock and RLock it creates a slot there (lslot); shm:// clients then
 * take and release those locks in the table, and the broker's own acquire, release
 * and locked (for its remote clients, for batches, for clients without the table)
 * work on the same word. A client with the table says its owner id when it connects
 * (the broker-wide request "lock_owner"): the broker takes a lock for that session
 * under the client's owner id, so the word shows the client as the holder whichever
 * way it took the lock, and the client releases, or takes again (an RLock), in the
 * table what the broker took for it. For the other sessions (remote, or without the
 * table) the broker takes it under its own owner id. Either way it remembers the
 * session and thread in the object's owner and owner_thread, as before. Who holds
 * the word is the truth; the object's owner fields follow it (sync): a Lock the
 * broker took may be released by a client in the table.
 *
 * A request parked on a word held by a client is retried by the timer thread every
 * LW_POLL_NS (core.c's timer pass, expire_due, asks broker__lw_retry): a client's release
 * makes no message to the broker, and a timer is simpler than having the broker's
 * loop wait on every contended word; a remote waiter learns of the release within
 * that time. A release by the broker itself retries its waiters at once, as before.
 *
 * A session that ends holding a lock frees it with the owner-died mark
 * (shoal__lw_abandon); a client process that dies holding one is found dead by the
 * next taker (owner.c), the broker's parked requests included.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_internal.h"
#include "internal.h"
#include "manager_lock.h"

struct broker_locks {
    shoal__locks *t;
    uint32_t self; /* the broker's owner id in the table */
    struct who {
        uint64_t sid;
        uint32_t owner;
    } * who; /* the sessions whose clients said their owner id */
    size_t nwho, capwho;
};

int broker__locks_open(shoal_broker *b, const char *name, const shoal_attr *attr)
{
    struct broker_locks *l = calloc(1, sizeof(*l));
    if (!l)
        return shoal__err(SHOAL_ENOMEM, "broker lock table: out of memory");
    int rc = shoal__locks_create(&l->t, name, attr);
    if (rc < 0) {
        free(l);
        return rc;
    }
    l->self = shoal__locks_self(l->t);
    pthread_mutex_lock(&b->mu);
    b->locks = l;
    pthread_mutex_unlock(&b->mu);
    return 0;
}

void broker__locks_close(shoal_broker *b)
{
    pthread_mutex_lock(&b->mu);
    struct broker_locks *l = b->locks;
    b->locks = NULL;
    for (size_t i = 0; i < b->ntab; i++)
        for (bobj *o = b->tab[i]; o; o = o->next)
            o->lslot = 0;
    pthread_mutex_unlock(&b->mu);
    if (l) {
        shoal__locks_close(l->t, true);
        free(l->who);
        free(l);
    }
}

void broker__locks_add(shoal_broker *b, bobj *o)
{
    int k = o->st->kind;
    if (!b->locks || (k != SHOAL__BROKER__KIND__LOCK && k != SHOAL__BROKER__KIND__RLOCK))
        return;
    int slot =
        shoal__locks_add(b->locks->t, o->name,
                         k == SHOAL__BROKER__KIND__LOCK ? SHOAL_LW_LOCK : SHOAL_LW_RLOCK);
    o->lslot = slot < 0 ? 0 : (uint32_t)slot + 1;
}

void broker__locks_drop(shoal_broker *b, bobj *o)
{
    if (b->locks && o->lslot)
        shoal__locks_drop(b->locks->t, (int)o->lslot - 1);
    o->lslot = 0;
}

int broker__locks_hello(shoal_broker *b, uint64_t sid, int64_t owner)
{
    struct broker_locks *l = b->locks;
    if (!l)
        return shoal__err(SHOAL_EINVAL,
                          "broker: lock_owner: this broker has no lock table");
    if (owner <= 0 || owner > UINT32_MAX || (uint32_t)owner == l->self ||
        sid == BROKER_ANON || !shoal__locks_alive(l->t, (uint32_t)owner))
        return shoal__err(SHOAL_EINVAL, "broker: lock_owner: %lld is no live owner id",
                          (long long)owner);
    if (l->nwho == l->capwho) {
        size_t cap = l->capwho ? l->capwho * 2 : 16;
        struct who *w = realloc(l->who, cap * sizeof(*w));
        if (!w)
            return shoal__err(SHOAL_ENOMEM, "broker: out of memory");
        l->who = w;
        l->capwho = cap;
    }
    l->who[l->nwho++] = (struct who){sid, (uint32_t)owner};
    return 0;
}

void broker__locks_bye(shoal_broker *b, uint64_t sid)
{
    struct broker_locks *l = b->locks;
    for (size_t i = 0; l && i < l->nwho; i++)
        if (l->who[i].sid == sid)
            l->who[i--] = l->who[--l->nwho];
}

/* The owner id the broker takes locks under for session sid. */
static uint32_t owner_for(struct broker_locks *l, uint64_t sid)
{
    for (size_t i = 0; i < l->nwho; i++)
        if (l->who[i].sid == sid)
            return l->who[i].owner;
    return l->self;
}

static int slot_of(bobj *o)
{
    return (int)o->lslot - 1;
}

/* The object's owner fields follow the word: cleared unless the session they name
 * (its owner id) holds it. */
static uint64_t sync(struct broker_locks *l, bobj *o)
{
    uint64_t s = atomic_load(&shoal__locks_word(l->t, slot_of(o))->state);
    if (!o->st->owner || SHOAL_LW_OWNER(s) != owner_for(l, o->st->owner)) {
        o->st->owner = o->st->owner_thread = 0;
        o->st->count = 0;
    } else {
        o->st->count = SHOAL_LW_DEPTH(s);
    }
    return s;
}

static const char *kname(bobj *o)
{
    return o->st->kind == SHOAL__BROKER__KIND__LOCK ? "Lock" : "RLock";
}

int broker__lw_take(shoal_broker *b, bobj *o, uint64_t sid, uint64_t thread, int waiter)
{
    struct broker_locks *l = b->locks;
    bobjstate *st = o->st;
    uint32_t me = owner_for(l, sid);
    uint64_t s = sync(l, o);
    /* the broker's own holds: the session and thread tell them apart */
    if (SHOAL_LW_OWNER(s) == l->self && me == l->self &&
        (st->owner != sid || st->owner_thread != thread))
        return 1;
    int rc = shoal__lw_try(l->t, slot_of(o), me, thread, true);
    if (rc == 1 || (rc == SHOAL_EDEADLK && waiter))
        return 1;
    if (rc == SHOAL_EDEADLK)
        return shoal__err(SHOAL_EDEADLK, "Lock \"%s\": already held by this thread",
                          o->name);
    st->owner = sid;
    st->owner_thread = thread;
    sync(l, o);
    if (rc == SHOAL_EOWNERDEAD)
        return shoal__err(SHOAL_EOWNERDEAD,
                          "%s \"%s\": its previous holder died holding it", kname(o),
                          o->name);
    return 0;
}

int broker__lw_release(shoal_broker *b, bobj *o, uint64_t sid, uint64_t thread)
{
    struct broker_locks *l = b->locks;
    bobjstate *st = o->st;
    uint32_t me = owner_for(l, sid);
    uint64_t s = sync(l, o);
    bool theirs = SHOAL_LW_OWNER(s) == l->self && me == l->self &&
                  (st->owner != sid || st->owner_thread != thread);
    int rc = st->kind == SHOAL__BROKER__KIND__RLOCK && theirs
                 ? SHOAL_EDEADLK
                 : shoal__lw_release(l->t, slot_of(o), me, thread);
    if (rc == SHOAL_EPERM)
        return shoal__err(SHOAL_EPERM, "%s \"%s\": release of an unlocked lock", kname(o),
                          o->name);
    if (rc == SHOAL_EDEADLK)
        return shoal__err(SHOAL_EPERM,
                          "%s \"%s\": released by a thread that does not hold it",
                          kname(o), o->name);
    sync(l, o);
    return 0;
}

bool broker__lw_locked(shoal_broker *b, bobj *o)
{
    return SHOAL_LW_OWNER(sync(b->locks, o)) != 0;
}

bool broker__lw_end(shoal_broker *b, bobj *o, uint64_t sid)
{
    struct broker_locks *l = b->locks;
    sync(l, o);
    if (!o->st->owner || (sid && o->st->owner != sid))
        return false;
    shoal__lw_abandon(l->t, slot_of(o), owner_for(l, o->st->owner));
    sync(l, o);
    return true;
}

bool broker__lw_retry(shoal_broker *b, bobj *o)
{
    struct broker_locks *l = b->locks;
    uint64_t s = atomic_load(&shoal__locks_word(l->t, slot_of(o))->state);
    uint32_t owner = SHOAL_LW_OWNER(s);
    return owner == 0 || (owner != l->self && !(s & SHOAL_LW_TAKING) &&
                          !shoal__locks_alive(l->t, owner));
}

void broker__lw_describe(shoal_broker *b, bobj *o, int64_t *holder_pid, int *died,
                         uint64_t *thread, int64_t *depth)
{
    struct broker_locks *l = b->locks;
    shoal_lockword *w = shoal__locks_word(l->t, slot_of(o));
    uint64_t s = sync(l, o);
    uint32_t owner = SHOAL_LW_OWNER(s);
    *died = owner == 0 && (s & SHOAL_LW_DIED);
    *depth = SHOAL_LW_DEPTH(s);
    *thread = owner ? atomic_load(&w->thread) : 0;
    *holder_pid = owner ? shoal__locks_pid(l->t, owner) : 0;
}
