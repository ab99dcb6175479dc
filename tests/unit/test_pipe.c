/* test_pipe.c — Pipe: both directions, poll, close and end-of-stream, a peer that
 * dies, ends opened by name from separately started processes, and bad input. */
#include "internal.h"
#include "testutil.h"

static const shoal_queue_config var64 = {.max_msg = 64, .capacity = 8};

static void test_pair_duplex(void **state)
{
    (void)state;
    shoal_pipe *a, *b;
    T_OK(shoal_pipe_pair(&a, &b, "duplex", &var64, NULL));
    assert_string_equal(shoal_pipe_name(a), "duplex");
    char buf[64];
    size_t len;
    assert_int_equal(shoal_pipe_poll(b, SHOAL_MS(20)), 0);
    assert_int_equal(shoal_pipe_recv(b, buf, sizeof(buf), &len, SHOAL_NOWAIT),
                     SHOAL_EAGAIN);
    T_OK(shoal_pipe_send(a, "ping", 4, SHOAL_NOWAIT));
    assert_int_equal(shoal_pipe_poll(b, SHOAL_NOWAIT), 1);
    T_OK(shoal_pipe_recv(b, buf, sizeof(buf), &len, SHOAL_NOWAIT));
    assert_int_equal(len, 4);
    assert_memory_equal(buf, "ping", 4);
    T_OK(shoal_pipe_send(b, "pong!", 5, SHOAL_NOWAIT));
    assert_int_equal(shoal_pipe_recv(a, buf, 2, &len, SHOAL_NOWAIT), SHOAL_EMSGSIZE);
    assert_int_equal(len, 5);
    T_OK(shoal_pipe_recv(a, buf, sizeof(buf), &len, SHOAL_NOWAIT));
    assert_memory_equal(buf, "pong!", 5);
    /* what one end sends never comes back to itself */
    assert_int_equal(shoal_pipe_recv(a, buf, sizeof(buf), &len, SHOAL_NOWAIT),
                     SHOAL_EAGAIN);
    /* closing an end: the other drains, then gets end-of-stream; its sends fail */
    T_OK(shoal_pipe_send(a, "last", 4, SHOAL_NOWAIT));
    T_OK(shoal_pipe_close(a));
    assert_int_equal(shoal_pipe_poll(b, SHOAL_NOWAIT), 1);
    T_OK(shoal_pipe_recv(b, buf, sizeof(buf), &len, SHOAL_FOREVER));
    assert_memory_equal(buf, "last", 4);
    assert_int_equal(shoal_pipe_recv(b, buf, sizeof(buf), &len, SHOAL_FOREVER),
                     SHOAL_EEOF);
    assert_non_null(strstr(shoal_errdetail(), "closed"));
    assert_int_equal(shoal_pipe_poll(b, SHOAL_FOREVER), 1);
    assert_int_equal(shoal_pipe_send(b, "x", 1, SHOAL_NOWAIT), SHOAL_EEOF);
    shoal_pipe_close(b);
}

/* Fixed-size messages of a type, and bad input. */
static void test_typed_and_bad_input(void **state)
{
    (void)state;
    shoal_queue_config cfg = {.type = shoal_typecode('l'), .capacity = 2};
    shoal_pipe *a, *b, *c;
    T_OK(shoal_pipe_pair(&a, &b, "typed", &cfg, NULL));
    int64_t v = 42, got;
    size_t len;
    assert_int_equal(shoal_pipe_send(a, &v, 4, SHOAL_NOWAIT), SHOAL_EMSGSIZE);
    assert_non_null(strstr(shoal_errdetail(), "pipe \"typed\""));
    T_OK(shoal_pipe_send(a, &v, sizeof(v), SHOAL_NOWAIT));
    T_OK(shoal_pipe_send(a, &v, sizeof(v), SHOAL_NOWAIT));
    assert_int_equal(shoal_pipe_send(a, &v, sizeof(v), SHOAL_NOWAIT), SHOAL_EAGAIN);
    assert_int_equal(shoal_pipe_send(a, &v, sizeof(v), SHOAL_MS(20)), SHOAL_ETIMEDOUT);
    T_OK(shoal_pipe_recv(b, &got, sizeof(got), &len, SHOAL_NOWAIT));
    assert_int_equal(got, 42);
    /* wrong type on open names both types */
    shoal_queue_config other = {.type = shoal_typecode('i')};
    assert_int_equal(shoal_pipe_open(&c, "typed", 0, SHOAL_OPEN, &other, NULL),
                     SHOAL_ELAYOUT);
    assert_non_null(strstr(shoal_errdetail(), "int64"));
    assert_non_null(strstr(shoal_errdetail(), "int32"));
    /* the ends are held by this (live) process: another open is still allowed here, but
     * a bad end number is not */
    assert_int_equal(shoal_pipe_open(&c, "typed", 2, SHOAL_OPEN, NULL, NULL),
                     SHOAL_EINVAL);
    assert_int_equal(shoal_pipe_open(&c, "nope", 0, SHOAL_OPEN, NULL, NULL),
                     SHOAL_ENOENT);
    assert_int_equal(shoal_pipe_pair(&c, &c, "typed", &cfg, NULL), SHOAL_EEXIST);
    shoal_pipe_close(a);
    shoal_pipe_close(b);
    shoal_pipe *d, *e;
    assert_int_equal(shoal_pipe_pair(&d, &e, "big", &var64, NULL), 0);
    char big[65] = {0};
    assert_int_equal(shoal_pipe_send(d, big, 65, SHOAL_NOWAIT), SHOAL_EMSGSIZE);
    assert_non_null(strstr(shoal_errdetail(), "maximum of 64"));
    shoal_pipe_close(d);
    shoal_pipe_close(e);
}

/* ---- across processes -------------------------------------------------------------- */

struct child_args {
    shoal_pipe *mine, *theirs;
    int n;
    bool close_at_end;
};

/* The child echoes n messages back doubled, then closes its end (or just exits). */
static int echo_child(void *arg)
{
    struct child_args *a = arg;
    shoal_pipe_close(a->theirs); /* inherited, never used here: only the handle goes */
    for (int i = 0; i < a->n; i++) {
        int64_t v;
        size_t len;
        if (shoal_pipe_recv(a->mine, &v, sizeof(v), &len, SHOAL_SEC(20)))
            return 2;
        v *= 2;
        if (shoal_pipe_send(a->mine, &v, sizeof(v), SHOAL_SEC(20)))
            return 3;
    }
    if (a->close_at_end)
        shoal_pipe_close(a->mine);
    return 0;
}

/* Pipe(), fork, each side uses its end: ping-pong, then the child's close (or exit
 * without closing) ends the parent's stream with EEOF (or EPEERDEAD). */
static void test_fork_ping_pong(void **state)
{
    (void)state;
    shoal_queue_config cfg = {.type = shoal_typecode('l'), .capacity = 4};
    for (int closing = 0; closing < 2; closing++) {
        shoal_pipe *a, *b;
        T_OK(shoal_pipe_pair(&a, &b, NULL, &cfg, NULL));
        struct child_args args = {b, a, 1000, closing};
        pid_t pid = t_fork(echo_child, &args);
        T_OK(shoal_pipe_close(b)); /* handed to the child: does not close its end */
        for (int64_t i = 0; i < 1000; i++) {
            int64_t got;
            size_t len;
            T_OK(shoal_pipe_send(a, &i, sizeof(i), SHOAL_SEC(20)));
            T_OK(shoal_pipe_recv(a, &got, sizeof(got), &len, SHOAL_SEC(20)));
            assert_int_equal(got, 2 * i);
        }
        int64_t got;
        size_t len;
        int64_t t0 = shoal__now_ns();
        int rc = shoal_pipe_recv(a, &got, sizeof(got), &len, SHOAL_SEC(20));
        assert_int_equal(rc, closing ? SHOAL_EEOF : SHOAL_EPEERDEAD);
        assert_true(shoal__now_ns() - t0 < SHOAL_SEC(5));
        assert_int_equal(t_wait(pid), 0);
        shoal_pipe_close(a);
    }
}

/* echo_child, then a stop for the parent to SIGKILL (holding its end, not closing). */
static int echo_then_stop(void *arg)
{
    int rc = echo_child(arg);
    raise(SIGSTOP);
    return rc;
}

/* Receivers that sleep at every message (spin budget 0) check the peer between
 * sleeps from a recent answer (pipe.c, peer_hook): a peer SIGKILLed just after such an
 * answer is still reported at once by a try form, and within a sleep slice by a
 * blocking call. */
static void test_asleep_peer_killed(void **state)
{
    (void)state;
    shoal_queue_config cfg = {.type = shoal_typecode('l'), .capacity = 4};
    int64_t spin = shoal_spin_ns();
    shoal_set_spin_ns(0);
    shoal_pipe *a, *b;
    T_OK(shoal_pipe_pair(&a, &b, NULL, &cfg, NULL));
    struct child_args args = {b, a, 200, 0};
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(echo_then_stop(&args));
    T_OK(shoal_pipe_close(b));
    int64_t got;
    size_t len;
    for (int64_t i = 0; i < 200; i++) {
        T_OK(shoal_pipe_send(a, &i, sizeof(i), SHOAL_SEC(20)));
        T_OK(shoal_pipe_recv(a, &got, sizeof(got), &len, SHOAL_SEC(20)));
        assert_int_equal(got, 2 * i);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
    assert_true(WIFSTOPPED(st));
    /* a blocking call finds the stopped peer alive just before it is killed */
    assert_int_equal(shoal_pipe_recv(a, &got, sizeof(got), &len, SHOAL_MS(2)),
                     SHOAL_ETIMEDOUT);
    t_kill(pid);
    assert_int_equal(shoal_pipe_recv(a, &got, sizeof(got), &len, SHOAL_NOWAIT),
                     SHOAL_EPEERDEAD);
    int64_t t0 = shoal__now_ns();
    assert_int_equal(shoal_pipe_recv(a, &got, sizeof(got), &len, SHOAL_FOREVER),
                     SHOAL_EPEERDEAD);
    assert_true(shoal__now_ns() - t0 < SHOAL_SEC(2));
    shoal_pipe_close(a);
    shoal_set_spin_ns(spin);
}

/* ---- separately started processes (argv roles) --------------------------------------
 */

static int role_main(int argc, char **argv)
{
    shoal_pipe *p;
    int rc;
    if (!strcmp(argv[1], "sender") && argc == 3) {
        /* opens end 1 by name, sends three messages, exits without closing */
        if ((rc = shoal_pipe_open(&p, argv[2], 1, SHOAL_OPEN, NULL, NULL)))
            return 10 - rc;
        const char *msgs[] = {"one", "two", "three"};
        for (int i = 0; i < 3; i++)
            if (shoal_pipe_send(p, msgs[i], strlen(msgs[i]), SHOAL_SEC(10)))
                return 3;
        _exit(0); /* as a crash would: no close, no clean-up */
    }
    if (!strcmp(argv[1], "holder") && argc == 3) {
        /* holds end 1 until told to go, then closes it */
        if ((rc = shoal_pipe_open(&p, argv[2], 1, SHOAL_OPEN, NULL, NULL)))
            return 10 - rc;
        char buf[64];
        size_t len;
        while (shoal_pipe_recv(p, buf, sizeof(buf), &len, SHOAL_NOWAIT) == 0)
            ; /* what was sent to the previous holder */
        if (shoal_pipe_send(p, "ready", 5, SHOAL_SEC(10)) ||
            shoal_pipe_recv(p, buf, sizeof(buf), &len, SHOAL_SEC(20)) || len != 2)
            return 3;
        shoal_pipe_close(p);
        return 0;
    }
    return 99;
}

static void test_named_ends_and_dead_peer(void **state)
{
    (void)state;
    shoal_pipe *a, *b;
    T_OK(shoal_pipe_open(&a, "named", 0, SHOAL_CREATE, &var64, NULL));
    pid_t pid = t_spawn_self("sender", "named", NULL);
    char buf[64];
    size_t len;
    const char *want[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++) {
        T_OK(shoal_pipe_recv(a, buf, sizeof(buf), &len, SHOAL_SEC(20)));
        assert_int_equal(len, strlen(want[i]));
        assert_memory_equal(buf, want[i], len);
    }
    assert_int_equal(t_wait(pid), 0);
    /* the sender died without closing: a distinct error, not a hang */
    assert_int_equal(shoal_pipe_recv(a, buf, sizeof(buf), &len, SHOAL_FOREVER),
                     SHOAL_EPEERDEAD);
    assert_non_null(strstr(shoal_errdetail(), "died"));
    assert_int_equal(shoal_pipe_poll(a, SHOAL_FOREVER), 1);
    assert_int_equal(shoal_pipe_send(a, "x", 1, SHOAL_SEC(5)), SHOAL_OK); /* room left */
    for (int i = 0; i < 8; i++) /* fills the ring, then notices the dead peer */
        if (shoal_pipe_send(a, "x", 1, SHOAL_SEC(5)) != 0)
            break;
    assert_int_equal(shoal_pipe_send(a, "x", 1, SHOAL_SEC(5)), SHOAL_EPEERDEAD);

    /* A new holder opens end 1 by name (until it has, the sender's death is still
     * what the survivor is told). While it lives, the end is busy for openers that do
     * not ask to join; its close gives EEOF; then the end can be opened again. */
    pid = t_spawn_self("holder", "named", NULL);
    int rc;
    int64_t end = shoal__now_ns() + SHOAL_SEC(20);
    while ((rc = shoal_pipe_recv(a, buf, sizeof(buf), &len, SHOAL_SEC(20))) ==
               SHOAL_EPEERDEAD &&
           shoal__now_ns() < end)
        usleep(1000);
    T_OK(rc);
    assert_memory_equal(buf, "ready", 5);
    assert_int_equal(shoal_pipe_open(&b, "named", 1, SHOAL_OPEN, NULL, NULL),
                     SHOAL_EBUSY);
    assert_non_null(strstr(shoal_errdetail(), "held by process"));
    T_OK(shoal_pipe_send(a, "go", 2, SHOAL_NOWAIT));
    assert_int_equal(t_wait(pid), 0);
    assert_int_equal(shoal_pipe_recv(a, buf, sizeof(buf), &len, SHOAL_SEC(5)),
                     SHOAL_EEOF);
    T_OK(shoal_pipe_open(&b, "named", 1, SHOAL_OPEN, NULL, NULL));
    T_OK(shoal_pipe_send(b, "back", 4, SHOAL_NOWAIT));
    T_OK(shoal_pipe_recv(a, buf, sizeof(buf), &len, SHOAL_SEC(5)));
    assert_memory_equal(buf, "back", 4);
    shoal_pipe_close(b);
    assert_int_equal(shoal_pipe_recv(a, buf, sizeof(buf), &len, SHOAL_SEC(5)),
                     SHOAL_EEOF);
    shoal_pipe_close(a);
}

int main(int argc, char **argv)
{
    t_setup_root();
    if (argc > 1)
        return role_main(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pair_duplex),
        cmocka_unit_test(test_typed_and_bad_input),
        cmocka_unit_test(test_fork_ping_pong),
        cmocka_unit_test(test_asleep_peer_killed),
        cmocka_unit_test(test_named_ends_and_dead_peer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
