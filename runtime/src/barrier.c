/*
 * barrier.c — Barrier, with Python's threading.Barrier semantics.
 *
 * The whole state is one 64-bit word changed only by compare-and-swap, so no process
 * can die holding an internal lock:
 *
 *   bits  0..30  generation, advanced by every trip and every reset
 *   bit   31     broken: the current generation was broken (timeout or abort)
 *   bits 32..47  arrivals in the current generation
 *   bits 48..63  outcomes of the last 16 generations (bit g % 16 set: g ended broken)
 *
 * The low 32 bits are the futex word waiters sleep on: every trip, break and reset
 * changes them. A waiter remembers its generation g; once the generation moved on it
 * reads the outcome of g from the history bits, which are written by the very CAS that
 * ends g, so the answer is exact even if the waiter wakes late. (A waiter asleep
 * through more than 16 further generations is told SHOAL_EBROKEN.)
 *
 * A participant killed after arriving still counts as arrived; one that never arrives
 * makes the others time out, and the first timeout breaks the barrier for everyone.
 */
#include <limits.h>
#include <stdio.h>

#include "wait.h"

#define BARRIER_MAGIC 0x52524142u /* "BARR" */
#define PARTIES_MAX   0xffffu
#define GEN_MASK      0x7fffffffu
#define BROKEN_BIT    0x80000000u
#define HISTORY       16u

struct barrier_impl {
    union {
        _Atomic uint64_t all;
        _Atomic uint32_t half[2];
    } st;
    uint32_t parties;
    uint32_t magic;
};

_Static_assert(sizeof(struct barrier_impl) <= sizeof(shoal_barrier),
               "barrier_impl must fit");

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define EPOCH_HALF 1
#else
#define EPOCH_HALF 0
#endif

static inline uint32_t gen_of(uint64_t s)
{
    return (uint32_t)s & GEN_MASK;
}
static inline bool broken_of(uint64_t s)
{
    return ((uint32_t)s & BROKEN_BIT) != 0;
}
static inline uint32_t count_of(uint64_t s)
{
    return (uint32_t)(s >> 32) & 0xffffu;
}
static inline uint32_t hist_of(uint64_t s)
{
    return (uint32_t)(s >> 48);
}
static inline uint64_t make(uint32_t gen, bool broken, uint32_t count, uint32_t hist)
{
    return (uint64_t)((gen & GEN_MASK) | (broken ? BROKEN_BIT : 0)) |
           ((uint64_t)(count & 0xffffu) << 32) | ((uint64_t)(hist & 0xffffu) << 48);
}
static inline uint32_t gen_bit(uint32_t gen)
{
    return 1u << (gen % HISTORY);
}

static inline struct barrier_impl *impl(shoal_barrier *b)
{
    return (struct barrier_impl *)(void *)b;
}

/* "barrier", or 'barrier "name"' for a named one, for error messages. */
static const char *noun(shoal_barrier *b)
{
    return shoal__prim_noun(b, "barrier");
}

static int check(shoal_barrier *b, const char *op)
{
    return shoal__prim_check(b, b && impl(b)->magic == BARRIER_MAGIC, "barrier", op);
}

int shoal_barrier_init(shoal_barrier *b, uint32_t parties)
{
    if (!b)
        return shoal__err(SHOAL_EINVAL, "barrier init: barrier is NULL");
    if (parties == 0 || parties > PARTIES_MAX)
        return shoal__err(SHOAL_EINVAL, "barrier init: parties %u not in 1..%u", parties,
                          PARTIES_MAX);
    struct barrier_impl *bi = impl(b);
    atomic_store(&bi->st.all, 0);
    bi->parties = parties;
    atomic_thread_fence(memory_order_release);
    bi->magic = BARRIER_MAGIC;
    return 0;
}

static void wake_all(struct barrier_impl *bi)
{
    shoal__futex_wake(&bi->st.half[EPOCH_HALF], INT_MAX);
}

/* Whether generation g ended in a trip (true) or was broken/reset, given state s. */
static bool tripped_gen(uint64_t s, uint32_t g)
{
    uint32_t moved = (gen_of(s) - g) & GEN_MASK;
    return moved != 0 && moved <= HISTORY && !(hist_of(s) & gen_bit(g));
}

/* Breaks generation g if it is still current and intact. Returns whether we did. */
static bool break_gen(struct barrier_impl *bi, uint32_t g, uint64_t *s)
{
    *s = atomic_load(&bi->st.all);
    while (gen_of(*s) == g && !broken_of(*s)) {
        uint64_t ns = make(g, true, count_of(*s), hist_of(*s) | gen_bit(g));
        if (atomic_compare_exchange_weak(&bi->st.all, s, ns)) {
            wake_all(bi);
            return true;
        }
    }
    return false;
}

/* A wait for generation g to end, as a shoal__waitable. */
struct gen_wait {
    struct barrier_impl *bi;
    uint32_t g;
};

static int gen_ended(void *obj)
{
    struct gen_wait *w = obj;
    return (uint32_t)atomic_load_explicit(&w->bi->st.all, memory_order_acquire) != w->g;
}

/* Waits for generation g to end. Returns 1 or SHOAL_ETIMEDOUT. Trips, breaks and
 * resets always wake, so there is nothing to arm. */
static int await_gen(struct barrier_impl *bi, uint32_t g, const shoal__deadline *d)
{
    struct gen_wait w = {bi, g};
    shoal__waitable wt = {
        &bi->st.half[EPOCH_HALF], gen_ended, NULL, NULL, NULL, &w, NULL};
    return shoal__wait(&wt, d);
}

/* Arrives: trips the barrier if last. Returns the index (and *tripped), or -1 when
 * the barrier is broken. */
static int arrive(struct barrier_impl *bi, uint32_t *g, bool *tripped)
{
    uint64_t s = atomic_load(&bi->st.all), ns;
    for (;;) {
        if (broken_of(s))
            return -1;
        uint32_t c = count_of(s);
        *g = gen_of(s);
        *tripped = c + 1 >= bi->parties;
        if (*tripped)
            ns = make(*g + 1, false, 0, hist_of(s) & ~gen_bit(*g));
        else
            ns = make(*g, false, c + 1, hist_of(s));
        if (atomic_compare_exchange_weak(&bi->st.all, &s, ns))
            return (int)c;
    }
}

int shoal_barrier_wait(shoal_barrier *b, shoal_duration timeout)
{
    int rc = check(b, "wait");
    if (rc)
        return rc;
    struct barrier_impl *bi = impl(b);
    shoal__deadline d = shoal__deadline_from(timeout);
    uint32_t g = 0;
    bool tripped = false;
    int index = arrive(bi, &g, &tripped);
    if (index < 0)
        return shoal__err(SHOAL_EBROKEN, "%s: broken (reset it to use it again)",
                          noun(b));
    if (tripped) {
        wake_all(bi);
        return index;
    }
    shoal__test_point("barrier.arrived");
    uint64_t s;
    if (await_gen(bi, g, &d) == SHOAL_ETIMEDOUT && break_gen(bi, g, &s))
        return shoal__err(SHOAL_ETIMEDOUT,
                          "%s: timed out with %u of %u parties arrived; now broken",
                          noun(b), count_of(s), bi->parties);
    if (!tripped_gen(atomic_load(&bi->st.all), g))
        return shoal__err(SHOAL_EBROKEN, "%s: broken or reset while waiting", noun(b));
    return index;
}

int shoal_barrier_abort(shoal_barrier *b)
{
    int rc = check(b, "abort");
    if (rc)
        return rc;
    uint64_t s;
    struct barrier_impl *bi = impl(b);
    while (!broken_of(s = atomic_load(&bi->st.all)) && !break_gen(bi, gen_of(s), &s))
        ;
    return 0;
}

int shoal_barrier_reset(shoal_barrier *b)
{
    int rc = check(b, "reset");
    if (rc)
        return rc;
    struct barrier_impl *bi = impl(b);
    uint64_t s = atomic_load(&bi->st.all);
    for (;;) {
        if (!broken_of(s) && count_of(s) == 0)
            return 0; /* already in its initial state */
        uint32_t g = gen_of(s);
        uint64_t ns = make(g + 1, false, 0, hist_of(s) | gen_bit(g));
        if (atomic_compare_exchange_weak(&bi->st.all, &s, ns))
            break;
    }
    wake_all(bi);
    return 0;
}

void shoal_barrier_state(shoal_barrier *b, uint32_t *parties, uint32_t *waiting,
                         int *broken)
{
    uint32_t p = 0, w = 0;
    int br = 0;
    if (check(b, "state") == 0) {
        uint64_t s = atomic_load(&impl(b)->st.all);
        p = impl(b)->parties;
        w = count_of(s);
        br = broken_of(s);
    }
    if (parties)
        *parties = p;
    if (waiting)
        *waiting = w;
    if (broken)
        *broken = br;
}

/* ---- named forms ----------------------------------------------------------------- */

static int init_named(shoal__seg *seg, void *arg)
{
    return shoal_barrier_init((shoal_barrier *)(void *)seg->payload, *(uint32_t *)arg);
}

int shoal_barrier_open(shoal_barrier **out, const char *name, int mode, uint32_t parties,
                       const shoal_attr *attr)
{
    if (!out)
        return shoal__err(SHOAL_EINVAL, "barrier open: out is NULL");
    if (mode != SHOAL_OPEN && (parties == 0 || parties > PARTIES_MAX))
        return shoal__err(SHOAL_EINVAL, "barrier \"%s\": parties %u not in 1..%u",
                          name ? name : "", parties, PARTIES_MAX);
    void *p = NULL;
    int rc = shoal__prim_open(&p, SHOAL_KIND_BARRIER, "barrier", sizeof(shoal_barrier),
                              name, mode, init_named, &parties, attr);
    if (rc == 0)
        *out = p;
    return rc;
}

int shoal_barrier_close(shoal_barrier *b)
{
    int rc = check(b, "close");
    if (rc)
        return rc;
    return shoal__prim_close(b);
}
