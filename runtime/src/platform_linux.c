/*
 * platform_linux.c — platform.h for Linux and glibc: clock_gettime, the futex system
 * call, membarrier, gettid cached per thread, /proc/<id>/stat, and the futex word of
 * glibc's robust mutex (pinned by the compile-time checks below).
 */
#include <errno.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#ifndef __GLIBC__
#error "the Lock needs glibc's robust pthread mutex (see platform.h)"
#endif
_Static_assert(offsetof(pthread_mutex_t, __data.__lock) == 0 &&
                   sizeof(((pthread_mutex_t *)0)->__data.__lock) == sizeof(uint32_t),
               "glibc keeps the robust mutex's futex word first, as 32 bits");
_Static_assert(SHOAL__MUTEX_TID_MASK == FUTEX_TID_MASK &&
                   SHOAL__MUTEX_OWNER_DIED == FUTEX_OWNER_DIED &&
                   SHOAL__MUTEX_WAITERS == FUTEX_WAITERS,
               "robust futex bits as linux/futex.h defines them");

int64_t shoal__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int futex_result(long r)
{
    if (r == 0)
        return 0;
    return errno == ETIMEDOUT ? SHOAL_ETIMEDOUT : errno == EINTR ? SHOAL_EINTR : 0;
}

int shoal__futex_wait_until(_Atomic uint32_t *addr, uint32_t expected, int64_t at_ns)
{
    struct timespec ts, *tsp = NULL;
    if (at_ns != INT64_MAX) {
        if (shoal__now_ns() >= at_ns)
            return SHOAL_ETIMEDOUT;
        ts.tv_sec = at_ns / 1000000000;
        ts.tv_nsec = at_ns % 1000000000;
        tsp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so retries after
     * a signal do not stretch the timeout. */
    return futex_result(syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, expected, tsp, NULL,
                                FUTEX_BITSET_MATCH_ANY));
}

int shoal__futex_wait_for(_Atomic uint32_t *addr, uint32_t expected, int64_t for_ns)
{
    /* FUTEX_WAIT takes a relative timeout: the kernel reads the clock, not us. */
    struct timespec ts = {for_ns / 1000000000, for_ns % 1000000000};
    return futex_result(syscall(SYS_futex, addr, FUTEX_WAIT, expected, &ts, NULL, 0));
}

int shoal__futex_wake(_Atomic uint32_t *addr, int n)
{
    long r = syscall(SYS_futex, addr, FUTEX_WAKE, n, NULL, NULL, 0);
    return r < 0 ? 0 : (int)r;
}

int shoal__membarrier_register(void)
{
    long q = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (q < 0)
        return errno;
    if (!(q & MEMBARRIER_CMD_GLOBAL_EXPEDITED) ||
        !(q & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED))
        return EINVAL;
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0, 0) < 0)
        return errno;
    return 0;
}

void shoal__membarrier_global(void)
{
    /* Registered (shoal__membarrier_register succeeded): it cannot fail. */
    syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0);
}

/*
 * The thread id is cached per thread: gettid() is a system call, and the lock's hot
 * path needs the id. A fork child's only thread has a new id, so the cache is
 * forgotten in the child.
 */
static _Thread_local int32_t cached_tid __attribute__((tls_model("initial-exec")));
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void forget_tid(void)
{
    cached_tid = 0;
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, forget_tid);
}

int32_t shoal__tid(void)
{
    if (SHOAL_UNLIKELY(cached_tid == 0)) {
        pthread_once(&atfork_once, register_atfork);
        cached_tid = (int32_t)syscall(SYS_gettid);
    }
    return cached_tid;
}

uint64_t shoal__proc_start(int32_t id)
{
    char path[64], buf[1024];
    if (id <= 0)
        return 0;
    /* /proc/<tid> resolves for any thread id of the namespace, not only leaders. */
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)id);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields start after the last
     * ')'. The state is field 3, starttime field 22. */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || !p[2])
        return 0;
    if (p[2] == 'Z' || p[2] == 'X') /* exited, not yet reaped */
        return 0;
    p++;
    for (int field = 3; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

_Atomic uint32_t *shoal__mutex_word(pthread_mutex_t *m)
{
    return (_Atomic uint32_t *)(void *)&m->__data.__lock;
}

void shoal__mutex_arm(pthread_mutex_t *m)
{
    _Atomic uint32_t *word = shoal__mutex_word(m);
    uint32_t w = atomic_load(word);
    while (shoal__mutex_holder(w) && !(w & SHOAL__MUTEX_WAITERS) &&
           !atomic_compare_exchange_weak(word, &w, w | SHOAL__MUTEX_WAITERS))
        ;
}

bool shoal__mutex_mark_dead(pthread_mutex_t *m, uint32_t w)
{
    if (!shoal__mutex_holder(w))
        return false;
    uint32_t dead = (w & SHOAL__MUTEX_WAITERS) | SHOAL__MUTEX_OWNER_DIED;
    if (!atomic_compare_exchange_strong(shoal__mutex_word(m), &w, dead))
        return false;
    shoal__futex_wake(shoal__mutex_word(m), 1);
    return true;
}
