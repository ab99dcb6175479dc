/*
 * wait.h — the one way anything in shoal waits.
 *
 * Every object a caller can wait on — a ring's readable or writable side, a lock, a
 * semaphore, a condition, an event, a barrier, a Value's writer slot — describes that
 * wait as a shoal__waitable: a 32-bit futex word in shared memory and a ready
 * predicate. The object's other side changes the word whenever the predicate may have
 * become true, and makes the futex-wake system call only when a sleeper has announced
 * itself (arm), so that a put, release or set with nobody asleep costs no system call.
 *
 * A waiter follows one protocol, whether it is a blocking call (shoal__wait) or the
 * event loop waiting on many objects at once:
 *
 *   1. ready() > 0: done; ready() < 0: a terminal result (closed, peer dead).
 *   2. Spin for the spin budget, re-checking ready() (and check() once a millisecond;
 *      yielding the CPU while a spin table says the spinners are too many: below).
 *   3. v = load(word); t = arm(); if ready() != 0: disarm(t) and go to 1.
 *   4. Sleep while word == v (futex wait, at most one slice so that check() runs
 *      regularly and finds dead peers); disarm(t); go to 1.
 *
 * The arm / re-check / sleep order is what makes wake-ups impossible to lose: a waker
 * that changed the state before arm() is seen by the re-check in step 3; one that
 * changed it after sees the announced sleeper and wakes the word.
 */
#ifndef SHOAL_WAIT_H
#define SHOAL_WAIT_H

#include "internal.h"

typedef struct shoal__waitable {
    _Atomic uint32_t *word; /* the futex word to sleep on (in shared memory) */
    /* 1: ready, 0: not yet, < 0: a terminal SHOAL_E* code for this wait. */
    int (*ready)(void *obj);
    /* Announce / withdraw a sleeper on word. NULL when the waker always wakes. arm()
     * returns a token that disarm() gets back (a ring's: the word's value when the
     * sleeper counted itself, ring.c). */
    uint32_t (*arm)(void *obj);
    void (*disarm)(void *obj, uint32_t token);
    /* Run once per sleep slice: 0 to keep waiting, a terminal SHOAL_E* code (a dead
     * peer found, ...), or 1 when it found the object ready after all. NULL: none. */
    int (*check)(void *obj);
    void *obj;
    /* Issued after arm() and before the re-check, when the waker publishes without a
     * fence and looks at the sleepers with a plain load (a ring's asymmetric fence,
     * ring.c). NULL: arm() orders itself. Waiters defer it: shoal__wait's first
     * sleep goes without it and lasts at most SHOAL__LAZY_NS (wait.c); the loop
     * sleeps at most that long after arming such sources, then issues it once for
     * all of them (loop.c). */
    void (*barrier)(void);
} shoal__waitable;

/* How long a waiter sleeps on a waitable whose barrier() it has not issued yet: a
 * waker that missed its announcement (see wait.c) delays it by at most this much.
 * Shorter sleeps cost more on some virtual machines (a near timer slows the wake-up
 * of an idle virtual CPU: +20 us at 200 us, +6 us at 1 ms, none seen at 5 ms). */
#define SHOAL__LAZY_NS (5 * 1000000LL)

/*
 * The spin's cadence, the same for every spinner (shoal__wait, the event loop): the
 * first polls follow each other closely, for the answer of a peer that is one
 * cache-line transfer away; then the pauses between polls grow to SHOAL__SPIN_GAP_MAX,
 * so a poller does not keep stealing the line from a writer still busy with it; the
 * clock is read every SHOAL__SPIN_CLOCK_POLLS polls only (a reading costs as much as
 * a few polls, so an answer within the first polls costs none). Use:
 *     shoal__spin c = SHOAL__SPIN_INIT;
 *     for (;;) { shoal__spin_pause(&c); poll; if (!shoal__spin_clock_due(&c)) continue;
 *                now = clock; if (shoal__spin_first_clock(&c)) start the budget; ... }
 */
#define SHOAL__SPIN_GAP_MAX     16 /* most pauses between two polls */
#define SHOAL__SPIN_CLOCK_POLLS 16 /* polls between two readings of the clock */

typedef struct shoal__spin {
    unsigned polls, gap;
} shoal__spin;
#define SHOAL__SPIN_INIT                                                                 \
    {                                                                                    \
        0, 1                                                                             \
    }

/* The pause before a poll. */
static inline void shoal__spin_pause(shoal__spin *c)
{
    for (unsigned k = 0; k < c->gap; k++)
        shoal__cpu_relax();
    c->polls++;
}

/* After a poll that found nothing: whether the spinner reads the clock now. */
static inline bool shoal__spin_clock_due(shoal__spin *c)
{
    if (c->gap < SHOAL__SPIN_GAP_MAX && (c->polls & 7) == 0)
        c->gap *= 2;
    return c->polls % SHOAL__SPIN_CLOCK_POLLS == 0;
}

/* Whether this reading of the clock is the spin's first (its budget starts there). */
static inline bool shoal__spin_first_clock(const shoal__spin *c)
{
    return c->polls == SHOAL__SPIN_CLOCK_POLLS;
}

/*
 * Spinners counted across processes: a spin table. A spin pays while the spinner and
 * the peer it waits for each have a CPU. When more threads spin than there are CPUs
 * (four clients waiting for their replies and four broker sessions waiting for their
 * requests, on two CPUs), a spin mostly waits for a peer that is not running while it
 * holds the CPU that peer needs. So the waits of one group of processes (an shm://
 * server and its clients: rpc_shm.c keeps the table in the block NAME:spin) count
 * their spinners in a table in shared memory, and a spinner that finds them more
 * than the CPUs it may run on (sched_getaffinity) gives its CPU away (sched_yield)
 * at each reading of its clock, until the crowd thins or its budget runs out. It
 * does not sleep at once: a wake-up costs more than the spin it saves, and the
 * spinners whose peers do run keep their exchanges going. Fewer spinners than CPUs
 * (one client and its session) spin exactly as without a table.
 *
 * The count is a word of seat flags: each connection end takes a seat (by
 * compare-and-swap of its process's owner id into the seat's owner word) and a wait
 * made from it sets the seat's bit when its spin begins — at its first reading of
 * the clock, so an answer found within the first polls costs no locked instruction —
 * and clears it when the spin ends. A process killed mid-spin leaves its bit set: a
 * spinner that finds another bit set looks, at most once per SHOAL__SPIN_REPAIR_NS of
 * its process (a system call per bit, so a negligible share of a spin), for set bits
 * whose seat's owner is gone (owner.c: from the kernel's locks, not a pid), clears
 * them and frees their seats; a seat whose owner is gone is free for the next
 * connection too. So a dead spinner is cleared by the next spinner of any process,
 * before it can crowd anyone, whether or not the table was crowded when it died.
 *
 * A connection that finds no free seat (all SHOAL__SPIN_SEATS taken by live ends)
 * has no flag, so the others do not count it, but it counts itself: it yields while
 * the flags set plus itself outnumber the CPUs, and it looks for a free seat again at
 * the start of each spin (loads only), so it is counted once a seat frees. The count
 * stays one load of one word for every spinner. A fork child inherits a copy of its
 * parent's seat: its first spin finds that the seat's owner id is not its own (the
 * process identity of owner.c) and takes a seat of its own, so parent and child are
 * counted apart, and a child killed mid-spin leaves its own flag (cleared as any dead
 * spinner's), never its live parent's.
 *
 * The CPU count is read again (sched_getaffinity) when it is older than 100 ms, at
 * the clock reading that uses it: a process that changes its affinity is counted
 * with its new CPUs within that time, for a system call per 100 ms of spinning.
 */
#define SHOAL__SPIN_SEATS     64
#define SHOAL__SPIN_REPAIR_NS (10 * 1000000LL)

typedef struct shoal__spin_table {
    _Alignas(64) _Atomic uint64_t spinning; /* bit k: seat k's wait spins */
    _Alignas(64) _Atomic uint32_t owner[SHOAL__SPIN_SEATS]; /* owner id; 0: free */
} shoal__spin_table;

/* A connection end's seat in a table (one thread waits from it at a time). */
typedef struct shoal__spin_seat {
    shoal__spin_table *table; /* NULL: none (not counted) */
    shoal__seg *seg;          /* the segment holding the table (its owner ids) */
    uint32_t owner;           /* this process's owner id in seg when it took it */
    int k;                    /* the seat's index; -1: no seat (counts itself only) */
} shoal__spin_seat;

/* Takes a free seat of t (in seg) for this process (or one whose owner is gone);
 * s->k is -1 when none is free or the process has no owner id in seg: its waits then
 * count only themselves, and look for a free seat again at each spin. */
void shoal__spin_seat_take(shoal__spin_seat *s, shoal__spin_table *t, shoal__seg *seg);
/* Gives the seat back (its bit cleared); a fork child's copy of its parent's seat
 * is only forgotten. Harmless on a seat never taken. */
void shoal__spin_seat_give(shoal__spin_seat *s);
/* Makes s (NULL: none) the seat the calling thread's waits spin from; returns the
 * previous one, to be put back after the wait. */
shoal__spin_seat *shoal__spin_seat_use(shoal__spin_seat *s);
/* The CPUs this process may run on (sched_getaffinity of the calling thread), read
 * again when the count is older than 100 ms at `now` (shoal__now_ns), so a change of
 * affinity is followed within that time. */
int shoal__cpus_at(int64_t now);
/* shoal__cpus_at the current time, read on the coarse clock (a few nanoseconds). */
int shoal__cpus_allowed(void);
/* Forgets the count read: the next shoal__cpus_at reads it again at once (after the
 * process changed its affinity, as a test's broker child pinned to one CPU does). */
void shoal__cpus_forget(void);
/* The spinners t counts now (tests, tools). */
int shoal__spin_table_count(shoal__spin_table *t);

/*
 * Waits until w is ready or the deadline passes, spinning for the spin budget before
 * sleeping. Returns 1 when ready, a terminal code from ready() or check(), or
 * SHOAL_ETIMEDOUT. Never waits past the deadline it is given.
 */
int shoal__wait(const shoal__waitable *w, const shoal__deadline *d);
/*
 * The spin of shoal__wait alone (step 2): polls ready() (and check()) for the spin
 * budget, bounded by the deadline. Returns ready()'s or check()'s non-zero verdict,
 * or 0 when the budget ran out. For waits whose sleep is not a futex word (a
 * socket's: rpc_nng.c); w->word, arm, disarm and barrier are not used.
 */
int shoal__wait_spin(const shoal__waitable *w, const shoal__deadline *d);
/*
 * shoal__wait that a signal handler running while the waiter sleeps ends with
 * SHOAL_EINTR (sleeps are sliced, so every futex wait has a timeout and the kernel
 * never restarts it after a handler).
 */
int shoal__wait_intr(const shoal__waitable *w, const shoal__deadline *d);

/*
 * What the event loop waits on. Each fills *out for the handle's readable
 * (writable = false) or writable (writable = true) side and returns 0, or
 * SHOAL_EINVAL when the object has no such side (an Event is never "writable").
 * The waitable stays valid while the handle is open.
 *   queue:  readable = a message or end-of-stream is there; writable = room.
 *   pipe:   the same for the end's incoming and outgoing directions.
 *   event:  readable = set.
 *   sem:    readable = a unit is available (the callback then tries to take it).
 */
int shoal__queue_waitable(shoal_queue *q, bool writable, shoal__waitable *out);
int shoal__pipe_waitable(shoal_pipe *p, bool writable, shoal__waitable *out);
int shoal__event_waitable(shoal_event *e, bool writable, shoal__waitable *out);
int shoal__sem_waitable(shoal_sem *s, bool writable, shoal__waitable *out);

#endif
