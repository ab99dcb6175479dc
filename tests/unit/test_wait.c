/* test_wait.c — shoal__wait and the waitables the event loop uses: each side becomes
 * ready when another process acts, times out when nothing happens, and reports a
 * terminal state (end of stream, closed, dead peer). */
#include <stdatomic.h>

#include "internal.h"
#include "testutil.h"
#include "wait.h"

static const shoal_queue_config qcfg = {.capacity = 2, .max_msg = 16};

/* Waits on w for at most ms milliseconds. */
static int wait_ms(const shoal__waitable *w, int ms)
{
    shoal__deadline d = shoal__deadline_from(SHOAL_MS(ms));
    return shoal__wait(w, &d);
}

static int put_later(void *arg)
{
    usleep(100 * 1000);
    return shoal_queue_put(arg, "hi", 2, SHOAL_SEC(5)) != 0;
}

static int get_later(void *arg)
{
    char buf[16];
    size_t n;
    usleep(100 * 1000);
    return shoal_queue_get(arg, buf, sizeof(buf), &n, SHOAL_SEC(5)) != 0;
}

static void test_queue_sides(void **state)
{
    (void)state;
    for (int spsc = 0; spsc < 2; spsc++) {
        shoal_queue_config cfg = qcfg;
        cfg.spsc = spsc;
        shoal_queue *q;
        T_OK(shoal_queue_open(&q, NULL, SHOAL_CREATE, &cfg, NULL));
        shoal__waitable rd, wr;
        T_OK(shoal__queue_waitable(q, false, &rd));
        T_OK(shoal__queue_waitable(q, true, &wr));
        assert_int_equal(wait_ms(&rd, 20), SHOAL_ETIMEDOUT);
        assert_int_equal(wait_ms(&wr, 0), 1);
        pid_t c = t_fork(put_later, q);
        assert_int_equal(wait_ms(&rd, 5000), 1);
        assert_int_equal(t_wait(c), 0);
        T_OK(shoal_queue_put(q, "x", 1, 0));
        assert_int_equal(wait_ms(&wr, 20), SHOAL_ETIMEDOUT); /* full */
        c = t_fork(get_later, q);
        assert_int_equal(wait_ms(&wr, 5000), 1);
        assert_int_equal(t_wait(c), 0);
        T_OK(shoal_queue_shutdown(q));
        assert_int_equal(wait_ms(&wr, 0), SHOAL_ECLOSED);
        char buf[16];
        size_t n;
        T_OK(shoal_queue_get(q, buf, sizeof(buf), &n, 0));
        assert_int_equal(wait_ms(&rd, 1000), SHOAL_EEOF);
        T_OK(shoal_queue_close(q));
    }
}

static void test_pipe_peer_dead(void **state)
{
    (void)state;
    shoal_pipe *a, *b;
    T_OK(shoal_pipe_pair(&a, &b, NULL, &qcfg, NULL));
    shoal__waitable rd;
    T_OK(shoal__pipe_waitable(a, false, &rd));
    assert_int_equal(wait_ms(&rd, 20), SHOAL_ETIMEDOUT);
    T_OK(shoal_pipe_send(b, "m", 1, 0));
    assert_int_equal(wait_ms(&rd, 1000), 1);
    char buf[16];
    size_t n;
    T_OK(shoal_pipe_recv(a, buf, sizeof(buf), &n, 0));
    T_OK(shoal_pipe_close(b));
    assert_int_equal(wait_ms(&rd, 2000), SHOAL_EEOF);
    T_OK(shoal_pipe_close(a));
}

static int set_later(void *arg)
{
    usleep(100 * 1000);
    return shoal_event_set(arg) != 0;
}

static int release_later(void *arg)
{
    usleep(100 * 1000);
    return shoal_sem_release(arg) != 0;
}

static void test_event_and_sem(void **state)
{
    (void)state;
    shoal_event *ev;
    shoal_sem *sem;
    T_OK(shoal_event_open(&ev, NULL, SHOAL_CREATE, NULL));
    T_OK(shoal_sem_open(&sem, NULL, SHOAL_CREATE, 0, NULL));
    shoal__waitable w;
    assert_int_equal(shoal__event_waitable(ev, true, &w), SHOAL_EINVAL);
    assert_int_equal(shoal__sem_waitable(sem, true, &w), SHOAL_EINVAL);
    T_OK(shoal__event_waitable(ev, false, &w));
    assert_int_equal(wait_ms(&w, 20), SHOAL_ETIMEDOUT);
    pid_t c = t_fork(set_later, ev);
    assert_int_equal(wait_ms(&w, 5000), 1);
    assert_int_equal(t_wait(c), 0);
    T_OK(shoal__sem_waitable(sem, false, &w));
    assert_int_equal(wait_ms(&w, 20), SHOAL_ETIMEDOUT);
    c = t_fork(release_later, sem);
    assert_int_equal(wait_ms(&w, 5000), 1);
    assert_int_equal(t_wait(c), 0);
    assert_int_equal(shoal_sem_value(sem), 1); /* the loop's wait does not take it */
    T_OK(shoal_event_close(ev));
    T_OK(shoal_sem_close(sem));
}

int main(void)
{
    t_setup_root();
    shoal_set_spin_ns(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_sides),
        cmocka_unit_test(test_pipe_peer_dead),
        cmocka_unit_test(test_event_and_sem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
