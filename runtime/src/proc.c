/* proc.c — process and thread identity, liveness, and test pause points. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

static uint64_t self_start;
static pid_t self_start_pid;

uint64_t shoal__self_start(void)
{
    pid_t pid = getpid();
    if (self_start_pid != pid) {
        self_start = shoal__proc_start(pid);
        self_start_pid = pid;
    }
    return self_start;
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
