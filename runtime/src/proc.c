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

/*
 * The thread id is cached per thread: gettid() and getpid() are system calls, and the
 * lock's hot path needs the id. A fork child's only thread has a new id, so the cache
 * is forgotten in the child.
 */
static _Thread_local int32_t cached_tid;
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

uint64_t shoal__proc_start(int32_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields start after the last
     * ')'. starttime is field 22; after ')' come fields 3, 4, ... */
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    p++;
    for (int field = 3; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    if (!p)
        return 0;
    /* A zombie has exited: treat it as dead. */
    char *state = strrchr(buf, ')') + 2;
    if (*state == 'Z' || *state == 'X')
        return 0;
    return strtoull(p + 1, NULL, 10);
}

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
    /* /proc/<tid> resolves for any thread id of the namespace, not only leaders. */
    return tid > 0 && shoal__proc_start(tid) != 0;
}

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
