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

#include "wait.h"

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

/* Announces a sleeper: set() then makes the wake-all system call. */
static void arm_impl(struct event_impl *e)
{
    if (!(atomic_load(&e->word) & EV_SLEEPERS))
        atomic_fetch_or(&e->word, EV_SLEEPERS);
}

/* A blocking wait: fired since the word the waiter first saw. */
struct ev_wait {
    struct event_impl *e;
    uint32_t seen;
};

static int wait_ready(void *obj)
{
    struct ev_wait *w = obj;
    return fired(atomic_load_explicit(&w->e->word, memory_order_acquire), w->seen);
}

static uint32_t wait_arm(void *obj)
{
    arm_impl(((struct ev_wait *)obj)->e);
    return 0;
}

/* The event loop's: set. */
static int set_ready(void *obj)
{
    return (atomic_load(&((struct event_impl *)obj)->word) & EV_SET) != 0;
}

static uint32_t set_arm(void *obj)
{
    arm_impl(obj);
    return 0;
}

int shoal__event_waitable(shoal_event *ev, bool writable, shoal__waitable *out)
{
    int rc = check(ev, "wait");
    if (rc)
        return rc;
    if (writable || !out)
        return shoal__err(SHOAL_EINVAL, "%s: only the readable side can be waited on",
                          noun(ev));
    *out = (shoal__waitable){&impl(ev)->word, set_ready, set_arm, NULL, NULL,
                             impl(ev),        NULL};
    return 0;
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
    struct ev_wait w = {e, seen};
    shoal__waitable wt = {&e->word, wait_ready, wait_arm, NULL, NULL, &w, NULL};
    if (shoal__wait(&wt, &d) == SHOAL_ETIMEDOUT)
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
