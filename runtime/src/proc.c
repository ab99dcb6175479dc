/* proc.c — this process's identity (pid and start time), liveness of a process, and
 * the test pause points. Who owns what in a segment: owner.c. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

static _Atomic int32_t self_pid;    /* 0: not known yet, or just forked */
static _Atomic uint64_t self_start; /* 0: not known yet */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

void shoal__self_forked(void)
{
    atomic_store(&self_pid, 0);
    atomic_store(&self_start, 0);
}

static void atfork_register(void)
{
    pthread_atfork(NULL, NULL, shoal__self_forked);
}

int32_t shoal__self_pid(void)
{
    int32_t pid = atomic_load_explicit(&self_pid, memory_order_relaxed);
    if (SHOAL_LIKELY(pid))
        return pid;
    pthread_once(&atfork_once, atfork_register);
    pid = (int32_t)getpid();
    atomic_store_explicit(&self_pid, pid, memory_order_relaxed);
    return pid;
}

uint64_t shoal__self_start(void)
{
    uint64_t start = atomic_load_explicit(&self_start, memory_order_relaxed);
    if (SHOAL_UNLIKELY(start == 0)) {
        start = shoal__proc_start(shoal__self_pid());
        atomic_store_explicit(&self_start, start, memory_order_relaxed);
    }
    return start;
}

bool shoal__proc_alive(int32_t pid, uint64_t start)
{
    if (pid <= 0)
        return false;
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return false;
    uint64_t now = shoal__proc_start(pid);
    if (now == 0)
        return false;
    return start == 0 || now == start;
}

bool shoal__tid_alive(int32_t tid)
{
    return shoal__proc_start(tid) != 0;
}

#ifdef SHOAL_TEST_POINTS
int shoal__test_points_on;
static const char *test_point_name;

__attribute__((constructor)) static void test_points_init(void)
{
    test_point_name = getenv("SHOAL_TEST_PAUSE");
    shoal__test_points_on = test_point_name && *test_point_name;
}

void shoal__test_point_slow(const char *point)
{
    const char *want = getenv("SHOAL_TEST_PAUSE");
    if (want && strcmp(want, point) == 0)
        raise(SIGSTOP);
}

/* For tests that fork: arm a pause point in the child without re-exec. */
SHOAL_API void shoal__test_pause_at(const char *point)
{
    if (point)
        setenv("SHOAL_TEST_PAUSE", point, 1);
    else
        unsetenv("SHOAL_TEST_PAUSE");
    test_points_init();
}
#endif
