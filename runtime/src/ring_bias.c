/*
 * ring_bias.c — the biased right of an SPSC ring that several processes and threads
 * may use at once (a Pipe's rings: pipe.c).
 *
 * An SPSC ring (ring_spsc.c) is right for any sequence of producers — a new one finds
 * the tail through put_view, one killed anywhere in a put leaves the ring as the next
 * expects — and of consumers, as long as no two of a side run at once. A Pipe end is
 * almost always used by one thread of one process at a time, but may be used by
 * several (a fork child and its parent, threads sharing a handle). So each side of a
 * biased ring (producers, consumers) carries a right, held by one process at a time,
 * and the threads of that process take turns on it:
 *
 *   bias[side]   in the ring header, on the line of `closed`: the owner id (owner.c)
 *                of the process holding the side, or BIAS_REVOKING with the ids of
 *                the process revoking it and of the old holder. Written only when the
 *                right changes hands, so the line stays shared by every process.
 *   busy         per user slot of the segment and per side, a word on a line only
 *                that slot's process writes (the Pipe's control block): its owner id
 *                while one of its threads is inside a put or get of the side, else 0.
 *
 * A call enters a side with an exchange of its busy word (bias_enter: the old value
 * is its own process's id when another of its threads is inside: it leaves the word
 * as it was and waits its turn; any other value is a dead former user of the slot's,
 * taken over), then loads the bias word: its own id, and the call runs the ring's
 * SPSC step and clears busy (bias_exit: then loads the bias word once more, to wake a
 * revoker). So a put or get between two processes that keep their sides costs the
 * SPSC ring's steps, an exchange on a line of the process's own and two loads of a
 * shared line. A call that finds the bias word not its own clears busy and takes the
 * slow path, shoal__bias_run:
 *
 *   1. a revocation by a live other process under way: wait for the bias word to
 *      change (a revoker killed in its middle is taken over: step 2 with its old
 *      holder);
 *   2. compare-and-swap the bias word to BIAS_REVOKING | me | old holder, issue the
 *      barrier (shoal__ring_barrier), wait until the old holder's busy word no longer
 *      names it or the old holder is dead (owner.c), then store its own id.
 *
 * Dekker with the fence on the rare side, as on the wake path (ring.c): the holder
 * stores busy, then loads the bias word (the exchange orders the two); the revoker
 * changes the bias word, issues the barrier, then loads busy. Either the revoker sees
 * the holder busy, or the holder sees the revocation and leaves the side untouched.
 * A holder leaving (bias_exit) stores busy, then loads the bias word after the
 * store_load_order of ring.c: a revoker that found it busy is woken (bias_seq) by it
 * or finds it idle after its barrier.
 *
 * Dead processes. A holder killed inside a call leaves busy naming it: a revoker
 * finds it dead and takes the side, which the SPSC ring's own recovery covers (a
 * producer killed between a marker and its tail store, a consumer killed before it
 * moved the head); a new process in the dead one's user slot overwrites the stale
 * busy word on its first exchange. A revoker killed mid-revocation leaves
 * BIAS_REVOKING naming it: the next contender carries the revocation on (its old
 * holder may still be inside a call, so it waits on that holder as the dead revoker
 * would have). A fork child has its own owner id and user slot, so it never takes its
 * parent's right for its own. A revoker that does not get the side within
 * BIAS_WAIT_NS (the old holder stopped inside a call) gives the right back to the old
 * holder, unchanged, and answers SHOAL_EAGAIN: its caller's wait (ring.c) tries again,
 * as for a full or empty ring, so a call's timeout holds and no right is left with a
 * process that stopped trying.
 */
#include <limits.h>
#include <sched.h>

#include "ring_spsc.h"
#include "wait.h"

#define BIAS_REVOKING (1ull << 63)
/* How long one try waits for a revocation (its own or another's) before it answers
 * SHOAL_EAGAIN. */
#define BIAS_WAIT_NS SHOAL__LAZY_NS

static inline uint32_t bias_revoker(uint64_t b)
{
    return (uint32_t)(b >> 32) & 0x7fffffffu;
}

static inline uint32_t bias_holder(uint64_t b)
{
    return (uint32_t)b;
}

void shoal__ring_set_bias(shoal__ring *r, struct shoal__bias_line *busy)
{
    r->busy = busy;
    r->bias_gen = 0; /* this process's id and slot: read at the first call */
}

void shoal__bias_leave(shoal__ring *r, int side, bool clear)
{
    if (clear)
        atomic_store_explicit(bias_busy(r, side), 0, memory_order_release);
    atomic_fetch_add(&r->h->bias_seq, 1);
    shoal__futex_wake(&r->h->bias_seq, INT_MAX);
}

/* Records this process's owner id and user slot in the view (once per fork
 * generation): 0, or SHOAL_EBUSY when it has none (every slot taken). */
static int bias_me(shoal__ring *r)
{
    if (SHOAL_LIKELY(r->bias_gen == shoal__ring_fork_gen))
        return 0;
    uint32_t me = shoal__seg_owner(r->seg);
    int slot = me ? shoal__owner_slot(me) : -1;
    if (slot < 0 || slot >= SHOAL_MAX_USERS)
        return shoal__err(SHOAL_EBUSY,
                          "%s \"%s\": this process has no user slot of the segment (%d "
                          "processes use it)",
                          r->what, r->name, SHOAL_MAX_USERS);
    r->bias_me = me;
    r->bias_slot = slot;
    r->bias_gen = shoal__ring_fork_gen;
    return 0;
}

/* ---- waiting for a revocation ------------------------------------------------------ */

struct bias_wait {
    shoal__ring *r;
    int side;
    uint64_t b;   /* the bias word waited on */
    uint32_t who; /* the process waited for */
    bool on_busy; /* wait for who's busy word to clear (else for the bias word) */
};

static int bias_ready(void *obj)
{
    struct bias_wait *w = obj;
    int slot = shoal__owner_slot(w->who);
    if (w->on_busy) /* an id naming no slot (a damaged word) has no busy word */
        return slot < 0 || atomic_load(&w->r->busy[slot].side[w->side]) != w->who;
    return atomic_load(&w->r->h->bias[w->side]) != w->b;
}

/* Once per sleep slice: the process waited for is dead (ready after all). */
static int bias_check(void *obj)
{
    struct bias_wait *w = obj;
    return !shoal__owner_alive(w->r->seg, w->who);
}

/* Waits at most BIAS_WAIT_NS: 0 when ready, SHOAL_EAGAIN when not yet. */
static int bias_wait(struct bias_wait *w)
{
    shoal__waitable wt = {&w->r->h->bias_seq, bias_ready, NULL, NULL,
                          bias_check,         w,          NULL};
    shoal__deadline dl = shoal__deadline_from(BIAS_WAIT_NS);
    int rc = shoal__wait(&wt, &dl);
    return rc == 1 ? 0 : rc == SHOAL_ETIMEDOUT ? SHOAL_EAGAIN : rc;
}

/* ---- revoking ------------------------------------------------------------------------
 */

/* Takes side `side`'s right for this process (see the top): 0, SHOAL_EAGAIN when it
 * could not within BIAS_WAIT_NS (the right as it was), or an error. */
static int bias_take(shoal__ring *r, int side)
{
    _Atomic uint64_t *bw = &r->h->bias[side];
    uint64_t b = atomic_load(bw);
    for (;;) {
        if (b == r->bias_me)
            return 0;
        uint32_t old = bias_holder(b);
        if (b & BIAS_REVOKING) {
            uint32_t x = bias_revoker(b);
            if (x != r->bias_me && shoal__owner_alive(r->seg, x)) {
                struct bias_wait w = {r, side, b, x, false};
                int rc = bias_wait(&w);
                if (rc)
                    return rc;
                b = atomic_load(bw);
                continue;
            }
        }
        /* A holder's right, a dead revoker's revocation or another thread's of this
         * process: revoked (or carried on) by this process. */
        uint64_t nb = BIAS_REVOKING | (uint64_t)r->bias_me << 32 | old;
        if (b != nb && !atomic_compare_exchange_strong(bw, &b, nb))
            continue;
        shoal__test_point("pipe.bias.revoking");
        shoal__ring_barrier();
        if (old) {
            struct bias_wait w = {r, side, nb, old, true};
            int rc = bias_wait(&w);
            if (rc) { /* give the right back as it was */
                atomic_compare_exchange_strong(bw, &nb, old);
                shoal__bias_leave(r, side, false);
                return rc;
            }
        }
        shoal__test_point("pipe.bias.revoked");
        b = nb;
        if (atomic_compare_exchange_strong(bw, &b, r->bias_me)) {
            shoal__bias_leave(r, side, false); /* wake whoever waits for the word */
            return 0;
        }
    }
}

int shoal__bias_run(shoal__ring *r, int side, shoal__ring_try_fn fn, void *arg)
{
    int rc = bias_me(r);
    if (rc)
        return rc;
    shoal__spin c = SHOAL__SPIN_INIT;
    while (!bias_enter(r, side)) {
        if (atomic_load(&r->h->bias[side]) == r->bias_me) {
            /* Another thread of this process is inside a call on the side. */
            shoal__spin_pause(&c);
            if (shoal__spin_clock_due(&c))
                sched_yield();
            continue;
        }
        if ((rc = bias_take(r, side)))
            return rc;
    }
    shoal__test_point("pipe.bias.busy");
    rc = fn(r, arg);
    bias_exit(r, side);
    return rc;
}
