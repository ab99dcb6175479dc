/* test_readyfd.c — readiness descriptors: a pipe end's descriptor readable exactly
 * while a message or end-of-stream is there (poll(2) from the process, messages from
 * another one), a queue's, a dead peer, fork children, and no descriptor leaked. */
#include <fcntl.h>
#include <poll.h>
#include <sys/select.h>

#include "internal.h"
#include "testutil.h"

static const shoal_queue_config var64 = {.max_msg = 64, .capacity = 8};

/* Whether fd is readable within ms milliseconds. */
static bool readable(int fd, int ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n;
    while ((n = poll(&pfd, 1, ms)) < 0 && errno == EINTR)
        ;
    return n == 1 && (pfd.revents & POLLIN);
}

static void test_pipe_fd_follows_poll(void **state)
{
    (void)state;
    shoal_pipe *a, *b;
    T_OK(shoal_pipe_pair(&a, &b, NULL, &var64, NULL));
    int fd = shoal_pipe_fd(b);
    assert_true(fd >= 0);
    assert_int_equal(shoal_pipe_fd(b), fd);
    assert_false(readable(fd, 50));
    T_OK(shoal_pipe_send(a, "one", 3, SHOAL_NOWAIT));
    T_OK(shoal_pipe_send(a, "two", 3, SHOAL_NOWAIT));
    assert_true(readable(fd, 5000));
    char buf[64];
    size_t len;
    T_OK(shoal_pipe_recv(b, buf, sizeof(buf), &len, SHOAL_NOWAIT));
    assert_true(readable(fd, 0)); /* one is left */
    T_OK(shoal_pipe_recv(b, buf, sizeof(buf), &len, SHOAL_NOWAIT));
    assert_false(readable(fd, 0)); /* clear as soon as recv returns */
    /* the other direction does not make this end readable */
    T_OK(shoal_pipe_send(b, "back", 4, SHOAL_NOWAIT));
    assert_false(readable(fd, 50));
    /* again and again: each message turns it readable, each receive clears it */
    for (int i = 0; i < 100; i++) {
        T_OK(shoal_pipe_send(a, "x", 1, SHOAL_NOWAIT));
        assert_true(readable(fd, 5000));
        T_OK(shoal_pipe_recv(b, buf, sizeof(buf), &len, SHOAL_NOWAIT));
        assert_false(readable(fd, 0));
    }
    /* end-of-stream is readable for good */
    T_OK(shoal_pipe_close(a));
    assert_true(readable(fd, 5000));
    assert_int_equal(shoal_pipe_recv(b, buf, sizeof(buf), &len, SHOAL_NOWAIT),
                     SHOAL_EEOF);
    assert_true(readable(fd, 0));
    T_OK(shoal_pipe_close(b));
    assert_int_equal(fcntl(fd, F_GETFD), -1); /* closed with the pipe */
}

/* A message sent by another process wakes select() on the descriptor. */
static int send_later(void *arg)
{
    shoal_pipe *a = arg;
    usleep(100 * 1000);
    if (shoal_pipe_send(a, "late", 4, SHOAL_SEC(5)))
        return 1;
    char buf[64];
    size_t len; /* stays alive until the parent has checked the descriptor */
    return shoal_pipe_recv(a, buf, sizeof(buf), &len, SHOAL_SEC(10)) ? 2 : 0;
}

static void test_select_across_processes(void **state)
{
    (void)state;
    shoal_pipe *a, *b;
    T_OK(shoal_pipe_pair(&a, &b, NULL, &var64, NULL));
    int fd = shoal_pipe_fd(b);
    assert_true(fd >= 0);
    pid_t child = t_fork(send_later, a);
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(fd, &rd);
    struct timeval tv = {.tv_sec = 10};
    assert_int_equal(select(fd + 1, &rd, NULL, NULL, &tv), 1);
    char buf[64];
    size_t len;
    T_OK(shoal_pipe_recv(b, buf, sizeof(buf), &len, SHOAL_NOWAIT));
    assert_memory_equal(buf, "late", 4);
    assert_false(readable(fd, 0));
    T_OK(shoal_pipe_send(b, "ack", 3, SHOAL_NOWAIT));
    /* the child exits holding end a (the parent handed it over by forking): the peer
     * is dead, which the descriptor reports */
    assert_int_equal(t_wait(child), 0);
    shoal_pipe_close(a);
    assert_true(readable(fd, 10000));
    assert_int_equal(shoal_pipe_recv(b, buf, sizeof(buf), &len, SHOAL_NOWAIT),
                     SHOAL_EPEERDEAD);
    shoal_pipe_close(b);
}

/* A fork child asking for the descriptor of an inherited end gets its own. */
struct fork_arg {
    shoal_pipe *b;
    int parent_fd;
};

static int child_uses_fd(void *arg)
{
    struct fork_arg *f = arg;
    int fd = shoal_pipe_fd(f->b);
    if (fd < 0)
        return 2;
    if (!readable(fd, 10000))
        return 3;
    char buf[64];
    size_t len;
    if (shoal_pipe_recv(f->b, buf, sizeof(buf), &len, SHOAL_NOWAIT) || len != 5)
        return 4;
    if (readable(fd, 0))
        return 5;
    shoal_pipe_close(f->b);
    return fcntl(f->parent_fd, F_GETFD) == -1 || fd == f->parent_fd ? 0 : 6;
}

static void test_fork_child_gets_its_own(void **state)
{
    (void)state;
    shoal_pipe *a, *b;
    T_OK(shoal_pipe_pair(&a, &b, NULL, &var64, NULL));
    struct fork_arg f = {.b = b, .parent_fd = shoal_pipe_fd(b)};
    assert_true(f.parent_fd >= 0);
    pid_t child = t_fork(child_uses_fd, &f);
    T_OK(shoal_pipe_send(a, "child", 5, SHOAL_NOWAIT));
    assert_int_equal(t_wait(child), 0);
    /* the child took the message: stale here until this process polls or receives */
    assert_int_equal(shoal_pipe_poll(b, SHOAL_NOWAIT), 0);
    assert_false(readable(f.parent_fd, 0));
    shoal_pipe_close(b);
    shoal_pipe_close(a);
}

static void test_queue_descriptor(void **state)
{
    (void)state;
    shoal_queue *q;
    T_OK(shoal_queue_open(&q, NULL, SHOAL_CREATE, &var64, NULL));
    T_OK(shoal_queue_put(q, "early", 5, SHOAL_NOWAIT));
    shoal_readyfd *r;
    T_OK(shoal_readyfd_open_queue(&r, q));
    int fd = shoal_readyfd_fd(r);
    assert_true(fd >= 0);
    assert_true(readable(fd, 0)); /* ready at once: the message was there */
    char buf[64];
    size_t len;
    T_OK(shoal_queue_get(q, buf, sizeof(buf), &len, SHOAL_NOWAIT));
    assert_true(readable(fd, 0)); /* stale until synced */
    T_OK(shoal_readyfd_sync(r));
    assert_false(readable(fd, 0));
    T_OK(shoal_queue_put(q, "later", 5, SHOAL_NOWAIT));
    assert_true(readable(fd, 5000));
    T_OK(shoal_readyfd_sync(r));
    assert_true(readable(fd, 0)); /* still there */
    shoal_readyfd_close(r);
    assert_int_equal(shoal_readyfd_open_queue(NULL, q), SHOAL_EINVAL);
    assert_int_equal(shoal_readyfd_fd(NULL), SHOAL_EINVAL);
    assert_int_equal(shoal_pipe_fd(NULL), SHOAL_EINVAL);
    shoal_readyfd_close(NULL);
    shoal_queue_close(q);
}

static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 4096; fd++)
        n += fcntl(fd, F_GETFD) != -1;
    return n;
}

/* 1,000 ends opened, given a descriptor and closed leave no descriptor behind. */
static void test_no_leak(void **state)
{
    (void)state;
    shoal_pipe *a, *b;
    T_OK(shoal_pipe_pair(&a, &b, NULL, &var64, NULL)); /* the helper is running */
    assert_true(shoal_pipe_fd(b) >= 0);
    int before = count_fds();
    for (int i = 0; i < 1000; i++) {
        shoal_pipe *x, *y;
        T_OK(shoal_pipe_pair(&x, &y, NULL, &var64, NULL));
        assert_true(shoal_pipe_fd(y) >= 0);
        if (i % 2)
            T_OK(shoal_pipe_send(x, "m", 1, SHOAL_NOWAIT));
        shoal_pipe_close(y);
        shoal_pipe_close(x);
    }
    assert_int_equal(count_fds(), before);
    shoal_pipe_close(b);
    shoal_pipe_close(a);
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipe_fd_follows_poll),
        cmocka_unit_test(test_select_across_processes),
        cmocka_unit_test(test_fork_child_gets_its_own),
        cmocka_unit_test(test_queue_descriptor),
        cmocka_unit_test(test_no_leak),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
