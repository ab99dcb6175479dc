/*
 * wait.c — shoal__wait, the one spin-then-sleep loop (the protocol is in wait.h).
 *
 * Spinning, with the cadence of wait.h (shoal__spin: close polls first, growing pauses
 * later, the clock read every SHOAL__SPIN_CLOCK_POLLS polls; the budget starts at the
 * first reading, so an exchange answered within them pays for none); check()
 * (a dead peer, a closed end) runs at most once per CHECK_NS while spinning, so a fast
 * exchange never pays for it, and a long spin budget does not hide a dead peer.
 *
 * Sleeping: at most SLICE_NS at a time, even with no check() to run: a wake-up given
 * to a process that died before acting on it (a semaphore unit, a notification) is
 * then found by the next slice of a live sleeper, because ready() is evaluated again.
 *
 * A waitable with a barrier() (a ring: its puts and gets make no fence, the sleeper
 * pays with a membarrier) gets a first sleep of at most SHOAL__LAZY_NS without
 * the barrier, then sleeps as any other. The barrier costs a few microseconds, but up to
 * ~70 us when its inter-processor interrupt meets a virtual CPU that is going idle;
 * most sleeps of a request/reply exchange end well within SHOAL__LAZY_NS and never pay
 * it. The price: a put whose store is still in its processor's store buffer when the
 * sleeper announces itself can miss the sleeper (a window of nanoseconds), which
 * then finds the message at the end of that first sleep, SHOAL__LAZY_NS later. Every
 * later sleep issues the barrier and is woken exactly.
 */
#include "wait.h"

#define SLICE_NS (50 * 1000000LL) /* longest single sleep */
#define CHECK_NS 1000000LL        /* longest spin between two check() calls */

/* Polls ready() until it is non-zero or the spin budget (bounded by d) is spent. The
 * budget starts at the first reading of the clock: an answer that comes before it (a
 * request/reply exchange between polling peers) costs no clock reading at all. */
static int spin(const shoal__waitable *w, const shoal__deadline *d)
{
    int64_t budget = shoal__spin_budget();
    if (budget <= 0)
        return 0;
    int64_t until = INT64_MAX, check_at = INT64_MAX;
    shoal__spin c = SHOAL__SPIN_INIT;
    for (;;) {
        shoal__spin_pause(&c);
        int rc = w->ready(w->obj);
        if (rc)
            return rc;
        if (!shoal__spin_clock_due(&c))
            continue;
        int64_t now = shoal__now_ns();
        if (shoal__spin_first_clock(&c)) {
            until = d->at_ns - now > budget ? now + budget : d->at_ns;
            check_at = now + CHECK_NS;
        }
        if (now >= until)
            return 0;
        if (w->check && now >= check_at) {
            check_at = now + CHECK_NS;
            if ((rc = w->check(w->obj)))
                return rc;
        }
    }
}

/* One sleep: arm, (barrier,) re-check, sleep for at most a slice — SHOAL__LAZY_NS for the
 * first sleep of a waitable with a barrier, made without it — disarm. Returns
 * ready()'s verdict from the re-check (0 when it slept), or SHOAL_EINTR when a signal
 * handler ran during an interruptible sleep. */
static int sleep_once(const shoal__waitable *w, const shoal__deadline *d, bool intr,
                      bool first)
{
    uint32_t v = atomic_load(w->word);
    if (w->arm)
        w->arm(w->obj);
    bool lazy = first && w->barrier;
    if (w->barrier && !lazy)
        w->barrier();
    atomic_thread_fence(memory_order_seq_cst);
    int rc = w->ready(w->obj);
    if (rc == 0) {
        int64_t now = shoal__now_ns(), slice = lazy ? SHOAL__LAZY_NS : SLICE_NS;
        int fr = shoal__futex_wait_until(w->word, v,
                                         d->at_ns - now > slice ? now + slice : d->at_ns);
        if (fr == 0)
            shoal__test_point("wait.woken"); /* a test kills a woken sleeper here */
        else if (fr == SHOAL_EINTR && intr)
            rc = SHOAL_EINTR;
    }
    if (w->disarm)
        w->disarm(w->obj);
    return rc;
}

static int wait_loop(const shoal__waitable *w, const shoal__deadline *d, bool intr)
{
    int rc = w->ready(w->obj);
    if (rc || (rc = spin(w, d)))
        return rc;
    for (bool first = true;; first = false) {
        if (w->check && (rc = w->check(w->obj)))
            return rc;
        if (shoal__deadline_passed(d))
            return SHOAL_ETIMEDOUT;
        if ((rc = sleep_once(w, d, intr, first)) || (rc = w->ready(w->obj)))
            return rc;
    }
}

int shoal__wait(const shoal__waitable *w, const shoal__deadline *d)
{
    return wait_loop(w, d, false);
}

int shoal__wait_intr(const shoal__waitable *w, const shoal__deadline *d)
{
    return wait_loop(w, d, true);
}
