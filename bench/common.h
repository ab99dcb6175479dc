/*
 * common.h — what every benchmark program shares: the clock, CPU pinning, child
 * processes with a start barrier, a shared control block, latency statistics and the
 * one-line result format the driver (run.py) parses.
 *
 * Every program is run as `prog CASE SIZE COUNT` and prints exactly one line,
 *   RESULT case=CASE size=SIZE count=COUNT key=value ...
 * or, when the case cannot run here (a missing peer, a limit of the system),
 *   SKIP case=CASE reason=...
 * and exits 0. Anything else (a crash, a wrong message, a non-zero exit) is a failure.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Slots every bounded channel of the bench holds, so buffering is alike for all. */
#define BENCH_CAPACITY 1024
/* Messages (or round trips) run before the timed window opens. */
#define BENCH_WARM(count) ((count) / 10 < 1000 ? (count) / 10 : 1000)
/* Seconds a child may run before it is killed: nothing in the bench may hang. */
#define BENCH_CHILD_ALARM 120

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* The process that made the private root (see bench_root) and removes it at exit. */
static pid_t bench_root_owner;

/* Prints a message and ends this process (a child or the program) with status 1. */
static inline void bfail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static inline void bfail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stderr);
    if (getpid() == bench_root_owner)
        exit(1); /* runs the root's clean-up */
    _exit(1);
}

/* Reports that a case cannot run here; the driver shows it as n/a. */
static inline int bskip(const char *c, const char *reason)
{
    printf("SKIP case=%s reason=%s\n", c, reason);
    fflush(stdout);
    return 0;
}

/*
 * Pins the calling process to the `slot`-th CPU it is allowed to run on (modulo their
 * number), so the two sides of a pair sit on distinct cores.
 */
static inline void pin_slot(int slot)
{
    cpu_set_t allowed, one;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
        return;
    int n = CPU_COUNT(&allowed), want = slot % (n ? n : 1), seen = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &allowed))
            continue;
        if (seen++ == want) {
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            /* Not fatal: a container may forbid it; the numbers then say so. */
            if (sched_setaffinity(0, sizeof(one), &one) != 0)
                fprintf(stderr, "bench: warning: cannot pin to cpu %d: %s\n", cpu,
                        strerror(errno));
            return;
        }
    }
}

/* Shared, zero-filled anonymous memory, inherited across fork. */
static inline void *shared_alloc(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        bfail("mmap(%zu): %s", size, strerror(errno));
    return p;
}

/* The control block the processes of one case share. Results are written by the
 * children and read by the parent after they exit. */
struct bctl {
    _Alignas(64) _Atomic int ready;
    _Atomic int go;
    _Alignas(64) _Atomic int64_t t0; /* timed window: start */
    _Atomic int64_t t1;              /* timed window: end */
    _Atomic uint64_t done;           /* messages or operations counted */
    _Atomic int finished;            /* producers (or workers) that finished */
    double median_ns, p99_ns, mean_ns;
    double extra; /* a case-specific number (e.g. a checksum) */
    _Alignas(64) unsigned char scratch[4096]; /* case-specific shared state */
};

static inline struct bctl *ctl_new(void)
{
    return (struct bctl *)shared_alloc(sizeof(struct bctl));
}

/* Called by each child once set up: waits until every child is set up. */
static inline void ctl_ready(struct bctl *ctl)
{
    atomic_fetch_add(&ctl->ready, 1);
    while (!atomic_load(&ctl->go)) {
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
}

typedef int (*role_fn)(struct bctl *ctl, int index, void *arg);

/*
 * Forks n children; child i pins itself to CPU slot cpu[i], runs fns[i](ctl, i, args[i])
 * and exits with its result. Starts them together once all are ready. Returns 0 when
 * every child exited 0, else 1 (after having reported which one failed).
 */
static inline int run_roles(struct bctl *ctl, int n, role_fn *fns, void **args,
                            const int *cpu)
{
    pid_t pids[16];
    pid_t parent = getpid();
    fflush(NULL);
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] < 0)
            bfail("fork: %s", strerror(errno));
        if (pids[i] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(1);
            alarm(BENCH_CHILD_ALARM);
            pin_slot(cpu[i]);
            _exit(fns[i](ctl, i, args ? args[i] : NULL));
        }
    }
    while (atomic_load(&ctl->ready) < n) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p > 0) { /* a child ended before the start: it failed to set up */
            for (int i = 0; i < n; i++)
                if (pids[i] != p)
                    kill(pids[i], SIGKILL);
            while (wait(NULL) > 0)
                ;
            fprintf(stderr, "bench: child %d ended during set-up (%s %d)\n", (int)p,
                    WIFSIGNALED(st) ? "signal" : "status",
                    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
            return 1;
        }
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&ctl->go, 1);
    /* Reap in any order; once one child fails the others may wait for it forever
     * (a full queue, a reply that never comes), so they are killed at once. */
    int bad = 0;
    for (int left = n; left > 0; left--) {
        int st;
        pid_t p = waitpid(-1, &st, 0);
        if (p < 0)
            break;
        int failed = !WIFEXITED(st) || WEXITSTATUS(st) != 0;
        for (int i = 0; i < n; i++)
            if (pids[i] == p) {
                pids[i] = 0; /* reaped: its pid may be reused */
                if (failed && !bad)
                    fprintf(stderr, "bench: child %d failed (%s %d)\n", i,
                            WIFSIGNALED(st) ? "signal" : "status",
                            WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
            }
        if (failed && !bad) {
            bad = 1;
            for (int i = 0; i < n; i++)
                if (pids[i] > 0)
                    kill(pids[i], SIGKILL);
        }
    }
    return bad;
}

/* Two roles on distinct cores: the usual producer/consumer or ping/pong pair. */
static inline int run_pair(struct bctl *ctl, role_fn a, void *arg_a, role_fn b,
                           void *arg_b)
{
    role_fn fns[2] = {a, b};
    void *args[2] = {arg_a, arg_b};
    int cpu[2] = {0, 1};
    return run_roles(ctl, 2, fns, args, cpu);
}

/* ---- latency samples ----------------------------------------------------------------
 */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* With BENCH_QUANTILES set in the environment, prints the 5th, 10th, ..., 95th
 * percentiles of the sorted samples (µs) on stderr: a wake-up through the scheduler
 * has two modes on some virtual machines (the host still polling the idle virtual
 * CPU, or not), and the median alone does not show which a run hit. */
static inline void lat_quantiles(const int64_t *s, size_t n)
{
    if (!getenv("BENCH_QUANTILES"))
        return;
    for (size_t q = 1; q < 20; q++)
        fprintf(stderr, "%.1f%c", (double)s[n * q / 20] / 1000.0, q < 19 ? ' ' : '\n');
}

/* Sorts n samples and stores median, p99 and mean in ctl. */
static inline void lat_summarise(struct bctl *ctl, int64_t *s, size_t n)
{
    if (!n)
        bfail("no latency samples");
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)s[i];
    qsort(s, n, sizeof(*s), cmp_i64);
    ctl->median_ns = (double)s[n / 2];
    size_t k = (size_t)((double)n * 0.99);
    ctl->p99_ns = (double)s[k < n ? k : n - 1];
    ctl->mean_ns = sum / (double)n;
    lat_quantiles(s, n);
}

static inline int64_t *lat_alloc(size_t n)
{
    int64_t *s = (int64_t *)malloc((n ? n : 1) * sizeof(int64_t));
    if (!s)
        bfail("out of memory for %zu samples", n);
    return s;
}

/* ---- messages -----------------------------------------------------------------------
 */

/* Every message carries its sequence number in its first 8 bytes (sizes are >= 8),
 * so each consumer checks it got exactly what was sent, in order. */
static inline void msg_stamp(void *msg, uint64_t seq)
{
    memcpy(msg, &seq, sizeof(seq));
}

static inline uint64_t msg_seq(const void *msg)
{
    uint64_t seq;
    memcpy(&seq, msg, sizeof(seq));
    return seq;
}

static inline void msg_check(const char *what, const void *msg, uint64_t want)
{
    uint64_t got = msg_seq(msg);
    if (got != want)
        bfail("%s: message %llu arrived as %llu", what, (unsigned long long)want,
              (unsigned long long)got);
}

/* ---- results ------------------------------------------------------------------------
 */

/* A remark the driver prints under the table (no spaces), e.g. a limit that applied. */
static char bench_note[160];

static inline void print_note(void)
{
    if (bench_note[0])
        printf(" note=%s", bench_note);
    printf("\n");
    fflush(stdout);
}

static inline void report_tput(const char *c, size_t size, uint64_t count,
                               const struct bctl *ctl)
{
    int64_t dt = ctl->t1 - ctl->t0;
    if (dt <= 0)
        bfail("%s: empty timed window", c);
    printf("RESULT case=%s size=%zu count=%llu msgs_per_s=%.1f elapsed_ns=%lld", c, size,
           (unsigned long long)count, (double)count * 1e9 / (double)dt, (long long)dt);
    print_note();
}

static inline void report_rtt(const char *c, size_t size, uint64_t count,
                              const struct bctl *ctl)
{
    printf("RESULT case=%s size=%zu count=%llu median_ns=%.1f p99_ns=%.1f mean_ns=%.1f",
           c, size, (unsigned long long)count, ctl->median_ns, ctl->p99_ns, ctl->mean_ns);
    print_note();
}

static inline void report_op(const char *c, uint64_t count, int64_t elapsed_ns)
{
    if (elapsed_ns <= 0)
        bfail("%s: empty timed window", c);
    printf("RESULT case=%s size=8 count=%llu ns_per_op=%.2f elapsed_ns=%lld", c,
           (unsigned long long)count, (double)elapsed_ns / (double)count,
           (long long)elapsed_ns);
    print_note();
}

/* ---- command line -------------------------------------------------------------------
 */

struct bargs {
    const char *name; /* case */
    size_t size;      /* message bytes */
    uint64_t count;   /* messages, round trips or operations in the timed window */
};

static inline struct bargs parse_args(int argc, char **argv, const char *usage_cases)
{
    struct bargs a = {0};
    if (argc != 4) {
        fprintf(stderr, "usage: %s CASE SIZE COUNT\ncases: %s\n", argv[0], usage_cases);
        exit(2);
    }
    a.name = argv[1];
    a.size = (size_t)strtoull(argv[2], NULL, 10);
    a.count = strtoull(argv[3], NULL, 10);
    if (a.size < 8 || a.size > 65536 || a.count < 1) {
        fprintf(stderr, "%s: SIZE must be 8..65536 and COUNT >= 1\n", argv[0]);
        exit(2);
    }
    return a;
}

/*
 * A private directory for files the case makes (sockets, shoal segments): $SHOAL_ROOT
 * when the driver set it, else a fresh directory under /dev/shm that the program
 * removes when it ends.
 */
static char bench_root_dir[256];

static inline void bench_root_cleanup(void)
{
    if (bench_root_owner == getpid()) {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", bench_root_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench: could not remove %s\n", bench_root_dir);
    }
}

static inline const char *bench_root(void)
{
    if (bench_root_dir[0])
        return bench_root_dir;
    const char *env = getenv("SHOAL_ROOT");
    if (env && *env) {
        snprintf(bench_root_dir, sizeof(bench_root_dir), "%s", env);
        return bench_root_dir;
    }
    snprintf(bench_root_dir, sizeof(bench_root_dir), "/dev/shm/shoal-bench-XXXXXX");
    if (!mkdtemp(bench_root_dir))
        bfail("mkdtemp: %s", strerror(errno));
    setenv("SHOAL_ROOT", bench_root_dir, 1);
    bench_root_owner = getpid();
    atexit(bench_root_cleanup);
    return bench_root_dir;
}

#endif
