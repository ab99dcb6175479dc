/*
 * platform.h — what shoal needs from the operating system and the C library, in one
 * place: the clock, futexes, thread ids, /proc, and the bytes of a glibc robust mutex.
 * platform_linux.c implements it for Linux with glibc; nothing else in the runtime
 * makes these system calls or looks inside a pthread mutex.
 *
 * The robust mutex: a Lock is a glibc pthread_mutex_t (PTHREAD_PROCESS_SHARED,
 * PTHREAD_MUTEX_ROBUST). Its first 32-bit word is the futex the kernel's robust-futex
 * protocol defines (linux/futex.h): the holder's thread id in the low 30 bits,
 * FUTEX_WAITERS when a thread may be asleep on it, FUTEX_OWNER_DIED once the kernel
 * (or shoal__mutex_mark_dead) found the holder dead. That word is all the runtime
 * reads; a compile-time check pins where glibc keeps it.
 */
#ifndef SHOAL_PLATFORM_H
#define SHOAL_PLATFORM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* CLOCK_MONOTONIC now, in nanoseconds. */
int64_t shoal__now_ns(void);

/* Sleeps while *addr == expected, until woken or the absolute CLOCK_MONOTONIC time
 * at_ns (INT64_MAX: none). Returns 0 (woken, or the value differed: callers re-check),
 * SHOAL_EINTR (a signal handler ran; callers re-check too, unless they end on it) or
 * SHOAL_ETIMEDOUT. The word must be in shared memory. */
int shoal__futex_wait_until(_Atomic uint32_t *addr, uint32_t expected, int64_t at_ns);
/* The same for at most for_ns (> 0) from now, reading no clock. */
int shoal__futex_wait_for(_Atomic uint32_t *addr, uint32_t expected, int64_t for_ns);
/* Wakes up to n sleepers on addr (INT_MAX: all). Returns the number woken. */
int shoal__futex_wake(_Atomic uint32_t *addr, int n);

/* Asymmetric fences (membarrier(2)). shoal__membarrier_register registers the
 * process for MEMBARRIER_CMD_GLOBAL_EXPEDITED and returns 0, or the errno that
 * refused it (ENOSYS: no such system call, EPERM: a seccomp filter, EINVAL: the
 * kernel lacks the command). The registration is inherited by fork children and
 * dropped by exec. shoal__membarrier_global makes every running thread of every
 * registered process execute a full memory barrier before it returns: a plain store
 * one of them made before that point is visible to the caller afterwards, and its
 * plain loads after that point see the caller's earlier stores. */
int shoal__membarrier_register(void);
void shoal__membarrier_global(void);

/* The calling thread's kernel thread id (cached per thread, without a system call;
 * right in a fork child too). */
int32_t shoal__tid(void);
/* The start time of process or thread `id` (clock ticks since boot, from
 * /proc/<id>/stat), 0 when it does not exist or has exited (a zombie). */
uint64_t shoal__proc_start(int32_t id);

/* ---- the robust mutex word ------------------------------------------------------- */

#define SHOAL__MUTEX_TID_MASK   0x3fffffffu /* FUTEX_TID_MASK */
#define SHOAL__MUTEX_OWNER_DIED 0x40000000u /* FUTEX_OWNER_DIED */
#define SHOAL__MUTEX_WAITERS    0x80000000u /* FUTEX_WAITERS */

/* The futex word of a robust process-shared mutex. */
_Atomic uint32_t *shoal__mutex_word(pthread_mutex_t *m);
/* The holder's thread id in word w (0: free, or its holder died). */
static inline int32_t shoal__mutex_holder(uint32_t w)
{
    return (int32_t)(w & SHOAL__MUTEX_TID_MASK);
}
/* Whether word w says the last holder died and no one has taken the mutex since. */
static inline bool shoal__mutex_died(uint32_t w)
{
    return (w & SHOAL__MUTEX_OWNER_DIED) && !(w & SHOAL__MUTEX_TID_MASK);
}
/* Announces a sleeper on a held mutex (its unlock then wakes one). */
void shoal__mutex_arm(pthread_mutex_t *m);
/* Marks the mutex as its holder's death would (kernel robust-list style) if word `w`
 * still names holder `tid`: the next lock attempt returns EOWNERDEAD. For a holder
 * that can no longer release it but is on no robust list (a thread of another boot, a
 * segment file restored from a copy). Returns whether it did. */
bool shoal__mutex_mark_dead(pthread_mutex_t *m, uint32_t w);

#endif
