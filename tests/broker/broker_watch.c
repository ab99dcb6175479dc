/*
 * broker_watch.c — the broker's Watch method and its tls+tcp:// listener, with real
 * processes: the broker (shoal_broker_serve) in a forked child, clients here and in
 * forked children.
 *
 * Watch: the changes to a whole object and to one key, in order and with increasing
 * sequence numbers; the end of a watch when its object is deleted; a watch of
 * nothing; a watcher SIGKILLed while the object changes (the broker forgets it and
 * goes on); a lock's holder SIGKILLed (its watcher sees the broker free it); a watcher
 * that reads nothing while 20000 writes happen (the broker drops to a "resync" and the
 * watcher still ends on the right value).
 *
 * TLS: a throwaway PKI (tests/rpc/make-test-certs.sh); a broker requiring client
 * certificates: a client with a good certificate works, one whose certificate another
 * CA signed, one with none, and one that does not trust the broker's CA are refused
 * with SHOAL_EACCES.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forked.h"

static int setup(void **state)
{
    static int n;
    snprintf(addr, sizeof(addr), "shm://watch-%d-%d", (int)getpid(), ++n);
    *state = NULL;
    return 0;
}

static const char *repr(const shoal_mv *v)
{
    static char buf[4][256];
    static int k;
    char *b = buf[k++ % 4];
    if (!v)
        return "absent";
    shoal_mv_format(v, b, 256);
    return b;
}

/* The next change as "op path args result value" (or "E<code>", "timeout"). */
static const char *next(shoal_manager_watch *w, shoal_duration timeout, uint64_t *seq)
{
    static char out[512];
    shoal_manager_change *c;
    int rc = shoal_manager_watch_next(w, timeout, &c);
    if (rc <= 0) {
        snprintf(out, sizeof(out), rc == 0 ? "timeout" : "E%d", rc);
        return out;
    }
    if (seq)
        *seq = c->seq;
    snprintf(out, sizeof(out), "%s %s %s %s %s", c->op, repr(c->path), repr(c->args),
             repr(c->result), repr(c->value));
    shoal_manager_change_free(c);
    return out;
}

static int call(shoal_manager *m, const char *name, const char *op, shoal_mv *a,
                shoal_mv *b)
{
    return shoal_manager_call(m, name, op, 0, NULL, b ? 2 : a ? 1 : 0, a, b);
}

#define S(x) shoal_mv_str(x)
#define I(x) shoal_mv_int(x)

static void test_watch_object(void **state)
{
    (void)state;
    pid_t b = start_broker_with(&(broker_args){0}, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    shoal_manager_watch *w = NULL;
    assert_int_equal(shoal_manager_watch_open(m, "nothing", NULL, &w), SHOAL_ENOENT);
    assert_int_equal(shoal_manager_create(m, "l", SHOAL_M_LIST, NULL, NULL), 1);
    assert_int_equal(shoal_manager_watch_open(m, "l", S("k"), &w), SHOAL_EINVAL);
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    assert_int_equal(call(m, "d", "set", S("a"), I(1)), 0);
    assert_int_equal(shoal_manager_watch_open(m, "d", NULL, &w), 0);
    uint64_t s0, s1, s2, s3;
    assert_string_equal(next(w, SHOAL_SEC(5), &s0), "resync [] [] absent {'a': 1}");
    assert_string_equal(next(w, 0, NULL), "timeout");
    assert_int_equal(call(m, "d", "set", S("x"), shoal_mv_list()), 0);
    assert_string_equal(next(w, SHOAL_SEC(5), &s1), "set [] ['x', []] absent absent");
    shoal_mv *path[1] = {S("x")}, *args[1] = {I(7)};
    shoal_manager_request r = {"d", "append", path, 1, args, 1, 0};
    uint64_t id;
    assert_int_equal(shoal_manager_submit(m, &r, &id), 0);
    assert_int_equal(shoal_manager_wait(m, id, NULL), 0);
    assert_string_equal(next(w, SHOAL_SEC(5), &s2), "append ['x'] [7] absent absent");
    assert_int_equal(call(m, "d", "pop", S("a"), NULL), 0);
    assert_string_equal(next(w, SHOAL_SEC(5), &s3), "pop [] ['a'] 1 absent");
    assert_true(s0 < s1 && s1 < s2 && s2 < s3);
    assert_int_equal(call(m, "d", "get", S("x"), NULL), 0); /* reads are not changes */
    assert_string_equal(next(w, SHOAL_MS(100), NULL), "timeout");
    assert_int_equal(shoal_manager_delete(m, "d"), 0);
    assert_string_equal(next(w, SHOAL_SEC(5), NULL), "deleted [] [] absent absent");
    assert_string_equal(next(w, SHOAL_SEC(5), NULL), "E-20"); /* SHOAL_ECLOSED */
    shoal_manager_watch_close(w);
    shoal_manager_close(m);
    stop_broker(b);
}

static void test_watch_key(void **state)
{
    (void)state;
    pid_t b = start_broker_with(&(broker_args){0}, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "ns", SHOAL_M_NAMESPACE, NULL, NULL), 1);
    shoal_manager_watch *w;
    assert_int_equal(shoal_manager_watch_open(m, "ns", S("k"), &w), 0);
    assert_string_equal(next(w, SHOAL_SEC(5), NULL), "resync [] [] absent absent");
    assert_int_equal(call(m, "ns", "set", S("other"), I(1)), 0); /* not k: nothing */
    assert_int_equal(call(m, "ns", "set", S("k"), I(2)), 0);
    assert_string_equal(next(w, SHOAL_SEC(5), NULL), "set [] [] absent 2");
    assert_int_equal(call(m, "ns", "set", S("k"), I(2)), 0); /* the same value: nothing */
    assert_int_equal(shoal_manager_call(m, "ns", "incr", 0, NULL, 2, S("k"), I(3)), 0);
    assert_string_equal(next(w, SHOAL_SEC(5), NULL), "incr [] [] absent 5");
    shoal_mv *u = shoal_mv_map();
    shoal_mv_put(u, S("k"), S("five"));
    assert_int_equal(call(m, "ns", "update", u, NULL), 0);
    assert_string_equal(next(w, SHOAL_SEC(5), NULL), "update [] [] absent 'five'");
    assert_int_equal(call(m, "ns", "clear", NULL, NULL), 0);
    assert_string_equal(next(w, SHOAL_SEC(5), NULL), "clear [] [] absent absent");
    assert_string_equal(next(w, SHOAL_MS(100), NULL), "timeout");
    shoal_manager_watch_close(w);
    shoal_manager_close(m);
    stop_broker(b);
}

/* Changes while the watcher reads none: bounded in the broker, ends on the value. */
static void test_watch_slow(void **state)
{
    (void)state;
    enum { N = 20000, DEPTH = 200 };
    pid_t b = start_broker_with(&(broker_args){0}, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "n", SHOAL_M_VALUE, I(0), NULL), 1);
    shoal_manager_watch *w;
    assert_int_equal(shoal_manager_watch_open(m, "n", NULL, &w), 0);
    static uint64_t ids[DEPTH];
    for (int i = 0; i < N; i += DEPTH) {
        for (int j = 0; j < DEPTH; j++) {
            shoal_mv *args[1] = {I(1)};
            shoal_manager_request r = {"n", "incr", NULL, 0, args, 1, 0};
            assert_int_equal(shoal_manager_submit(m, &r, &ids[j]), 0);
        }
        for (int j = 0; j < DEPTH; j++)
            assert_int_equal(shoal_manager_wait(m, ids[j], NULL), 0);
    }
    uint64_t last = 0;
    int changes = 0, resyncs = 0;
    int64_t final = -1;
    for (;;) {
        shoal_manager_change *c;
        int rc = shoal_manager_watch_next(w, SHOAL_MS(500), &c);
        assert_true(rc >= 0);
        if (rc == 0)
            break;
        assert_true(changes == 0 || c->seq > last);
        last = c->seq;
        changes++;
        if (!strcmp(c->op, "resync")) {
            resyncs++;
            final = shoal_mv_as_int(c->value);
        } else {
            assert_string_equal(c->op, "incr");
            final = shoal_mv_as_int(c->result);
        }
        shoal_manager_change_free(c);
    }
    assert_int_equal(final, N);
    assert_true(resyncs >= 2); /* the first, and at least one for the dropped ones */
    assert_true(changes < N);  /* not every change was kept for it */
    shoal_manager_watch_close(w);
    shoal_manager_close(m);
    stop_broker(b);
}

static int watcher_child(void *arg)
{
    int fd = *(int *)arg;
    shoal_manager *m = connect_to(addr, NULL);
    shoal_manager_watch *w;
    if (shoal_manager_watch_open(m, "d", NULL, &w) < 0)
        return 1;
    if (write(fd, "x", 1) != 1)
        return 2;
    pause(); /* killed here, its watch open */
    return 0;
}

static int64_t watchers(shoal_manager *m)
{
    shoal_mv *st = NULL;
    assert_int_equal(shoal_manager_call(m, "", "stats", 0, &st, 0), 0);
    shoal_mv *k = S("watchers");
    int64_t n = shoal_mv_as_int(shoal_mv_get(st, k));
    shoal_mv_free(k);
    shoal_mv_free(st);
    return n;
}

static void test_watcher_killed(void **state)
{
    (void)state;
    pid_t b = start_broker_with(&(broker_args){0}, NULL);
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t child = t_fork(watcher_child, &fds[1]);
    char c;
    assert_int_equal(read(fds[0], &c, 1), 1);
    assert_int_equal(watchers(m), 1);
    kill(child, SIGKILL);
    t_wait(child);
    for (int i = 0; i < 2000; i++) /* writes go on while the broker notices */
        assert_int_equal(call(m, "d", "set", I(i % 10), I(i)), 0);
    int64_t n = 1;
    for (int i = 0; i < 1000 && (n = watchers(m)) != 0; i++)
        usleep(10000);
    assert_int_equal(n, 0);
    shoal_manager_watch *w;
    assert_int_equal(shoal_manager_watch_open(m, "d", S("3"), &w), 0);
    assert_string_equal(next(w, SHOAL_SEC(5), NULL), "resync [] [] absent absent");
    shoal_manager_watch_close(w);
    close(fds[0]);
    close(fds[1]);
    shoal_manager_close(m);
    stop_broker(b);
}

static int lock_holder(void *arg)
{
    int fd = *(int *)arg;
    shoal_manager *m = connect_to(addr, NULL);
    if (shoal_manager_call(m, "L", "acquire", SHOAL_FOREVER, NULL, 0) < 0)
        return 1;
    if (write(fd, "x", 1) != 1)
        return 2;
    pause(); /* killed here, holding the lock */
    return 0;
}

/* A lock's watcher sees its holder's acquire, then the broker freeing it. */
static void test_watch_released(void **state)
{
    (void)state;
    pid_t b = start_broker_with(&(broker_args){.no_lock_table = 1},
                                NULL); /* a watch sees what the broker runs */
    shoal_manager *m = connect_to(addr, NULL);
    assert_int_equal(shoal_manager_create(m, "L", SHOAL_M_LOCK, NULL, NULL), 1);
    shoal_manager_watch *w;
    assert_int_equal(shoal_manager_watch_open(m, "L", NULL, &w), 0);
    assert_string_equal(next(w, SHOAL_SEC(5), NULL), "resync [] [] absent None");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t child = t_fork(lock_holder, &fds[1]);
    char c;
    assert_int_equal(read(fds[0], &c, 1), 1);
    assert_string_equal(next(w, SHOAL_SEC(5), NULL), "acquire [] [] absent absent");
    kill(child, SIGKILL);
    t_wait(child);
    assert_string_equal(next(w, SHOAL_SEC(10), NULL), "released [] [] absent absent");
    assert_int_equal(shoal_manager_call(m, "L", "acquire", 0, NULL, 0), SHOAL_EOWNERDEAD);
    assert_string_equal(next(w, SHOAL_SEC(5), NULL), "acquire [] [] absent absent");
    shoal_manager_watch_close(w);
    close(fds[0]);
    close(fds[1]);
    shoal_manager_close(m);
    stop_broker(b);
}

static void test_tls(void **state)
{
    (void)state;
#ifdef SHOAL_TEST_NNG
    char pki[400], f[6][460], tls[64];
    snprintf(pki, sizeof(pki), "%s/pki", t_root);
    assert_int_equal(t_system("sh %s %s >/dev/null 2>&1", MAKE_TEST_CERTS, pki), 0);
    const char *names[6] = {"ca.pem",     "server.pem", "server.key",
                            "client.pem", "client.key", "stranger.pem"};
    for (int i = 0; i < 6; i++)
        snprintf(f[i], sizeof(f[i]), "%s/%s", pki, names[i]);
    snprintf(tls, sizeof(tls), "tls+tcp://127.0.0.1:%d", t_tcp_port(1));
    pid_t b = start_broker_with(
        &(broker_args){.listen = tls, .tls_cert = f[1], .tls_key = f[2], .tls_ca = f[0]},
        NULL);
    shoal_manager_config good = {.connect_timeout = SHOAL_SEC(5),
                                 .tls_ca_file = f[0],
                                 .tls_cert_file = f[3],
                                 .tls_key_file = f[4]};
    shoal_manager *m = connect_cfg(tls, &good);
    assert_int_equal(shoal_manager_create(m, "d", SHOAL_M_DICT, NULL, NULL), 1);
    assert_int_equal(call(m, "d", "set", S("a"), I(1)), 0);
    shoal_manager_watch *w;
    assert_int_equal(shoal_manager_watch_open(m, "d", S("a"), &w), 0);
    assert_string_equal(next(w, SHOAL_SEC(5), NULL), "resync [] [] absent 1");
    shoal_manager_watch_close(w);

    char stranger_key[460];
    snprintf(stranger_key, sizeof(stranger_key), "%s/stranger.key", pki);
    shoal_manager *bad = NULL;
    shoal_manager_config wrong_ca = good;
    wrong_ca.tls_cert_file = f[5];
    wrong_ca.tls_key_file = stranger_key;
    assert_int_equal(shoal_manager_connect(&bad, tls, &wrong_ca), SHOAL_EACCES);
    shoal_manager_config no_cert = {.connect_timeout = SHOAL_SEC(5), .tls_ca_file = f[0]};
    assert_int_equal(shoal_manager_connect(&bad, tls, &no_cert), SHOAL_EACCES);
    char other_ca[460];
    snprintf(other_ca, sizeof(other_ca), "%s/other-ca.pem", pki);
    shoal_manager_config untrusted = good;
    untrusted.tls_ca_file = other_ca; /* the broker's certificate does not verify */
    assert_int_equal(shoal_manager_connect(&bad, tls, &untrusted), SHOAL_EACCES);
    assert_int_equal(shoal_manager_call(m, "d", "get", 0, NULL, 1, S("a")), 0);
    shoal_manager_close(m);
    stop_broker(b);
#else
    skip();
#endif
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_watch_object, setup),
        cmocka_unit_test_setup(test_watch_key, setup),
        cmocka_unit_test_setup(test_watch_slow, setup),
        cmocka_unit_test_setup(test_watcher_killed, setup),
        cmocka_unit_test_setup(test_watch_released, setup),
        cmocka_unit_test_setup(test_tls, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
