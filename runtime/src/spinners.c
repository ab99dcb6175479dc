/*
 * spinners.c — the table of busy connections (the mechanism: spinners.h).
 *
 * SLOTS slots, each on a cache line of its own: a connection claims a free one (0) by
 * compare-and-swap on its first receive and writes the time of its last message
 * there; closing writes 0 back. Counting reads the slots up to the highest ever
 * claimed. A connection that finds the table full is counted by nobody and spins as
 * the others' count says. Built with SHOAL_SPIN_STATS defined, the process counts its
 * waits and prints at exit how many spun, how many of those found a message within
 * the budget, and how many slept at once.
 */
#include <sched.h>

#include "spinners.h"

#define SLOTS      64
#define BUSY_NS    (300 * 1000LL) /* a connection is busy this long after a message */
#define NOTE_NS    (50 * 1000LL)  /* a slot is rewritten at most this often */
#define RECOUNT_NS (50 * 1000LL)  /* a connection counts at most this often */
#define FREE       0
#define CLAIMED    1 /* a slot's time before its first message */

__thread int64_t shoal__spin_thread_ns = -1;

static struct {
    _Alignas(64) _Atomic int64_t at;
} slots[SLOTS];
static _Atomic int high; /* slots ever claimed */
static _Atomic int cpus; /* 0: not read yet */

#ifdef SHOAL_SPIN_STATS
#include <stdio.h>
#include <unistd.h>
static _Atomic int64_t n_spun, n_paid, paid_ns, n_asleep;
#define COUNT(v, n) atomic_fetch_add_explicit(&(v), (n), memory_order_relaxed)

static __attribute__((destructor)) void spin_stats(void)
{
    int64_t paid = atomic_load(&n_paid);
    fprintf(stderr,
            "spin stats %d: spun %lld, paid %lld (mean %lld ns), slept at once %lld\n",
            (int)getpid(), (long long)atomic_load(&n_spun), (long long)paid,
            (long long)(paid ? atomic_load(&paid_ns) / paid : 0),
            (long long)atomic_load(&n_asleep));
}
#else
#define COUNT(v, n) ((void)0)
#endif

static int cpus_allowed(void)
{
    int n = atomic_load_explicit(&cpus, memory_order_relaxed);
    if (SHOAL_UNLIKELY(n == 0)) {
        cpu_set_t set;
        n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
        atomic_store_explicit(&cpus, n < 1 ? 1 : n, memory_order_relaxed);
    }
    return n;
}

static void claim(shoal__spin_adapt *a)
{
    a->slot = -1;
    for (int i = 0; i < SLOTS; i++) {
        int64_t free_ = FREE;
        if (atomic_compare_exchange_strong(&slots[i].at, &free_, CLAIMED)) {
            a->slot = i + 1;
            for (int h = atomic_load(&high); h < i + 1;)
                if (atomic_compare_exchange_weak(&high, &h, i + 1))
                    break;
            return;
        }
    }
}

/* The connections with a message within BUSY_NS of now. */
static int busy(int64_t now)
{
    int n = 0, h = atomic_load_explicit(&high, memory_order_relaxed);
    for (int i = 0; i < h; i++)
        n += now - atomic_load_explicit(&slots[i].at, memory_order_relaxed) <= BUSY_NS;
    return n;
}

int64_t shoal__spin_begin(shoal__spin_adapt *a)
{
    int64_t full = shoal__spin_budget();
    if (full <= 0)
        return -1;
    if (SHOAL_UNLIKELY(a->slot == 0))
        claim(a);
    int64_t now = shoal__now_ns();
    if (now - a->counted_at >= RECOUNT_NS) {
        a->counted_at = now;
        a->spin = 2 * busy(now) <= cpus_allowed();
    }
    shoal__spin_thread_ns = a->spin ? full : 0;
    return now;
}

void shoal__spin_end(shoal__spin_adapt *a, int64_t t0, bool got)
{
    int64_t budget = shoal__spin_thread_ns;
    shoal__spin_thread_ns = -1;
    if (t0 < 0 || !got)
        return;
    int64_t now = shoal__now_ns();
    if (budget == 0)
        COUNT(n_asleep, 1);
    else {
        COUNT(n_spun, 1);
        if (now - t0 <= budget) {
            COUNT(n_paid, 1);
            COUNT(paid_ns, now - t0);
        }
    }
    if (a->slot > 0 && now - a->noted >= NOTE_NS) {
        a->noted = now;
        atomic_store_explicit(&slots[a->slot - 1].at, now, memory_order_relaxed);
    }
}

void shoal__spin_release(shoal__spin_adapt *a)
{
    if (a->slot > 0)
        atomic_store(&slots[a->slot - 1].at, FREE);
    a->slot = 0;
}
