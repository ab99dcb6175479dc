/*
 * bench_broker.c — the Manager broker through its C client (shoal/manager.h), the
 * shoal side of bench/broker_compare.py's comparison with redis-benchmark.
 *
 *   bench_broker CASE DEPTH COUNT ADDRESS [CLIENTS[/THREADS] [TOKEN [KEYS]]]
 *
 * CLIENTS threads (default 1), each with a connection of its own (a session, as
 * redis-benchmark's clients each have a socket), run COUNT operations each on one
 * broker object, DEPTH at a time: DEPTH requests submitted, then their DEPTH replies
 * collected (redis-benchmark's -P). CLIENTS/THREADS: the CLIENTS connections driven
 * by THREADS threads (a divisor of CLIENTS), each thread keeping DEPTH requests in
 * flight on each of its connections: it collects their replies connection by
 * connection and submits a connection's next DEPTH as soon as its replies are in —
 * as redis-benchmark drives its -c connections from one thread (4/1). CASE:
 *
 *   set     dict set of one key to a 3-byte value (redis-benchmark SET's default)
 *   get     dict get of that key (GET)
 *
 * With KEYS (TOKEN "-": none), set and get go round KEYS distinct keys of one dict
 * instead, each set writing operation i to key i % KEYS; the dict is filled with
 * those KEYS keys before the clock starts, so every operation meets a dict of KEYS
 * keys (a dict of 100 against one of 100,000 shows whether the cost grows). -KEYS:
 * the same keys, not filled (a previous run filled them), so that a profiler of the
 * broker can be zeroed between the two runs and count the operations alone.
 *   append  list append of a small int
 *   lock    lock acquire then release (two requests: one operation, a pair)
 *
 * The lock with one client: DEPTH pairs submitted back to back, as the other cases
 * (the session runs them in order, so each release frees the acquire before it).
 * With several clients that is no lock bench — a Lock may be released by anyone, so
 * one client's release would free another's lock — and a client sends its release
 * only once its acquire was granted: it submits the acquire, waits for it, then
 * submits the release. DEPTH 1 waits for the release's reply too (lock step, two round
 * trips a pair); DEPTH > 1 pipelines the releases, as a Python client's pipelined
 * release does: a release's reply is collected once DEPTH of them are in flight (the
 * session runs a release before the client's next acquire, so the grant of that
 * acquire follows it), and acquires are never pipelined.
 *
 * Every reply is checked (status 0; get returns the value set). Prints
 *   RESULT case=CASE depth=DEPTH count=COUNT clients=CLIENTS ops_per_s=...
 *          median_ns=... p99_ns=... p999_ns=... max_ns=... mean_ns=...
 * ops_per_s counts every client's operations (lock: acquire+release pairs) over the
 * whole run; median_ns, p99_ns, p999_ns and max_ns are percentiles over every
 * client's latency samples: a batch's time per operation (the round trip when DEPTH
 * is 1) or, for the lock with several clients, each pair's time from its acquire's
 * submit to its grant (DEPTH > 1) or its release's reply (DEPTH 1); mean_ns is the
 * mean of one client's time per operation. The broker is started by the caller
 * (`shoal broker --listen ...`).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shoal/manager.h>

#include "common.h"

#define KEY   "key:000000000042"
#define VALUE "xxx"

static long nkeys;   /* 0: the one key KEY */
static int fill = 1; /* fill the dict with the nkeys keys first */

/* The key of operation i. */
static shoal_mv *key_of(long i)
{
    char k[32];
    if (!nkeys)
        return shoal_mv_str(KEY);
    snprintf(k, sizeof(k), "key:%012ld", i % nkeys);
    return shoal_mv_str(k);
}

typedef struct client {
    const char *cs, *address, *token;
    int depth;
    int pairs; /* lock with several clients: a release only after its grant */
    long count;
    pthread_barrier_t *start;
    int64_t t0, t1;
    int64_t *lat; /* each batch's time per operation, or each pair's time */
    long nlat;
    int failed;
    int nconn;            /* connections this thread drives (CLIENTS/THREADS) */
    struct client *first; /* the client that fills the dict */
} client;

static int setup_objects(shoal_manager *m)
{
    shoal_mv *init = shoal_mv_map();
    if (shoal_mv_put(init, shoal_mv_str(KEY), shoal_mv_str(VALUE)) < 0)
        return -1;
    if (shoal_manager_create(m, "bench.dict", SHOAL_M_DICT, init, NULL) < 0 ||
        shoal_manager_create(m, "bench.list", SHOAL_M_LIST, NULL, NULL) < 0 ||
        shoal_manager_create(m, "bench.lock", SHOAL_M_LOCK, NULL, NULL) < 0)
        return -1;
    return 0;
}

/* Sets the KEYS keys (pipelined, in batches), once, before the clock starts. */
static int fill_keys(shoal_manager *m)
{
    enum { BATCH = 256 };
    uint64_t ids[BATCH];
    for (long done = 0; done < nkeys;) {
        int n = 0;
        for (; n < BATCH && done + n < nkeys; n++) {
            shoal_mv *args[2] = {key_of(done + n), shoal_mv_str(VALUE)};
            shoal_manager_request r = {"bench.dict", "set", NULL, 0, args, 2, 0};
            if (shoal_manager_submit(m, &r, &ids[n]) < 0)
                return -1;
        }
        for (int k = 0; k < n; k++)
            if (shoal_manager_wait(m, ids[k], NULL) < 0)
                return -1;
        done += n;
    }
    return 0;
}

/* Submits the lock's acquire (waiting as long as it takes) or its release. */
static int submit_lock(shoal_manager *m, int acquire, uint64_t *id)
{
    shoal_manager_request r = {.name = "bench.lock",
                               .op = acquire ? "acquire" : "release",
                               .timeout = acquire ? SHOAL_FOREVER : 0};
    return shoal_manager_submit(m, &r, id);
}

/* Submits the requests of one operation (two for the lock); returns their count. */
static int submit_op(shoal_manager *m, const char *cs, long i, uint64_t *ids)
{
    shoal_manager_request r = {0};
    shoal_mv *args[2];
    r.args = args;
    if (!strcmp(cs, "set")) {
        r = (shoal_manager_request){"bench.dict", "set", NULL, 0, args, 2, 0};
        args[0] = key_of(i);
        args[1] = shoal_mv_str(VALUE);
    } else if (!strcmp(cs, "get")) {
        r = (shoal_manager_request){"bench.dict", "get", NULL, 0, args, 1, 0};
        args[0] = key_of(i);
    } else if (!strcmp(cs, "append")) {
        r = (shoal_manager_request){"bench.list", "append", NULL, 0, args, 1, 0};
        args[0] = shoal_mv_int(i);
    } else {
        if (submit_lock(m, 1, &ids[0]) < 0 || submit_lock(m, 0, &ids[1]) < 0)
            return -1;
        return 2;
    }
    return shoal_manager_submit(m, &r, &ids[0]) < 0 ? -1 : 1;
}

static int check_reply(shoal_manager *m, const char *cs, uint64_t id)
{
    shoal_mv *res = NULL;
    int rc = shoal_manager_wait(m, id, &res);
    if (rc == 0 && !strcmp(cs, "get") &&
        (!res || shoal_mv_type(res) != SHOAL_MV_STR ||
         strcmp(shoal_mv_as_str(res), VALUE)))
        rc = -1;
    shoal_mv_free(res);
    return rc;
}

/* The lock with several clients (see the top): each pair's release goes out once its
 * acquire was granted; DEPTH releases at most are in flight (ids: room for DEPTH). */
static int lock_pairs(client *c, shoal_manager *m, uint64_t *ids)
{
    int inflight = 0;
    for (long i = 0; i < c->count; i++) {
        int64_t t0 = now_ns();
        uint64_t acq;
        if (submit_lock(m, 1, &acq) < 0 || shoal_manager_wait(m, acq, NULL) < 0 ||
            submit_lock(m, 0, &ids[inflight++]) < 0)
            return -1;
        if (c->depth == 1 && shoal_manager_wait(m, ids[--inflight], NULL) < 0)
            return -1;
        c->lat[c->nlat++] = now_ns() - t0;
        if (inflight == c->depth || i == c->count - 1)
            for (; inflight > 0; inflight--)
                if (shoal_manager_wait(m, ids[inflight - 1], NULL) < 0)
                    return -1;
    }
    return 0;
}

/* Submits the next DEPTH operations (from op `from`) on m, their ids in ids: how
 * many requests (a lock pair is two), or -1. */
static int submit_batch(client *c, shoal_manager *m, long from, uint64_t *ids)
{
    int n = 0;
    for (int k = 0; k < c->depth && from + k < c->count; k++) {
        int got = submit_op(m, c->cs, from + k, ids + n);
        if (got < 0)
            return -1;
        n += got;
    }
    return c->nconn > 1 && shoal_manager_flush(m) < 0 ? -1 : n;
}

static void *client_main(void *arg)
{
    client *c = arg;
    shoal_manager_config cfg = {.connect_timeout = SHOAL_SEC(10), .token = c->token};
    shoal_manager *ms[64] = {0};
    size_t per = 2 * (size_t)c->depth;
    uint64_t *ids = malloc(sizeof(*ids) * per * (size_t)c->nconn);
    int nids[64]; /* each connection's requests in flight; -1: it is done */
    long sent[64];
    int64_t b0[64];
    c->lat = malloc(sizeof(*c->lat) * (size_t)(c->count + 1) * (size_t)c->nconn);
    if (!ids || !c->lat)
        c->failed = 1;
    for (int j = 0; j < c->nconn && !c->failed; j++)
        if (shoal_manager_connect(&ms[j], c->address, &cfg) < 0 ||
            setup_objects(ms[j]) < 0)
            c->failed = 1;
    shoal_manager *m = ms[0];
    if (!c->failed && c == c->first && nkeys && fill && fill_keys(m) < 0)
        c->failed = 1;
    pthread_barrier_wait(c->start);
    c->t0 = now_ns();
    if (c->pairs && !c->failed && lock_pairs(c, m, ids) < 0)
        c->failed = 1;
    int live = c->pairs ? 0 : c->nconn;
    for (int j = 0; j < live && !c->failed; j++) {
        b0[j] = now_ns();
        sent[j] = c->depth;
        if ((nids[j] = submit_batch(c, ms[j], 0, ids + per * j)) < 0)
            c->failed = 1;
    }
    while (live > 0 && !c->failed) {
        for (int j = 0; j < c->nconn && !c->failed; j++) {
            if (nids[j] < 0)
                continue;
            for (int k = 0; k < nids[j]; k++)
                if (check_reply(ms[j], c->cs, ids[per * j + k]) < 0)
                    c->failed = 1;
            c->lat[c->nlat++] = (now_ns() - b0[j]) / c->depth;
            if (sent[j] >= c->count) {
                nids[j] = -1;
                live--;
                continue;
            }
            b0[j] = now_ns();
            if ((nids[j] = submit_batch(c, ms[j], sent[j], ids + per * j)) < 0)
                c->failed = 1;
            sent[j] += c->depth;
        }
    }
    c->t1 = now_ns();
    if (c->failed)
        fprintf(stderr, "bench_broker %s: %s\n", c->cs, shoal_errdetail());
    for (int j = 0; j < c->nconn; j++)
        shoal_manager_close(ms[j]);
    free(ids);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: bench_broker set|get|append|lock DEPTH COUNT ADDRESS "
                        "[CLIENTS[/THREADS] [TOKEN [KEYS]]]\n");
        return 2;
    }
    const char *cs = argv[1];
    int depth = atoi(argv[2]);
    long count = atol(argv[3]);
    int nclients = argc > 5 ? atoi(argv[5]) : 1;
    const char *slash = argc > 5 ? strchr(argv[5], '/') : NULL;
    int nthreads = slash ? atoi(slash + 1) : nclients;
    if (nthreads < 1 || nclients % nthreads) {
        fprintf(stderr, "bench_broker: CLIENTS/THREADS: THREADS must divide CLIENTS\n");
        return 2;
    }
    const char *token = argc > 6 && strcmp(argv[6], "-") ? argv[6] : NULL;
    nkeys = argc > 7 ? atol(argv[7]) : 0;
    if (nkeys < 0) {
        nkeys = -nkeys;
        fill = 0;
    }
    if (strcmp(cs, "set") && strcmp(cs, "get") && strcmp(cs, "append") &&
        strcmp(cs, "lock")) {
        fprintf(stderr, "bench_broker: unknown case %s\n", cs);
        return 2;
    }
    if (depth < 1 || count < 1 || nclients < 1 || nclients > 64) {
        fprintf(stderr, "bench_broker: DEPTH, COUNT >= 1, 1 <= CLIENTS <= 64\n");
        return 2;
    }
    client cl[64];
    pthread_t th[64];
    pthread_barrier_t start;
    if (nthreads < nclients && !strcmp(cs, "lock")) {
        fprintf(stderr, "bench_broker: lock: one thread per client\n");
        return 2;
    }
    pthread_barrier_init(&start, NULL, (unsigned)nthreads);
    for (int i = 0; i < nthreads; i++) {
        cl[i] = (client){.cs = cs,
                         .address = argv[4],
                         .token = token,
                         .depth = depth,
                         .pairs = !strcmp(cs, "lock") && nclients > 1,
                         .count = count,
                         .nconn = nclients / nthreads,
                         .start = &start,
                         .first = &cl[0]};
        pthread_create(&th[i], NULL, client_main, &cl[i]);
    }
    int64_t t0 = INT64_MAX, t1 = 0, per_client = 0;
    int failed = 0;
    int64_t *lat = malloc(sizeof(*lat) * (size_t)(count + 1) * (size_t)nclients);
    long nlat = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        if (lat && cl[i].lat)
            memcpy(lat + nlat, cl[i].lat, sizeof(*lat) * (size_t)cl[i].nlat);
        nlat += cl[i].nlat;
        free(cl[i].lat);
        failed |= cl[i].failed;
        t0 = cl[i].t0 < t0 ? cl[i].t0 : t0;
        t1 = cl[i].t1 > t1 ? cl[i].t1 : t1;
        per_client += cl[i].t1 - cl[i].t0;
    }
    pthread_barrier_destroy(&start);
    if (failed || !lat)
        return 1;
    qsort(lat, (size_t)nlat, sizeof(*lat), cmp_i64);
    double total = (double)count * nclients;
    printf("RESULT case=%s depth=%d count=%ld clients=%d ops_per_s=%.0f median_ns=%lld "
           "p99_ns=%lld p999_ns=%lld max_ns=%lld mean_ns=%.0f\n",
           cs, depth, count, nclients, total / ((double)(t1 - t0) / 1e9),
           (long long)lat[nlat / 2], (long long)lat[(size_t)((double)nlat * 0.99)],
           (long long)lat[(size_t)((double)nlat * 0.999)], (long long)lat[nlat - 1],
           (double)per_client / nthreads / (double)count);
    free(lat);
    return 0;
}
