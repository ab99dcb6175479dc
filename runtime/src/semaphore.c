/*
 * semaphore.c — Semaphore and BoundedSemaphore.
 *
 * The count is a 32-bit futex word changed only by compare-and-swap, so there is no
 * internal lock for a dying process to leave held. Sleepers announce themselves in a
 * waiters counter before their last look at the count; a release wakes only when that
 * counter is non-zero. Both sides use sequentially consistent operations, so either
 * the releaser sees the waiter or the waiter sees the new count (and the kernel's
 * compare in FUTEX_WAIT closes the rest of the gap).
 *
 * A waiter killed while asleep leaves the waiters counter one too high for good; that
 * only costs later releases a futex_wake system call that wakes no one. A waiter
 * woken by a release and killed before taking the unit leaves the unit in the count:
 * sleeps are sliced (shoal__wait), so another sleeper finds it within a slice.
 */
#include <limits.h>
#include <stdio.h>

#include "wait.h"

#define SEM_MAGIC   0x53454d00u /* "\0MES", low byte: flags */
#define SEM_BOUNDED 1u

struct sem_impl {
    _Atomic uint32_t value;
    _Atomic uint32_t waiters;
    uint32_t max; /* bounded: releases may not exceed it; else INT32_MAX */
    uint32_t magic;
};

_Static_assert(sizeof(struct sem_impl) <= sizeof(shoal_sem), "sem_impl must fit");

static inline struct sem_impl *impl(shoal_sem *sem)
{
    return (struct sem_impl *)(void *)sem;
}

static const char *kind(struct sem_impl *s)
{
    return (s->magic & SEM_BOUNDED) ? "bounded semaphore" : "semaphore";
}

/* "semaphore", or 'semaphore "name"' for a named one, for error messages. */
static const char *noun(shoal_sem *sem)
{
    return shoal__prim_noun(sem, kind(impl(sem)));
}

static int check(shoal_sem *sem, const char *op)
{
    return shoal__prim_check(sem, sem && (impl(sem)->magic & ~0xffu) == SEM_MAGIC,
                             "semaphore", op);
}

int shoal_sem_init(shoal_sem *sem, uint32_t value, int bounded)
{
    if (!sem)
        return shoal__err(SHOAL_EINVAL, "semaphore init: semaphore is NULL");
    if (value > INT32_MAX)
        return shoal__err(SHOAL_EINVAL, "semaphore init: value %u exceeds %d", value,
                          INT32_MAX);
    struct sem_impl *s = impl(sem);
    atomic_store(&s->value, value);
    atomic_store(&s->waiters, 0);
    s->max = bounded ? value : INT32_MAX;
    atomic_thread_fence(memory_order_release);
    s->magic = SEM_MAGIC | (bounded ? SEM_BOUNDED : 0);
    return 0;
}

/* Takes one unit if there is one. */
static bool take(struct sem_impl *s)
{
    uint32_t v = atomic_load(&s->value);
    while (v > 0)
        if (atomic_compare_exchange_weak(&s->value, &v, v - 1))
            return true;
    return false;
}

/* The waitable's callbacks: a blocking acquire's ready() takes the unit; the event
 * loop's only looks for one. Sleepers announce themselves in `waiters`. */
static int ready_take(void *obj)
{
    return take(obj);
}

static int ready_avail(void *obj)
{
    struct sem_impl *s = obj;
    return atomic_load(&s->value) > 0;
}

static uint32_t arm(void *obj)
{
    atomic_fetch_add(&((struct sem_impl *)obj)->waiters, 1);
    return 0;
}

static void disarm(void *obj, uint32_t token)
{
    (void)token;
    atomic_fetch_sub(&((struct sem_impl *)obj)->waiters, 1);
}

int shoal__sem_waitable(shoal_sem *sem, bool writable, shoal__waitable *out)
{
    int rc = check(sem, "wait");
    if (rc)
        return rc;
    if (writable || !out)
        return shoal__err(SHOAL_EINVAL, "%s: only the readable side can be waited on",
                          noun(sem));
    *out = (shoal__waitable){&impl(sem)->value, ready_avail, arm, disarm, NULL,
                             impl(sem),         NULL};
    return 0;
}

int shoal_sem_acquire(shoal_sem *sem, shoal_duration timeout)
{
    int rc = check(sem, "acquire");
    if (rc)
        return rc;
    struct sem_impl *s = impl(sem);
    if (take(s)) {
        shoal__test_point("sem.acquired");
        return 0;
    }
    if (timeout == SHOAL_NOWAIT)
        return shoal__err(SHOAL_EAGAIN, "%s: value is 0", kind(s));
    shoal__deadline d = shoal__deadline_from(timeout);
    shoal__waitable w = {&s->value, ready_take, arm, disarm, NULL, s, NULL};
    if (shoal__wait(&w, &d) == SHOAL_ETIMEDOUT)
        return shoal__err(SHOAL_ETIMEDOUT, "%s: timed out waiting for a release",
                          noun(sem));
    /* Units left and others asleep (several releases, one wake each): pass it on. */
    if (atomic_load(&s->value) > 0 && atomic_load(&s->waiters) > 0)
        shoal__futex_wake(&s->value, 1);
    shoal__test_point("sem.acquired");
    return 0;
}

int shoal_sem_try(shoal_sem *sem)
{
    return shoal_sem_acquire(sem, SHOAL_NOWAIT);
}

int shoal_sem_release(shoal_sem *sem)
{
    int rc = check(sem, "release");
    if (rc)
        return rc;
    struct sem_impl *s = impl(sem);
    uint32_t v = atomic_load(&s->value);
    do {
        if (v >= s->max)
            return shoal__err(SHOAL_EOVERFLOW, "%s: release above its limit %u",
                              noun(sem), s->max);
    } while (!atomic_compare_exchange_weak(&s->value, &v, v + 1));
    if (atomic_load(&s->waiters) > 0)
        shoal__futex_wake(&s->value, 1);
    return 0;
}

uint32_t shoal_sem_value(shoal_sem *sem)
{
    if (check(sem, "value"))
        return 0;
    return atomic_load(&impl(sem)->value);
}

/* ---- named forms ----------------------------------------------------------------- */

struct init_arg {
    uint32_t value;
    int bounded;
};

static int init_named(shoal__seg *seg, void *arg)
{
    struct init_arg *a = arg;
    return shoal_sem_init((shoal_sem *)(void *)seg->payload, a->value, a->bounded);
}

static int open_named(shoal_sem **out, const char *name, int mode, uint32_t value,
                      int bounded, const shoal_attr *attr)
{
    const char *what = bounded ? "bounded semaphore" : "semaphore";
    if (!out)
        return shoal__err(SHOAL_EINVAL, "%s open: out is NULL", what);
    if (value > INT32_MAX)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": value %u exceeds %d", what,
                          name ? name : "", value, INT32_MAX);
    struct init_arg a = {value, bounded};
    void *p = NULL;
    int rc = shoal__prim_open(
        &p, bounded ? SHOAL_KIND_BOUNDED_SEMAPHORE : SHOAL_KIND_SEMAPHORE, what,
        sizeof(shoal_sem), name, mode, init_named, &a, attr);
    if (rc == 0)
        *out = p;
    return rc;
}

int shoal_sem_open(shoal_sem **out, const char *name, int mode, uint32_t value,
                   const shoal_attr *attr)
{
    return open_named(out, name, mode, value, 0, attr);
}

int shoal_bsem_open(shoal_sem **out, const char *name, int mode, uint32_t value,
                    const shoal_attr *attr)
{
    return open_named(out, name, mode, value, 1, attr);
}

int shoal_sem_close(shoal_sem *sem)
{
    int rc = check(sem, "close");
    if (rc)
        return rc;
    return shoal__prim_close(sem);
}
