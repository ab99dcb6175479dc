/*
 * wait.c — shoal__wait, the one spin-then-sleep loop (the protocol is in wait.h).
 *
 * Spinning, with the cadence of wait.h (shoal__spin: close polls first, growing pauses
 * later, the clock read every SHOAL__SPIN_CLOCK_POLLS polls; the budget starts at the
 * first reading, so an exchange answered within them pays for none); check()
 * (a dead peer, a closed end) runs at most once per CHECK_NS while spinning, so a fast
 * exchange never pays for it, and a long spin budget does not hide a dead peer. A
 * thread that waits from a seat of a spin table (wait.h) counts itself there while it
 * spins, and yields its CPU while the table's spinners outnumber the CPUs.
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
#include <sched.h>
#include <time.h>

#include "wait.h"

#define SLICE_NS (50 * 1000000LL) /* longest single sleep */
#define CHECK_NS 1000000LL        /* longest spin between two check() calls */

/* ---- the spin table (wait.h) ------------------------------------------------------ */

#define CPUS_TTL_NS (100 * 1000000LL) /* longest use of a CPU count once read */

static __thread shoal__spin_seat *thread_seat; /* the seat this thread's waits use */
static _Atomic int cpus;                       /* CPUs this process may use; 0: unread */
static _Atomic int64_t cpus_until;             /* read them again from then on */
static _Atomic int64_t repair_at;              /* this process's next repair */

/* Reads the count (sched_getaffinity), kept until now + CPUS_TTL_NS. */
static __attribute__((noinline)) int cpus_read(int64_t now)
{
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
    n = n < 1 ? 1 : n;
    atomic_store_explicit(&cpus, n, memory_order_relaxed);
    atomic_store_explicit(&cpus_until, now + CPUS_TTL_NS, memory_order_relaxed);
    return n;
}

/* shoal__cpus_at, inlined into the spin's clock readings. */
static inline int cpus_at(int64_t now)
{
    int n = atomic_load_explicit(&cpus, memory_order_relaxed);
    if (SHOAL_UNLIKELY(n == 0 ||
                       now >= atomic_load_explicit(&cpus_until, memory_order_relaxed)))
        return cpus_read(now);
    return n;
}

int shoal__cpus_at(int64_t now)
{
    return cpus_at(now);
}

/* The coarse clock (the kernel's last tick, read without the time counter): enough
 * for a count kept 100 ms, and cheap enough for a caller that reads no clock (the
 * broker asks for each request it receives inline). Lags CLOCK_MONOTONIC by at most
 * a tick. */
int shoal__cpus_allowed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return shoal__cpus_at((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
}

void shoal__cpus_forget(void)
{
    atomic_store_explicit(&cpus, 0, memory_order_relaxed);
}

/* The seat's flag in the table's word; 0 for an end without a seat. */
static inline uint64_t seat_bit(const shoal__spin_seat *s)
{
    return s->k >= 0 ? 1ull << s->k : 0;
}

/* Frees seat k of a process that is gone (owner): its bit first, then the seat, so
 * the next taker's bit is never cleared. Returns whether it was that owner's. */
static bool free_dead(shoal__spin_table *t, int k, uint32_t owner)
{
    atomic_fetch_and(&t->spinning, ~(1ull << k));
    return atomic_compare_exchange_strong(&t->owner[k], &owner, 0);
}

/* Takes a seat of s's table for s's owner: a free one; with `dead`, else one whose
 * owner is gone (a system call each). Leaves s->k at -1 when there is none. */
static void take(shoal__spin_seat *s, bool dead)
{
    shoal__spin_table *t = s->table;
    for (int pass = 0; pass < (dead ? 2 : 1); pass++)
        for (int k = 0; k < SHOAL__SPIN_SEATS; k++) {
            uint32_t cur = atomic_load(&t->owner[k]);
            if (cur &&
                (pass == 0 || shoal__owner_alive(s->seg, cur) || !free_dead(t, k, cur)))
                continue;
            cur = 0;
            if (atomic_compare_exchange_strong(&t->owner[k], &cur, s->owner)) {
                s->k = k;
                return;
            }
        }
}

void shoal__spin_seat_take(shoal__spin_seat *s, shoal__spin_table *t, shoal__seg *seg)
{
    *s = (shoal__spin_seat){t, seg, shoal__seg_owner(seg), -1};
    if (s->owner)
        take(s, true);
}

void shoal__spin_seat_give(shoal__spin_seat *s)
{
    if (!s->table)
        return;
    uint32_t me = s->owner;
    /* not a fork child's copy of its parent's seat, nor no seat */
    if (s->k >= 0 && shoal__seg_owner(s->seg) == me) {
        atomic_fetch_and(&s->table->spinning, ~seat_bit(s));
        atomic_compare_exchange_strong(&s->table->owner[s->k], &me, 0);
    }
    s->table = NULL;
}

shoal__spin_seat *shoal__spin_seat_use(shoal__spin_seat *s)
{
    shoal__spin_seat *was = thread_seat;
    thread_seat = s;
    return was;
}

int shoal__spin_table_count(shoal__spin_table *t)
{
    return __builtin_popcountll(atomic_load(&t->spinning));
}

/* A spin from s begins: a fork child's copy of its parent's seat is replaced by a
 * seat of the child's own (the parent keeps its seat and its flag), an end without a
 * seat looks for a free one again; then the seat's flag is set. */
static void spin_begin(shoal__spin_seat *s)
{
    if (SHOAL_UNLIKELY(s->owner != shoal__seg_owner(s->seg)))
        shoal__spin_seat_take(s, s->table, s->seg);
    else if (SHOAL_UNLIKELY(s->k < 0) && s->owner)
        take(s, false);
    if (SHOAL_LIKELY(s->k >= 0))
        atomic_fetch_or(&s->table->spinning, seat_bit(s));
}

/* Clears the bits of spinners whose process is gone, at most once per
 * SHOAL__SPIN_REPAIR_NS of this process. Returns whether it cleared any. */
static bool repair(shoal__spin_seat *s, int64_t now)
{
    int64_t at = atomic_load_explicit(&repair_at, memory_order_relaxed);
    if (now < at ||
        !atomic_compare_exchange_strong(&repair_at, &at, now + SHOAL__SPIN_REPAIR_NS))
        return false;
    bool any = false;
    uint64_t bits = atomic_load(&s->table->spinning) & ~seat_bit(s);
    for (; bits; bits &= bits - 1) {
        int k = __builtin_ctzll(bits);
        uint32_t owner = atomic_load(&s->table->owner[k]);
        if (!owner || !shoal__owner_alive(s->seg, owner)) {
            if (owner)
                free_dead(s->table, k, owner);
            else
                atomic_fetch_and(&s->table->spinning, ~(1ull << k));
            any = true;
        }
    }
    return any;
}

/* Whether the spinners of s's table — s itself included, flagged or not (an end
 * without a seat counts itself) — outnumber the CPUs, dead ones cleared first
 * (whenever another bit is set: a dead bit left while the table was not crowded would
 * otherwise stay until it was). */
static bool crowded(shoal__spin_seat *s, int64_t now)
{
    uint64_t bits = atomic_load_explicit(&s->table->spinning, memory_order_relaxed);
    if ((bits & ~seat_bit(s)) && repair(s, now))
        bits = atomic_load(&s->table->spinning);
    return __builtin_popcountll(bits) + (s->k < 0) > cpus_at(now);
}

/* ---- waiting ---------------------------------------------------------------------- */

/* Polls ready() until it is non-zero or the spin budget (bounded by d) is spent. The
 * budget starts at the first reading of the clock: an answer that comes before it (a
 * request/reply exchange between polling peers) costs no clock reading at all. A
 * thread with a seat (shoal__spin_seat_use) sets its bit at that reading, and yields
 * its CPU at each reading while the table is crowded. */
static int spin_polls(const shoal__waitable *w, const shoal__deadline *d,
                      shoal__spin_seat **seated)
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
            shoal__spin_seat *s = thread_seat;
            if (s && s->table) {
                spin_begin(s);
                *seated = s;
            }
            until = d->at_ns - now > budget ? now + budget : d->at_ns;
            check_at = now + CHECK_NS;
        }
        if (now >= until)
            return 0;
        if (*seated && crowded(*seated, now))
            sched_yield(); /* a CPU for a peer, or for a spinner whose peer runs */
        if (w->check && now >= check_at) {
            check_at = now + CHECK_NS;
            if ((rc = w->check(w->obj)))
                return rc;
        }
    }
}

int shoal__wait_spin(const shoal__waitable *w, const shoal__deadline *d)
{
    shoal__spin_seat *seated = NULL;
    int rc = spin_polls(w, d, &seated);
    if (seated && seated->k >= 0)
        atomic_fetch_and(&seated->table->spinning, ~seat_bit(seated));
    return rc;
}

/* Sleeps on (word, v) for at most slice_ns and not past d. A wait with no deadline
 * reads no clock: the kernel times the slice. */
static int futex_sleep(_Atomic uint32_t *word, uint32_t v, const shoal__deadline *d,
                       int64_t slice_ns)
{
    if (d->at_ns != INT64_MAX && d->at_ns - shoal__now_ns() <= slice_ns)
        return shoal__futex_wait_until(word, v, d->at_ns);
    return shoal__futex_wait_for(word, v, slice_ns);
}

/* One sleep: arm, (barrier,) re-check, sleep for at most a slice — SHOAL__LAZY_NS for the
 * first sleep of a waitable with a barrier, made without it — disarm. Returns
 * ready()'s verdict from the re-check (0 when it slept), or SHOAL_EINTR when a signal
 * handler ran during an interruptible sleep. */
static int sleep_once(const shoal__waitable *w, const shoal__deadline *d, bool intr,
                      bool first)
{
    uint32_t v = atomic_load(w->word);
    uint32_t token = w->arm ? w->arm(w->obj) : 0;
    bool lazy = first && w->barrier;
    if (w->barrier && !lazy)
        w->barrier();
    atomic_thread_fence(memory_order_seq_cst);
    int rc = w->ready(w->obj);
    if (rc == 0) {
        int fr = futex_sleep(w->word, v, d, lazy ? SHOAL__LAZY_NS : SLICE_NS);
        if (fr == 0)
            shoal__test_point("wait.woken"); /* a test kills a woken sleeper here */
        else if (fr == SHOAL_EINTR && intr)
            rc = SHOAL_EINTR;
    }
    if (w->disarm)
        w->disarm(w->obj, token);
    return rc;
}

static int wait_loop(const shoal__waitable *w, const shoal__deadline *d, bool intr)
{
    int rc = w->ready(w->obj);
    if (rc || (rc = shoal__wait_spin(w, d)))
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
