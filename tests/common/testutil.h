/*
 * testutil.h — helpers shared by the tests: a private root directory per test
 * program, child processes (forked or exec'd), and pause points for crash tests.
 */
#ifndef SHOAL_TESTUTIL_H
#define SHOAL_TESTUTIL_H

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "shoal.h"

/* From proc.c: arm a SIGSTOP pause point in this (forked) process. */
void shoal__test_pause_at(const char *point);

static char t_root[256];

/* Removes a directory tree (the test root). */
static inline void t_rmtree(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
}

static inline void t_root_cleanup(void)
{
    if (t_root[0] && getenv("SHOAL_TEST_OWNER_PID") &&
        atoi(getenv("SHOAL_TEST_OWNER_PID")) == (int)getpid())
        t_rmtree(t_root);
}

/*
 * Gives this test program its own root directory under /dev/shm (inherited by
 * children through $SHOAL_ROOT) and removes it at exit. Call first in main().
 */
static inline const char *t_setup_root(void)
{
    const char *have = getenv("SHOAL_ROOT");
    if (have && getenv("SHOAL_TEST_OWNER_PID")) { /* an exec'd child: reuse */
        snprintf(t_root, sizeof(t_root), "%s", have);
        return t_root;
    }
    snprintf(t_root, sizeof(t_root), "/dev/shm/shoal-test-%d-XXXXXX", (int)getpid());
    if (!mkdtemp(t_root)) {
        perror("mkdtemp");
        exit(2);
    }
    setenv("SHOAL_ROOT", t_root, 1);
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    setenv("SHOAL_TEST_OWNER_PID", pid, 1);
    atexit(t_root_cleanup);
    return t_root;
}

/* Forks a child that runs fn(arg) and exits with its return value. */
static inline pid_t t_fork(int (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(fn(arg));
    return pid;
}

/* Bodies for t_fork: a child that ends at once, and one that stops itself (SIGSTOP)
 * at once, for the parent to kill. */
static inline int t_exit_at_once(void *arg)
{
    (void)arg;
    return 0;
}

static inline int t_stop_at_once(void *arg)
{
    (void)arg;
    raise(SIGSTOP); /* killed here */
    return 0;
}

/* Forks a child that stops itself with SIGSTOP at pause point `point` while running
 * fn(arg); returns once it has stopped there (or exited: then returns -1). */
static inline pid_t t_fork_paused(const char *point, int (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        shoal__test_pause_at(point);
        _exit(fn(arg));
    }
    int st;
    if (waitpid(pid, &st, WUNTRACED) != pid || !WIFSTOPPED(st))
        return -1;
    return pid;
}

/* A loopback TCP port for a test's listener, different per process and per salt:
 * below Linux's ephemeral ports (32768 and up), which any test's outgoing
 * connections may take at any moment (the listen then fails: Address in use). */
static inline int t_tcp_port(int salt)
{
    return 20000 + (int)(((unsigned)getpid() * 7u + (unsigned)salt) % 12000u);
}

/* SIGKILLs and reaps a process. */
static inline void t_kill(pid_t pid)
{
    if (pid <= 0) /* kill(-1) or kill(0) would hit far more than one child */
        fail_msg("t_kill: no such child (%d)", (int)pid);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* SIGKILLs and reaps n children together: every one is stopped (SIGSTOP, waited for)
 * before the first is killed, so none of them runs on to see another one dead. */
static inline void t_kill_all(const pid_t *pids, int n)
{
    for (int i = 0; i < n; i++) {
        kill(pids[i], SIGSTOP);
        if (waitpid(pids[i], NULL, WUNTRACED) != pids[i])
            fail_msg("t_kill_all: child %d not stopped", (int)pids[i]);
    }
    for (int i = 0; i < n; i++)
        t_kill(pids[i]);
}

/* Waits for a child and returns its exit code (or 128+signal). */
static inline int t_wait(pid_t pid)
{
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Forks a child that is gone when this returns: it exited at once (killed = false) or
 * stopped itself and was SIGKILLed (killed = true). */
static inline void t_fork_gone(bool killed)
{
    pid_t pid =
        killed ? t_fork_paused(NULL, t_stop_at_once, NULL) : t_fork(t_exit_at_once, NULL);
    assert_true(pid > 0);
    if (killed)
        t_kill(pid);
    else
        assert_int_equal(t_wait(pid), 0);
}

/* Starts this same program anew (fork + exec of /proc/self/exe) with argv[1..] =
 * the given arguments (NULL-terminated): a process that shares nothing with the
 * parent but what it opens by name. */
static inline pid_t t_spawn_self(const char *arg0, ...)
{
    const char *argv[16];
    int n = 0;
    argv[n++] = "self";
    va_list ap;
    va_start(ap, arg0);
    for (const char *a = arg0; a && n < 15; a = va_arg(ap, const char *))
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execv("/proc/self/exe", (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Zero-filled memory shared with forked children (anonymous, MAP_SHARED), for tests
 * of embedded primitives. Fails the test if it cannot be mapped. */
static inline void *t_shared_alloc(size_t n)
{
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    return p;
}

/* The monotonic clock in nanoseconds. */
static inline int64_t t_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Polls until *p >= v (how parent and children hand over stages), for at most
 * timeout. Returns whether it got there. */
static inline bool t_wait_atleast(_Atomic int *p, int v, shoal_duration timeout)
{
    int64_t end = t_now_ns() + timeout;
    while (atomic_load(p) < v) {
        if (t_now_ns() > end)
            return false;
        usleep(200);
    }
    return true;
}

/* Waits until process pid sleeps in the kernel (state S in /proc/PID/stat: a child
 * that announced itself as a sleeper and went on to its futex wait has done all it
 * does before sleeping); false after `timeout` or when pid is gone. */
static inline bool t_wait_asleep(pid_t pid, shoal_duration timeout)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int64_t end = t_now_ns() + timeout;
    for (;;) {
        FILE *f = fopen(path, "r");
        if (!f)
            return false;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *p = strrchr(buf, ')');
        if (p && p[1] && p[2] == 'S')
            return true;
        if (t_now_ns() >= end)
            return false;
        usleep(1000);
    }
}

/* Runs a shell command line; returns its exit status. */
static inline int t_system(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

#define T_OK(expr)                                                                       \
    do {                                                                                 \
        int t_rc_ = (expr);                                                              \
        if (t_rc_ != 0)                                                                  \
            fail_msg("%s = %d (%s): %s", #expr, t_rc_, shoal_strerror(t_rc_),            \
                     shoal_errdetail());                                                 \
    } while (0)

#endif
