/* test_queue_crash.c — producers and consumers SIGKILLed at exact instants (between
 * reserving and committing a slot, between claiming and releasing a message, asleep)
 * and at random instants: the queue never wedges, and no committed message is lost or
 * delivered twice. */

#include "internal.h"
#include "queue_internal.h"
#include "testutil.h"

static shoal_queue *make(const char *name, int spsc, size_t cap)
{
    shoal_queue_config cfg = {.type = shoal_typecode('l'), .capacity = cap, .spsc = spsc};
    shoal_queue *q;
    T_OK(shoal_queue_open(&q, name, SHOAL_CREATE, &cfg, NULL));
    return q;
}

static int64_t get1(shoal_queue *q, shoal_duration timeout)
{
    int64_t v;
    size_t len;
    int rc = shoal_queue_get(q, &v, sizeof(v), &len, timeout);
    if (rc)
        fail_msg("get: %s: %s", shoal_strerror(rc), shoal_errdetail());
    return v;
}

static void put1(shoal_queue *q, int64_t v)
{
    T_OK(shoal_queue_put(q, &v, sizeof(v), SHOAL_SEC(5)));
}

struct role {
    shoal_queue *q;
    int64_t first, n; /* producer: values first..first+n-1 */
    bool peek;        /* consumer: peek instead of get */
};

/* Puts `n` values unpaused, then arms the pause point and puts one more. */
static int producer(void *arg)
{
    struct role *r = arg;
    shoal__test_pause_at(NULL);
    for (int64_t i = 0; i < r->n; i++)
        if (shoal_queue_put(r->q, &(int64_t){r->first + i}, 8, SHOAL_SEC(5)))
            return 2;
    shoal__test_pause_at("queue.reserved");
    int64_t last = -1;
    shoal_queue_put(r->q, &last, 8, SHOAL_SEC(5));
    return 0;
}

static int consumer(void *arg)
{
    struct role *r = arg;
    int64_t v;
    size_t len;
    const void *msg;
    if (r->peek)
        return shoal_queue_peek(r->q, &msg, &len, SHOAL_SEC(5)) ? 2 : 0;
    return shoal_queue_get(r->q, &v, sizeof(v), &len, SHOAL_SEC(5)) ? 2 : 0;
}

/* A producer killed between reserving and committing: what it committed before is
 * delivered once, the reservation is skipped, and others' messages behind it flow. */
static void producer_killed_reserved(int spsc)
{
    shoal_queue *q = make(spsc ? "pk-spsc" : "pk-mpmc", spsc, 8);
    struct role r = {q, 100, 3, false};
    pid_t pid = t_fork_paused("queue.reserved", producer, &r);
    assert_true(pid > 0);
    if (!spsc) /* another producer's message lands behind the stuck reservation */
        put1(q, 200);
    t_kill(pid);
    for (int64_t i = 0; i < 3; i++)
        assert_int_equal(get1(q, SHOAL_SEC(5)), 100 + i);
    if (!spsc)
        assert_int_equal(get1(q, SHOAL_SEC(5)), 200); /* not -1, and no hang */
    int64_t v;
    size_t len;
    assert_int_equal(shoal_queue_try_get(q, &v, sizeof(v), &len), SHOAL_EAGAIN);
    /* the queue keeps working, all the way round */
    for (int64_t i = 0; i < 20; i++) {
        put1(q, i);
        assert_int_equal(get1(q, SHOAL_SEC(5)), i);
    }
    shoal_queue_stats st;
    T_OK(shoal_queue_stats_get(q, &st));
    assert_int_equal(st.puts, st.gets);
    assert_int_equal(st.depth, 0);
    shoal_queue_close(q);
}

static void test_producer_killed_reserved_mpmc(void **state)
{
    (void)state;
    producer_killed_reserved(0);
}

static void test_producer_killed_reserved_spsc(void **state)
{
    (void)state;
    producer_killed_reserved(1);
}

/* A consumer killed between claiming (even copying) and releasing: the message goes to
 * another consumer, exactly once. */
static void consumer_killed_claimed(int spsc, bool peek)
{
    shoal_queue *q = make(spsc ? "ck-spsc" : "ck-mpmc", spsc, 4);
    for (int64_t i = 1; i <= 4; i++)
        put1(q, i);
    struct role r = {q, 0, 0, peek};
    pid_t pid = t_fork_paused("queue.claimed", consumer, &r);
    assert_true(pid > 0);
    t_kill(pid);
    bool seen[5] = {false};
    for (int i = 0; i < 4; i++) {
        int64_t v = get1(q, SHOAL_SEC(5));
        assert_true(v >= 1 && v <= 4);
        assert_false(seen[v]);
        seen[v] = true;
    }
    int64_t v;
    size_t len;
    assert_int_equal(shoal_queue_try_get(q, &v, sizeof(v), &len), SHOAL_EAGAIN);
    /* the full queue had no room until the message came back; now it has all of it */
    for (int64_t i = 0; i < 4; i++)
        T_OK(shoal_queue_try_put(q, &i, sizeof(i)));
    shoal_queue_stats st;
    T_OK(shoal_queue_stats_get(q, &st));
    assert_int_equal(st.gets, 4);
    shoal_queue_close(q);
}

static void test_consumer_killed_claimed_mpmc(void **state)
{
    (void)state;
    consumer_killed_claimed(0, false);
    shoal_unlink("ck-mpmc", NULL);
    consumer_killed_claimed(0, true);
}

static void test_consumer_killed_claimed_spsc(void **state)
{
    (void)state;
    consumer_killed_claimed(1, false);
    shoal_unlink("ck-spsc", NULL);
    consumer_killed_claimed(1, true);
}

/* A consumer killed while asleep leaves a stale sleeper count: it costs a wake-up
 * call, nothing else. The living sleeper still gets the message, then the shutdown. */
static int sleeper(void *arg)
{
    int64_t v = 0;
    size_t len;
    if (shoal_queue_get(arg, &v, sizeof(v), &len, SHOAL_SEC(10)) != 0 || v != 1)
        return 1;
    return shoal_queue_get(arg, &v, sizeof(v), &len, SHOAL_SEC(10)) == SHOAL_EEOF ? 0 : 2;
}

static void test_killed_asleep(void **state)
{
    (void)state;
    shoal_set_spin_ns(0);
    shoal_queue *q = make("asleep", 0, 4);
    pid_t dead = t_fork(sleeper, q);
    usleep(100000);
    t_kill(dead);
    pid_t live = t_fork(sleeper, q);
    usleep(100000);
    put1(q, 1);
    T_OK(shoal_queue_shutdown(q));
    assert_int_equal(t_wait(live), 0);
    shoal_queue_close(q);
    shoal_set_spin_ns(20000);
}

/* Sleepers for the count test: a consumer of an empty queue, a producer of a full one,
 * each asleep (untimed) until killed. */
static int sleep_getting(void *arg)
{
    int64_t v;
    size_t len;
    return shoal_queue_get(arg, &v, sizeof(v), &len, SHOAL_FOREVER) ? 1 : 0;
}

static int sleep_putting(void *arg)
{
    int64_t v = 99;
    return shoal_queue_put(arg, &v, sizeof(v), SHOAL_FOREVER) ? 1 : 0;
}

static bool sleepers_reach(shoal_queue *q, bool producers, uint32_t n)
{
    int64_t end = shoal__now_ns() + SHOAL_SEC(10);
    while (shoal__queue_sleepers(q, producers) != n)
        if (shoal__now_ns() > end)
            return false;
        else
            usleep(1000);
    return true;
}

/* Sleepers SIGKILLed asleep leave the count too high only until the next waker: it
 * takes every sleeper off the count as it wakes them, and the count is the truth
 * again (no more futex-wake calls). */
static void stale_sleepers(int spsc)
{
    enum { N = 3 };
    shoal_set_spin_ns(0);
    shoal_queue *q = make(spsc ? "count-spsc" : "count-mpmc", spsc, 2);
    pid_t pids[N];
    /* Consumers of an empty queue (one for SPSC: a second consumer would be misuse,
     * but the count is the same mechanism). */
    int n = spsc ? 1 : N;
    for (int i = 0; i < n; i++)
        pids[i] = t_fork(sleep_getting, q);
    assert_true(sleepers_reach(q, false, (uint32_t)n));
    for (int i = 0; i < n; i++) /* counted and in the kernel */
        assert_true(t_wait_asleep(pids[i], SHOAL_SEC(10)));
    for (int i = 0; i < n; i++)
        t_kill(pids[i]);
    assert_int_equal(shoal__queue_sleepers(q, false), (uint32_t)n); /* until a waker */
    put1(q, 1);
    assert_true(sleepers_reach(q, false, 0));
    put1(q, 2); /* full now */
    for (int i = 0; i < n; i++)
        pids[i] = t_fork(sleep_putting, q);
    assert_true(sleepers_reach(q, true, (uint32_t)n));
    for (int i = 0; i < n; i++)
        assert_true(t_wait_asleep(pids[i], SHOAL_SEC(10)));
    for (int i = 0; i < n; i++)
        t_kill(pids[i]);
    assert_int_equal(shoal__queue_sleepers(q, true), (uint32_t)n);
    assert_int_equal(get1(q, SHOAL_SEC(5)), 1);
    assert_true(sleepers_reach(q, true, 0));
    assert_int_equal(get1(q, SHOAL_SEC(5)), 2);
    /* A live sleeper is still counted and woken. */
    pid_t live = t_fork(sleep_getting, q);
    assert_true(sleepers_reach(q, false, 1));
    put1(q, 3);
    assert_int_equal(t_wait(live), 0);
    assert_int_equal(shoal__queue_sleepers(q, false), 0);
    shoal_queue_close(q);
    shoal_set_spin_ns(20000);
}

static void test_stale_sleepers_mpmc(void **state)
{
    (void)state;
    stale_sleepers(0);
}

static void test_stale_sleepers_spsc(void **state)
{
    (void)state;
    stale_sleepers(1);
}

/* Producers SIGKILLed at random instants while putting as fast as they can: what the
 * consumer receives is, per producer, strictly increasing, and its count equals the
 * queue's put counter (every committed message delivered, once). */
static int flood(void *arg)
{
    struct role *r = arg;
    for (int64_t i = r->first;; i++)
        if (shoal_queue_put(r->q, &i, sizeof(i), SHOAL_SEC(5)))
            return 2;
}

static void random_kills(int spsc)
{
    shoal_queue *q = make(spsc ? "rk-spsc" : "rk-mpmc", spsc, 64);
    srand(1234);
    int64_t received = 0, last[2] = {-1, -1};
    for (int round = 0; round < 30; round++) {
        struct role r[2] = {{q, 0, 0, false}, {q, (int64_t)1 << 40, 0, false}};
        int nprod = spsc ? 1 : 2;
        pid_t pids[2];
        for (int k = 0; k < nprod; k++) {
            r[k].first += round * ((int64_t)1 << 32);
            pids[k] = t_fork(flood, &r[k]);
        }
        int64_t until = shoal__now_ns() + 1000000 + rand() % 5000000;
        int64_t v;
        size_t len;
        while (shoal__now_ns() < until)
            if (shoal_queue_get(q, &v, sizeof(v), &len, SHOAL_MS(1)) == 0) {
                int k = v >= ((int64_t)1 << 40);
                assert_true(v > last[k]);
                last[k] = v;
                received++;
            }
        for (int k = 0; k < nprod; k++)
            t_kill(pids[k]);
        while (shoal_queue_get(q, &v, sizeof(v), &len, SHOAL_MS(100)) == 0) {
            int k = v >= ((int64_t)1 << 40);
            assert_true(v > last[k]);
            last[k] = v;
            received++;
        }
    }
    shoal_queue_stats st;
    T_OK(shoal_queue_stats_get(q, &st));
    assert_int_equal(st.puts, received);
    assert_int_equal(st.gets, received);
    assert_true(received > 0); /* how many depends on the machine's load, not on us */
    shoal_queue_close(q);
}

static void test_random_kills_mpmc(void **state)
{
    (void)state;
    random_kills(0);
}

static void test_random_kills_spsc(void **state)
{
    (void)state;
    random_kills(1);
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_producer_killed_reserved_mpmc),
        cmocka_unit_test(test_producer_killed_reserved_spsc),
        cmocka_unit_test(test_consumer_killed_claimed_mpmc),
        cmocka_unit_test(test_consumer_killed_claimed_spsc),
        cmocka_unit_test(test_killed_asleep),
        cmocka_unit_test(test_stale_sleepers_mpmc),
        cmocka_unit_test(test_stale_sleepers_spsc),
        cmocka_unit_test(test_random_kills_mpmc),
        cmocka_unit_test(test_random_kills_spsc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
