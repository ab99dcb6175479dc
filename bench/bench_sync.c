/*
 * bench_sync.c — the cost of shoal's locks and Values, beside what the same thing
 * costs bare: an atomic instruction on shared memory and a glibc robust,
 * process-shared pthread mutex.
 *
 * Operations per case (ns per operation is reported):
 *   bare_add, shoal_value_add         atomic add of 1 to an int64 in shared memory
 *   bare_add_2p, shoal_value_add_2p   the same from two processes on two cores at
 *                                     once (wall time / operations of both)
 *   bare_mutex, shoal_lock, shoal_rlock   lock + unlock, uncontended
 *   bare_mutex_2p, shoal_lock_2p      lock, increment a shared counter, unlock, in two
 *                                     processes at once: the lock changes hands
 *                                     between cores (the counter is checked)
 *   bare_value_read, shoal_value_read     read an int64 under its lock (bare: a robust
 *                                     mutex around an 8-byte copy)
 *   bare_value_write, shoal_value_write   the same, writing
 *   shoal_value_snapshot              lock-free consistent read of the same Value
 *
 * Each process is pinned to its own core.
 */
#include <pthread.h>

#include "shoal.h"

#include "common.h"

/* No deadline on the hot path; a hang is ended by the children's alarm() and the
 * driver's timeout. */
#define TIMEOUT SHOAL_FOREVER

__attribute__((noreturn)) static void sfail(const char *what, int rc)
{
    bfail("%s: %s (%s)", what, shoal_strerror(rc), shoal_errdetail());
}

/* What the processes of a case share, besides the control block. */
struct shared {
    _Alignas(64) pthread_mutex_t mutex;
    _Alignas(64) _Atomic int64_t word;
    _Alignas(64) int64_t counter; /* protected by the lock under test */
};

enum op {
    OP_BARE_ADD,
    OP_BARE_MUTEX,
    OP_BARE_READ,
    OP_BARE_WRITE,
    OP_LOCK,
    OP_RLOCK,
    OP_VALUE_ADD,
    OP_VALUE_READ,
    OP_VALUE_WRITE,
    OP_VALUE_SNAPSHOT
};

struct sync_arg {
    enum op op;
    int procs;      /* processes running the case at once */
    int contended;  /* lock cases: increment the shared counter inside the lock */
    uint64_t count; /* operations per process */
    struct shared *sh;
    char name[64];
};

static void mutex_lock(pthread_mutex_t *m)
{
    int e = pthread_mutex_lock(m);
    if (e == EOWNERDEAD)
        pthread_mutex_consistent(m);
    else if (e)
        bfail("pthread_mutex_lock: %s", strerror(e));
}

static shoal_value *open_value(const char *name)
{
    shoal_value *v;
    int64_t zero = 0;
    int rc = shoal_value_open(&v, name, SHOAL_OPEN_OR_CREATE, shoal_typecode('q'), &zero,
                              NULL);
    if (rc)
        sfail("shoal_value_open", rc);
    return v;
}

static shoal_lock *open_lock(const char *name, int recursive)
{
    shoal_lock *lk;
    int rc = recursive ? shoal_rlock_open(&lk, name, SHOAL_OPEN_OR_CREATE, NULL)
                       : shoal_lock_open(&lk, name, SHOAL_OPEN_OR_CREATE, NULL);
    if (rc)
        sfail("shoal_lock_open", rc);
    return lk;
}

static void lock_loop(struct sync_arg *a, shoal_lock *lk)
{
    for (uint64_t i = 0; i < a->count; i++) {
        int rc = shoal_lock_acquire(lk, TIMEOUT);
        if (rc && rc != SHOAL_EOWNERDEAD)
            sfail("shoal_lock_acquire", rc);
        if (a->contended)
            a->sh->counter++;
        if ((rc = shoal_lock_release(lk)))
            sfail("shoal_lock_release", rc);
    }
}

static void value_loop(struct sync_arg *a, shoal_value *v)
{
    int64_t x = 0;
    int rc = 0;
    for (uint64_t i = 0; i < a->count && !rc; i++) {
        switch (a->op) {
        case OP_VALUE_ADD:
            rc = shoal_value_add(v, 1, NULL);
            break;
        case OP_VALUE_READ:
            rc = shoal_value_read(v, &x);
            break;
        case OP_VALUE_WRITE:
            x = (int64_t)i;
            rc = shoal_value_write(v, &x);
            break;
        default:
            rc = shoal_value_snapshot(v, &x);
            break;
        }
    }
    if (rc)
        sfail("shoal_value operation", rc);
}

static void bare_loop(struct sync_arg *a)
{
    struct shared *sh = a->sh;
    volatile int64_t sink = 0;
    for (uint64_t i = 0; i < a->count; i++) {
        switch (a->op) {
        case OP_BARE_ADD:
            atomic_fetch_add(&sh->word, 1);
            break;
        case OP_BARE_MUTEX:
            mutex_lock(&sh->mutex);
            if (a->contended)
                sh->counter++;
            pthread_mutex_unlock(&sh->mutex);
            break;
        case OP_BARE_READ:
            mutex_lock(&sh->mutex);
            sink = atomic_load_explicit(&sh->word, memory_order_relaxed);
            pthread_mutex_unlock(&sh->mutex);
            break;
        default:
            mutex_lock(&sh->mutex);
            atomic_store_explicit(&sh->word, (int64_t)i, memory_order_relaxed);
            pthread_mutex_unlock(&sh->mutex);
            break;
        }
    }
    (void)sink;
}

static void atomic_min(_Atomic int64_t *x, int64_t v)
{
    int64_t cur = atomic_load(x);
    while (v < cur && !atomic_compare_exchange_weak(x, &cur, v))
        ;
}

static void atomic_max(_Atomic int64_t *x, int64_t v)
{
    int64_t cur = atomic_load(x);
    while (v > cur && !atomic_compare_exchange_weak(x, &cur, v))
        ;
}

/* One worker: opens what it needs by name, runs its operations after the start and
 * widens the timed window to cover its own. */
static int worker(struct bctl *ctl, int idx, void *p)
{
    (void)idx;
    struct sync_arg *a = p;
    shoal_lock *lk = NULL;
    shoal_value *v = NULL;
    if (a->op == OP_LOCK || a->op == OP_RLOCK)
        lk = open_lock(a->name, a->op == OP_RLOCK);
    else if (a->op >= OP_VALUE_ADD)
        v = open_value(a->name);
    ctl_ready(ctl);
    int64_t t0 = now_ns();
    if (lk)
        lock_loop(a, lk);
    else if (v)
        value_loop(a, v);
    else
        bare_loop(a);
    int64_t t1 = now_ns();
    atomic_min(&ctl->t0, t0);
    atomic_max(&ctl->t1, t1);
    if (lk)
        shoal_lock_close(lk);
    if (v) {
        /* The last process to finish reads the total for main to check. */
        int64_t total = 0;
        if (a->op == OP_VALUE_ADD &&
            atomic_fetch_add(&ctl->finished, 1) + 1 == a->procs) {
            int rc = shoal_value_load(v, &total);
            if (rc)
                sfail("shoal_value_load", rc);
            ctl->extra = (double)total;
        }
        shoal_value_close(v);
    }
    return 0;
}

struct case_def {
    const char *name;
    enum op op;
    int procs;
};

static const struct case_def cases[] = {
    {"bare_add", OP_BARE_ADD, 1},
    {"bare_add_2p", OP_BARE_ADD, 2},
    {"shoal_value_add", OP_VALUE_ADD, 1},
    {"shoal_value_add_2p", OP_VALUE_ADD, 2},
    {"bare_mutex", OP_BARE_MUTEX, 1},
    {"bare_mutex_2p", OP_BARE_MUTEX, 2},
    {"shoal_lock", OP_LOCK, 1},
    {"shoal_lock_2p", OP_LOCK, 2},
    {"shoal_rlock", OP_RLOCK, 1},
    {"bare_value_read", OP_BARE_READ, 1},
    {"shoal_value_read", OP_VALUE_READ, 1},
    {"bare_value_write", OP_BARE_WRITE, 1},
    {"shoal_value_write", OP_VALUE_WRITE, 1},
    {"shoal_value_snapshot", OP_VALUE_SNAPSHOT, 1},
};

static void init_mutex(pthread_mutex_t *m)
{
    pthread_mutexattr_t at;
    pthread_mutexattr_init(&at);
    pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
    int e = pthread_mutex_init(m, &at);
    pthread_mutexattr_destroy(&at);
    if (e)
        bfail("pthread_mutex_init: %s", strerror(e));
}

int main(int argc, char **argv)
{
    char names[1024] = "";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        strcat(names, cases[i].name);
        strcat(names, " ");
    }
    struct bargs b = parse_args(argc, argv, names);
    const struct case_def *cd = NULL;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (!strcmp(cases[i].name, b.name))
            cd = &cases[i];
    if (!cd) {
        fprintf(stderr, "bench_sync: unknown case %s\ncases: %s\n", b.name, names);
        return 2;
    }
    bench_root();

    struct sync_arg a = {0};
    a.op = cd->op;
    a.count = b.count;
    a.procs = cd->procs;
    a.contended = cd->procs > 1;
    a.sh = shared_alloc(sizeof(struct shared));
    init_mutex(&a.sh->mutex);
    snprintf(a.name, sizeof(a.name), "bench-%d", (int)getpid());
    struct bctl *ctl = ctl_new();
    ctl->t0 = INT64_MAX;
    ctl->t1 = INT64_MIN;
    ctl->extra = -1;

    role_fn fns[2] = {worker, worker};
    void *args[2] = {&a, &a};
    int cpu[2] = {0, 1};
    int rc = run_roles(ctl, cd->procs, fns, args, cpu);
    if (cd->op >= OP_LOCK)
        shoal_unlink(a.name, NULL);
    if (rc)
        return 1;

    uint64_t ops = a.count * (uint64_t)cd->procs;
    /* Wrong totals mean a lock or an atomic that does not work: not a result. */
    if (a.contended && (cd->op == OP_BARE_MUTEX || cd->op == OP_LOCK) &&
        (uint64_t)a.sh->counter != ops)
        bfail("%s: counter is %lld after %llu locked increments", cd->name,
              (long long)a.sh->counter, (unsigned long long)ops);
    if (cd->op == OP_BARE_ADD && (uint64_t)atomic_load(&a.sh->word) != ops)
        bfail("%s: word is %lld after %llu adds", cd->name,
              (long long)atomic_load(&a.sh->word), (unsigned long long)ops);
    if (cd->op == OP_VALUE_ADD && ctl->extra != (double)ops)
        bfail("%s: value is %.0f after %llu adds", cd->name, ctl->extra,
              (unsigned long long)ops);
    report_op(cd->name, ops, ctl->t1 - ctl->t0);
    return 0;
}
