/* test_wait.c — shoal__wait and the waitables the event loop uses: each side becomes
 * ready when another process acts, times out when nothing happens, and reports a
 * terminal state (end of stream, closed, dead peer). The spin table: spinners killed
 * mid-spin are cleared and their seats taken again, an end without a seat and a
 * fork child are counted, a change of affinity is followed, and waits from seats still
 * exchange messages. */
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "internal.h"
#include "queue_internal.h"
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

/* ---- a ring side's sleeper count (ring.c, "Sleepers") ------------------------------ */

enum { RACE_MSGS = 3000, RACE_CONSUMERS = 3 };
static _Atomic uint64_t *race_got; /* in shared memory: messages taken */

/* A consumer that sleeps at once (spin budget 0) with timeouts of 0.1 to 0.6 ms, so
 * that its sleeps end by time-outs, by wake-ups and by both at nearly the same instant;
 * it stops at a negative message. */
static int racing_consumer(void *arg)
{
    shoal_set_spin_ns(0);
    unsigned seed = (unsigned)getpid();
    int64_t end = shoal__now_ns() + SHOAL_SEC(20); /* a test that failed stops it */
    while (shoal__now_ns() < end) {
        int64_t v;
        size_t len;
        int rc = shoal_queue_get(arg, &v, sizeof(v), &len,
                                 (shoal_duration)(100 + rand_r(&seed) % 500) * 1000);
        if (rc == SHOAL_ETIMEDOUT)
            continue;
        if (rc != 0)
            return 1;
        if (v < 0)
            return 0;
        atomic_fetch_add(race_got, 1);
    }
    return 2;
}

/* Sleepers whose sleeps end by a time-out while a waker empties the count never take
 * themselves off it twice, nor stay on it: the count is never more than the sleepers
 * there are (a count below zero would read as some four billion), every message is
 * taken, and the count is zero at the end. */
static void test_sleeper_count_exact(void **state)
{
    (void)state;
    race_got = t_shared_alloc(64);
    for (int spsc = 0; spsc < 2; spsc++) {
        shoal_queue_config cfg = {.capacity = 64, .max_msg = 8, .spsc = spsc};
        shoal_queue *q;
        T_OK(shoal_queue_open(&q, NULL, SHOAL_CREATE, &cfg, NULL));
        atomic_store(race_got, 0);
        int nc = spsc ? 1 : RACE_CONSUMERS;
        pid_t c[RACE_CONSUMERS];
        for (int i = 0; i < nc; i++)
            c[i] = t_fork(racing_consumer, q);
        unsigned seed = 7;
        for (int64_t m = 0; m < RACE_MSGS; m++) {
            T_OK(shoal_queue_put(q, &m, sizeof(m), SHOAL_SEC(5)));
            assert_true(shoal__queue_sleepers(q, false) <= (uint32_t)nc);
            if (rand_r(&seed) % 4 == 0)
                usleep(rand_r(&seed) % 700);
        }
        for (int i = 0; i < nc; i++) {
            int64_t stop = -1;
            T_OK(shoal_queue_put(q, &stop, sizeof(stop), SHOAL_SEC(5)));
        }
        for (int i = 0; i < nc; i++)
            assert_int_equal(t_wait(c[i]), 0);
        assert_int_equal(atomic_load(race_got), RACE_MSGS);
        assert_int_equal(shoal__queue_sleepers(q, false), 0);
        T_OK(shoal_queue_close(q));
    }
    munmap(race_got, 64);
}

/* ---- the spin table (wait.h) ------------------------------------------------------ */

static shoal__seg *spin_seg;
static _Atomic uint32_t never_word;
static _Atomic long never_polls;

static int never_ready(void *obj)
{
    (void)obj;
    atomic_fetch_add_explicit(&never_polls, 1, memory_order_relaxed);
    return 0;
}

static const shoal__waitable never = {.word = &never_word, .ready = never_ready};

static shoal__spin_table *spin_table(void)
{
    return (shoal__spin_table *)spin_seg->payload;
}

static void spin_table_open(void)
{
    shoal__seg_spec spec = {.kind = SHOAL_KIND_SHM,
                            .what = "spin table",
                            .count = sizeof(shoal__spin_table),
                            .check_count = true,
                            .payload_size = sizeof(shoal__spin_table)};
    shoal_unlink("wait-spin-table", NULL); /* left by a test that failed */
    T_OK(shoal__seg_open(&spin_seg, "wait-spin-table", SHOAL_CREATE, &spec, NULL));
}

static int cpus(void)
{
    cpu_set_t set;
    assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
    return CPU_COUNT(&set);
}

/* A child that takes a seat and spins from it until it is killed. */
static int spin_forever(void *arg)
{
    (void)arg;
    shoal__spin_seat seat;
    shoal__spin_seat_take(&seat, spin_table(), spin_seg);
    if (!seat.table)
        return 1;
    shoal_set_spin_ns(SHOAL_SEC(60));
    shoal__spin_seat_use(&seat);
    shoal__deadline d = shoal__deadline_from(SHOAL_SEC(60));
    return shoal__wait(&never, &d) == SHOAL_ETIMEDOUT ? 2 : 3;
}

/* Waits until the table counts n spinners. */
static void await_count(int n)
{
    for (int i = 0; i < 10000 && shoal__spin_table_count(spin_table()) != n; i++)
        usleep(1000);
    assert_int_equal(shoal__spin_table_count(spin_table()), n);
}

/* Opens the table, then has n spinners SIGKILLed mid-spin: their flags stay set.
 * Returns n. */
static int kill_spinners(int n)
{
    spin_table_open();
    pid_t kids[64];
    for (int i = 0; i < n; i++)
        kids[i] = t_fork(spin_forever, NULL);
    await_count(n);
    /* together: a spinner still running would find the table crowded and clear the
     * flags of those killed before it */
    t_kill_all(kids, n);
    return n;
}

/* Spins from a new seat for 30 ms (longer than SHOAL__SPIN_REPAIR_NS), then gives the
 * seat back: every dead spinner's flag is cleared on the way, and its seat freed. */
static void spin_30ms(void)
{
    shoal__spin_seat seat;
    shoal__spin_seat_take(&seat, spin_table(), spin_seg);
    assert_non_null(seat.table);
    shoal_set_spin_ns(SHOAL_MS(30));
    shoal__spin_seat *was = shoal__spin_seat_use(&seat);
    atomic_store(&never_polls, 0);
    assert_int_equal(wait_ms(&never, 60), SHOAL_ETIMEDOUT);
    shoal__spin_seat_use(was);
    shoal_set_spin_ns(0);
    assert_true(atomic_load(&never_polls) > 1000); /* it spun */
    assert_int_equal(shoal__spin_table_count(spin_table()), 0);
    int taken = 0;
    for (int k = 0; k < SHOAL__SPIN_SEATS; k++)
        taken += atomic_load(&spin_table()->owner[k]) != 0;
    assert_int_equal(taken, 1); /* ours: the dead spinners' seats are free */
    shoal__spin_seat_give(&seat);
}

/* Spinners SIGKILLed mid-spin, more of them than CPUs: their flags stay set until the
 * next spinner clears them; it spins on, and once it is done nobody is counted. */
static void test_spin_dead_spinners(void **state)
{
    (void)state;
    int n = kill_spinners(cpus() + 1);
    assert_int_equal(shoal__spin_table_count(spin_table()), n); /* left set */
    spin_30ms();
    shoal__seg_close(spin_seg);
    T_OK(shoal_unlink("wait-spin-table", NULL));
}

/* One spinner SIGKILLed mid-spin, too few to crowd anyone: its flag is cleared all
 * the same by the next spinner, so no dead flag waits for a crowd to be found. */
static void test_spin_dead_spinner_uncrowded(void **state)
{
    (void)state;
    kill_spinners(1);
    assert_int_equal(shoal__spin_table_count(spin_table()), 1); /* left set */
    spin_30ms();
    shoal__seg_close(spin_seg);
    T_OK(shoal_unlink("wait-spin-table", NULL));
}

/* A child that takes as many seats as it can, reports how many, and stops. */
static int take_all(void *arg)
{
    static shoal__spin_seat seats[SHOAL__SPIN_SEATS + 1];
    int n = 0;
    for (; n <= SHOAL__SPIN_SEATS; n++) {
        shoal__spin_seat_take(&seats[n], spin_table(), spin_seg);
        if (seats[n].k < 0)
            break;
    }
    *(int *)arg = n;
    raise(SIGSTOP); /* killed here */
    return 0;
}

/* Every seat taken by a process that was then killed: the next connection takes one
 * of them; a table full of live owners gives none. */
static void test_spin_seats_of_dead(void **state)
{
    (void)state;
    spin_table_open();
    int *got = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                    -1, 0);
    assert_true(got != MAP_FAILED);
    pid_t kid = t_fork(take_all, got);
    int st;
    assert_int_equal(waitpid(kid, &st, WUNTRACED), kid);
    assert_true(WIFSTOPPED(st));
    assert_int_equal(*got, SHOAL__SPIN_SEATS); /* all, and no more */
    shoal__spin_seat seat;
    shoal__spin_seat_take(&seat, spin_table(), spin_seg);
    assert_int_equal(seat.k, -1); /* the owner lives */
    shoal__spin_seat_give(&seat);
    t_kill(kid);
    shoal__spin_seat_take(&seat, spin_table(), spin_seg);
    assert_true(seat.k >= 0);
    shoal__spin_seat_give(&seat);
    assert_int_equal(atomic_load(&spin_table()->owner[seat.k]), 0);
    munmap(got, sizeof(int));
    shoal__seg_close(spin_seg);
    T_OK(shoal_unlink("wait-spin-table", NULL));
}

/* A fork child that gives back its copy of its parent's seat. */
static int give_copy(void *arg)
{
    shoal__spin_seat_give(arg);
    return 0;
}

/* A fork child's copy of a seat is only forgotten: the parent keeps the seat. */
static void test_spin_seat_fork(void **state)
{
    (void)state;
    spin_table_open();
    shoal__spin_seat seat;
    shoal__spin_seat_take(&seat, spin_table(), spin_seg);
    assert_non_null(seat.table);
    assert_int_equal(t_wait(t_fork(give_copy, &seat)), 0);
    assert_int_equal(atomic_load(&spin_table()->owner[seat.k]), seat.owner);
    shoal__spin_seat_give(&seat);
    assert_int_equal(atomic_load(&spin_table()->owner[seat.k]), 0);
    shoal__seg_close(spin_seg);
    T_OK(shoal_unlink("wait-spin-table", NULL));
}

/* Pins the calling thread to the CPU it runs on. */
static int pin_here(void)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    return sched_setaffinity(0, sizeof(one), &one);
}

/* The CPU time (ns) the calling thread spends in a 30 ms spin from seat, followed by
 * a 30 ms sleep. A spin that yields (a crowded table) takes a small share of it: the
 * spinner it yields to, on the same CPU, runs for whole scheduler slices. */
static int64_t spin_cpu_ns(shoal__spin_seat *seat)
{
    struct timespec a, b;
    shoal_set_spin_ns(SHOAL_MS(30));
    shoal__spin_seat *was = shoal__spin_seat_use(seat);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    int rc = wait_ms(&never, 60);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    shoal__spin_seat_use(was);
    shoal_set_spin_ns(0);
    if (rc != SHOAL_ETIMEDOUT)
        return -1;
    return (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
}

#define YIELDED_NS SHOAL_MS(6) /* a 30 ms spin that never yields takes ~15 ms or more */

/* In a child pinned to one CPU with a live spinner there: every other seat taken by a
 * live process, so this end has none; its spin must count itself all the same (two
 * spinners, one CPU: it yields). Exit code 0: it yielded; 1: it spun on; 2: setup. */
static int spin_without_seat(void *arg)
{
    int *got = arg;
    if (pin_here() != 0)
        return 2;
    shoal__cpus_forget();
    pid_t kids[2] = {t_fork(spin_forever, NULL), -1};
    for (int i = 0; i < 10000 && shoal__spin_table_count(spin_table()) != 1; i++)
        usleep(1000);
    kids[1] = t_fork(take_all, got);
    int st;
    if (waitpid(kids[1], &st, WUNTRACED) != kids[1] || !WIFSTOPPED(st) ||
        *got != SHOAL__SPIN_SEATS - 1)
        return 2;
    shoal__spin_seat seat;
    shoal__spin_seat_take(&seat, spin_table(), spin_seg);
    if (seat.k != -1 || shoal__spin_table_count(spin_table()) != 1)
        return 2;
    int64_t ns = spin_cpu_ns(&seat);
    shoal__spin_seat_give(&seat);
    for (int i = 0; i < 2; i++) {
        kill(kids[i], SIGKILL);
        waitpid(kids[i], NULL, 0);
    }
    fprintf(stderr, "spin without a seat: %.1f ms of CPU in 30 ms\n", ns / 1e6);
    return ns < 0 ? 2 : ns < YIELDED_NS ? 0 : 1;
}

/* The connection end beyond SHOAL__SPIN_SEATS: it has no seat, yet on a crowded host
 * it yields as a counted spinner does, instead of spinning uncounted. */
static void test_spin_seatless_counts_itself(void **state)
{
    (void)state;
    spin_table_open();
    int *got = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                    -1, 0);
    assert_true(got != MAP_FAILED);
    assert_int_equal(t_wait(t_fork(spin_without_seat, got)), 0);
    munmap(got, sizeof(int));
    shoal__seg_close(spin_seg);
    T_OK(shoal_unlink("wait-spin-table", NULL));
}

/* A fork child that spins from its copy of its parent's seat until it is killed. */
static int spin_from_copy(void *arg)
{
    shoal_set_spin_ns(SHOAL_SEC(60));
    shoal__spin_seat_use(arg);
    shoal__deadline d = shoal__deadline_from(SHOAL_SEC(60));
    return shoal__wait(&never, &d) == SHOAL_ETIMEDOUT ? 2 : 3;
}

/* Two fork children spinning from copies of their parent's seat are two spinners,
 * each on a seat of its own; killed mid-spin, their flags are cleared by the next
 * spinner (their seats freed), and the parent's seat stays the parent's. */
static void test_spin_fork_child_seat(void **state)
{
    (void)state;
    spin_table_open();
    shoal__spin_seat seat;
    shoal__spin_seat_take(&seat, spin_table(), spin_seg);
    assert_true(seat.k >= 0);
    pid_t kids[2] = {t_fork(spin_from_copy, &seat), t_fork(spin_from_copy, &seat)};
    await_count(2);
    assert_int_equal(atomic_load(&spin_table()->owner[seat.k]), seat.owner);
    assert_false(atomic_load(&spin_table()->spinning) & (1ull << seat.k));
    t_kill_all(kids, 2);
    assert_int_equal(shoal__spin_table_count(spin_table()), 2); /* left set */
    shoal_set_spin_ns(SHOAL_MS(30));
    shoal__spin_seat *was = shoal__spin_seat_use(&seat);
    assert_int_equal(wait_ms(&never, 60), SHOAL_ETIMEDOUT);
    shoal__spin_seat_use(was);
    shoal_set_spin_ns(0);
    assert_int_equal(shoal__spin_table_count(spin_table()), 0);
    for (int k = 0; k < SHOAL__SPIN_SEATS; k++)
        assert_int_equal(atomic_load(&spin_table()->owner[k]),
                         k == seat.k ? seat.owner : 0);
    shoal__spin_seat_give(&seat);
    shoal__seg_close(spin_seg);
    T_OK(shoal_unlink("wait-spin-table", NULL));
}

/* A child that keeps its CPU busy, outside any spin table. */
static int busy(void *arg)
{
    (void)arg;
    for (volatile unsigned long i = 0;; i++)
        ;
    return 0;
}

/* A process that has read its CPU count, then is pinned to one CPU (no forget), with
 * a spinner stopped mid-spin (its flag set, its process alive) and a busy process on
 * that CPU: after the count's time is up, its spin counts two spinners on one CPU and
 * yields. Exit code 0: it did; 1: it spun on; 2: setup. */
static int spin_after_pinning(void *arg)
{
    (void)arg;
    if (shoal__cpus_allowed() < 2 || pin_here() != 0)
        return 2;
    pid_t kids[2] = {t_fork(spin_forever, NULL), t_fork(busy, NULL)};
    for (int i = 0; i < 10000 && shoal__spin_table_count(spin_table()) != 1; i++)
        usleep(1000);
    kill(kids[0], SIGSTOP);
    waitpid(kids[0], NULL, WUNTRACED);
    usleep(150 * 1000); /* the count read before pinning is older than 100 ms */
    shoal__spin_seat seat;
    shoal__spin_seat_take(&seat, spin_table(), spin_seg);
    int64_t ns = seat.k >= 0 ? spin_cpu_ns(&seat) : -1;
    shoal__spin_seat_give(&seat);
    for (int i = 0; i < 2; i++) {
        kill(kids[i], SIGKILL);
        waitpid(kids[i], NULL, 0);
    }
    fprintf(stderr, "spin after pinning: %.1f ms of CPU in 30 ms, %d CPU(s)\n", ns / 1e6,
            shoal__cpus_allowed());
    return ns < 0 || shoal__cpus_allowed() != 1 ? 2 : ns < YIELDED_NS ? 0 : 1;
}

/* A change of affinity after the CPU count was read is followed by the spin table. */
static void test_spin_follows_affinity(void **state)
{
    (void)state;
    if (cpus() < 2)
        skip();
    spin_table_open();
    assert_int_equal(t_wait(t_fork(spin_after_pinning, NULL)), 0);
    shoal__seg_close(spin_seg);
    T_OK(shoal_unlink("wait-spin-table", NULL));
}

/* After spinners were killed mid-spin, a pipe's two ends, each waiting from a seat
 * with a spin budget, still exchange messages: nobody hangs. */
static int echo_from_seat(void *arg)
{
    shoal_pipe *p = arg;
    shoal__spin_seat seat;
    shoal__spin_seat_take(&seat, spin_table(), spin_seg);
    shoal__spin_seat_use(&seat);
    shoal_set_spin_ns(50000);
    char buf[16];
    size_t n;
    for (int i = 0; i < 2000; i++)
        if (shoal_pipe_recv(p, buf, sizeof(buf), &n, SHOAL_SEC(10)) ||
            shoal_pipe_send(p, buf, n, SHOAL_SEC(10)))
            return 1;
    return 0;
}

static void test_spin_exchange_after_deaths(void **state)
{
    (void)state;
    kill_spinners(cpus() + 1);
    shoal_pipe *a, *b;
    T_OK(shoal_pipe_pair(&a, &b, NULL, &qcfg, NULL));
    pid_t peer = t_fork(echo_from_seat, b);
    shoal__spin_seat seat;
    shoal__spin_seat_take(&seat, spin_table(), spin_seg);
    shoal__spin_seat *was = shoal__spin_seat_use(&seat);
    shoal_set_spin_ns(50000);
    char buf[16];
    size_t len;
    for (int i = 0; i < 2000; i++) {
        T_OK(shoal_pipe_send(a, &i, sizeof(i), SHOAL_SEC(10)));
        T_OK(shoal_pipe_recv(a, buf, sizeof(buf), &len, SHOAL_SEC(10)));
        assert_int_equal(len, sizeof(i));
        assert_memory_equal(buf, &i, sizeof(i));
    }
    shoal_set_spin_ns(0);
    shoal__spin_seat_use(was);
    assert_int_equal(t_wait(peer), 0);
    shoal__spin_seat_give(&seat);
    T_OK(shoal_pipe_close(a));
    T_OK(shoal_pipe_close(b));
    shoal__seg_close(spin_seg);
    T_OK(shoal_unlink("wait-spin-table", NULL));
}

int main(void)
{
    t_setup_root();
    shoal_set_spin_ns(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_sides),
        cmocka_unit_test(test_pipe_peer_dead),
        cmocka_unit_test(test_event_and_sem),
        cmocka_unit_test(test_sleeper_count_exact),
        cmocka_unit_test(test_spin_dead_spinners),
        cmocka_unit_test(test_spin_dead_spinner_uncrowded),
        cmocka_unit_test(test_spin_seats_of_dead),
        cmocka_unit_test(test_spin_seat_fork),
        cmocka_unit_test(test_spin_seatless_counts_itself),
        cmocka_unit_test(test_spin_fork_child_seat),
        cmocka_unit_test(test_spin_follows_affinity),
        cmocka_unit_test(test_spin_exchange_after_deaths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
