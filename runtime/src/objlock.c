/*
 * objlock.c — the lock that guards a Value or an Array: the embedded robust RLock by
 * default, none, or a named Lock/RLock chosen by the creator. The choice is recorded
 * in the header (aux[0] = mode, aux[1] = the caller lock's kind, aux_name = its name)
 * so every process that opens the object uses the same lock.
 */
#include <string.h>

#include "internal.h"

int shoal__objlock_spec(shoal__seg_spec *spec, const shoal_attr *attr)
{
    int mode = attr ? attr->lock : SHOAL_LOCK_RLOCK;
    spec->aux[0] = (uint64_t)mode;
    if (mode == SHOAL_LOCK_RLOCK || mode == SHOAL_LOCK_NONE)
        return 0;
    if (mode != SHOAL_LOCK_CALLER)
        return shoal__err(SHOAL_EINVAL, "%s: lock mode %d is not a shoal_lock_mode",
                          spec->what, mode);
    shoal__seg *lseg = attr->caller_lock ? shoal__registry_find(attr->caller_lock) : NULL;
    if (!lseg)
        return shoal__err(SHOAL_EINVAL,
                          "%s: SHOAL_LOCK_CALLER needs a named Lock or RLock opened in "
                          "this process (shoal_lock_open / shoal_rlock_open)",
                          spec->what);
    spec->aux[1] = lseg->hdr->kind;
    spec->aux_name = lseg->name;
    return 0;
}

int shoal__objlock_init(shoal__seg *seg)
{
    struct shoal__objctl *ctl = (struct shoal__objctl *)seg->payload;
    if (seg->hdr->aux[0] == SHOAL_LOCK_RLOCK)
        return shoal_lock_init(&ctl->lock, 1);
    return 0;
}

int shoal__objlock_resolve(shoal__seg *seg, const shoal_attr *attr, shoal_lock **lock,
                           bool *owned)
{
    struct shoal__header *h = seg->hdr;
    *owned = false;
    *lock = NULL;
    switch (h->aux[0]) {
    case SHOAL_LOCK_NONE:
        return 0;
    case SHOAL_LOCK_RLOCK:
        *lock = &((struct shoal__objctl *)seg->payload)->lock;
        return 0;
    case SHOAL_LOCK_CALLER: {
        /* Open the caller's lock by name, in the same root and domain as the object. */
        shoal_attr a = attr ? *attr : (shoal_attr){0};
        int rc = h->aux[1] == SHOAL_KIND_RLOCK
                     ? shoal_rlock_open(lock, h->aux_name, SHOAL_OPEN, &a)
                     : shoal_lock_open(lock, h->aux_name, SHOAL_OPEN, &a);
        if (rc)
            return shoal__err(rc, "\"%s\": its lock \"%s\": %s", seg->name, h->aux_name,
                              shoal_strerror(rc));
        *owned = true;
        return 0;
    }
    default:
        return shoal__err(SHOAL_ECORRUPT, "\"%s\": unknown lock mode %llu", seg->name,
                          (unsigned long long)h->aux[0]);
    }
}

int shoal__objlock_acquire_for(shoal__seg *seg, shoal_lock *lock, shoal_duration timeout,
                               bool *taken)
{
    *taken = false;
    if (!lock)
        return 0;
    int rc = shoal_lock_acquire(lock, timeout);
    if (rc == SHOAL_EOWNERDEAD)
        shoal__seg_note_owner_died(seg);
    *taken = rc == 0 || rc == SHOAL_EOWNERDEAD;
    return *taken ? 0 : rc;
}

bool shoal__objlock_acquire(shoal__seg *seg, shoal_lock *lock)
{
    bool taken;
    shoal__objlock_acquire_for(seg, lock, SHOAL_FOREVER, &taken);
    return taken;
}

void shoal__objlock_release(shoal_lock *lock, bool taken)
{
    if (taken)
        shoal_lock_release(lock);
}

void shoal__objlock_close(shoal_lock *lock, bool owned)
{
    if (owned && lock)
        shoal_lock_close(lock);
}
