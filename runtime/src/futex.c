/* futex.c — deadlines, futex sleeps and the spin budget. */
#include <errno.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_SPIN_NS 20000

static _Atomic int64_t spin_ns = -1;

int64_t shoal__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

shoal__deadline shoal__deadline_from(shoal_duration timeout)
{
    shoal__deadline d = {INT64_MAX};
    if (timeout < 0 && timeout != SHOAL_FOREVER)
        timeout = 0; /* a negative leftover of some longer wait: already expired */
    if (timeout != SHOAL_FOREVER) {
        int64_t now = shoal__now_ns();
        d.at_ns = timeout > INT64_MAX - now ? INT64_MAX : now + timeout;
    }
    return d;
}

bool shoal__deadline_passed(const shoal__deadline *d)
{
    return d->at_ns != INT64_MAX && shoal__now_ns() >= d->at_ns;
}

int shoal__futex_wait(_Atomic uint32_t *addr, uint32_t expected, const shoal__deadline *d)
{
    struct timespec ts, *tsp = NULL;
    if (d && d->at_ns != INT64_MAX) {
        if (shoal__now_ns() >= d->at_ns)
            return SHOAL_ETIMEDOUT;
        ts.tv_sec = d->at_ns / 1000000000;
        ts.tv_nsec = d->at_ns % 1000000000;
        tsp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so retries after
     * a signal do not stretch the timeout. */
    long r = syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, expected, tsp, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    if (r == -1 && errno == ETIMEDOUT)
        return SHOAL_ETIMEDOUT;
    return 0;
}

int shoal__futex_wake(_Atomic uint32_t *addr, int n)
{
    long r = syscall(SYS_futex, addr, FUTEX_WAKE, n, NULL, NULL, 0);
    return r < 0 ? 0 : (int)r;
}

int64_t shoal__spin_budget(void)
{
    int64_t v = atomic_load_explicit(&spin_ns, memory_order_relaxed);
    if (SHOAL_UNLIKELY(v < 0)) {
        const char *env = getenv("SHOAL_SPIN_NS");
        v = env ? atoll(env) : DEFAULT_SPIN_NS;
        if (v < 0)
            v = 0;
        atomic_store_explicit(&spin_ns, v, memory_order_relaxed);
    }
    return v;
}

void shoal_set_spin_ns(int64_t ns)
{
    atomic_store_explicit(&spin_ns, ns < 0 ? 0 : ns, memory_order_relaxed);
}

int64_t shoal_spin_ns(void)
{
    return shoal__spin_budget();
}
