/*
 * ring.c — the ring under Queue and Pipe: geometry, attaching, waiting, and the
 * operations dispatched to the ring's algorithm (queue.c and pipe.c hold the public
 * APIs on top of it).
 *
 * Two algorithms share the layout of the ring header: multi-producer multi-consumer
 * (ring_mpmc.c: a state word per slot records who reserved or claimed it) and
 * single-producer single-consumer (ring_spsc.c: dense slots, with a ready marker each
 * or published by the tail alone, and head and tail indexes). An SPSC ring may be made
 * biased (ring_bias.c: a Pipe's rings): each side's right then belongs to one process at
 * a time, which a put or get checks around its SPSC step, and another process revokes;
 * the put and get below take the fast attempt inside that right, and their general path
 * runs the try forms through it. Each fills one table of operations (struct
 * shoal__ring_ops in ring_internal.h); attach picks the table from the geometry's flags
 * and every operation below makes one indirect call through it — except the first attempt
 * of a put or get on an SPSC ring, which runs the inline fast attempt of ring_spsc.h
 * directly. What both share — argument checks, waiting, shutdown, counters, inspection —
 * is here.
 *
 * Ring header (struct shoal__ringhdr): immutable geometry, then the producer's line
 * (tail), the SPSC producer's own line (its in-flight marker and the tag of the view
 * whose put began last: ring_spsc.c), the consumer's line (head), one line
 * per futex word and a line of shutdown and recovery state (with a biased ring's bias
 * words). Counters are derived from the
 * indexes (puts = tail - skipped, gets = head - skipped), so the fast path pays nothing
 * for them; only waits are counted, when a call is about to wait.
 *
 * Waiting is shoal__wait (wait.c) with the try form as the ready predicate: the futex
 * word is a sequence word per side, armed by a sleeper count; the other side bumps the
 * word and wakes only when the count is non-zero, so the fast path makes no system
 * call. Sleeps are sliced, so a waiter regularly re-checks for dead processes. The
 * same words and predicates ("a message or the end is there", "there is room") are
 * what the event loop waits on (shoal__ring_waitable).
 *
 * Sleepers. The futex word and the count are the two halves of one 64-bit side word,
 * and the waker empties the count in the compare-and-swap that bumps the word: every
 * sleeper counted then is woken (all of them, see shoal__ring_wake_side) and counted
 * no more. A sleeper adds itself with a fetch-and-add that also tells it the word at
 * that instant; after its sleep it takes itself off only if the word has not moved
 * since (a compare-and-swap of the whole side word, so never after a waker emptied
 * the count). So the count is exactly the sleepers armed since the last waker, and
 * a sleeper SIGKILLed asleep stays counted only until the next waker: that one
 * futex-wake call for nobody is the whole cost, with no record of who sleeps to keep
 * (the counts of format 7 and earlier needed one per user slot, for a waker to clear
 * the dead's share).
 *
 * The wake path. A put or get publishes its index, then looks at the other side's
 * sleeper count; a waiter announces itself in that count, then looks at the index
 * once more before it sleeps. Each side stores, then loads what the other stores: a
 * wake-up is lost only if both loads miss both stores, which a full fence between
 * each side's store and load prevents. The SPSC ring puts that fence on the side that
 * is rare: the sleeper (and shutdown, which pairs the same way with a producer's
 * in-flight word: ring_spsc.c) issues shoal__ring_barrier — membarrier's
 * MEMBARRIER_CMD_GLOBAL_EXPEDITED, which makes every running thread of every process
 * registered for it execute a full barrier — after its store, so the put and the get
 * need only a compiler barrier between their release store and their relaxed load
 * (store_load_order). A thread not running at that instant passes a barrier when the
 * kernel switches it back in, which is as good. (The ring hands the barrier to the
 * waiter as the waitable's barrier(): a blocking call's first sleep goes without it
 * and lasts at most wait.c's LAZY_NS, so that the short sleeps of a request/reply
 * exchange do not pay for it; the loop issues it at each arm.) A process registers once,
 * when it first attaches a ring (fork children inherit it); one where membarrier is
 * missing or refused (an old kernel, a seccomp profile; SHOAL_WAKE=fenced forces it)
 * takes the fenced path instead: at attach it sets the ring's `fenced` word, and every
 * put and get on that ring, in every process, then reads the word (one load from a line
 * no one writes) and makes a full fence, as before format 3. The MPMC ring does the
 * same for the two steps that wake: a commit and a free are release stores (the slot
 * is the process's own reservation or claim: ring_mpmc.c), followed by the same order
 * and look at the count; its reservations and claims stay sequentially consistent
 * compare-and-swaps. (A process that attaches in the fenced mode
 * while another's put is in its few instructions between store and load can make
 * that one put miss a sleeper announced at the same instant; the sleeper then finds
 * the message at the end of its sleep slice, wait.c.)
 */
#include <stdlib.h>
#include <string.h>

#include "ring_spsc.h"
#include "wait.h"

#define DEFAULT_CAPACITY 1024
#define MAX_CAPACITY     (1u << 30)
#define MAX_MSG          (1u << 30)
#define MAX_RING_BYTES   (1ull << 40)
#define BYTES_TYPE       "shoal.bytes" /* element type name of variable-size channels */

/* ---- geometry ---------------------------------------------------------------------- */

/* The algorithm of a ring with these flags: the one place that chooses. */
static const struct shoal__ring_ops *ops_of(uint32_t flags)
{
    return (flags & SHOAL__RING_SPSC) ? &shoal__ring_spsc_ops : &shoal__ring_mpmc_ops;
}

static void geom_compute(shoal__ring_geom *g, uint32_t flags, uint32_t capacity,
                         uint32_t max_msg, uint32_t align, uint32_t elem_size)
{
    g->flags = flags;
    g->capacity = capacity;
    g->max_msg = max_msg;
    g->elem_size = elem_size;
    ops_of(flags)->geom(g, align < 1 ? 1 : align);
}

int shoal__ring_geom_make(const shoal_queue_config *cfg, const char *what,
                          const char *name, shoal__ring_geom *g)
{
    if (!name)
        name = "(anonymous)";
    if (!cfg)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": creating it needs a configuration",
                          what, name);
    size_t cap = cfg->capacity ? cfg->capacity : DEFAULT_CAPACITY;
    if (cap > MAX_CAPACITY)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": capacity %zu is over the limit of %u",
                          what, name, cap, MAX_CAPACITY);
    uint32_t flags = cfg->spsc ? SHOAL__RING_SPSC : 0;
    int rc;
    if (cfg->type) {
        if ((rc = shoal__type_check(cfg->type, what, name, MAX_MSG)))
            return rc;
        geom_compute(g, flags, (uint32_t)cap, cfg->type->size, cfg->type->align,
                     cfg->type->size);
    } else {
        if (cfg->max_msg == 0 || cfg->max_msg > MAX_MSG)
            return shoal__err(
                SHOAL_EINVAL,
                "%s \"%s\": a variable-size channel needs max_msg between 1 "
                "and %u bytes (got %zu)",
                what, name, MAX_MSG, cfg->max_msg);
        geom_compute(g, flags | SHOAL__RING_VAR, (uint32_t)cap, (uint32_t)cfg->max_msg, 8,
                     0);
    }
    if (shoal__ring_bytes(g) > MAX_RING_BYTES)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": %u slots of %u bytes is too large",
                          what, name, g->capacity, g->stride);
    return 0;
}

size_t shoal__ring_bytes(const shoal__ring_geom *g)
{
    return (size_t)round_up(HDR_BYTES + (uint64_t)g->capacity * g->stride, 64);
}

void shoal__ring_format(void *mem, const shoal__ring_geom *g)
{
    struct shoal__ringhdr *h = mem;
    h->magic = RING_MAGIC;
    h->flags = g->flags;
    h->capacity = g->capacity;
    h->max_msg = g->max_msg;
    h->data_off = g->data_off;
    h->stride = g->stride;
    h->elem_size = g->elem_size;
    ops_of(g->flags)->format((unsigned char *)mem + HDR_BYTES, g);
}

/* ---- the wake path's mode (see the top) -------------------------------------------- */

static pthread_once_t mode_once = PTHREAD_ONCE_INIT;
static bool mode_membarrier; /* this process issues asymmetric barriers */
static int mode_errno;       /* why not: membarrier's errno, 0 when forced */
unsigned shoal__ring_fork_gen = 1;

static void ring_forked(void)
{
    shoal__ring_fork_gen++;
}

static void mode_choose(void)
{
    pthread_atfork(NULL, NULL, ring_forked);
    const char *env = getenv("SHOAL_WAKE");
    if (env && !strcmp(env, "fenced"))
        return;
    mode_errno = shoal__membarrier_register();
    mode_membarrier = mode_errno == 0;
}

static bool wake_membarrier(void)
{
    pthread_once(&mode_once, mode_choose);
    return mode_membarrier;
}

const char *shoal_wake_mode(int *why)
{
    bool mb = wake_membarrier();
    if (why)
        *why = mode_errno;
    return mb ? "membarrier" : "fenced";
}

void shoal__ring_barrier(void)
{
    if (wake_membarrier())
        shoal__membarrier_global();
    else
        atomic_thread_fence(memory_order_seq_cst);
}

int shoal__ring_attach(shoal__ring *r, shoal__seg *seg, void *mem, size_t avail,
                       const shoal__ring_geom *g, const char *what, const char *name)
{
    struct shoal__ringhdr *h = mem;
    memset(r, 0, sizeof(*r));
    if (avail < shoal__ring_bytes(g) || h->magic != RING_MAGIC || h->flags != g->flags ||
        h->capacity != g->capacity || h->max_msg != g->max_msg ||
        h->data_off != g->data_off || h->stride != g->stride ||
        h->elem_size != g->elem_size)
        return shoal__err(SHOAL_ECORRUPT,
                          "%s \"%s\": ring header fails validation (corrupt)", what,
                          name);
    r->h = h;
    r->slots = (unsigned char *)mem + HDR_BYTES;
    r->g = *g;
    r->mask = g->capacity > 1 && !(g->capacity & (g->capacity - 1)) ? g->capacity - 1 : 0;
    r->what = what;
    r->name = name;
    r->seg = seg;
    r->ops = ops_of(g->flags);
    if (!wake_membarrier() && !atomic_load(&h->fenced))
        atomic_store(&h->fenced, 1);
    return 0;
}

/* ---- common helpers ---------------------------------------------------------------- */

/*
 * Wakes every sleeper of a side, not n of them: the one step that bumps the side's
 * futex word also takes every sleeper off its count (see "Sleepers" at the top), and
 * the kernel's futex queue for a word in shared memory can hold waits whose owner will
 * never act on a wake-up: the wait of a process SIGKILLed while asleep (until its exit
 * has run), and an io_uring futex wait of a loop that was destroyed or killed (until
 * the kernel has torn the ring down, which it does asynchronously, and never while a
 * forked child still holds the ring's descriptor). A wake of n could go to such waits
 * only, and a live loop — which, unlike shoal__wait, does not sleep in slices — would
 * then never see the message. Waking all costs more only when several live waiters
 * sleep on the same side (each re-checks and sleeps again); with nobody asleep the
 * put or get still makes no system call (sleepers_after_store looks at the count
 * first).
 */
static void wake(shoal__ring *r, bool producers, bool even_unseen)
{
    _Atomic uint64_t *side = side_word(r, producers);
    uint64_t w = atomic_load_explicit(side, memory_order_relaxed);
    do
        if (w < SIDE_SLEEPER && !even_unseen)
            return; /* they left before we came */
    while (!atomic_compare_exchange_weak(side, &w, (uint32_t)(w + 1)));
    shoal__futex_wake(side_seq(side), INT_MAX);
}

int shoal__ring_wake_side(shoal__ring *r, bool producers)
{
    wake(r, producers, false);
    return 0;
}

/* Shutdown: both sides, whether or not a sleeper is counted (a loop's wait, say,
 * armed in a process that died, must see the word move). */
void shoal__ring_wake_all(shoal__ring *r)
{
    wake(r, false, true);
    wake(r, true, true);
}

static int check_len(const shoal__ring *r, size_t len)
{
    if (!is_var(r) && len != r->g.elem_size)
        return shoal__err(
            SHOAL_EMSGSIZE,
            "%s \"%s\": message of %zu bytes, but its elements are %u bytes", r->what,
            r->name, len, r->g.elem_size);
    if (len > r->g.max_msg)
        return shoal__err(
            SHOAL_EMSGSIZE,
            "%s \"%s\": message of %zu bytes exceeds its maximum of %u bytes", r->what,
            r->name, len, r->g.max_msg);
    return 0;
}

int shoal__ring_err_closed(const shoal__ring *r)
{
    return shoal__err(SHOAL_ECLOSED, "%s \"%s\" is shut down: no more puts", r->what,
                      r->name);
}

int shoal__ring_err_eof(const shoal__ring *r)
{
    return shoal__err(SHOAL_EEOF, "%s \"%s\" is shut down and drained", r->what, r->name);
}

/* A slot records a length no message of this ring can have. */
int shoal__ring_err_bad_len(const shoal__ring *r, size_t len)
{
    return shoal__err(
        SHOAL_ECORRUPT,
        "%s \"%s\": a queued message records %zu bytes, over the maximum of "
        "%u (corrupt)",
        r->what, r->name, len, r->g.max_msg);
}

int shoal__ring_err_small(const shoal__ring *r, size_t len, size_t cap)
{
    return shoal__err(SHOAL_EMSGSIZE,
                      "%s \"%s\": the next message has %zu bytes, the buffer only %zu",
                      r->what, r->name, len, cap);
}

/* ---- waiting ----------------------------------------------------------------------- */

typedef shoal__ring_try_fn try_fn;

static int err_timeout(const shoal__ring *r, bool producer)
{
    return shoal__err(SHOAL_ETIMEDOUT, "%s \"%s\": timed out waiting for %s", r->what,
                      r->name, producer ? "room" : "a message");
}

/* The hook said the stream ended: consumers still take what is there. */
static int hook_end(shoal__ring *r, bool producer, try_fn fn, void *arg, int why)
{
    if (producer)
        return why;
    int rc = fn(r, arg);
    return rc == SHOAL_EAGAIN ? why : rc;
}

/* A blocking ring call as a shoal__waitable: ready() is the try form itself. */
#define ring_waiter shoal__ring_waiter

/* 1 when fn succeeded, 0 when it would wait, else its error. */
static int waiter_ready(void *obj)
{
    struct ring_waiter *w = obj;
    int rc = w->fn(w->r, w->arg);
    return rc == 0 ? 1 : rc == SHOAL_EAGAIN ? 0 : rc;
}

/* A sleeper announces itself: one more on its side's count. Returns the futex word's
 * value at that instant, which tells the sleeper whether a waker has taken it off
 * the count since (ring_disarm). */
static uint32_t ring_arm(shoal__ring *r, bool producer)
{
    /* The look after arming is the last before a sleep: it may also look for what
     * dead processes left (MPMC: scan_due reads the clock on this one). */
    atomic_store_explicit(&r->scan_polls, 0, memory_order_relaxed);
    return (uint32_t)atomic_fetch_add(side_word(r, producer), SIDE_SLEEPER);
}

/* The waitable's barrier: the steps that wake (an SPSC put or get, an MPMC commit or
 * free) only compiler-fence (see the top). */
static void (*ring_barrier_of(const shoal__ring *r))(void)
{
    (void)r;
    return shoal__ring_barrier;
}

/* A sleeper armed when the futex word held `armed` leaves the count, unless a waker
 * has taken it off already: the word has moved since (every step that bumps it
 * empties the count). */
static void ring_disarm(shoal__ring *r, bool producer, uint32_t armed)
{
    _Atomic uint64_t *side = side_word(r, producer);
    uint64_t w = atomic_load(side);
    while ((uint32_t)w == armed &&
           !atomic_compare_exchange_weak(side, &w, w - SIDE_SLEEPER))
        ;
}

uint32_t shoal__ring_sleepers(const shoal__ring *r, bool producers)
{
    return (uint32_t)(atomic_load(side_word(r, producers)) >> 32);
}

static uint32_t waiter_arm(void *obj)
{
    struct ring_waiter *w = obj;
    return ring_arm(w->r, w->producer);
}

static void waiter_disarm(void *obj, uint32_t armed)
{
    struct ring_waiter *w = obj;
    ring_disarm(w->r, w->producer, armed);
}

static int waiter_check(void *obj)
{
    struct ring_waiter *w = obj;
    int why = w->hook->check(w->hook->arg, w->producer, w->blocking);
    if (!why)
        return 0;
    int rc = hook_end(w->r, w->producer, w->fn, w->arg, why);
    return rc == 0 ? 1 : rc;
}

static _Atomic uint32_t *ring_word(shoal__ring *r, bool producer)
{
    return side_seq(side_word(r, producer));
}

/* Counts a call that waits. Each counter of an SPSC ring has one writer (its producer
 * or its consumer), which adds without a locked instruction. */
static void count_wait(shoal__ring *r, bool producer)
{
    _Atomic uint64_t *c = producer ? &r->h->full_waits : &r->h->empty_waits;
    if (r->g.flags & SHOAL__RING_SPSC)
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    else
        atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static int ring_wait(shoal__ring *r, bool producer, try_fn fn, void *arg,
                     shoal_duration timeout, const shoal__ring_hook *hook)
{
    int rc = fn(r, arg);
    if (SHOAL_LIKELY(rc != SHOAL_EAGAIN))
        return rc;
    if (timeout == 0) { /* a try form: say at once why nothing can come */
        int why = hook ? hook->check(hook->arg, producer, false) : 0;
        return why ? hook_end(r, producer, fn, arg, why) : SHOAL_EAGAIN;
    }
    /* A wait runs the hook's check (a syscall) only before sleeping and every
     * millisecond of spinning (wait.c), not at each message of a fast exchange. */
    count_wait(r, producer);
    shoal__deadline dl = shoal__deadline_from(timeout);
    struct ring_waiter w = {r, producer, fn, arg, hook, true};
    shoal__waitable wt = {
        ring_word(r, producer),     waiter_ready, waiter_arm,        waiter_disarm,
        hook ? waiter_check : NULL, &w,           ring_barrier_of(r)};
    rc = shoal__wait(&wt, &dl);
    if (rc == 1)
        return 0;
    return rc == SHOAL_ETIMEDOUT ? err_timeout(r, producer) : rc;
}

/* ---- ring operations --------------------------------------------------------------- */

/* The try forms of a biased ring's put and get (ring_bias.c). */
static int bias_put(shoal__ring *r, void *arg)
{
    return shoal__bias_run(r, BIAS_PUT, sp_try_put, arg);
}

static int bias_get(shoal__ring *r, void *arg)
{
    return shoal__bias_run(r, BIAS_GET, sp_try_get, arg);
}

/* The general put and get: the argument checks, then the try form through the table
 * (the first attempt) and the wait. */
static __attribute__((noinline)) int ring_put_wait(shoal__ring *r, const void *msg,
                                                   size_t len, shoal_duration timeout,
                                                   const shoal__ring_hook *hook)
{
    int rc;
    if ((rc = check_len(r, len)))
        return rc;
    if (!msg && len)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": NULL message", r->what, r->name);
    if (r->loan)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": commit the outstanding loan first",
                          r->what, r->name);
    struct put_args a = {msg, len};
    return ring_wait(r, true, r->busy ? bias_put : r->ops->put, &a, timeout, hook);
}

static __attribute__((noinline)) int ring_get_wait(shoal__ring *r, void *buf, size_t cap,
                                                   size_t *len, shoal_duration timeout,
                                                   const shoal__ring_hook *hook)
{
    size_t ignored;
    if (!buf && cap)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": NULL buffer", r->what, r->name);
    struct get_args a = {buf, cap, len ? len : &ignored};
    return ring_wait(r, false, r->busy ? bias_get : r->ops->get, &a, timeout, hook);
}

/* Whether a put of len bytes from msg is one the fast attempt may take: an SPSC ring,
 * a message of the ring's size (typed) or within its maximum, no loan outstanding. */
static inline bool put_plain(const shoal__ring *r, const void *msg, size_t len)
{
    uint32_t esz = r->g.elem_size;
    return (r->g.flags & SHOAL__RING_SPSC) && msg && !r->loan &&
           (esz ? len == esz : len <= r->g.max_msg);
}

/* An SPSC ring's put or get of a message over COPY_INLINE_MAX bytes: the try form
 * inline (the copy dominates), the general path only when it would wait. */
static __attribute__((noinline)) int ring_put_spsc(shoal__ring *r, const void *msg,
                                                   size_t len, shoal_duration timeout,
                                                   const shoal__ring_hook *hook)
{
    int rc = sp_put1(r, msg, len, false);
    return rc == SHOAL_EAGAIN ? ring_put_wait(r, msg, len, timeout, hook) : rc;
}

static __attribute__((noinline)) int ring_get_spsc(shoal__ring *r, void *buf, size_t cap,
                                                   size_t *len, shoal_duration timeout,
                                                   const shoal__ring_hook *hook)
{
    int rc = sp_get1(r, buf, cap, len, false);
    return rc == SHOAL_EAGAIN ? ring_get_wait(r, buf, cap, len, timeout, hook) : rc;
}

/* Whether a fast attempt that found the ring full (put) or empty (get) has the try
 * form's answer, SHOAL_EAGAIN: a call that may not wait, without a hook (whose check
 * could name a reason), on a ring that is open (else the general path tells the end
 * of the stream or shutdown). */
static inline bool try_says_wait(const shoal__ring *r, shoal_duration timeout,
                                 const shoal__ring_hook *hook)
{
    return timeout == 0 && !hook &&
           !atomic_load_explicit(&r->h->closed, memory_order_relaxed);
}

/* A biased ring's put and get (ring_bias.c): the fast attempt inside the side's
 * right when the process holds it and no other thread of it is inside (a put refused
 * by shutdown is ended there too: its in-flight word is the holder's), else the
 * general path. */
static __attribute__((noinline)) int ring_put_biased(shoal__ring *r, const void *msg,
                                                     size_t len, shoal_duration timeout,
                                                     const shoal__ring_hook *hook)
{
    if (len <= COPY_INLINE_MAX && bias_enter(r, BIAS_PUT)) {
        int rc = sp_put1(r, msg, len, true);
        if (rc == SP_REFUSED)
            rc = shoal__spsc_refused(r, ring_fenced(r));
        bias_exit(r, BIAS_PUT);
        if (SHOAL_LIKELY(rc == 0))
            return 0;
        if (rc == SP_WAIT ? try_says_wait(r, timeout, hook) : rc != SP_LATER)
            return sp_finish(r, rc, true);
    }
    return ring_put_wait(r, msg, len, timeout, hook);
}

static __attribute__((noinline)) int ring_get_biased(shoal__ring *r, void *buf,
                                                     size_t cap, size_t *len,
                                                     shoal_duration timeout,
                                                     const shoal__ring_hook *hook)
{
    if (r->g.max_msg <= COPY_INLINE_MAX && bias_enter(r, BIAS_GET)) {
        int rc = sp_get1(r, buf, cap, len, true);
        bias_exit(r, BIAS_GET);
        if (SHOAL_LIKELY(rc == 0))
            return 0;
        if (rc == SP_WAIT ? try_says_wait(r, timeout, hook) : rc != SP_LATER)
            return sp_finish(r, rc, false);
    }
    return ring_get_wait(r, buf, cap, len, timeout, hook);
}

/* An SPSC ring's put and get first make the fast attempt (ring_spsc.h): inline, no
 * indirect call, no argument block, no frame on the common path; anything else takes
 * the general path, which checks the arguments and tries again (a failed attempt
 * changes nothing) — except a try form on an open ring with no room or no message,
 * answered at once (try_says_wait). Rings of larger messages take the try form
 * directly. */
int shoal__ring_put(shoal__ring *r, const void *msg, size_t len, shoal_duration timeout,
                    const shoal__ring_hook *hook)
{
    if (SHOAL_LIKELY(put_plain(r, msg, len))) {
        if (SHOAL_UNLIKELY(len > COPY_INLINE_MAX || r->busy))
            return r->busy ? ring_put_biased(r, msg, len, timeout, hook)
                           : ring_put_spsc(r, msg, len, timeout, hook);
        int rc = sp_put1(r, msg, len, true);
        if (SHOAL_LIKELY(rc == 0))
            return 0;
        if (rc == SP_WAIT ? try_says_wait(r, timeout, hook) : rc != SP_LATER)
            return sp_finish(r, rc, true);
    }
    return ring_put_wait(r, msg, len, timeout, hook);
}

int shoal__ring_get(shoal__ring *r, void *buf, size_t cap, size_t *len,
                    shoal_duration timeout, const shoal__ring_hook *hook)
{
    if (SHOAL_LIKELY((r->g.flags & SHOAL__RING_SPSC) && buf && len)) {
        if (SHOAL_UNLIKELY(r->g.max_msg > COPY_INLINE_MAX || r->busy))
            return r->busy ? ring_get_biased(r, buf, cap, len, timeout, hook)
                           : ring_get_spsc(r, buf, cap, len, timeout, hook);
        int rc = sp_get1(r, buf, cap, len, true);
        if (SHOAL_LIKELY(rc == 0))
            return 0;
        if (rc == SP_WAIT ? try_says_wait(r, timeout, hook) : rc != SP_LATER)
            return sp_finish(r, rc, false);
    }
    return ring_get_wait(r, buf, cap, len, timeout, hook);
}

static int batch_check(shoal__ring *r, const void *elems, size_t n, size_t *done)
{
    if (done)
        *done = 0;
    if (is_var(r))
        return shoal__err(SHOAL_EINVAL,
                          "%s \"%s\": batch operations need a typed (fixed-size) %s",
                          r->what, r->name, r->what);
    if (!done || (!elems && n))
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": NULL argument", r->what, r->name);
    return 0;
}

int shoal__ring_put_batch(shoal__ring *r, const void *elems, size_t n, size_t *done,
                          shoal_duration timeout, const shoal__ring_hook *hook)
{
    int rc = batch_check(r, elems, n, done);
    if (rc || n == 0)
        return rc;
    if (r->loan)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": commit the outstanding loan first",
                          r->what, r->name);
    struct batch_args a = {(unsigned char *)elems, n, done};
    return ring_wait(r, true, r->ops->put_batch, &a, timeout, hook);
}

int shoal__ring_get_batch(shoal__ring *r, void *elems, size_t max, size_t *done,
                          shoal_duration timeout, const shoal__ring_hook *hook)
{
    int rc = batch_check(r, elems, max, done);
    if (rc || max == 0)
        return rc;
    struct batch_args a = {elems, max, done};
    return ring_wait(r, false, r->ops->get_batch, &a, timeout, hook);
}

/* ---- zero-copy --------------------------------------------------------------------- */

int shoal__ring_loan(shoal__ring *r, void **slot, size_t *cap, shoal_duration timeout,
                     const shoal__ring_hook *hook)
{
    size_t ignored;
    if (!slot)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": NULL argument", r->what, r->name);
    struct loan_args a = {slot, cap ? cap : &ignored};
    return ring_wait(r, true, r->ops->loan, &a, timeout, hook);
}

int shoal__ring_commit(shoal__ring *r, void *slot, size_t len)
{
    int rc;
    if ((rc = check_len(r, len)))
        return rc;
    if (!slot)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": NULL slot", r->what, r->name);
    return r->ops->commit(r, (unsigned char *)slot - r->g.data_off, len);
}

int shoal__ring_peek(shoal__ring *r, const void **msg, size_t *len,
                     shoal_duration timeout, const shoal__ring_hook *hook)
{
    size_t ignored;
    if (!msg)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": NULL argument", r->what, r->name);
    struct peek_args a = {msg, len ? len : &ignored};
    return ring_wait(r, false, r->ops->peek, &a, timeout, hook);
}

int shoal__ring_release(shoal__ring *r, const void *msg)
{
    if (!msg)
        return shoal__err(SHOAL_EINVAL, "%s \"%s\": NULL message", r->what, r->name);
    return r->ops->release(r, msg);
}

/* ---- readiness, shutdown, inspection ----------------------------------------------- */

int shoal__ring_poll(shoal__ring *r, shoal_duration timeout, const shoal__ring_hook *hook)
{
    int rc = ring_wait(r, false, r->ops->readable, NULL, timeout, hook);
    if (rc == 0)
        return 1;
    if (rc == SHOAL_EAGAIN || rc == SHOAL_ETIMEDOUT)
        return 0;
    if (rc == SHOAL_EEOF || rc == SHOAL_EPEERDEAD)
        return 1;
    return rc;
}

void shoal__ring_set_hook(shoal__ring *r, const shoal__ring_hook *hook)
{
    r->side[0].hook = r->side[1].hook = hook;
}

void shoal__ring_waitable(shoal__ring *r, bool writable, shoal__waitable *out)
{
    struct shoal__ring_waiter *w = &r->side[writable];
    shoal__ring_try_fn fn = writable ? r->ops->writable : r->ops->readable;
    *w = (struct shoal__ring_waiter){r, writable, fn, NULL, w->hook, false};
    *out = (shoal__waitable){ring_word(r, writable),
                             waiter_ready,
                             waiter_arm,
                             waiter_disarm,
                             w->hook ? waiter_check : NULL,
                             w,
                             ring_barrier_of(r)};
}

void shoal__ring_shutdown(shoal__ring *r)
{
    uint32_t open = 0;
    atomic_compare_exchange_strong(&r->h->closed, &open, RING_CLOSING);
    shoal__test_point("ring.closing"); /* a test kills a closer here */
    r->ops->seal(r);
    shoal__ring_wake_all(r);
}

/* The tail as the messages show it (the tail of an SPSC ring of marked slots lags a
 * marker published by a producer that was killed before its tail store: ring_spsc.c). */
static uint64_t ring_tail(const shoal__ring *r)
{
    return (r->g.flags & SHOAL__RING_SPSC) ? sp_marked_tail(r) : atomic_load(&r->h->tail);
}

int shoal__ring_inspect(const shoal__ring *r, size_t max,
                        void (*fn)(void *arg, const void *msg, size_t len), void *arg)
{
    unsigned char *buf = malloc(r->g.max_msg ? r->g.max_msg : 1);
    if (!buf)
        return SHOAL_ENOMEM;
    uint64_t hd = atomic_load(&r->h->head);
    uint64_t t = ring_tail(r);
    size_t shown = 0;
    /* The indexes may be garbage: never more than one lap, whatever they say. */
    uint64_t n = t > hd ? t - hd : 0;
    if (n > r->g.capacity)
        n = r->g.capacity;
    for (uint64_t i = 0; i < n && shown < max; i++) {
        long len = r->ops->copy_at(r, hd + i, buf);
        if (len >= 0) {
            fn(arg, buf, (size_t)len);
            shown++;
        }
    }
    free(buf);
    return 0;
}

void shoal__ring_stats(const shoal__ring *r, shoal_queue_stats *st)
{
    struct shoal__ringhdr *h = r->h;
    uint64_t skipped = atomic_load(&h->skipped);
    uint64_t hd = atomic_load(&h->head);
    uint64_t t = ring_tail(r);
    memset(st, 0, sizeof(*st));
    st->capacity = r->g.capacity;
    st->depth = t > hd ? t - hd : 0;
    st->max_msg = r->g.max_msg;
    st->puts = t - skipped;
    st->gets = hd > skipped ? hd - skipped : 0;
    st->full_waits = atomic_load_explicit(&h->full_waits, memory_order_relaxed);
    st->empty_waits = atomic_load_explicit(&h->empty_waits, memory_order_relaxed);
    st->closed = atomic_load(&h->closed) != 0;
    st->spsc = (r->g.flags & SHOAL__RING_SPSC) != 0;
}

/* ---- segment glue shared with pipe.c ---------------------------------------------- */

/* The element type recorded for a variable-size channel: its size is max_msg, so a
 * mismatch on open names both maxima. */
void shoal__ring_bytes_type(shoal_type *t, uint32_t max_msg)
{
    static const char name[] = BYTES_TYPE;
    *t =
        (shoal_type){.name = name,
                     .layout_hash = shoal_fnv1a(SHOAL_FNV_OFFSET, name, sizeof(name) - 1),
                     .size = max_msg,
                     .align = 1};
}

void shoal__ring_spec(shoal__seg_spec *spec, const shoal__ring_geom *g, const char *what)
{
    spec->what = what;
    spec->count = g->capacity;
    spec->aux[0] = g->flags;
    spec->aux[1] = g->max_msg;
    spec->aux[2] = g->stride;
    spec->aux[3] = g->data_off;
}

int shoal__ring_geom_of(const shoal__seg *seg, const char *what, shoal__ring_geom *g)
{
    const struct shoal__header *h = seg->hdr;
    uint32_t flags = (uint32_t)h->aux[0];
    bool var = flags & SHOAL__RING_VAR;
    if ((flags & ~(SHOAL__RING_SPSC | SHOAL__RING_VAR)) || h->count == 0 ||
        h->count > MAX_CAPACITY || h->aux[1] == 0 || h->aux[1] > MAX_MSG ||
        (!var && h->elem_size != h->aux[1]))
        return shoal__err(SHOAL_ECORRUPT, "%s \"%s\": header fails validation (corrupt)",
                          what, seg->name);
    geom_compute(g, flags, (uint32_t)h->count, (uint32_t)h->aux[1],
                 var ? 8 : h->elem_align, var ? 0 : (uint32_t)h->elem_size);
    if (g->stride != h->aux[2] || g->data_off != h->aux[3])
        return shoal__err(SHOAL_ECORRUPT, "%s \"%s\": header fails validation (corrupt)",
                          what, seg->name);
    return 0;
}

/* Checks an existing channel against what the caller asked for (type and max_msg were
 * checked by the segment layer when given). The ring's mode (spsc) and capacity are
 * creation parameters: an opener takes the channel as it was made. */
int shoal__ring_check_cfg(const shoal__ring_geom *g, const shoal_queue_config *cfg,
                          const char *what, const char *name)
{
    if (!cfg)
        return 0;
    bool var = g->flags & SHOAL__RING_VAR;
    if (!cfg->type && !var)
        return shoal__err(
            SHOAL_ELAYOUT,
            "%s \"%s\": layout mismatch: it holds fixed-size elements of %u "
            "bytes, caller expects variable-size messages",
            what, name, g->elem_size);
    return 0;
}
