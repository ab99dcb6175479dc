/* test_pipe_crash.c — pipe ends whose process is SIGKILLed in the middle of a send, of
 * a receive, or while the survivor sleeps: the survivor drains, then gets
 * SHOAL_EPEERDEAD promptly, and a new process can take the dead end over. */
#include "internal.h"
#include "testutil.h"

static shoal_queue_config int64_cfg(void)
{
    shoal_queue_config c = {.type = shoal_typecode('l'), .capacity = 8};
    return c;
}

struct role {
    const char *name;
    int end;
};

/* Opens its end, sends 1, 2, 3, then stops (paused) in the middle of sending 4. */
static int sender(void *arg)
{
    struct role *r = arg;
    shoal__test_pause_at(NULL);
    shoal_pipe *p;
    if (shoal_pipe_open(&p, r->name, r->end, SHOAL_OPEN, NULL, NULL))
        return 2;
    for (int64_t i = 1; i <= 3; i++)
        if (shoal_pipe_send(p, &i, sizeof(i), SHOAL_SEC(5)))
            return 3;
    shoal__test_pause_at("queue.reserved");
    int64_t four = 4;
    shoal_pipe_send(p, &four, sizeof(four), SHOAL_SEC(5));
    return 0;
}

static void test_sender_killed_mid_send(void **state)
{
    (void)state;
    shoal_queue_config c = int64_cfg();
    for (int spsc = 0; spsc < 2; spsc++) {
        c.spsc = spsc;
        const char *name = spsc ? "ms-spsc" : "ms-mpmc";
        shoal_pipe *a;
        T_OK(shoal_pipe_open(&a, name, 0, SHOAL_CREATE, &c, NULL));
        struct role r = {name, 1};
        pid_t pid = t_fork_paused("queue.reserved", sender, &r);
        assert_true(pid > 0);
        t_kill(pid);
        int64_t v;
        size_t len;
        for (int64_t i = 1; i <= 3; i++) {
            T_OK(shoal_pipe_recv(a, &v, sizeof(v), &len, SHOAL_SEC(5)));
            assert_int_equal(v, i);
        }
        int64_t t0 = shoal__now_ns();
        assert_int_equal(shoal_pipe_recv(a, &v, sizeof(v), &len, SHOAL_FOREVER),
                         SHOAL_EPEERDEAD);
        assert_true(shoal__now_ns() - t0 < SHOAL_SEC(2));
        /* a new process (here: this one) takes the dead end over; the ring works */
        shoal_pipe *b;
        T_OK(shoal_pipe_open(&b, name, 1, SHOAL_OPEN, &c, NULL));
        for (int64_t i = 10; i < 30; i++) {
            T_OK(shoal_pipe_send(b, &i, sizeof(i), SHOAL_SEC(5)));
            T_OK(shoal_pipe_recv(a, &v, sizeof(v), &len, SHOAL_SEC(5)));
            assert_int_equal(v, i);
        }
        shoal_pipe_close(b);
        shoal_pipe_close(a);
    }
}

/* Opens its end and stops (paused) in the middle of receiving. */
static int receiver(void *arg)
{
    struct role *r = arg;
    shoal__test_pause_at(NULL);
    shoal_pipe *p;
    if (shoal_pipe_open(&p, r->name, r->end, SHOAL_OPEN, NULL, NULL))
        return 2;
    shoal__test_pause_at("queue.claimed");
    int64_t v;
    size_t len;
    shoal_pipe_recv(p, &v, sizeof(v), &len, SHOAL_SEC(5));
    return 0;
}

/* The receiver dies holding a message it had copied but not released: the next holder
 * of that end receives it, exactly once; the sender sees the death when it waits. */
static void test_receiver_killed_mid_recv(void **state)
{
    (void)state;
    shoal_queue_config c = int64_cfg();
    for (int spsc = 0; spsc < 2; spsc++) {
        c.spsc = spsc;
        c.capacity = 2;
        const char *name = spsc ? "mr-spsc" : "mr-mpmc";
        shoal_pipe *a, *b;
        T_OK(shoal_pipe_open(&a, name, 0, SHOAL_CREATE, &c, NULL));
        int64_t v = 7, w = 8;
        T_OK(shoal_pipe_send(a, &v, sizeof(v), SHOAL_NOWAIT));
        T_OK(shoal_pipe_send(a, &w, sizeof(w), SHOAL_NOWAIT));
        struct role r = {name, 1};
        pid_t pid = t_fork_paused("queue.claimed", receiver, &r);
        assert_true(pid > 0);
        t_kill(pid);
        /* full ring, dead receiver: the sender is told, not left hanging */
        int64_t t0 = shoal__now_ns();
        assert_int_equal(shoal_pipe_send(a, &v, sizeof(v), SHOAL_FOREVER),
                         SHOAL_EPEERDEAD);
        assert_true(shoal__now_ns() - t0 < SHOAL_SEC(2));
        T_OK(shoal_pipe_open(&b, name, 1, SHOAL_OPEN, &c, NULL));
        int64_t got[2];
        size_t len;
        T_OK(shoal_pipe_recv(b, &got[0], sizeof(v), &len, SHOAL_SEC(5)));
        T_OK(shoal_pipe_recv(b, &got[1], sizeof(v), &len, SHOAL_SEC(5)));
        assert_true((got[0] == 7 && got[1] == 8) || (got[0] == 8 && got[1] == 7));
        assert_int_equal(shoal_pipe_recv(b, &v, sizeof(v), &len, SHOAL_NOWAIT),
                         SHOAL_EAGAIN);
        shoal_pipe_close(b);
        shoal_pipe_close(a);
    }
}

/* The peer is killed while the survivor sleeps in recv without a timeout. */
static int idle_peer(void *arg)
{
    struct role *r = arg;
    shoal_pipe *p;
    if (shoal_pipe_open(&p, r->name, r->end, SHOAL_OPEN, NULL, NULL))
        return 2;
    int64_t one = 1;
    shoal_pipe_send(p, &one, sizeof(one), SHOAL_SEC(5));
    pause();
    return 0;
}

static void test_peer_killed_while_asleep(void **state)
{
    (void)state;
    shoal_set_spin_ns(0);
    shoal_queue_config c = int64_cfg();
    shoal_pipe *a;
    T_OK(shoal_pipe_open(&a, "asleep", 0, SHOAL_CREATE, &c, NULL));
    struct role r = {"asleep", 1};
    pid_t pid = t_fork(idle_peer, &r);
    int64_t v;
    size_t len;
    T_OK(shoal_pipe_recv(a, &v, sizeof(v), &len, SHOAL_SEC(5)));
    /* the peer is alive and quiet: a plain timeout */
    assert_int_equal(shoal_pipe_recv(a, &v, sizeof(v), &len, SHOAL_MS(100)),
                     SHOAL_ETIMEDOUT);
    struct timespec ts = {0, 150000000};
    pid_t killer = fork();
    if (killer == 0) {
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        _exit(0);
    }
    int64_t t0 = shoal__now_ns();
    assert_int_equal(shoal_pipe_recv(a, &v, sizeof(v), &len, SHOAL_FOREVER),
                     SHOAL_EPEERDEAD);
    assert_true(shoal__now_ns() - t0 < SHOAL_SEC(2));
    assert_int_equal(shoal_pipe_poll(a, SHOAL_FOREVER), 1);
    t_wait(killer);
    t_wait(pid);
    shoal_pipe_close(a);
    shoal_set_spin_ns(20000);
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sender_killed_mid_send),
        cmocka_unit_test(test_receiver_killed_mid_recv),
        cmocka_unit_test(test_peer_killed_while_asleep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
