/* test_pipe_bias.c — a Pipe end used by several processes and threads at once
 * (ring_bias.c): two processes of two threads each send on end 0 while two processes
 * of two threads each receive on end 1; every message is delivered exactly once and
 * every receiver ends with SHOAL_EEOF once the senders have closed. And one handle
 * handed back and forth between two processes, message by message. */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "internal.h"
#include "testutil.h"

#define PROCS      2
#define THREADS    2
#define PER_THREAD 20000
#define SENDERS    (PROCS * THREADS)

static const shoal_queue_config cfg = {.type = NULL, .max_msg = 8, .capacity = 64};

struct tally {
    _Atomic uint32_t got[SENDERS][PER_THREAD]; /* deliveries of each message */
    _Atomic uint32_t bad;                      /* unexpected results */
};

static struct tally *tally;
static shoal_pipe *end0, *end1;

struct worker {
    int id; /* sender: its number among SENDERS */
    pthread_t t;
};

static void *send_all(void *arg)
{
    struct worker *w = arg;
    for (uint64_t i = 0; i < PER_THREAD; i++) {
        uint64_t v = (uint64_t)w->id << 32 | i;
        if (shoal_pipe_send(end0, &v, sizeof(v), SHOAL_SEC(60)))
            atomic_fetch_add(&tally->bad, 1);
    }
    return NULL;
}

static void *recv_all(void *arg)
{
    (void)arg;
    for (;;) {
        uint64_t v;
        size_t len;
        int rc = shoal_pipe_recv(end1, &v, sizeof(v), &len, SHOAL_SEC(60));
        if (rc == SHOAL_EEOF)
            return NULL;
        if (rc || len != sizeof(v) || (v >> 32) >= SENDERS || (uint32_t)v >= PER_THREAD) {
            atomic_fetch_add(&tally->bad, 1);
            return NULL;
        }
        atomic_fetch_add(&tally->got[v >> 32][(uint32_t)v], 1);
    }
}

/* A process of THREADS threads on one handle: senders (arg: the process's number) or
 * receivers (arg: -1). The inherited handle of the other end goes first: a process
 * that never uses an end must not hold it. */
static int run_threads(void *arg)
{
    int proc = (int)(intptr_t)arg;
    shoal_pipe_close(proc >= 0 ? end1 : end0);
    struct worker w[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t].id = proc * THREADS + t;
        if (pthread_create(&w[t].t, NULL, proc >= 0 ? send_all : recv_all, &w[t]))
            return 2;
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(w[t].t, NULL);
    shoal_pipe_close(proc >= 0 ? end0 : end1);
    return 0;
}

static void test_two_by_two_each_side(void **state)
{
    (void)state;
    tally = t_shared_alloc(sizeof(*tally));
    T_OK(shoal_pipe_pair(&end0, &end1, NULL, &cfg, NULL));
    pid_t pid[2 * PROCS];
    for (int i = 0; i < PROCS; i++) {
        pid[i] = t_fork(run_threads, (void *)(intptr_t)i);
        pid[PROCS + i] = t_fork(run_threads, (void *)(intptr_t)-1);
    }
    shoal_pipe_close(end0); /* handed to the children */
    shoal_pipe_close(end1);
    for (int i = 0; i < 2 * PROCS; i++)
        assert_int_equal(t_wait(pid[i]), 0);
    assert_int_equal(atomic_load(&tally->bad), 0);
    for (int s = 0; s < SENDERS; s++)
        for (int i = 0; i < PER_THREAD; i++)
            if (atomic_load(&tally->got[s][i]) != 1)
                fail_msg("message %d of sender %d delivered %u times", i, s,
                         atomic_load(&tally->got[s][i]));
    munmap(tally, sizeof(*tally));
}

/* Parent and child send on one end in turns (each waits for the other's message to
 * be received), so each side's right changes hands at every message. */
#define TURNS 2000

static int child_turns(void *arg)
{
    (void)arg;
    for (uint64_t i = 1; i < TURNS; i += 2) {
        while (atomic_load(&tally->got[0][0]) != i)
            sched_yield();
        if (shoal_pipe_send(end0, &i, sizeof(i), SHOAL_SEC(10)))
            return 1;
    }
    return 0;
}

static void test_turns_between_processes(void **state)
{
    (void)state;
    tally = t_shared_alloc(sizeof(*tally));
    T_OK(shoal_pipe_pair(&end0, &end1, NULL, &cfg, NULL));
    uint64_t v = 0;
    size_t len;
    T_OK(shoal_pipe_send(end0, &v, sizeof(v), SHOAL_SEC(5))); /* used: stays ours */
    T_OK(shoal_pipe_recv(end1, &v, sizeof(v), &len, SHOAL_SEC(5)));
    pid_t pid = t_fork(child_turns, NULL);
    for (uint64_t i = 0; i < TURNS; i++) {
        if (i % 2 == 0)
            T_OK(shoal_pipe_send(end0, &i, sizeof(i), SHOAL_SEC(10)));
        T_OK(shoal_pipe_recv(end1, &v, sizeof(v), &len, SHOAL_SEC(10)));
        assert_int_equal(v, i);
        atomic_store(&tally->got[0][0], (uint32_t)i + 1);
    }
    assert_int_equal(t_wait(pid), 0);
    assert_int_equal(shoal_pipe_recv(end1, &v, sizeof(v), &len, 0), SHOAL_EAGAIN);
    shoal_pipe_close(end0);
    shoal_pipe_close(end1);
    munmap(tally, sizeof(*tally));
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_by_two_each_side),
        cmocka_unit_test(test_turns_between_processes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
