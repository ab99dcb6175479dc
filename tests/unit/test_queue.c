/* test_queue.c — Queue: typed and variable-size, MPMC and SPSC, timeouts, shutdown,
 * batches, zero-copy loans, counters, bad input, and real processes on both sides. */
#include <stdatomic.h>

#include "internal.h"
#include "testutil.h"

static const shoal_type pair_type = {
    .name = "test.Pair", .layout_hash = 0x1122334455667788ULL, .size = 16, .align = 8};

static shoal_queue *make(const char *name, const shoal_type *type, size_t max_msg,
                         size_t cap, int spsc)
{
    shoal_queue_config cfg = {
        .type = type, .max_msg = max_msg, .capacity = cap, .spsc = spsc};
    shoal_queue *q = NULL;
    T_OK(shoal_queue_open(&q, name, SHOAL_CREATE, &cfg, NULL));
    return q;
}

/* FIFO order, full and empty try forms, counters — for MPMC and SPSC. */
static void typed_basics(int spsc)
{
    shoal_queue *q =
        make(spsc ? "typed-spsc" : "typed-mpmc", shoal_typecode('i'), 0, 4, spsc);
    int32_t v, got;
    size_t len = 0;
    assert_int_equal(shoal_queue_try_get(q, &got, sizeof(got), &len), SHOAL_EAGAIN);
    for (v = 1; v <= 4; v++)
        T_OK(shoal_queue_try_put(q, &v, sizeof(v)));
    assert_int_equal(shoal_queue_try_put(q, &v, sizeof(v)), SHOAL_EAGAIN);
    shoal_queue_stats st;
    T_OK(shoal_queue_stats_get(q, &st));
    assert_int_equal(st.capacity, 4);
    assert_int_equal(st.depth, 4);
    assert_int_equal(st.puts, 4);
    assert_int_equal(st.spsc, spsc);
    for (int round = 0; round < 3; round++) /* wrap around a few times */
        for (int32_t want = 1; want <= 4; want++) {
            T_OK(shoal_queue_get(q, &got, sizeof(got), &len, SHOAL_MS(100)));
            assert_int_equal(got, want);
            assert_int_equal(len, 4);
            if (round < 2)
                T_OK(shoal_queue_put(q, &want, sizeof(want), SHOAL_MS(100)));
        }
    T_OK(shoal_queue_stats_get(q, &st));
    assert_int_equal(st.puts, 12);
    assert_int_equal(st.gets, 12);
    assert_int_equal(st.depth, 0);
    shoal_queue_close(q);
}

static void test_typed_mpmc(void **state)
{
    (void)state;
    typed_basics(0);
}

static void test_typed_spsc(void **state)
{
    (void)state;
    typed_basics(1);
}

/* Variable-size messages, including a buffer too small for the next one. */
static void var_basics(int spsc)
{
    shoal_queue *q = make(spsc ? "var-spsc" : "var-mpmc", NULL, 100, 8, spsc);
    const char *msgs[] = {"", "a", "hello world",
                          "0123456789012345678901234567890123456789"};
    for (int i = 0; i < 4; i++)
        T_OK(shoal_queue_put(q, msgs[i], strlen(msgs[i]), SHOAL_NOWAIT));
    char buf[128];
    size_t len;
    for (int i = 0; i < 4; i++) {
        if (i == 3) { /* too small: the message stays, len says how big */
            len = 0;
            assert_int_equal(shoal_queue_get(q, buf, 10, &len, SHOAL_NOWAIT),
                             SHOAL_EMSGSIZE);
            assert_int_equal(len, 40);
            assert_non_null(strstr(shoal_errdetail(), "40 bytes"));
        }
        T_OK(shoal_queue_get(q, buf, sizeof(buf), &len, SHOAL_NOWAIT));
        assert_int_equal(len, strlen(msgs[i]));
        assert_memory_equal(buf, msgs[i], len);
    }
    /* An empty message may come without a buffer, and be taken into none. */
    T_OK(shoal_queue_put(q, NULL, 0, SHOAL_NOWAIT));
    len = 1;
    T_OK(shoal_queue_get(q, NULL, 0, &len, SHOAL_NOWAIT));
    assert_int_equal(len, 0);
    shoal_queue_close(q);
}

static void test_var_mpmc(void **state)
{
    (void)state;
    var_basics(0);
}

static void test_var_spsc(void **state)
{
    (void)state;
    var_basics(1);
}

/* Timeouts expire on time and are counted as waits. */
static void test_timeouts(void **state)
{
    (void)state;
    for (int spsc = 0; spsc < 2; spsc++) {
        shoal_queue *q =
            make(spsc ? "to-spsc" : "to-mpmc", shoal_typecode('l'), 0, 1, spsc);
        int64_t v = 7;
        size_t len;
        int64_t t0 = shoal__now_ns();
        assert_int_equal(shoal_queue_get(q, &v, sizeof(v), &len, SHOAL_MS(60)),
                         SHOAL_ETIMEDOUT);
        int64_t dt = shoal__now_ns() - t0;
        assert_true(dt >= SHOAL_MS(60) && dt < SHOAL_SEC(2));
        assert_non_null(strstr(shoal_errdetail(), "timed out"));
        T_OK(shoal_queue_put(q, &v, sizeof(v), SHOAL_NOWAIT));
        assert_int_equal(shoal_queue_put(q, &v, sizeof(v), SHOAL_MS(30)),
                         SHOAL_ETIMEDOUT);
        shoal_queue_stats st;
        T_OK(shoal_queue_stats_get(q, &st));
        assert_int_equal(st.empty_waits, 1);
        assert_int_equal(st.full_waits, 1);
        shoal_queue_close(q);
    }
}

/* Shutdown: puts fail, gets drain then see the end of the stream. */
static void test_shutdown(void **state)
{
    (void)state;
    for (int spsc = 0; spsc < 2; spsc++) {
        shoal_queue *q =
            make(spsc ? "sd-spsc" : "sd-mpmc", shoal_typecode('i'), 0, 8, spsc);
        int32_t v = 5, got;
        size_t len;
        T_OK(shoal_queue_put(q, &v, sizeof(v), SHOAL_NOWAIT));
        T_OK(shoal_queue_shutdown(q));
        assert_int_equal(shoal_queue_put(q, &v, sizeof(v), SHOAL_NOWAIT), SHOAL_ECLOSED);
        assert_non_null(strstr(shoal_errdetail(), "shut down"));
        void *slot;
        assert_int_equal(shoal_queue_loan(q, &slot, NULL, SHOAL_NOWAIT), SHOAL_ECLOSED);
        T_OK(shoal_queue_get(q, &got, sizeof(got), &len, SHOAL_FOREVER));
        assert_int_equal(got, 5);
        assert_int_equal(shoal_queue_get(q, &got, sizeof(got), &len, SHOAL_FOREVER),
                         SHOAL_EEOF);
        assert_int_equal(shoal_queue_try_get(q, &got, sizeof(got), &len), SHOAL_EEOF);
        shoal_queue_stats st;
        T_OK(shoal_queue_stats_get(q, &st));
        assert_true(st.closed);
        shoal_queue_close(q);
    }
}

/* Batches move as many as fit, waiting only for the first. */
static void test_batches(void **state)
{
    (void)state;
    for (int spsc = 0; spsc < 2; spsc++) {
        shoal_queue *q =
            make(spsc ? "b-spsc" : "b-mpmc", shoal_typecode('i'), 0, 8, spsc);
        int32_t in[10], out[10];
        for (int i = 0; i < 10; i++)
            in[i] = i * i;
        size_t done = 99;
        T_OK(shoal_queue_put_batch(q, in, 10, &done, SHOAL_NOWAIT));
        assert_int_equal(done, 8);
        assert_int_equal(shoal_queue_put_batch(q, in + 8, 2, &done, SHOAL_MS(10)),
                         SHOAL_ETIMEDOUT);
        assert_int_equal(done, 0);
        T_OK(shoal_queue_get_batch(q, out, 5, &done, SHOAL_NOWAIT));
        assert_int_equal(done, 5);
        T_OK(shoal_queue_put_batch(q, in + 8, 2, &done, SHOAL_NOWAIT));
        assert_int_equal(done, 2);
        T_OK(shoal_queue_get_batch(q, out + 5, 10, &done, SHOAL_FOREVER));
        assert_int_equal(done, 5);
        assert_memory_equal(in, out, sizeof(in));
        assert_int_equal(shoal_queue_get_batch(q, out, 10, &done, SHOAL_NOWAIT),
                         SHOAL_EAGAIN);
        shoal_queue_close(q);
    }
    shoal_queue *v = make("b-var", NULL, 16, 8, 0);
    size_t done;
    assert_int_equal(shoal_queue_put_batch(v, "abcd", 1, &done, SHOAL_NOWAIT),
                     SHOAL_EINVAL);
    shoal_queue_close(v);
}

/* Zero-copy: write in place and commit; peek in place and release. */
static void test_loan_peek(void **state)
{
    (void)state;
    for (int spsc = 0; spsc < 2; spsc++) {
        shoal_queue *q = make(spsc ? "z-spsc" : "z-mpmc", NULL, 64, 4, spsc);
        void *slot;
        size_t cap;
        T_OK(shoal_queue_loan(q, &slot, &cap, SHOAL_NOWAIT));
        assert_int_equal(cap, 64);
        if (spsc) { /* one loan at a time */
            void *again;
            assert_int_equal(shoal_queue_loan(q, &again, NULL, SHOAL_NOWAIT),
                             SHOAL_EINVAL);
        }
        assert_int_equal(shoal_queue_commit(q, slot, 65), SHOAL_EMSGSIZE);
        int local;
        assert_int_equal(shoal_queue_commit(q, &local, 4), SHOAL_EINVAL);
        memcpy(slot, "in place", 8);
        T_OK(shoal_queue_commit(q, slot, 8));
        assert_int_equal(shoal_queue_commit(q, slot, 8), SHOAL_EINVAL); /* not twice */
        const void *msg;
        size_t len;
        T_OK(shoal_queue_peek(q, &msg, &len, SHOAL_NOWAIT));
        assert_int_equal(len, 8);
        assert_memory_equal(msg, "in place", 8);
        assert_int_equal(shoal_queue_release(q, &local), SHOAL_EINVAL);
        T_OK(shoal_queue_release(q, msg));
        assert_int_equal(shoal_queue_peek(q, &msg, &len, SHOAL_NOWAIT), SHOAL_EAGAIN);
        shoal_queue_stats st;
        T_OK(shoal_queue_stats_get(q, &st));
        assert_int_equal(st.puts, 1);
        assert_int_equal(st.gets, 1);
        shoal_queue_close(q);
    }
}

/* Each kind of bad input gets its own error and a detail naming the queue. */
static void test_bad_input(void **state)
{
    (void)state;
    shoal_queue *q = make("bad", &pair_type, 0, 4, 0), *o;
    char big[32] = {0};
    assert_int_equal(shoal_queue_put(q, big, 8, SHOAL_NOWAIT), SHOAL_EMSGSIZE);
    assert_non_null(strstr(shoal_errdetail(), "queue \"bad\""));
    assert_non_null(strstr(shoal_errdetail(), "16 bytes"));
    /* wrong type on open: both types named */
    shoal_queue_config cfg = {.type = shoal_typecode('d')};
    assert_int_equal(shoal_queue_open(&o, "bad", SHOAL_OPEN, &cfg, NULL), SHOAL_ELAYOUT);
    assert_non_null(strstr(shoal_errdetail(), "test.Pair"));
    assert_non_null(strstr(shoal_errdetail(), "float64"));
    /* variable-size expected, fixed-size found */
    cfg = (shoal_queue_config){.max_msg = 16};
    assert_int_equal(shoal_queue_open(&o, "bad", SHOAL_OPEN, &cfg, NULL), SHOAL_ELAYOUT);
    /* spsc and capacity are creation parameters: an opener gets the queue as made */
    cfg = (shoal_queue_config){.type = &pair_type, .spsc = 1, .capacity = 99};
    T_OK(shoal_queue_open(&o, "bad", SHOAL_OPEN, &cfg, NULL));
    shoal_queue_stats made;
    T_OK(shoal_queue_stats_get(o, &made));
    assert_int_equal(made.spsc, 0);
    assert_int_not_equal(made.capacity, 99);
    shoal_queue_close(o);
    /* the right type, or none, opens it */
    cfg = (shoal_queue_config){.type = &pair_type};
    T_OK(shoal_queue_open(&o, "bad", SHOAL_OPEN, &cfg, NULL));
    shoal_queue_close(o);
    T_OK(shoal_queue_open(&o, "bad", SHOAL_OPEN, NULL, NULL));
    shoal_queue_stats st;
    T_OK(shoal_queue_stats_get(o, &st));
    assert_int_equal(st.max_msg, 16);
    shoal_queue_close(o);
    shoal_queue_close(q);

    q = make("badvar", NULL, 32, 4, 0);
    assert_int_equal(shoal_queue_put(q, big, 33, SHOAL_NOWAIT), SHOAL_EMSGSIZE);
    assert_non_null(strstr(shoal_errdetail(), "maximum of 32"));
    cfg = (shoal_queue_config){.max_msg = 64};
    assert_int_equal(shoal_queue_open(&o, "badvar", SHOAL_OPEN, &cfg, NULL),
                     SHOAL_ELAYOUT);
    cfg = (shoal_queue_config){.max_msg = 0}; /* any variable-size queue */
    T_OK(shoal_queue_open(&o, "badvar", SHOAL_OPEN, &cfg, NULL));
    shoal_queue_close(o);
    shoal_queue_close(q);

    /* creation needs a sane configuration */
    assert_int_equal(shoal_queue_open(&o, "nocfg", SHOAL_CREATE, NULL, NULL),
                     SHOAL_EINVAL);
    cfg = (shoal_queue_config){0};
    assert_int_equal(shoal_queue_open(&o, "nocfg", SHOAL_CREATE, &cfg, NULL),
                     SHOAL_EINVAL);
    cfg = (shoal_queue_config){.max_msg = 8, .capacity = (size_t)1 << 31};
    assert_int_equal(shoal_queue_open(&o, "nocfg", SHOAL_CREATE, &cfg, NULL),
                     SHOAL_EINVAL);
    assert_int_equal(shoal_queue_open(&o, "missing", SHOAL_OPEN, NULL, NULL),
                     SHOAL_ENOENT);
    assert_int_equal(shoal_queue_open(&o, "a/b", SHOAL_OPEN, NULL, NULL), SHOAL_ENAME);
    /* another kind of object under that name */
    shoal_pipe *p0, *p1;
    cfg = (shoal_queue_config){.max_msg = 8};
    T_OK(shoal_pipe_pair(&p0, &p1, "apipe", &cfg, NULL));
    assert_int_equal(shoal_queue_open(&o, "apipe", SHOAL_OPEN, NULL, NULL), SHOAL_EKIND);
    shoal_pipe_close(p0);
    shoal_pipe_close(p1);
    assert_int_equal(shoal_queue_put(NULL, big, 1, 0), SHOAL_EINVAL);
}

/* ---- across processes -------------------------------------------------------------- */

struct xargs {
    const char *name;
    int n;
    int spsc;
};

static int producer(void *arg)
{
    struct xargs *a = arg;
    shoal_queue *q;
    if (shoal_queue_open(&q, a->name, SHOAL_OPEN, NULL, NULL))
        return 2;
    for (int64_t i = 0; i < a->n; i++)
        if (shoal_queue_put(q, &i, sizeof(i), SHOAL_SEC(20)))
            return 3;
    shoal_queue_shutdown(q);
    shoal_queue_close(q);
    return 0;
}

/* A producer process feeds a consumer (this one) through a small queue, both sleeping
 * on futexes (no spinning), and ends the stream with shutdown. */
static void test_across_processes(void **state)
{
    (void)state;
    for (int spsc = 0; spsc < 2; spsc++) {
        for (int64_t spin = 0; spin <= 20000; spin += 20000) {
            shoal_set_spin_ns(spin);
            char name[32];
            snprintf(name, sizeof(name), "x-%d-%d", spsc, (int)spin);
            shoal_queue *q = make(name, shoal_typecode('l'), 0, 4, spsc);
            struct xargs a = {name, 20000, spsc};
            pid_t pid = t_fork(producer, &a);
            int64_t got, want = 0;
            size_t len;
            int rc;
            while ((rc = shoal_queue_get(q, &got, sizeof(got), &len, SHOAL_SEC(20))) == 0)
                assert_int_equal(got, want++);
            assert_int_equal(rc, SHOAL_EEOF);
            assert_int_equal(want, a.n);
            assert_int_equal(t_wait(pid), 0);
            shoal_queue_stats st;
            T_OK(shoal_queue_stats_get(q, &st));
            assert_int_equal(st.gets, a.n);
            shoal_queue_close(q);
        }
    }
    shoal_set_spin_ns(20000);
}

static int blocked_getter(void *arg)
{
    shoal_queue *q = arg;
    int64_t v;
    size_t len;
    return shoal_queue_get(q, &v, sizeof(v), &len, SHOAL_SEC(20)) == SHOAL_EEOF ? 0 : 1;
}

/* Shutdown wakes consumers asleep in other processes; an anonymous queue is shared
 * with children through fork. */
static void test_shutdown_wakes_sleepers(void **state)
{
    (void)state;
    shoal_queue_config cfg = {.type = shoal_typecode('l')};
    shoal_queue *q;
    T_OK(shoal_queue_open(&q, NULL, SHOAL_CREATE, &cfg, NULL));
    assert_non_null(strstr(shoal_queue_name(q), "anon"));
    pid_t kids[3];
    for (int i = 0; i < 3; i++)
        kids[i] = t_fork(blocked_getter, q);
    usleep(100000);
    int64_t t0 = shoal__now_ns();
    T_OK(shoal_queue_shutdown(q));
    for (int i = 0; i < 3; i++)
        assert_int_equal(t_wait(kids[i]), 0);
    assert_true(shoal__now_ns() - t0 < SHOAL_SEC(2));
    shoal_queue_close(q);
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_typed_mpmc),
        cmocka_unit_test(test_typed_spsc),
        cmocka_unit_test(test_var_mpmc),
        cmocka_unit_test(test_var_spsc),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_shutdown),
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_loan_peek),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_across_processes),
        cmocka_unit_test(test_shutdown_wakes_sleepers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
