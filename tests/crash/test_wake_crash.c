/* test_wake_crash.c — the SPSC wake path and its exact shutdown (ring_spsc.c): a put
 * in flight when shutdown runs is delivered before the end of the stream, a producer
 * or a closer SIGKILLed inside their windows leaves nothing lost, duplicated or hung
 * (on rings of marked slots and of slots published by the tail alone),
 * and a process whose seccomp filter refuses membarrier takes the fenced wake path on
 * its own and shares rings with one on the membarrier path without losing a wake-up
 * (the test program runs itself again as that process). */

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "internal.h"
#include "ring_internal.h"
#include "testutil.h"

static shoal_queue *make(const char *name, size_t cap)
{
    shoal_queue_config cfg = {.type = shoal_typecode('l'), .capacity = cap, .spsc = 1};
    shoal_queue *q;
    T_OK(shoal_queue_open(&q, name, SHOAL_OPEN_OR_CREATE, &cfg, NULL));
    return q;
}

static int64_t get1(shoal_queue *q)
{
    int64_t v = 0;
    size_t len;
    int rc = shoal_queue_get(q, &v, sizeof(v), &len, SHOAL_SEC(5));
    if (rc)
        fail_msg("get: %s: %s", shoal_strerror(rc), shoal_errdetail());
    return v;
}

static int get_rc(shoal_queue *q, shoal_duration timeout)
{
    int64_t v;
    size_t len;
    return shoal_queue_get(q, &v, sizeof(v), &len, timeout);
}

/* Puts 7, reporting its result as the exit code (0: the put returned 0). */
static int put_seven(void *arg)
{
    int rc = shoal_queue_put(arg, &(int64_t){7}, 8, SHOAL_SEC(5));
    return rc == 0 ? 0 : rc == SHOAL_ECLOSED ? 3 : 4;
}

/* Shutdown runs while a put is between its check of `closed` and its publication:
 * shutdown returns at once, consumers see no end of stream while the put is in
 * flight, and the put, which returns 0, is delivered before the end. */
static void test_put_in_flight_delivered(void **state)
{
    (void)state;
    shoal_queue *q = make("inflight", 8);
    T_OK(shoal_queue_put(q, &(int64_t){1}, 8, 0));
    pid_t pid = t_fork_paused("queue.reserved", put_seven, q);
    assert_true(pid > 0);
    T_OK(shoal_queue_shutdown(q));
    assert_int_equal(get1(q), 1);
    assert_int_equal(get_rc(q, 0), SHOAL_EAGAIN); /* not the end: a put is in flight */
    assert_int_equal(get_rc(q, SHOAL_MS(50)), SHOAL_ETIMEDOUT);
    kill(pid, SIGCONT);
    assert_int_equal(get1(q), 7);
    assert_int_equal(t_wait(pid), 0);
    assert_int_equal(get_rc(q, SHOAL_SEC(5)), SHOAL_EEOF);
    assert_int_equal(shoal_queue_put(q, &(int64_t){8}, 8, 0), SHOAL_ECLOSED);
    shoal_queue_close(q);
}

/* A consumer asleep waiting for the in-flight put is woken by its publication. */
static int get_then_eof(void *arg)
{
    int64_t v = 0;
    size_t len;
    if (shoal_queue_get(arg, &v, sizeof(v), &len, SHOAL_SEC(10)) || v != 7)
        return 1;
    return get_rc(arg, SHOAL_SEC(10)) == SHOAL_EEOF ? 0 : 2;
}

static void test_put_in_flight_wakes_sleeper(void **state)
{
    (void)state;
    shoal_set_spin_ns(0);
    shoal_queue *q = make("inflight-sleep", 8);
    pid_t prod = t_fork_paused("queue.reserved", put_seven, q);
    assert_true(prod > 0);
    T_OK(shoal_queue_shutdown(q));
    pid_t cons = t_fork(get_then_eof, q);
    usleep(50000); /* the consumer goes to sleep on the in-flight put */
    kill(prod, SIGCONT);
    assert_int_equal(t_wait(prod), 0);
    assert_int_equal(t_wait(cons), 0);
    shoal_queue_close(q);
    shoal_set_spin_ns(20000);
}

/* A producer SIGKILLed inside a put, before or after publishing: what it published is
 * delivered once, then the end of the stream comes (no hang on its stale in-flight word).
 */
static void producer_killed_in_put(const char *name, const char *point, bool published)
{
    shoal_queue *q = make(name, 8);
    T_OK(shoal_queue_put(q, &(int64_t){1}, 8, 0));
    pid_t pid = t_fork_paused(point, put_seven, q);
    assert_true(pid > 0);
    T_OK(shoal_queue_shutdown(q));
    t_kill(pid);
    assert_int_equal(get1(q), 1);
    if (published)
        assert_int_equal(get1(q), 7);
    assert_int_equal(get_rc(q, SHOAL_SEC(5)), SHOAL_EEOF);
    assert_int_equal(get_rc(q, 0), SHOAL_EEOF);
    shoal_queue_stats st;
    T_OK(shoal_queue_stats_get(q, &st));
    assert_int_equal(st.puts, published ? 2 : 1);
    assert_int_equal(st.gets, st.puts);
    shoal_queue_close(q);
}

static void test_producer_killed_before_publishing(void **state)
{
    (void)state;
    producer_killed_in_put("killed-before", "queue.reserved", false);
}

static void test_producer_killed_after_publishing(void **state)
{
    (void)state;
    producer_killed_in_put("killed-after", "queue.published", true);
}

/* Killed between the slot's ready marker and the tail (ring_spsc.c): the message is
 * delivered, counted once, and the end of the stream still comes. */
static void test_producer_killed_after_marking(void **state)
{
    (void)state;
    producer_killed_in_put("killed-marked", "queue.marked", true);
}

/* Puts 7, 8 and 9 in one batch. */
static int put_batch_789(void *arg)
{
    int64_t v[3] = {7, 8, 9};
    size_t done = 0;
    return shoal_queue_put_batch(arg, v, 3, &done, SHOAL_SEC(5)) || done != 3;
}

/* A batch whose producer was killed after marking its slots, before the tail: its
 * messages are delivered once, and the next producer puts after them (it moves past
 * the marked slots) — across the ring's wrap, nothing lost or overwritten. */
static void test_marked_batch_then_replaced(void **state)
{
    (void)state;
    shoal_queue *q = make("marked-batch", 4);
    T_OK(shoal_queue_put(q, &(int64_t){1}, 8, 0));
    assert_int_equal(get1(q), 1);
    pid_t pid = t_fork_paused("queue.marked", put_batch_789, q);
    assert_true(pid > 0);
    t_kill(pid);
    shoal_queue_stats st;
    T_OK(shoal_queue_stats_get(q, &st));
    assert_int_equal(st.depth, 3);
    T_OK(shoal_queue_put(q, &(int64_t){10}, 8, 0));
    assert_int_equal(shoal_queue_put(q, &(int64_t){11}, 8, 0), SHOAL_EAGAIN); /* full */
    for (int64_t i = 7; i <= 10; i++)
        assert_int_equal(get1(q), i);
    for (int64_t i = 0; i < 10; i++) {
        T_OK(shoal_queue_put(q, &i, 8, SHOAL_SEC(5)));
        assert_int_equal(get1(q), i);
    }
    T_OK(shoal_queue_shutdown(q));
    assert_int_equal(get_rc(q, SHOAL_SEC(5)), SHOAL_EEOF);
    T_OK(shoal_queue_stats_get(q, &st));
    assert_int_equal(st.puts, 15);
    assert_int_equal(st.gets, 15);
    shoal_queue_close(q);
}

/* Elements of 64 and 1024 bytes: an SPSC ring of either has dense slots published by
 * the tail alone, with no marker (ring_spsc.c) — the 1024-byte one through the general
 * put and get, not the inline attempt. Each message is wide_size copies of one byte. */
#define WIDE_MAX 1024
static const shoal_type wide_types[] = {
    {.name = "test.Wide64", .layout_hash = 0x77640064, .size = 64, .align = 8},
    {.name = "test.Wide1024", .layout_hash = 0x77641024, .size = 1024, .align = 8},
};
static size_t wide_size = 64; /* the element size of the case running */

/* A queue of wide_size-byte elements named name-<size>. */
static shoal_queue *make_wide(const char *name)
{
    const shoal_type *t = wide_size == 64 ? &wide_types[0] : &wide_types[1];
    shoal_queue_config cfg = {.type = t, .capacity = 8, .spsc = 1};
    shoal_queue *q;
    char full[64];
    snprintf(full, sizeof(full), "%s-%zu", name, wide_size);
    T_OK(shoal_queue_open(&q, full, SHOAL_CREATE, &cfg, NULL));
    return q;
}

static int put_wide(shoal_queue *q, unsigned char v, shoal_duration timeout)
{
    unsigned char m[WIDE_MAX];
    memset(m, v, wide_size);
    return shoal_queue_put(q, m, wide_size, timeout);
}

static unsigned char get_wide(shoal_queue *q)
{
    unsigned char m[WIDE_MAX], ref[WIDE_MAX];
    size_t len = 0;
    int rc = shoal_queue_get(q, m, sizeof(m), &len, SHOAL_SEC(5));
    if (rc)
        fail_msg("get: %s: %s", shoal_strerror(rc), shoal_errdetail());
    assert_int_equal(len, wide_size);
    memset(ref, m[0], wide_size);
    assert_memory_equal(m, ref, wide_size); /* never a mix of two messages */
    return m[0];
}

static int put_wide_seven(void *arg)
{
    return put_wide(arg, 7, SHOAL_SEC(5)) ? 1 : 0;
}

/* Puts 7, 8 and 9 in one batch. */
static int put_wide_789(void *arg)
{
    static unsigned char m[3 * WIDE_MAX];
    for (int i = 0; i < 3; i++)
        memset(m + wide_size * (size_t)i, 7 + i, wide_size);
    size_t done = 0;
    return shoal_queue_put_batch(arg, m, 3, &done, SHOAL_SEC(5)) || done != 3;
}

/* Puts 7 through a loan, written in place and committed. */
static int put_wide_loaned(void *arg)
{
    void *slot;
    size_t cap = 0;
    if (shoal_queue_loan(arg, &slot, &cap, SHOAL_SEC(5)) || cap != wide_size)
        return 1;
    memset(slot, 7, wide_size);
    return shoal_queue_commit(arg, slot, wide_size) ? 1 : 0;
}

/* A producer of a tail-published ring SIGKILLed inside a put (at pause point `point`)
 * whose messages 7, 8, 9 (n of them) are published or not: then the next producer's
 * message 20 follows what was published and overwrites what was not, laps of the ring
 * go on, and shutdown ends the stream with every message delivered once. */
static void wide_killed(const char *name, const char *point, int (*put)(void *), int n,
                        bool published)
{
    shoal_queue *q = make_wide(name);
    T_OK(put_wide(q, 1, 0));
    pid_t pid = t_fork_paused(point, put, q);
    assert_true(pid > 0);
    t_kill(pid);
    int got = published ? n : 0;
    shoal_queue_stats st;
    T_OK(shoal_queue_stats_get(q, &st));
    assert_int_equal(st.depth, 1 + got);
    T_OK(put_wide(q, 20, 0));
    assert_int_equal(get_wide(q), 1);
    for (int i = 0; i < got; i++)
        assert_int_equal(get_wide(q), 7 + i);
    assert_int_equal(get_wide(q), 20);
    unsigned char m[WIDE_MAX];
    size_t len;
    assert_int_equal(shoal_queue_try_get(q, m, sizeof(m), &len), SHOAL_EAGAIN);
    for (unsigned char i = 30; i < 50; i++) { /* more than two laps */
        T_OK(put_wide(q, i, SHOAL_SEC(5)));
        assert_int_equal(get_wide(q), i);
    }
    T_OK(put_wide(q, 50, 0));
    T_OK(shoal_queue_shutdown(q));
    assert_int_equal(get_wide(q), 50);
    assert_int_equal(shoal_queue_get(q, m, sizeof(m), &len, SHOAL_SEC(5)), SHOAL_EEOF);
    T_OK(shoal_queue_stats_get(q, &st));
    assert_int_equal(st.puts, 23 + got);
    assert_int_equal(st.gets, st.puts);
    shoal_queue_close(q);
}

/* Killed between the slot write and the tail store ("queue.marked": no marker on this
 * ring) — nothing is published; before it too ("queue.reserved"); after it
 * ("queue.published") the message is there whole. A put, a batch, a loan's commit;
 * elements of one line and of sixteen. */
static void test_tail_published_killed(void **state)
{
    (void)state;
    static const size_t sizes[] = {64, 1024};
    for (size_t k = 0; k < 2; k++) {
        wide_size = sizes[k];
        wide_killed("wide-reserved", "queue.reserved", put_wide_seven, 1, false);
        wide_killed("wide-before-tail", "queue.marked", put_wide_seven, 1, false);
        wide_killed("wide-published", "queue.published", put_wide_seven, 1, true);
        wide_killed("wide-batch-before-tail", "queue.marked", put_wide_789, 3, false);
        wide_killed("wide-batch-published", "queue.published", put_wide_789, 3, true);
        wide_killed("wide-loan-before-tail", "queue.marked", put_wide_loaned, 1, false);
        wide_killed("wide-loan-published", "queue.published", put_wide_loaned, 1, true);
    }
}

/* A put in flight on a tail-published ring when shutdown runs is delivered before the
 * end of the stream. */
static void test_tail_published_in_flight(void **state)
{
    (void)state;
    static const size_t sizes[] = {64, 1024};
    for (size_t k = 0; k < 2; k++) {
        wide_size = sizes[k];
        shoal_queue *q = make_wide("wide-inflight");
        pid_t pid = t_fork_paused("queue.marked", put_wide_seven, q);
        assert_true(pid > 0);
        T_OK(shoal_queue_shutdown(q));
        unsigned char m[WIDE_MAX];
        size_t len;
        assert_int_equal(shoal_queue_get(q, m, sizeof(m), &len, SHOAL_MS(50)),
                         SHOAL_ETIMEDOUT);
        kill(pid, SIGCONT);
        assert_int_equal(get_wide(q), 7);
        assert_int_equal(t_wait(pid), 0);
        assert_int_equal(shoal_queue_get(q, m, sizeof(m), &len, SHOAL_SEC(5)),
                         SHOAL_EEOF);
        shoal_queue_close(q);
    }
}

/* A producer killed inside a put while the ring is open: the next producer and the
 * consumer carry on, and shutdown still ends the stream. */
static void test_producer_killed_then_replaced(void **state)
{
    (void)state;
    shoal_queue *q = make("replaced", 4);
    pid_t pid = t_fork_paused("queue.reserved", put_seven, q);
    assert_true(pid > 0);
    t_kill(pid);
    for (int64_t i = 0; i < 10; i++) {
        T_OK(shoal_queue_put(q, &i, 8, SHOAL_SEC(5)));
        assert_int_equal(get1(q), i);
    }
    T_OK(shoal_queue_shutdown(q));
    assert_int_equal(get_rc(q, SHOAL_SEC(5)), SHOAL_EEOF);
    shoal_queue_close(q);
}

static int closer(void *arg)
{
    return shoal_queue_shutdown(arg) ? 1 : 0;
}

/* A closer SIGKILLed between its two steps: no put starts after it, the consumer
 * completes the shutdown, takes what was there and then sees the end. */
static void test_closer_killed(void **state)
{
    (void)state;
    shoal_queue *q = make("closer", 8);
    for (int64_t i = 1; i <= 3; i++)
        T_OK(shoal_queue_put(q, &i, 8, 0));
    pid_t pid = t_fork_paused("ring.closing", closer, q);
    assert_true(pid > 0);
    t_kill(pid);
    assert_int_equal(shoal_queue_put(q, &(int64_t){9}, 8, 0), SHOAL_ECLOSED);
    for (int64_t i = 1; i <= 3; i++)
        assert_int_equal(get1(q), i);
    assert_int_equal(get_rc(q, SHOAL_SEC(5)), SHOAL_EEOF);
    assert_int_equal(atomic_load(&shoal__queue_ring(q)->h->closed), RING_SEALED);
    shoal_queue_close(q);
}

/* Loans: one taken after shutdown is refused; one taken before and committed after
 * is refused at the commit, and the stream still ends. */
static void test_loan_and_shutdown(void **state)
{
    (void)state;
    shoal_queue *q = make("loan", 4);
    void *slot;
    size_t cap;
    T_OK(shoal_queue_loan(q, &slot, &cap, 0));
    T_OK(shoal_queue_shutdown(q));
    *(int64_t *)slot = 5;
    assert_int_equal(shoal_queue_commit(q, slot, 8), SHOAL_ECLOSED);
    assert_int_equal(shoal_queue_loan(q, &slot, &cap, 0), SHOAL_ECLOSED);
    assert_int_equal(get_rc(q, SHOAL_SEC(5)), SHOAL_EEOF);
    shoal_queue_close(q);
}

/* Ping-pong between this process, on the membarrier path, and a copy of the test
 * program run under a seccomp filter that refuses membarrier (as a container's profile
 * may), both sleeping at every message (spin budget 0): every wake-up arrives. */
#define ROUNDS   2000
#define PEER_ARG "fenced-peer"

static void deny_membarrier(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_membarrier, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
        _exit(90);
}

/* Forks a child that refuses itself membarrier and runs argv. */
static pid_t spawn_denied(char *const argv[], int out_fd)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        deny_membarrier();
        unsetenv("SHOAL_WAKE"); /* the filter, not the variable, decides */
        if (out_fd >= 0)
            dup2(out_fd, STDOUT_FILENO);
        execv(argv[0], argv);
        _exit(91);
    }
    return pid;
}

/* The peer, in the process run under the filter. */
static int fenced_peer(void)
{
    shoal_set_spin_ns(0);
    int why = 0;
    if (strcmp(shoal_wake_mode(&why), "fenced") || why != EPERM)
        return 5;
    shoal_queue *ping = make("ping", 4), *pong = make("pong", 4);
    if (!ring_fenced(shoal__queue_ring(ping)) || !ring_fenced(shoal__queue_ring(pong)))
        return 6;
    for (int i = 0; i < ROUNDS; i++) {
        int64_t v;
        size_t len;
        if (shoal_queue_get(ping, &v, 8, &len, SHOAL_SEC(10)) || v != i)
            return 1;
        if (shoal_queue_put(pong, &v, 8, SHOAL_SEC(10)))
            return 2;
    }
    shoal_queue_close(ping);
    shoal_queue_close(pong);
    return 0;
}

static void test_mixed_modes_ping_pong(void **state)
{
    (void)state;
    shoal_set_spin_ns(0);
    shoal_queue *ping = make("ping", 4), *pong = make("pong", 4);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    assert_true(n > 0);
    self[n] = '\0';
    pid_t pid = spawn_denied((char *const[]){self, PEER_ARG, NULL}, -1);
    for (int64_t i = 0; i < ROUNDS; i++) {
        T_OK(shoal_queue_put(ping, &i, 8, SHOAL_SEC(10)));
        assert_int_equal(get1(pong), i);
    }
    assert_int_equal(t_wait(pid), 0);
    assert_true(ring_fenced(shoal__queue_ring(ping)));
    shoal_queue_close(ping);
    shoal_queue_close(pong);
    shoal_set_spin_ns(20000);
}

/* `shoal doctor` under the same filter says that the rings take the fenced path, and
 * why. */
static void test_doctor_says_fenced(void **state)
{
    (void)state;
    int fds[2];
    T_OK(pipe(fds));
    pid_t pid = spawn_denied((char *const[]){SHOAL_CLI_PATH, "doctor", NULL}, fds[1]);
    close(fds[1]);
    char out[8192];
    size_t got = 0;
    ssize_t k;
    while (got < sizeof(out) - 1 &&
           (k = read(fds[0], out + got, sizeof(out) - 1 - got)) > 0)
        got += (size_t)k;
    out[got] = '\0';
    close(fds[0]);
    t_wait(pid);
    if (!strstr(out, "ring wake path     fenced (registering for membarrier failed: "
                     "Operation not permitted"))
        fail_msg("doctor said:\n%s", out);
}

/* The mode this process chose is the one shoal_wake_mode reports. */
static void test_wake_mode(void **state)
{
    (void)state;
    int why = -1;
    const char *mode = shoal_wake_mode(&why);
    const char *env = getenv("SHOAL_WAKE");
    if (env && !strcmp(env, "fenced")) {
        assert_string_equal(mode, "fenced");
        assert_int_equal(why, 0);
    } else if (!strcmp(mode, "fenced")) {
        assert_true(why > 0); /* refused here: the errno says why */
    } else {
        assert_string_equal(mode, "membarrier");
        assert_int_equal(why, 0);
    }
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], PEER_ARG))
        return fenced_peer();
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wake_mode),
        cmocka_unit_test(test_put_in_flight_delivered),
        cmocka_unit_test(test_put_in_flight_wakes_sleeper),
        cmocka_unit_test(test_producer_killed_before_publishing),
        cmocka_unit_test(test_producer_killed_after_publishing),
        cmocka_unit_test(test_producer_killed_then_replaced),
        cmocka_unit_test(test_producer_killed_after_marking),
        cmocka_unit_test(test_marked_batch_then_replaced),
        cmocka_unit_test(test_tail_published_killed),
        cmocka_unit_test(test_tail_published_in_flight),
        cmocka_unit_test(test_closer_killed),
        cmocka_unit_test(test_loan_and_shutdown),
        cmocka_unit_test(test_mixed_modes_ping_pong),
        cmocka_unit_test(test_doctor_says_fenced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
