/* deadline.c — deadlines made from timeouts, and the spin budget. */
#include <stdlib.h>

#include "internal.h"

#define DEFAULT_SPIN_NS 20000

static _Atomic int64_t spin_ns = -1;

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
