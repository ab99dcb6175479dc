/*
 * forked.h — a broker in a forked child for the tests that talk to it through the C
 * client from real processes (broker_suite.c, broker_watch.c, broker_view.c):
 * shoal_broker_serve, the code of `shoal broker`, listening on the test's shm:// address
 * (`addr`, which each test's setup makes fresh) or on the addresses its broker_args name.
 * A client connects retrying while the broker starts; a broker stopped with SIGTERM must
 * exit with 0. op / opx run one operation and return its result as Python's repr. nng
 * does not survive fork: a test that forks a broker listening on tcp:// must come before
 * any test that used nng in this process.
 */
#ifndef SHOAL_TESTS_BROKER_FORKED_H
#define SHOAL_TESTS_BROKER_FORKED_H

#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker.h"
#include "manager_internal.h"
#include "testutil.h"
#include "wait.h"

static char addr[128];

typedef struct broker_args {
    const char *listen; /* NULL: addr */
    const char *tcp;    /* a second address (a tcp:// one needs a token), or NULL */
    const char *data_dir, *token;
    const char *tls_cert, *tls_key, *tls_ca;
    int one_cpu; /* the broker runs on one CPU (two sessions then outnumber its CPUs) */
    int no_view; /* the broker publishes no read view */
    int no_lock_table; /* the broker keeps its locks (no NAME:locks) */
} broker_args;

static int broker_child(void *arg)
{
    broker_args *a = arg;
    const char *listen[2] = {a->listen ? a->listen : addr, a->tcp};
    shoal_broker_options o = {listen,    a->tcp ? 2 : 1, a->data_dir,     a->token,
                              1,         NULL,           a->tls_cert,     a->tls_key,
                              a->tls_ca, a->no_view,     a->no_lock_table};
    if (!freopen("/dev/null", "w", stdout))
        return 3;
    if (a->one_cpu) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(sched_getcpu(), &one);
        if (sched_setaffinity(0, sizeof(one), &one) != 0)
            return 4;
        shoal__cpus_forget(); /* the count this process read before the fork */
    }
    return shoal_broker_serve(&o) == 0 ? 0 : 1;
}

/* Starts a broker as args say (copied) in a forked child, which stops itself at the
 * pause point pause_at when that is not NULL; its pid. */
static pid_t start_broker_with(const broker_args *args, const char *pause_at)
{
    static broker_args a;
    a = *args;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (pause_at)
            shoal__test_pause_at(pause_at);
        exit(broker_child(&a)); /* exit, not _exit: under ASan its leaks are checked */
    }
    return pid;
}

static void stop_broker(pid_t pid)
{
    kill(pid, SIGTERM);
    assert_int_equal(t_wait(pid), 0);
}

/* Connects with cfg, retrying while the broker starts. */
static shoal_manager *connect_cfg(const char *address, const shoal_manager_config *cfg)
{
    shoal_manager *m = NULL;
    for (int i = 0; i < 500; i++) {
        int rc = shoal_manager_connect(&m, address, cfg);
        if (rc == 0)
            return m;
        if (rc == SHOAL_EACCES)
            fail_msg("connect %s: %s", address, shoal_errdetail());
        usleep(10000);
    }
    fail_msg("no broker at %s: %s", address, shoal_errdetail());
    return NULL;
}

/* Connects with token (NULL: none), retrying while the broker starts. */
static shoal_manager *connect_to(const char *address, const char *token)
{
    shoal_manager_config cfg = {.connect_timeout = SHOAL_SEC(2), .token = token};
    return connect_cfg(address, &cfg);
}

/* The broker's stats counter k (the "stats" request of object ""). */
static inline int64_t stat_of(shoal_manager *m, const char *k)
{
    shoal_mv *res = NULL, *key = shoal_mv_str(k);
    T_OK(shoal_manager_call(m, "", "stats", 0, &res, 0));
    const shoal_mv *v = shoal_mv_get(res, key);
    assert_non_null(v);
    int64_t n = shoal_mv_as_int(v);
    shoal_mv_free(key);
    shoal_mv_free(res);
    return n;
}

/* The read view's hits on m so far. */
static inline uint64_t hits_of(shoal_manager *m)
{
    uint64_t h = 0;
    shoal_manager_view_stats(m, &h, NULL);
    return h;
}

/* Runs op (through submit and wait) on m with the n arguments that follow (taken
 * over) and returns repr(result) (Python's, in a static buffer), "-" for none, or
 * "E<code>"; *hit (if not NULL): whether the read view answered it. */
static inline const char *opx(shoal_manager *m, bool *hit, const char *name,
                              const char *opname, size_t n, ...)
{
    static char out[512];
    shoal_mv *args[8];
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        args[i] = va_arg(ap, shoal_mv *);
    va_end(ap);
    uint64_t before = hit ? hits_of(m) : 0, id;
    shoal_manager_request r = {name, opname, NULL, 0, args, n, 0};
    shoal_mv *res = NULL;
    int rc = shoal_manager_submit(m, &r, &id);
    if (rc == 0)
        rc = shoal_manager_wait(m, id, &res);
    if (rc < 0)
        snprintf(out, sizeof(out), "E%d", rc);
    else if (res)
        shoal_mv_format(res, out, sizeof(out));
    else
        snprintf(out, sizeof(out), "-");
    shoal_mv_free(res);
    if (hit)
        *hit = hits_of(m) > before;
    return out;
}

/* opx without asking whether the view answered. */
#define op(m, ...) opx(m, NULL, __VA_ARGS__)

#endif
