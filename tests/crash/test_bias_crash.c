/* test_bias_crash.c — the biased right of a Pipe's rings (ring_bias.c) under SIGKILL:
 * a holder killed inside a send or a receive (its busy word left naming it), a
 * revoker killed in the middle of a revocation (the bias word left naming it), and a
 * revoker stopped there (the holder's calls time out, then go on once it is gone).
 * Nothing is lost or duplicated; the survivor takes the side over. */
#include <signal.h>

#include "internal.h"
#include "testutil.h"

static const shoal_queue_config cfg = {.type = NULL, .max_msg = 8, .capacity = 8};
static shoal_pipe *end0, *end1;

static void send1(int64_t v)
{
    T_OK(shoal_pipe_send(end0, &v, sizeof(v), SHOAL_SEC(5)));
}

/* Receives on end 1 exactly the n values in want, then finds nothing more. */
static void expect(const int64_t *want, int n)
{
    int64_t v;
    size_t len;
    for (int i = 0; i < n; i++) {
        T_OK(shoal_pipe_recv(end1, &v, sizeof(v), &len, SHOAL_SEC(5)));
        assert_int_equal(v, want[i]);
    }
    assert_int_equal(shoal_pipe_recv(end1, &v, sizeof(v), &len, 0), SHOAL_EAGAIN);
}

/* A pair whose both ends this process has used (so a fork child shares them), end
 * 0's producer side held by this process. */
static void pair(void)
{
    T_OK(shoal_pipe_pair(&end0, &end1, NULL, &cfg, NULL));
    send1(1);
    int64_t v;
    size_t len;
    T_OK(shoal_pipe_recv(end1, &v, sizeof(v), &len, SHOAL_SEC(5)));
    send1(1);
}

static void unpair(void)
{
    shoal_pipe_close(end0);
    shoal_pipe_close(end1);
}

/* The child sends 2 (taking the producer side from the parent), then stops at
 * `arg`'s point inside its send of 3. */
static int send_then_stop(void *arg)
{
    shoal__test_pause_at(NULL);
    int64_t v = 2;
    if (shoal_pipe_send(end0, &v, sizeof(v), SHOAL_SEC(5)))
        return 2;
    shoal__test_pause_at(arg);
    v = 3;
    return shoal_pipe_send(end0, &v, sizeof(v), SHOAL_SEC(5)) ? 3 : 0;
}

/* A holder killed inside a send, before its message is published (nothing of it
 * arrives) and after (it arrives once): the parent's next send takes the side. */
static void test_holder_killed_in_send(void **state)
{
    (void)state;
    const char *points[] = {"queue.reserved", "queue.marked"};
    for (int k = 0; k < 2; k++) {
        pair();
        pid_t pid = t_fork_paused(points[k], send_then_stop, (void *)points[k]);
        assert_true(pid > 0);
        t_kill(pid);
        send1(4);
        int64_t lost[] = {1, 2, 4}, kept[] = {1, 2, 3, 4};
        if (k == 0)
            expect(lost, 3);
        else
            expect(kept, 4);
        unpair();
    }
}

/* The child receives 1 (taking end 1's consumer side), then stops after copying 2
 * and before consuming it. */
static int recv_then_stop(void *arg)
{
    (void)arg;
    shoal__test_pause_at(NULL);
    int64_t v;
    size_t len;
    if (shoal_pipe_recv(end1, &v, sizeof(v), &len, SHOAL_SEC(5)) || v != 1)
        return 2;
    shoal__test_pause_at("queue.claimed");
    shoal_pipe_recv(end1, &v, sizeof(v), &len, SHOAL_SEC(5));
    return 0;
}

/* A holder killed inside a receive, before it consumed the message: the parent
 * receives that message next. */
static void test_holder_killed_in_recv(void **state)
{
    (void)state;
    pair();
    send1(2);
    pid_t pid = t_fork_paused("queue.claimed", recv_then_stop, NULL);
    assert_true(pid > 0);
    t_kill(pid);
    int64_t want[] = {2};
    expect(want, 1);
    unpair();
}

/* The child's first send revokes the producer side from the parent and stops at
 * `arg`'s point of the revocation. */
static int revoke_and_stop(void *arg)
{
    (void)arg;
    int64_t v = 2;
    return shoal_pipe_send(end0, &v, sizeof(v), SHOAL_SEC(5)) ? 3 : 0;
}

/* A revoker killed mid-revocation: the parent (the old holder) carries the
 * revocation on and sends. */
static void test_revoker_killed(void **state)
{
    (void)state;
    const char *points[] = {"pipe.bias.revoking", "pipe.bias.revoked"};
    for (int k = 0; k < 2; k++) {
        pair();
        pid_t pid = t_fork_paused(points[k], revoke_and_stop, NULL);
        assert_true(pid > 0);
        t_kill(pid);
        send1(3);
        int64_t want[] = {1, 3};
        expect(want, 2);
        unpair();
    }
}

/* A revoker stopped mid-revocation holds the side up: the parent's send times out
 * (its timeout holds), then goes through once the revoker has finished. */
static void test_revoker_stopped(void **state)
{
    (void)state;
    pair();
    pid_t pid = t_fork_paused("pipe.bias.revoking", revoke_and_stop, NULL);
    assert_true(pid > 0);
    int64_t v = 3;
    assert_int_equal(shoal_pipe_send(end0, &v, sizeof(v), SHOAL_MS(50)), SHOAL_ETIMEDOUT);
    kill(pid, SIGCONT);
    assert_int_equal(t_wait(pid), 0);
    send1(3);
    int64_t want[] = {1, 2, 3};
    expect(want, 3);
    unpair();
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_holder_killed_in_send),
        cmocka_unit_test(test_holder_killed_in_recv),
        cmocka_unit_test(test_revoker_killed),
        cmocka_unit_test(test_revoker_stopped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
