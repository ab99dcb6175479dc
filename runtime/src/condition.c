/*
 * condition.c — Condition, a sequence-number condition variable.
 *
 * A waiter reads the sequence word while it still holds the lock, releases the lock
 * and sleeps on the word until it changes; a notify bumps the word and wakes n
 * sleepers. A notify that lands between the waiter's read and its sleep changes the
 * word, so the kernel's compare in FUTEX_WAIT refuses to sleep: no lost wake-ups.
 *
 * What a notify hands out is counted in `tokens` (at most one per waiter): a waiter
 * returns when the word moved since it started waiting and it took a token. The
 * kernel's wake only makes a sleeper look sooner; a sleeper woken and killed before
 * taking its token leaves the token for another, which finds it within a sleep slice
 * (shoal__wait): a notification given to a dead process passes to a live one.
 *
 * There is no state tied to an individual waiter: a waiter killed while asleep simply
 * leaves the kernel's futex queue, and later notifies and waits work as before. A dead
 * waiter leaves the waiters counter one too high, which costs a wasted wake call and
 * may let a later notify hand out one token too many (a spurious wake-up, which
 * callers of a condition tolerate anyway).
 *
 * Every return after the wait has begun comes back holding the lock again, at the
 * depth the caller held it, as pthread_cond_timedwait and Python's Condition do: the
 * timeout bounds the wait for a notify only, and taking the lock back waits as long as
 * a live holder keeps it (the lock's own wait notices a holder that dies meanwhile,
 * and then hands it over with SHOAL_EOWNERDEAD, which the call returns: it outranks
 * "notified", "timed out" and "interrupted", as pthread's EOWNERDEAD does, since the
 * caller must repair the data first and re-check its predicate anyway). Only a lock
 * that cannot be taken at all (damaged meanwhile) makes the call return without it; a
 * notification the waiter had taken then passes to another waiter, as if it had never
 * been taken. This is the one place that takes the lock back: the bindings rely on it.
 *
 * The interruptible form (shoal_cond_wait_intr) sleeps in slices with a timeout, so a
 * signal handler always ends the futex wait with EINTR (the kernel restarts only
 * untimed waits). The waiter withdraws, then takes a notification that had come for
 * it if there is one (and returns 0): otherwise a token handed out for it stays for
 * the other waiters, who see the moved word. Nothing is dropped either way.
 *
 * The lock is used through its public API only, so a Condition works with any Lock or
 * RLock, embedded or named.
 */
#include <limits.h>
#include <stdio.h>

#include "wait.h"

#define COND_MAGIC 0x444e4f43u /* "COND" */

struct cond_impl {
    _Atomic uint32_t seq;
    _Atomic uint32_t waiters;
    uint32_t magic;
    _Atomic uint32_t tokens; /* wake-ups handed out and not yet taken */
};

_Static_assert(sizeof(struct cond_impl) <= sizeof(shoal_cond), "cond_impl must fit");

static inline struct cond_impl *impl(shoal_cond *cond)
{
    return (struct cond_impl *)(void *)cond;
}

/* "condition", or 'condition "name"' for a named one, for error messages. */
static const char *noun(shoal_cond *cond)
{
    return shoal__prim_noun(cond, "condition");
}

static int check(shoal_cond *cond, const char *op)
{
    return shoal__prim_check(cond, cond && impl(cond)->magic == COND_MAGIC, "condition",
                             op);
}

int shoal_cond_init(shoal_cond *cond)
{
    if (!cond)
        return shoal__err(SHOAL_EINVAL, "condition init: condition is NULL");
    struct cond_impl *c = impl(cond);
    atomic_store(&c->seq, 0);
    atomic_store(&c->waiters, 0);
    atomic_store(&c->tokens, 0);
    atomic_thread_fence(memory_order_release);
    c->magic = COND_MAGIC;
    return 0;
}

/* One waiter, as a shoal__waitable. */
struct cond_wait {
    struct cond_impl *c;
    uint32_t seen;
};

/* Notified: the word moved since `seen` and a token was left to take. */
static int notified(void *obj)
{
    struct cond_wait *w = obj;
    if (atomic_load_explicit(&w->c->seq, memory_order_acquire) == w->seen)
        return 0;
    uint32_t t = atomic_load(&w->c->tokens);
    while (t > 0)
        if (atomic_compare_exchange_weak(&w->c->tokens, &t, t - 1))
            return 1;
    return 0;
}

/* Waits until notified or the deadline passes: 1, SHOAL_ETIMEDOUT, or (intr) SHOAL_EINTR
 * when a signal handler ran while it slept. */
static int await_notify(struct cond_impl *c, uint32_t seen, const shoal__deadline *d,
                        bool intr)
{
    struct cond_wait w = {c, seen};
    shoal__waitable wt = {&c->seq, notified, NULL, NULL, NULL, &w, NULL};
    return intr ? shoal__wait_intr(&wt, d) : shoal__wait(&wt, d);
}

/* Takes the lock back at the depth the caller held it, untimed: 0, SHOAL_EOWNERDEAD
 * (held; its previous holder died holding it), or SHOAL_ECORRUPT / SHOAL_ESYS for a
 * lock that cannot be taken (not held). */
static int reacquire(shoal_cond *cond, shoal_lock *lock, uint32_t depth)
{
    int rc = shoal_lock_acquire(lock, SHOAL_FOREVER);
    if (rc != 0 && rc != SHOAL_EOWNERDEAD) {
        char why[160];
        snprintf(why, sizeof(why), "%s", shoal_errdetail());
        /* It was a lock when the wait began: no longer one is damage. */
        return shoal__err(rc == SHOAL_EINVAL ? SHOAL_ECORRUPT : rc,
                          "%s wait: could not take its lock back (%s); the lock is "
                          "not held",
                          noun(cond), why);
    }
    for (uint32_t i = 1; i < depth; i++) {
        int r = shoal_lock_acquire(lock, SHOAL_FOREVER); /* re-entry: never blocks */
        if (r)
            return r;
    }
    return rc;
}

/* Releases the lock fully (an RLock held several times too, as Python's Condition
 * does): the number of levels released, with *rc the first error. */
static uint32_t release_all(shoal_lock *lock, uint32_t depth, int *rc)
{
    uint32_t released = 0;
    while (released < depth && (*rc = shoal_lock_release(lock)) == 0)
        released++;
    return released;
}

/* The wait itself, registered as a waiter: 0 notified, SHOAL_ETIMEDOUT, or SHOAL_EINTR
 * (intr). An interrupted waiter withdraws first and then takes a notification that
 * came for it, if any: a notify is either taken or left to the remaining waiters,
 * never dropped. */
static int wait_registered(struct cond_impl *c, uint32_t seen, shoal_duration timeout,
                           const shoal__deadline *d, bool intr)
{
    shoal__test_point("cond.waiting");
    int rc = timeout == SHOAL_NOWAIT ? SHOAL_ETIMEDOUT : await_notify(c, seen, d, intr);
    atomic_fetch_sub(&c->waiters, 1);
    if (rc == SHOAL_EINTR) {
        struct cond_wait w = {c, seen};
        if (notified(&w))
            return 0;
    }
    return rc == 1 ? 0 : rc;
}

/* A waiter that took a notification but cannot return it (its lock could not be
 * taken back) hands it to another waiter, if one is left. */
static void pass_on(struct cond_impl *c)
{
    if (atomic_load(&c->waiters) == 0)
        return;
    atomic_fetch_add(&c->tokens, 1);
    atomic_fetch_add(&c->seq, 1);
    shoal__futex_wake(&c->seq, 1);
}

static int cond_wait(shoal_cond *cond, shoal_lock *lock, shoal_duration timeout,
                     bool intr)
{
    int rc = check(cond, "wait");
    if (rc)
        return rc;
    if (!lock)
        return shoal__err(SHOAL_EINVAL, "condition wait: lock is NULL");
    int32_t owner;
    uint32_t depth;
    shoal_lock_state(lock, NULL, &owner, &depth);
    if (owner != shoal__tid())
        return shoal__err(SHOAL_EPERM, "%s wait: lock not held by caller %d", noun(cond),
                          (int)shoal__tid());
    struct cond_impl *c = impl(cond);
    shoal__deadline d = shoal__deadline_from(timeout);
    uint32_t seen = atomic_load(&c->seq);
    atomic_fetch_add(&c->waiters, 1);
    uint32_t released = release_all(lock, depth, &rc);
    if (rc == 0)
        rc = wait_registered(c, seen, timeout, &d, intr);
    else
        atomic_fetch_sub(&c->waiters, 1);
    int r = released ? reacquire(cond, lock, released) : 0;
    if (r && r != SHOAL_EOWNERDEAD && rc == 0)
        pass_on(c);
    if (r)
        return r; /* SHOAL_EOWNERDEAD (lock held), or a broken lock (not held) */
    if (rc == SHOAL_ETIMEDOUT)
        return shoal__err(SHOAL_ETIMEDOUT, "%s wait: timed out", noun(cond));
    if (rc == SHOAL_EINTR)
        return shoal__err(SHOAL_EINTR, "%s wait: interrupted by a signal", noun(cond));
    return rc;
}

int shoal_cond_wait(shoal_cond *cond, shoal_lock *lock, shoal_duration timeout)
{
    return cond_wait(cond, lock, timeout, false);
}

int shoal_cond_wait_intr(shoal_cond *cond, shoal_lock *lock, shoal_duration timeout)
{
    return cond_wait(cond, lock, timeout, true);
}

int shoal_cond_notify(shoal_cond *cond, uint32_t n)
{
    int rc = check(cond, "notify");
    if (rc)
        return rc;
    if (n == 0)
        return 0;
    struct cond_impl *c = impl(cond);
    /* Hand out n tokens, never more than there are waiters, then move the word. */
    uint32_t t = atomic_load(&c->tokens), nt;
    do {
        uint32_t w = atomic_load(&c->waiters);
        nt = t >= w ? t : (w - t > n ? t + n : w);
    } while (nt != t && !atomic_compare_exchange_weak(&c->tokens, &t, nt));
    atomic_fetch_add(&c->seq, 1);
    if (atomic_load(&c->waiters) > 0)
        shoal__futex_wake(&c->seq, n > INT_MAX ? INT_MAX : (int)n);
    return 0;
}

int shoal_cond_notify_all(shoal_cond *cond)
{
    return shoal_cond_notify(cond, UINT32_MAX);
}

/* ---- named forms ----------------------------------------------------------------- */

static int init_named(shoal__seg *seg, void *arg)
{
    (void)arg;
    return shoal_cond_init((shoal_cond *)(void *)seg->payload);
}

int shoal_cond_open(shoal_cond **out, const char *name, int mode, const shoal_attr *attr)
{
    if (!out)
        return shoal__err(SHOAL_EINVAL, "condition open: out is NULL");
    void *p = NULL;
    int rc = shoal__prim_open(&p, SHOAL_KIND_CONDITION, "condition", sizeof(shoal_cond),
                              name, mode, init_named, NULL, attr);
    if (rc == 0)
        *out = p;
    return rc;
}

int shoal_cond_close(shoal_cond *cond)
{
    int rc = check(cond, "close");
    if (rc)
        return rc;
    return shoal__prim_close(cond);
}

uint32_t shoal__cond_waiters(shoal_cond *cond)
{
    return check(cond, "state") ? 0 : atomic_load(&impl(cond)->waiters);
}
