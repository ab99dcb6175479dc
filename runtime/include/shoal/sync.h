/*
 * shoal/sync.h — process-shared synchronisation primitives.
 *
 * Lock, RLock, Semaphore, BoundedSemaphore, Condition, Event and Barrier, with the
 * semantics of Python's multiprocessing/threading classes of the same names, usable
 * between any processes. Each exists in two forms:
 *
 *  - embedded: a fixed-size struct placed anywhere in shared memory (inside a
 *    SharedMemory block, a Value's struct, ...) and set up once with *_init();
 *  - named: its own segment, opened by name with *_open() and released with
 *    *_close(). The pointer *_open() returns is used with the same functions.
 *
 * All waits spin for the process's spin budget (shoal_set_spin_ns) and then sleep on
 * a futex until woken or until the timeout expires (SHOAL_ETIMEDOUT). The try forms
 * never sleep and return SHOAL_EAGAIN instead.
 *
 * Locks are robust: if a process dies holding one, the next acquirer gets it together
 * with SHOAL_EOWNERDEAD — the lock is held and usable; the result only says that the
 * data it protects may be half updated. The same holds for a lock whose recorded
 * holder thread no longer exists for any other reason (a segment restored from a
 * copy): a waiter finds that out within a few tens of milliseconds. A Semaphore,
 * Condition, Event or Barrier with a dead participant never blocks the live ones beyond
 * their timeouts.
 *
 * Structs are opaque byte blocks of fixed, documented sizes so that every language
 * lays them out alike; they hold no pointers and work at any mapping address.
 */
#ifndef SHOAL_SYNC_H
#define SHOAL_SYNC_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Lock and RLock: 64 bytes. An RLock is a Lock initialised as recursive. The bytes
 * are a glibc process-shared robust pthread_mutex_t (40 bytes on 64-bit Linux) whose
 * first 32-bit word is the kernel's robust futex word (holder thread id, waiters and
 * owner-died bits, as linux/futex.h defines them), then the recursion depth, the
 * recursive flag and a magic number. A process that maps a Lock must be linked
 * against glibc; other languages use it only through this API. An uncontended
 * acquire or release makes no system call and no call into glibc: libshoal runs the
 * robust-mutex protocol itself (the thread's robust list kept as glibc keeps it, so
 * the kernel still marks the lock of a dying holder). */
typedef struct shoal_lock {
    SHOAL_ALIGNAS(8) unsigned char opaque[64];
} shoal_lock;

/* Semaphore and BoundedSemaphore: 16 bytes. */
typedef struct shoal_sem {
    SHOAL_ALIGNAS(8) unsigned char opaque[16];
} shoal_sem;

/* Condition: 16 bytes; used with a shoal_lock. */
typedef struct shoal_cond {
    SHOAL_ALIGNAS(8) unsigned char opaque[16];
} shoal_cond;

/* Event: 8 bytes. */
typedef struct shoal_event {
    SHOAL_ALIGNAS(8) unsigned char opaque[8];
} shoal_event;

/* Barrier: 32 bytes. */
typedef struct shoal_barrier {
    SHOAL_ALIGNAS(8) unsigned char opaque[32];
} shoal_barrier;

/* The name of a named primitive (any of the *_open() handles below; generated when it
 * was created without a name), or NULL for an embedded one. Bindings use it to pass
 * primitives to other processes by name. */
SHOAL_API const char *shoal_sync_name(const void *prim);

/* ---- Lock / RLock ---------------------------------------------------------------- */

/* Initialises an embedded lock (recursive != 0: an RLock). Returns 0 or SHOAL_ESYS. */
SHOAL_API int shoal_lock_init(shoal_lock *lock, int recursive);

/* Opens or creates a named Lock (shoal_lock_open) or RLock (shoal_rlock_open).
 * Errors: as shoal_shm_open, and SHOAL_EKIND when the name holds something else. */
SHOAL_API int shoal_lock_open(shoal_lock **out, const char *name, int mode,
                              const shoal_attr *attr);
SHOAL_API int shoal_rlock_open(shoal_lock **out, const char *name, int mode,
                               const shoal_attr *attr);
/* Releases a named lock's mapping (not the lock itself). Returns 0, SHOAL_EINVAL, or
 * SHOAL_EBUSY while a thread of this process holds it (release it first). */
SHOAL_API int shoal_lock_close(shoal_lock *lock);

/*
 * Acquires the lock, waiting at most `timeout`. An RLock already held by the calling
 * thread is re-entered (its count goes up).
 * Returns 0; SHOAL_EOWNERDEAD (acquired; the previous holder died holding it);
 * SHOAL_ETIMEDOUT; SHOAL_EAGAIN (timeout SHOAL_NOWAIT and held elsewhere);
 * SHOAL_EDEADLK (a plain Lock already held by the calling thread).
 */
SHOAL_API int shoal_lock_acquire(shoal_lock *lock, shoal_duration timeout);
/* shoal_lock_acquire(lock, SHOAL_NOWAIT). */
SHOAL_API int shoal_lock_try(shoal_lock *lock);
/* Releases one level of ownership. Returns 0, or SHOAL_EPERM if the calling thread
 * does not hold it. */
SHOAL_API int shoal_lock_release(shoal_lock *lock);
/* Whether the lock is held (by anyone) at this instant: 1 or 0. */
SHOAL_API int shoal_lock_locked(shoal_lock *lock);
/* Describes the lock: whether recursive, holder's thread id (0: free), depth. */
SHOAL_API void shoal_lock_state(shoal_lock *lock, int *recursive, int32_t *owner_tid,
                                uint32_t *depth);
/* 1 if the lock is free because its last holder died holding it (the next acquirer
 * will get SHOAL_EOWNERDEAD), else 0. */
SHOAL_API int shoal_lock_holder_died(shoal_lock *lock);

/* ---- Semaphore / BoundedSemaphore -------------------------------------------------- */

/* Initialises an embedded semaphore with `value` (bounded != 0: releases may not
 * raise it above that value). Returns 0 or SHOAL_EINVAL (value > INT32_MAX). */
SHOAL_API int shoal_sem_init(shoal_sem *sem, uint32_t value, int bounded);
/* Opens or creates a named Semaphore (shoal_sem_open) or BoundedSemaphore
 * (shoal_bsem_open); value is used only when creating. Errors: as shoal_shm_open,
 * SHOAL_EINVAL (value > INT32_MAX), SHOAL_EKIND when the name holds something else. */
SHOAL_API int shoal_sem_open(shoal_sem **out, const char *name, int mode, uint32_t value,
                             const shoal_attr *attr);
SHOAL_API int shoal_bsem_open(shoal_sem **out, const char *name, int mode, uint32_t value,
                              const shoal_attr *attr);
/* Releases a named semaphore's mapping. Returns 0 or SHOAL_EINVAL. */
SHOAL_API int shoal_sem_close(shoal_sem *sem);
/* Decrements, waiting while the value is 0. Returns 0, SHOAL_ETIMEDOUT, SHOAL_EAGAIN. */
SHOAL_API int shoal_sem_acquire(shoal_sem *sem, shoal_duration timeout);
/* shoal_sem_acquire(sem, SHOAL_NOWAIT). */
SHOAL_API int shoal_sem_try(shoal_sem *sem);
/* Increments and wakes a waiter. Returns 0, or SHOAL_EOVERFLOW for a bounded
 * semaphore already at its initial value (or any semaphore at INT32_MAX). */
SHOAL_API int shoal_sem_release(shoal_sem *sem);
/* The current value. */
SHOAL_API uint32_t shoal_sem_value(shoal_sem *sem);

/* ---- Condition -------------------------------------------------------------------- */

/* Initialises an embedded condition. Returns 0 or SHOAL_EINVAL. */
SHOAL_API int shoal_cond_init(shoal_cond *cond);
/* Opens or creates a named condition. Errors: as shoal_shm_open, and SHOAL_EKIND. */
SHOAL_API int shoal_cond_open(shoal_cond **out, const char *name, int mode,
                              const shoal_attr *attr);
/* Releases a named condition's mapping. Returns 0 or SHOAL_EINVAL. */
SHOAL_API int shoal_cond_close(shoal_cond *cond);
/*
 * Releases `lock`, which the calling thread must hold, waits until a notify wakes it
 * or `timeout` passes, and takes `lock` back — at the depth it was held: an RLock held
 * several times is released fully for the wait and re-taken as often, as Python's
 * Condition does. Wake-ups may be spurious: re-check the predicate in a loop.
 *
 * Once the wait has begun, the lock is held again on every return but SHOAL_ECORRUPT
 * and SHOAL_ESYS, as with pthread_cond_timedwait: `timeout` bounds the wait for a notify
 * only, and taking the lock back then waits as long as a live thread keeps it (a timed
 * wait may thus return later than its timeout). A holder that dies meanwhile is noticed
 * (within a few tens of milliseconds at most) and the lock passes to the waiter with
 * SHOAL_EOWNERDEAD. Timeout SHOAL_NOWAIT releases and re-takes the lock and returns
 * SHOAL_ETIMEDOUT.
 *
 * Returns, with the lock held at the caller's depth:
 *   0                 notified (or a spurious wake-up);
 *   SHOAL_ETIMEDOUT   the timeout passed without a notify for this waiter;
 *   SHOAL_EOWNERDEAD  taking the lock back found that its previous holder died holding
 *                     it (the data it guards may be half updated; it is usable again,
 *                     as after shoal_lock_acquire's SHOAL_EOWNERDEAD). This outranks
 *                     the others: the caller cannot tell whether it was notified or
 *                     timed out, and treats it as a wake-up (repair, then re-check
 *                     the predicate), as pthread's EOWNERDEAD;
 * and, with the lock in the state it had on entry (nothing was released):
 *   SHOAL_EPERM       the calling thread does not hold `lock`;
 *   SHOAL_EINVAL      `cond` or `lock` is NULL, or `cond` is not initialised;
 * and, WITHOUT the lock (the only such cases; shoal_errdetail() says "could not take
 * its lock back" and why). A notification the waiter had taken is passed to another
 * waiter:
 *   SHOAL_ECORRUPT    the lock's bytes were damaged while the caller waited;
 *   SHOAL_ESYS        the system refused the lock (pthread_mutex_trylock failed).
 */
SHOAL_API int shoal_cond_wait(shoal_cond *cond, shoal_lock *lock, shoal_duration timeout);
/*
 * shoal_cond_wait that a signal can end: when a signal handler runs while the caller
 * sleeps waiting for a notify, returns SHOAL_EINTR with the lock held again (at its
 * depth), as a language runtime needs to deliver Ctrl-C (Python's KeyboardInterrupt)
 * from an untimed wait. The waiter stays registered until then, and an interrupted
 * waiter never drops a notification: one that had already come for it is taken (the
 * call returns 0), any other is left to the remaining waiters. A signal that arrives
 * while the caller is not asleep in the kernel (the short spin before sleeping) is
 * only noticed at the next signal; one that arrives while it takes the lock back does
 * not end that wait. Returns what shoal_cond_wait returns (SHOAL_EOWNERDEAD outranks
 * SHOAL_EINTR too), and SHOAL_EINTR.
 */
SHOAL_API int shoal_cond_wait_intr(shoal_cond *cond, shoal_lock *lock,
                                   shoal_duration timeout);
/* Wakes up to n waiters (notify) or all of them (notify_all). Returns 0. */
SHOAL_API int shoal_cond_notify(shoal_cond *cond, uint32_t n);
SHOAL_API int shoal_cond_notify_all(shoal_cond *cond);

/* ---- Event ------------------------------------------------------------------------ */

/* Initialises an embedded event, clear. Returns 0 or SHOAL_EINVAL. */
SHOAL_API int shoal_event_init(shoal_event *ev);
/* Opens or creates a named event. Errors: as shoal_shm_open, and SHOAL_EKIND. */
SHOAL_API int shoal_event_open(shoal_event **out, const char *name, int mode,
                               const shoal_attr *attr);
/* Releases a named event's mapping. Returns 0 or SHOAL_EINVAL. */
SHOAL_API int shoal_event_close(shoal_event *ev);
/* Sets the flag and wakes every waiter. Returns 0 (or SHOAL_EINVAL). */
SHOAL_API int shoal_event_set(shoal_event *ev);
/* Clears the flag. Returns 0 (or SHOAL_EINVAL). */
SHOAL_API int shoal_event_clear(shoal_event *ev);
/* 1 if set, else 0. */
SHOAL_API int shoal_event_is_set(shoal_event *ev);
/* Waits until set. Returns 0, SHOAL_ETIMEDOUT or SHOAL_EAGAIN. A waiter asleep when
 * the event is set returns 0 even if it was cleared again before it woke. */
SHOAL_API int shoal_event_wait(shoal_event *ev, shoal_duration timeout);

/* ---- Barrier ---------------------------------------------------------------------- */

/* Initialises a barrier for `parties` (1..65535) processes or threads.
 * Returns 0 or SHOAL_EINVAL. */
SHOAL_API int shoal_barrier_init(shoal_barrier *b, uint32_t parties);
/* Opens or creates a named barrier; parties is used only when creating. Errors: as
 * shoal_shm_open, SHOAL_EINVAL (parties out of range), SHOAL_EKIND. */
SHOAL_API int shoal_barrier_open(shoal_barrier **out, const char *name, int mode,
                                 uint32_t parties, const shoal_attr *attr);
/* Releases a named barrier's mapping. Returns 0 or SHOAL_EINVAL. */
SHOAL_API int shoal_barrier_close(shoal_barrier *b);
/*
 * Waits until `parties` callers have arrived. On success returns an arrival index
 * in [0, parties) (>= 0). A timeout breaks the barrier: the caller gets
 * SHOAL_ETIMEDOUT and every other waiter, and later caller, SHOAL_EBROKEN until
 * shoal_barrier_reset(). A caller killed after arriving still counts as arrived.
 */
SHOAL_API int shoal_barrier_wait(shoal_barrier *b, shoal_duration timeout);
/* Breaks the barrier: waiters get SHOAL_EBROKEN. */
SHOAL_API int shoal_barrier_abort(shoal_barrier *b);
/* Returns the barrier to its initial state (waiters in progress get SHOAL_EBROKEN). */
SHOAL_API int shoal_barrier_reset(shoal_barrier *b);
/* Number of parties, number currently waiting, and whether broken. */
SHOAL_API void shoal_barrier_state(shoal_barrier *b, uint32_t *parties, uint32_t *waiting,
                                   int *broken);

#ifdef __cplusplus
}
#endif
#endif
