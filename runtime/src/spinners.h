/*
 * spinners.h — whether a receive spins for its peer's answer: only while the
 * process's busy connections leave a CPU for each of them and for each peer.
 *
 * A waiter spins (wait.h, step 2) because waking a sleeper costs tens of microseconds
 * and a busy peer answers in a few. That bet holds while the waiter and its peer each
 * have a CPU. When the exchanges outnumber the CPUs (four clients and their four
 * sessions on two CPUs) the peer is often not running at all, and a spin only takes
 * the CPU that the peer, or another exchange, needs.
 *
 * So the receives of a process's connections (rpc_shm.c) keep a small shared table:
 * each connection that receives something notes the time in its slot, at most once
 * per NOTE_NS (spinners.c), so that a busy exchange does not write a shared line per
 * message. Before it waits, a receive counts the connections busy within BUSY_NS
 * (re-counted at most once per RECOUNT_NS) and spins the process's full budget
 * (shoal__spin_budget) only while twice that count — each exchange has a peer that
 * needs a CPU too — is at most the CPUs the process may run on (sched_getaffinity);
 * otherwise it sleeps at once. A connection merely open is not busy: one client
 * keeps its spin whatever else is connected, and so does the session serving it.
 *
 * The waits themselves are wait.c's: shoal__spin_begin sets the calling thread's
 * budget (shoal__spin_budget returns it while set), shoal__spin_end clears it and
 * notes a received message.
 */
#ifndef SHOAL_SPINNERS_H
#define SHOAL_SPINNERS_H

#include "internal.h"

/* A connection's place in the table. Zeroed: none yet. One reader at a time. */
typedef struct shoal__spin_adapt {
    int slot;           /* 1 + its slot; 0: none yet; -1: the table was full */
    int spin;           /* the last count's verdict */
    int64_t noted;      /* when its slot was last written */
    int64_t counted_at; /* when it last counted */
} shoal__spin_adapt;

/* This thread's spin budget while set (>= 0); -1: the process's. */
extern __thread int64_t shoal__spin_thread_ns;

/*
 * Before a wait for the peer: sets this thread's spin budget (the process's, or 0
 * when the busy connections outnumber the CPUs) and returns the time the wait starts,
 * or -1 when the process does not spin at all.
 */
int64_t shoal__spin_begin(shoal__spin_adapt *a);
/* After it: clears this thread's budget; a message received (got) marks the
 * connection busy. */
void shoal__spin_end(shoal__spin_adapt *a, int64_t t0, bool got);
/* The connection closes: gives its slot back. */
void shoal__spin_release(shoal__spin_adapt *a);

#endif
