/* test_identity.c — who holds what, across fork, death and pid reuse: a pipe end held
 * by a child that dies at once, an end held by several processes, an anonymous object
 * that outlives its creator while a forked child uses it, and queue slot owners whose
 * pid is reused by another process. */
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "internal.h"
#include "testutil.h"

static const shoal_queue_config i64 = {.type = NULL, .max_msg = 8, .capacity = 64};

/* pipe_pair, fork, the child dies before it touches its end: the parent is told. */
static void test_pair_child_dies_untouched(void **state)
{
    (void)state;
    for (int closing = 0; closing < 2; closing++) {
        for (int killed = 0; killed < 2; killed++) {
            shoal_pipe *a, *b;
            T_OK(shoal_pipe_pair(&a, &b, NULL, &i64, NULL));
            t_fork_gone(killed);
            if (closing)
                T_OK(shoal_pipe_close(b)); /* the parent's copy of the child's end */
            char buf[8];
            size_t len;
            int64_t t0 = shoal__now_ns();
            assert_int_equal(shoal_pipe_recv(a, buf, sizeof(buf), &len, SHOAL_SEC(10)),
                             SHOAL_EPEERDEAD);
            assert_true(shoal__now_ns() - t0 < SHOAL_SEC(2));
            assert_int_equal(shoal_pipe_poll(a, SHOAL_SEC(10)), 1);
            if (!closing)
                shoal_pipe_close(b);
            shoal_pipe_close(a);
        }
    }
}

/* ---- one end, three writer processes -------------------------------------------------
 */

struct writers {
    _Atomic int go;
};

static struct writers *wsh;

struct writer_arg {
    shoal_pipe *end;
    int id;
    bool wait_go;
};

static int writer(void *arg)
{
    struct writer_arg *w = arg;
    if (w->wait_go && !t_wait_atleast(&wsh->go, 1, SHOAL_SEC(20)))
        return 10;
    for (int64_t i = 0; i < 10; i++) {
        int64_t v = w->id * 100 + i;
        if (shoal_pipe_send(w->end, &v, sizeof(v), SHOAL_SEC(10)))
            return 11;
    }
    return shoal_pipe_close(w->end) ? 12 : 0;
}

static void test_end_held_by_three_writers(void **state)
{
    (void)state;
    wsh = t_shared_alloc(sizeof(*wsh));
    shoal_pipe *a, *b;
    T_OK(shoal_pipe_pair(&a, &b, NULL, &i64, NULL));
    pid_t pids[3];
    for (int i = 0; i < 3; i++) {
        struct writer_arg w = {b, i + 1, i > 0};
        pids[i] = t_fork(writer, &w);
    }
    /* The first writer sends and exits; the other two still hold the end. */
    int64_t v;
    size_t len;
    for (int i = 0; i < 10; i++) {
        T_OK(shoal_pipe_recv(a, &v, sizeof(v), &len, SHOAL_SEC(10)));
        assert_int_equal(v / 100, 1);
    }
    assert_int_equal(t_wait(pids[0]), 0);
    assert_int_equal(shoal_pipe_recv(a, &v, sizeof(v), &len, SHOAL_MS(200)),
                     SHOAL_ETIMEDOUT);
    atomic_store(&wsh->go, 1);
    int from[4] = {0};
    for (int i = 0; i < 20; i++) {
        T_OK(shoal_pipe_recv(a, &v, sizeof(v), &len, SHOAL_SEC(10)));
        from[v / 100]++;
    }
    assert_int_equal(from[2], 10);
    assert_int_equal(from[3], 10);
    assert_int_equal(t_wait(pids[1]), 0);
    assert_int_equal(t_wait(pids[2]), 0);
    /* The last holder has closed: the end of the stream (the parent's own copy of
     * end 1, unused since it forked, was handed to the children). */
    assert_int_equal(shoal_pipe_recv(a, &v, sizeof(v), &len, SHOAL_SEC(10)), SHOAL_EEOF);
    shoal_pipe_close(b);
    shoal_pipe_close(a);
    munmap(wsh, sizeof(*wsh));
}

/* ---- an anonymous object inherited by a child ----------------------------------------
 */

struct anon_arg {
    char name[SHOAL_NAME_MAX + 1];
    int *stage; /* shared */
};

static int reopen_later(void *arg)
{
    struct anon_arg *a = arg;
    while (__atomic_load_n(a->stage, __ATOMIC_ACQUIRE) < 1)
        usleep(1000);
    shoal_value *v;
    int32_t x = 0;
    if (shoal_value_open(&v, a->name, SHOAL_OPEN, shoal_typecode('i'), NULL, NULL))
        return 10;
    shoal_value_read(v, &x);
    shoal_value_close(v);
    return x == 42 ? 0 : 11;
}

static void test_anonymous_lives_while_child_uses_it(void **state)
{
    (void)state;
    shoal_value *v;
    T_OK(shoal_value_open(&v, NULL, SHOAL_CREATE, shoal_typecode('i'), NULL, NULL));
    int32_t x = 42;
    T_OK(shoal_value_write(v, &x));
    struct anon_arg arg;
    snprintf(arg.name, sizeof(arg.name), "%s", shoal_value_name(v));
    arg.stage = t_shared_alloc(sizeof(int));
    char path[512];
    snprintf(path, sizeof(path), "%s/default/%s", t_root, arg.name);
    pid_t pid = t_fork(reopen_later, &arg);
    T_OK(shoal_value_close(v)); /* the child still has its inherited handle */
    assert_int_equal(access(path, F_OK), 0);
    shoal_object_info info;
    T_OK(shoal_stat(arg.name, NULL, &info));
    assert_int_equal(info.users, 1);
    __atomic_store_n(arg.stage, 1, __ATOMIC_RELEASE);
    assert_int_equal(t_wait(pid), 0);
    munmap(arg.stage, sizeof(int));
}

/* ---- pid reuse ------------------------------------------------------------------------
 */

/* Forks a child that pauses, with pid `want` if the kernel lets us choose it (through
 * /proc/sys/kernel/ns_last_pid); returns its pid or -1. */
static pid_t fork_with_pid(pid_t want)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
        if (fd < 0)
            return -1;
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%d", (int)want - 1);
        bool ok = write(fd, buf, (size_t)n) == n;
        close(fd);
        if (!ok)
            return -1;
        pid_t pid = fork();
        if (pid == 0) {
            if (getpid() != want)
                _exit(1);
            pause();
            _exit(0);
        }
        if (pid == want)
            return pid;
        if (pid > 0)
            waitpid(pid, NULL, 0);
    }
    return -1;
}

static int consume_one(void *arg)
{
    int64_t v;
    size_t len;
    return shoal_queue_get(arg, &v, sizeof(v), &len, SHOAL_SEC(10)) ? 10 : 0;
}

static int produce_one(void *arg)
{
    int64_t v = 99;
    return shoal_queue_put(arg, &v, sizeof(v), SHOAL_SEC(10)) ? 10 : 0;
}

static void test_owner_pid_reused(void **state)
{
    (void)state;
    shoal_queue_config cfg = {.type = shoal_typecode('q'), .capacity = 8};
    shoal_queue *q;
    T_OK(shoal_queue_open(&q, NULL, SHOAL_CREATE, &cfg, NULL));
    int64_t v = 7;
    T_OK(shoal_queue_put(q, &v, sizeof(v), 0));
    /* A consumer dies holding its claim; another process gets its pid at once. */
    pid_t dead = t_fork_paused("queue.claimed", consume_one, q);
    assert_true(dead > 0);
    t_kill(dead);
    pid_t reuse = fork_with_pid(dead);
    if (reuse <= 0)
        skip(); /* the pid could not be chosen (not root, or taken meanwhile) */
    int64_t got = 0;
    size_t len;
    T_OK(shoal_queue_get(q, &got, sizeof(got), &len, SHOAL_SEC(5)));
    assert_int_equal(got, 7); /* delivered again */
    t_kill(reuse);
    /* A producer dies holding its reservation; its pid is reused; the queue goes on. */
    dead = t_fork_paused("queue.reserved", produce_one, q);
    assert_true(dead > 0);
    t_kill(dead);
    reuse = fork_with_pid(dead);
    if (reuse <= 0)
        skip();
    v = 8;
    T_OK(shoal_queue_put(q, &v, sizeof(v), 0));
    T_OK(shoal_queue_get(q, &got, sizeof(got), &len, SHOAL_SEC(5)));
    assert_int_equal(got, 8);
    T_OK(shoal_queue_shutdown(q));
    assert_int_equal(shoal_queue_get(q, &got, sizeof(got), &len, SHOAL_SEC(5)),
                     SHOAL_EEOF);
    t_kill(reuse);
    T_OK(shoal_queue_close(q));
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pair_child_dies_untouched),
        cmocka_unit_test(test_end_held_by_three_writers),
        cmocka_unit_test(test_anonymous_lives_while_child_uses_it),
        cmocka_unit_test(test_owner_pid_reused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
