/* test_queue_stress.c — 4 producers x 1,000,000 messages through one MPMC queue to 4
 * consumers: every message received exactly once, and each producer's messages in
 * order at each consumer. Once with forked processes, once with separately started
 * ones (this program re-executed with a role), and once through an SPSC queue. */
#include <stdatomic.h>

#include "internal.h"
#include "testutil.h"

#define PER_PRODUCER 1000000
#define PRODUCERS    4
#define CONSUMERS    4
#define TOTAL        ((size_t)PRODUCERS * PER_PRODUCER)

typedef struct msg {
    uint32_t producer;
    uint32_t pad;
    uint64_t seq;
} msg;

static const shoal_type msg_type = {
    .name = "stress.Msg", .layout_hash = 0x5354524553534d47ULL, .size = 16, .align = 8};

/* Shared results: one counter per message, plus what each consumer got. */
struct results {
    _Atomic uint64_t received[CONSUMERS];
    _Atomic uint32_t bad[CONSUMERS];
    _Atomic uint8_t seen[TOTAL];
};

static int run_producer(const char *qname, int id, int spsc)
{
    shoal_queue *q;
    if (shoal_queue_open(&q, qname, SHOAL_OPEN,
                         &(shoal_queue_config){.type = &msg_type, .spsc = spsc}, NULL))
        return 2;
    msg m = {.producer = (uint32_t)id};
    for (uint64_t i = 0; i < PER_PRODUCER; i++) {
        m.seq = i;
        int rc = shoal_queue_put(q, &m, sizeof(m), SHOAL_SEC(60));
        if (rc) {
            fprintf(stderr, "producer %d: %s: %s\n", id, shoal_strerror(rc),
                    shoal_errdetail());
            return 3;
        }
    }
    shoal_queue_close(q);
    return 0;
}

static int run_consumer(const char *qname, const char *rname, int id, int spsc)
{
    shoal_queue *q;
    shoal_shm *shm;
    if (shoal_queue_open(&q, qname, SHOAL_OPEN,
                         &(shoal_queue_config){.type = &msg_type, .spsc = spsc}, NULL) ||
        shoal_shm_open(&shm, rname, SHOAL_OPEN, 0, NULL))
        return 2;
    struct results *res = shoal_shm_data(shm);
    int64_t last[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++)
        last[p] = -1;
    msg batch[32];
    uint64_t n = 0;
    int rc;
    size_t done;
    while ((rc = shoal_queue_get_batch(q, batch, 32, &done, SHOAL_SEC(60))) == 0) {
        for (size_t i = 0; i < done; i++) {
            msg *m = &batch[i];
            if (m->producer >= PRODUCERS || m->seq >= PER_PRODUCER ||
                (int64_t)m->seq <= last[m->producer]) {
                atomic_fetch_add(&res->bad[id], 1);
                continue;
            }
            last[m->producer] = (int64_t)m->seq;
            atomic_fetch_add_explicit(
                &res->seen[m->producer * (size_t)PER_PRODUCER + m->seq], 1,
                memory_order_relaxed);
            n++;
        }
    }
    atomic_store(&res->received[id], n);
    if (rc != SHOAL_EEOF) {
        fprintf(stderr, "consumer %d: %s: %s\n", id, shoal_strerror(rc),
                shoal_errdetail());
        return 3;
    }
    shoal_shm_close(shm);
    shoal_queue_close(q);
    return 0;
}

struct child {
    const char *qname, *rname;
    int id, spsc;
};

static int fork_producer(void *arg)
{
    struct child *c = arg;
    return run_producer(c->qname, c->id, c->spsc);
}

static int fork_consumer(void *arg)
{
    struct child *c = arg;
    return run_consumer(c->qname, c->rname, c->id, c->spsc);
}

static void stress(const char *qname, bool spawn, int spsc)
{
    char rname[64];
    snprintf(rname, sizeof(rname), "%s.results", qname);
    int np = spsc ? 1 : PRODUCERS, nc = spsc ? 1 : CONSUMERS;
    shoal_queue *q;
    shoal_queue_config cfg = {.type = &msg_type, .capacity = 1024, .spsc = spsc};
    T_OK(shoal_queue_open(&q, qname, SHOAL_CREATE, &cfg, NULL));
    shoal_shm *shm;
    T_OK(shoal_shm_open(&shm, rname, SHOAL_CREATE, sizeof(struct results), NULL));
    struct results *res = shoal_shm_data(shm);
    pid_t prod[PRODUCERS], cons[CONSUMERS];
    struct child pc[PRODUCERS], cc[CONSUMERS];
    char ids[PRODUCERS + CONSUMERS][8];
    int64_t t0 = shoal__now_ns();
    for (int i = 0; i < nc; i++) {
        cc[i] = (struct child){qname, rname, i, spsc};
        snprintf(ids[PRODUCERS + i], 8, "%d", i);
        cons[i] = spawn ? t_spawn_self("consumer", qname, rname, ids[PRODUCERS + i],
                                       spsc ? "1" : "0", NULL)
                        : t_fork(fork_consumer, &cc[i]);
    }
    for (int i = 0; i < np; i++) {
        pc[i] = (struct child){qname, rname, i, spsc};
        snprintf(ids[i], 8, "%d", i);
        prod[i] = spawn ? t_spawn_self("producer", qname, ids[i], spsc ? "1" : "0", NULL)
                        : t_fork(fork_producer, &pc[i]);
    }
    for (int i = 0; i < np; i++)
        assert_int_equal(t_wait(prod[i]), 0);
    T_OK(shoal_queue_shutdown(q));
    for (int i = 0; i < nc; i++)
        assert_int_equal(t_wait(cons[i]), 0);
    double secs = (double)(shoal__now_ns() - t0) / 1e9;
    uint64_t sum = 0;
    for (int i = 0; i < nc; i++) {
        assert_int_equal(atomic_load(&res->bad[i]), 0);
        sum += atomic_load(&res->received[i]);
    }
    size_t expect = (size_t)np * PER_PRODUCER;
    assert_int_equal(sum, expect);
    for (size_t i = 0; i < expect; i++)
        if (atomic_load_explicit(&res->seen[i], memory_order_relaxed) != 1)
            fail_msg("message %zu (producer %zu, #%zu) received %d times", i,
                     i / PER_PRODUCER, i % PER_PRODUCER, (int)res->seen[i]);
    shoal_queue_stats st;
    T_OK(shoal_queue_stats_get(q, &st));
    assert_int_equal(st.puts, expect);
    assert_int_equal(st.gets, expect);
    printf("  %s: %d x %d messages to %d consumers in %.2f s (%.2f M msg/s)\n", qname, np,
           PER_PRODUCER, nc, secs, (double)expect / secs / 1e6);
    shoal_shm_close(shm);
    shoal_queue_close(q);
}

static void test_forked(void **state)
{
    (void)state;
    stress("stress-forked", false, 0);
}

static void test_spawned(void **state)
{
    (void)state;
    stress("stress-spawned", true, 0);
}

static void test_spsc(void **state)
{
    (void)state;
    stress("stress-spsc", false, 1);
}

int main(int argc, char **argv)
{
    t_setup_root();
    if (argc == 5 && !strcmp(argv[1], "producer"))
        return run_producer(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc == 6 && !strcmp(argv[1], "consumer"))
        return run_consumer(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]));
    if (argc > 1)
        return 99;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forked),
        cmocka_unit_test(test_spawned),
        cmocka_unit_test(test_spsc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
