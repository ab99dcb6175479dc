/*
 * event.c — Event: a flag that waiters sleep on until it is set.
 *
 * One 32-bit futex word: bit 0 is the flag, bit 1 says someone may be asleep on it,
 * and the bits above count the times the flag went from clear to set. A waiter that
 * saw the count move returns even if the flag was cleared again before it looked (as
 * Python's Event.wait returns True after a set()+clear() pulse).
 * A waiter sets bit 1 before sleeping, so set() only makes the wake-all system call
 * when there can be a sleeper. A waiter killed while asleep leaves bit 1 set, which
 * costs the next set() one needless system call.
 */
#include <limits.h>
#include <stdio.h>

#include "internal.h"

#define EVENT_MAGIC 0x544e5645u /* "EVNT" */
#define EV_SET      1u
#define EV_SLEEPERS 2u
#define EV_GEN_ONE  4u

struct event_impl {
    _Atomic uint32_t word;
    uint32_t magic;
};

_Static_assert(sizeof(struct event_impl) <= sizeof(shoal_event), "event_impl must fit");

static inline struct event_impl *impl(shoal_event *ev)
{
    return (struct event_impl *)(void *)ev;
}

/* "event", or 'event "name"' for a named one, for error messages. */
static const char *noun(shoal_event *ev)
{
    return shoal__prim_noun(ev, "event");
}

static int check(shoal_event *ev, const char *op)
{
    return shoal__prim_check(ev, ev && impl(ev)->magic == EVENT_MAGIC, "event", op);
}

int shoal_event_init(shoal_event *ev)
{
    if (!ev)
        return shoal__err(SHOAL_EINVAL, "event init: event is NULL");
    atomic_store(&impl(ev)->word, 0);
    atomic_thread_fence(memory_order_release);
    impl(ev)->magic = EVENT_MAGIC;
    return 0;
}

int shoal_event_set(shoal_event *ev)
{
    int rc = check(ev, "set");
    if (rc)
        return rc;
    struct event_impl *e = impl(ev);
    uint32_t old = atomic_load(&e->word);
    do {
        if (old & EV_SET)
            return 0;
    } while (!atomic_compare_exchange_weak(
        &e->word, &old, ((old & ~(EV_SET | EV_SLEEPERS)) + EV_GEN_ONE) | EV_SET));
    if (old & EV_SLEEPERS)
        shoal__futex_wake(&impl(ev)->word, INT_MAX);
    return 0;
}

int shoal_event_clear(shoal_event *ev)
{
    int rc = check(ev, "clear");
    if (rc)
        return rc;
    atomic_fetch_and(&impl(ev)->word, ~EV_SET);
    return 0;
}

int shoal_event_is_set(shoal_event *ev)
{
    if (check(ev, "is_set"))
        return 0;
    return (atomic_load(&impl(ev)->word) & EV_SET) != 0;
}

/* Whether word v shows the event set since the waiter saw word `seen`. */
static inline bool fired(uint32_t v, uint32_t seen)
{
    return (v & EV_SET) || (v >> 2) != (seen >> 2);
}

static bool spin_wait(struct event_impl *e, uint32_t seen, int64_t until)
{
    for (unsigned i = 1;; i++) {
        if (fired(atomic_load_explicit(&e->word, memory_order_acquire), seen))
            return true;
        shoal__cpu_relax();
        if ((i & 31) == 0 && shoal__now_ns() >= until)
            return false;
    }
}

static int sleep_wait(struct event_impl *e, uint32_t seen, const shoal__deadline *d)
{
    for (;;) {
        uint32_t v = atomic_load(&e->word);
        if (fired(v, seen))
            return 0;
        if (!(v & EV_SLEEPERS) &&
            !atomic_compare_exchange_strong(&e->word, &v, v | EV_SLEEPERS))
            continue;
        if (shoal__futex_wait(&e->word, v | EV_SLEEPERS, d) == SHOAL_ETIMEDOUT)
            return fired(atomic_load(&e->word), seen) ? 0 : SHOAL_ETIMEDOUT;
    }
}

int shoal_event_wait(shoal_event *ev, shoal_duration timeout)
{
    int rc = check(ev, "wait");
    if (rc)
        return rc;
    struct event_impl *e = impl(ev);
    uint32_t seen = atomic_load(&e->word);
    if (seen & EV_SET)
        return 0;
    if (timeout == SHOAL_NOWAIT)
        return shoal__err(SHOAL_EAGAIN, "event: not set");
    shoal__deadline d = shoal__deadline_from(timeout);
    int64_t budget = shoal__spin_budget();
    if (budget > 0) {
        int64_t until = shoal__now_ns() + budget;
        if (spin_wait(e, seen, until < d.at_ns ? until : d.at_ns))
            return 0;
    }
    if (sleep_wait(e, seen, &d) == SHOAL_ETIMEDOUT)
        return shoal__err(SHOAL_ETIMEDOUT, "%s: timed out waiting to be set", noun(ev));
    return 0;
}

/* ---- named forms ----------------------------------------------------------------- */

static int init_named(shoal__seg *seg, void *arg)
{
    (void)arg;
    return shoal_event_init((shoal_event *)(void *)seg->payload);
}

int shoal_event_open(shoal_event **out, const char *name, int mode,
                     const shoal_attr *attr)
{
    if (!out)
        return shoal__err(SHOAL_EINVAL, "event open: out is NULL");
    void *p = NULL;
    int rc = shoal__prim_open(&p, SHOAL_KIND_EVENT, "event", sizeof(shoal_event), name,
                              mode, init_named, NULL, attr);
    if (rc == 0)
        *out = p;
    return rc;
}

int shoal_event_close(shoal_event *ev)
{
    int rc = check(ev, "close");
    if (rc)
        return rc;
    return shoal__prim_close(ev);
}
