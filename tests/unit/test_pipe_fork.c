/* test_pipe_fork.c — an end its process had used, across fork(): a child that exits
 * (or is killed) without touching it takes nothing away, a child that uses it shares
 * it, and closing it while a child that has not used it yet lives hands it over. */
#include <stdatomic.h>
#include <sys/mman.h>

#include "internal.h"
#include "testutil.h"

static const shoal_queue_config i64 = {.type = NULL, .max_msg = 8, .capacity = 64};

/* a (end 0) and b (end 1), b used: one message from b to a. */
static void used_pair(shoal_pipe **a, shoal_pipe **b)
{
    T_OK(shoal_pipe_pair(a, b, NULL, &i64, NULL));
    int64_t v = 1;
    size_t len;
    T_OK(shoal_pipe_send(*b, &v, sizeof(v), SHOAL_SEC(5)));
    T_OK(shoal_pipe_recv(*a, &v, sizeof(v), &len, SHOAL_SEC(5)));
}

/* The parent goes on with its end: a's peer is still there, b still delivers. */
static void parent_still_holds(shoal_pipe *a, shoal_pipe *b)
{
    int64_t v = 7;
    size_t len;
    assert_int_equal(shoal_pipe_recv(a, &v, sizeof(v), &len, SHOAL_MS(100)),
                     SHOAL_ETIMEDOUT);
    T_OK(shoal_pipe_send(b, &v, sizeof(v), SHOAL_SEC(5)));
    v = 0;
    T_OK(shoal_pipe_recv(a, &v, sizeof(v), &len, SHOAL_SEC(5)));
    assert_int_equal(v, 7);
}

static void test_child_leaves_used_end_alone(void **state)
{
    (void)state;
    for (int killed = 0; killed < 2; killed++) {
        shoal_pipe *a, *b;
        used_pair(&a, &b);
        t_fork_gone(killed);
        parent_still_holds(a, b);
        /* ... and its close is the end of the stream */
        T_OK(shoal_pipe_close(b));
        int64_t v;
        size_t len;
        assert_int_equal(shoal_pipe_recv(a, &v, sizeof(v), &len, SHOAL_SEC(5)),
                         SHOAL_EEOF);
        shoal_pipe_close(a);
    }
}

static shoal_pipe *child_end;

static int send_and_exit(void *arg)
{
    int64_t v = *(int *)arg;
    return shoal_pipe_send(child_end, &v, sizeof(v), SHOAL_SEC(5)) ? 10 : 0;
}

static void test_child_shares_used_end(void **state)
{
    (void)state;
    shoal_pipe *a, *b;
    used_pair(&a, &b);
    child_end = b;
    int x = 42;
    pid_t pid = t_fork(send_and_exit, &x); /* exits without closing: a holder died */
    assert_int_equal(t_wait(pid), 0);
    int64_t v = 0;
    size_t len;
    T_OK(shoal_pipe_recv(a, &v, sizeof(v), &len, SHOAL_SEC(5)));
    assert_int_equal(v, 42);
    parent_still_holds(a, b); /* the parent held it all along */
    shoal_pipe_close(b);
    shoal_pipe_close(a);
}

struct go {
    _Atomic int go;
};

static struct go *shared;

static int send_later(void *arg)
{
    (void)arg;
    if (!t_wait_atleast(&shared->go, 1, SHOAL_SEC(20)))
        return 10;
    int64_t v = 5;
    if (shoal_pipe_send(child_end, &v, sizeof(v), SHOAL_SEC(5)))
        return 11;
    return shoal_pipe_close(child_end) ? 12 : 0;
}

static void test_close_hands_used_end_to_child(void **state)
{
    (void)state;
    shared = t_shared_alloc(sizeof(*shared));
    shoal_pipe *a, *b;
    used_pair(&a, &b);
    child_end = b;
    pid_t pid = t_fork(send_later, NULL);
    T_OK(shoal_pipe_close(b)); /* the child has not used it yet: it holds it now */
    int64_t v = 0;
    size_t len;
    assert_int_equal(shoal_pipe_recv(a, &v, sizeof(v), &len, SHOAL_MS(100)),
                     SHOAL_ETIMEDOUT);
    atomic_store(&shared->go, 1);
    T_OK(shoal_pipe_recv(a, &v, sizeof(v), &len, SHOAL_SEC(5)));
    assert_int_equal(v, 5);
    assert_int_equal(t_wait(pid), 0);
    assert_int_equal(shoal_pipe_recv(a, &v, sizeof(v), &len, SHOAL_SEC(5)), SHOAL_EEOF);
    shoal_pipe_close(a);
    munmap(shared, sizeof(*shared));
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_child_leaves_used_end_alone),
        cmocka_unit_test(test_child_shares_used_end),
        cmocka_unit_test(test_close_hands_used_end_to_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
