/*
 * wait.c — shoal__wait, the one spin-then-sleep loop (the protocol is in wait.h).
 *
 * Spinning: the first polls follow each other closely, for the answer of a peer that
 * is one cache-line transfer away; then the gaps between polls grow, so a poller does
 * not keep stealing the line from a writer that is still busy with it. The clock is
 * read every 64 polls; check() (a dead peer, a closed end) runs at most once per
 * CHECK_NS while spinning, so a fast exchange never pays for it, and a long spin
 * budget does not hide a dead peer.
 *
 * Sleeping: at most SLICE_NS at a time, even with no check() to run: a wake-up given
 * to a process that died before acting on it (a semaphore unit, a notification) is
 * then found by the next slice of a live sleeper, because ready() is evaluated again.
 */
#include "wait.h"

#define SPIN_GAP_MAX 16               /* most pauses between two polls */
#define SLICE_NS     (50 * 1000000LL) /* longest single sleep */
#define CHECK_NS     1000000LL        /* longest spin between two check() calls */

/* Polls ready() until it is non-zero or the spin budget (bounded by d) is spent. */
static int spin(const shoal__waitable *w, const shoal__deadline *d)
{
    int64_t budget = shoal__spin_budget();
    if (budget <= 0)
        return 0;
    int64_t now = shoal__now_ns(), until = now + budget, check_at = now + CHECK_NS;
    if (until > d->at_ns)
        until = d->at_ns;
    unsigned gap = 1;
    for (unsigned i = 1;; i++) {
        for (unsigned k = 0; k < gap; k++)
            shoal__cpu_relax();
        int rc = w->ready(w->obj);
        if (rc)
            return rc;
        if (gap < SPIN_GAP_MAX && (i & 7) == 0)
            gap *= 2;
        if ((i & 63) != 0)
            continue;
        if ((now = shoal__now_ns()) >= until)
            return 0;
        if (w->check && now >= check_at) {
            check_at = now + CHECK_NS;
            if ((rc = w->check(w->obj)))
                return rc;
        }
    }
}

/* One sleep: arm, re-check, sleep for at most a slice, disarm. Returns ready()'s
 * verdict from the re-check (0 when it slept), or SHOAL_EINTR when a signal handler
 * ran during an interruptible sleep. */
static int sleep_once(const shoal__waitable *w, const shoal__deadline *d, bool intr)
{
    uint32_t v = atomic_load(w->word);
    if (w->arm)
        w->arm(w->obj);
    atomic_thread_fence(memory_order_seq_cst);
    int rc = w->ready(w->obj);
    if (rc == 0) {
        int64_t now = shoal__now_ns();
        int fr = shoal__futex_wait_until(
            w->word, v, d->at_ns - now > SLICE_NS ? now + SLICE_NS : d->at_ns);
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
    for (;;) {
        if (w->check && (rc = w->check(w->obj)))
            return rc;
        if (shoal__deadline_passed(d))
            return SHOAL_ETIMEDOUT;
        if ((rc = sleep_once(w, d, intr)) || (rc = w->ready(w->obj)))
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
