/*
 * fuzz_segment.c — libFuzzer target: arbitrary bytes as a segment file.
 *
 * Each input is written to one file in a private root directory, then opened as every
 * kind of object (value, array, typed and variable-size queue, pipe, lock, rlock,
 * semaphore, bounded semaphore, condition, event, barrier, SharedMemory); every
 * operation that opens succeeds for is run in its non-waiting form (try forms, zero
 * timeouts; the calls that take an object's lock without a timeout only after the
 * lock was taken with a try, so they re-enter it instead of waiting). The object is
 * then inspected through the public inspection API and listed. Whatever the bytes,
 * nothing may crash, read or write out of bounds, or wait.
 *
 * The checked-in corpus (corpus/, made by make_corpus) holds a small valid segment of
 * each kind and damaged ones. A mutated header fails its checksum, so most header
 * mutations would only test the checksum: an input whose header has bit 0 of the
 * unused word after owner_died set (as every seed has) gets its checksum recomputed
 * first, as a hostile writer would, so that mutated header fields reach the checks
 * behind the checksum; inputs without the bit test the checksum itself. A longer run,
 * keeping its finds out of the tree:
 *
 *   sh tests/fuzz/run.sh build/tests/fuzz/fuzz_segment tests/fuzz/corpus 600 WORKDIR
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h" /* the header's layout, to recompute its checksum */
#include "shoal.h"

#define NAME  "f"
#define BUFSZ (1u << 16)

static char root[64], path[128];
static unsigned char buf[BUFSZ], buf2[BUFSZ];

/* Removes a root made by setup(): <top>/default/<files>, then the directories. */
static void remove_tree(const char *top)
{
    char dir[512], file[1024];
    snprintf(dir, sizeof(dir), "%s/default", top);
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(file, sizeof(file), "%s/%s", dir, e->d_name);
            unlink(file);
        }
    if (d)
        closedir(d);
    rmdir(dir);
    rmdir(top);
}

static void remove_root(void)
{
    remove_tree(root);
}

/* libFuzzer may end the process without running atexit handlers (timeouts, crashes,
 * some exits): the roots of fuzzing processes that are gone are removed here. */
static void remove_stale_roots(void)
{
    DIR *d = opendir("/dev/shm");
    char top[512];
    int pid;
    for (struct dirent *e; d && (e = readdir(d));)
        if (sscanf(e->d_name, "shoal-fuzz-%d-", &pid) == 1 && pid > 0 &&
            kill(pid, 0) != 0 && errno == ESRCH) {
            snprintf(top, sizeof(top), "/dev/shm/%s", e->d_name);
            remove_tree(top);
        }
    if (d)
        closedir(d);
}

static void setup(void)
{
    remove_stale_roots();
    snprintf(root, sizeof(root), "/dev/shm/shoal-fuzz-%d-XXXXXX", (int)getpid());
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        abort();
    }
    char dir[96];
    snprintf(dir, sizeof(dir), "%s/default", root);
    if (mkdir(dir, 0700) != 0)
        abort();
    snprintf(path, sizeof(path), "%s/" NAME, dir);
    setenv("SHOAL_ROOT", root, 1);
    unsetenv("SHOAL_DOMAIN");
    shoal_set_spin_ns(0);
    atexit(remove_root);
}

/* The input, its header checksum recomputed when it asks for it. */
static const uint8_t *as_written(const uint8_t *data, size_t size)
{
    static _Alignas(8) uint8_t copy[1 << 20];
    struct shoal__header *h = (struct shoal__header *)copy;
    if (size < sizeof(*h) || size > sizeof(copy))
        return data;
    memcpy(copy, data, size);
    if (h->pad & 1)
        h->checksum =
            shoal_fnv1a(SHOAL_FNV_OFFSET, h, offsetof(struct shoal__header, checksum));
    return copy;
}

static void write_file(const uint8_t *data, size_t size)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    if (size && write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);
}

/* ---- the object's own lock, taken without waiting --------------------------------- */

static int try_lock(shoal_lock *lk)
{
    if (!lk)
        return 1; /* no lock: locked operations do not wait either */
    int rc = shoal_lock_try(lk);
    return rc == 0 || rc == SHOAL_EOWNERDEAD ? 2 : 0;
}

static void unlock(shoal_lock *lk, int held)
{
    if (held == 2)
        shoal_lock_release(lk);
}

/* ---- each kind --------------------------------------------------------------------- */

static void fuzz_value(void)
{
    shoal_value *v;
    if (shoal_value_open(&v, NAME, SHOAL_OPEN, NULL, NULL, NULL))
        return;
    const shoal_type *t = shoal_value_type(v);
    int64_t x;
    if (t->size <= BUFSZ) {
        shoal_value_snapshot(v, buf);
        shoal_lock *lk = shoal_value_get_lock(v);
        int held = try_lock(lk);
        if (held) {
            shoal_value_read(v, buf);
            shoal_value_write(v, buf);
            if (shoal_value_modify(v))
                shoal_value_commit(v);
        }
        unlock(lk, held);
    }
    shoal_value_load(v, &x);
    shoal_value_add(v, 1, &x);
    shoal_value_cas(v, &x, x + 1);
    shoal_value_close(v);
}

static void fuzz_array(void)
{
    shoal_array *a;
    if (shoal_array_open(&a, NAME, SHOAL_OPEN, NULL, 0, NULL, NULL))
        return;
    size_t n = shoal_array_len(a), size = shoal_array_type(a)->size;
    shoal_lock *lk = shoal_array_get_lock(a);
    int held = try_lock(lk);
    if (held && size <= BUFSZ) {
        int64_t old;
        shoal_array_get(a, 0, buf);
        shoal_array_set(a, 0, buf);
        shoal_array_get(a, n ? n - 1 : 0, buf);
        shoal_array_get(a, n / 2, buf); /* in range by the count: defect 4's overflow */
        shoal_array_get(a, n, buf);     /* out of range */
        if (n && size * (n < 4 ? n : 4) <= BUFSZ)
            shoal_array_read(a, 0, n < 4 ? n : 4, buf);
        shoal_array_add(a, 0, 1, &old);
    }
    unlock(lk, held);
    shoal_array_close(a);
}

static void fuzz_queue(const shoal_queue_config *cfg)
{
    shoal_queue *q;
    if (shoal_queue_open(&q, NAME, SHOAL_OPEN, cfg, NULL))
        return;
    shoal_queue_stats st;
    shoal_queue_stats_get(q, &st);
    size_t len, done;
    const void *msg;
    void *slot;
    shoal_queue_try_get(q, buf, BUFSZ, &len);
    shoal_queue_try_get(q, buf, 1, &len); /* too small */
    if (shoal_queue_peek(q, &msg, &len, SHOAL_NOWAIT) == 0)
        shoal_queue_release(q, msg);
    size_t elem = st.max_msg ? st.max_msg : 1;
    shoal_queue_try_put(q, buf2, elem <= 8 ? elem : 8);
    if (shoal_queue_loan(q, &slot, &len, SHOAL_NOWAIT) == 0)
        shoal_queue_commit(q, slot, len < 4 ? len : 4);
    if (elem * 4 <= BUFSZ) {
        shoal_queue_get_batch(q, buf, 4, &done, SHOAL_NOWAIT);
        shoal_queue_put_batch(q, buf2, 2, &done, SHOAL_NOWAIT);
    }
    shoal_queue_get(q, buf, BUFSZ, &len, SHOAL_NOWAIT);
    shoal_queue_shutdown(q);
    shoal_queue_try_get(q, buf, BUFSZ, &len);
    shoal_queue_close(q);
}

static void fuzz_pipe(void)
{
    for (int end = 0; end < 2; end++) {
        shoal_pipe *p;
        if (shoal_pipe_open(&p, NAME, end | SHOAL_PIPE_TAKEOVER, SHOAL_OPEN, NULL, NULL))
            return;
        size_t len;
        shoal_pipe_poll(p, SHOAL_NOWAIT);
        shoal_pipe_recv(p, buf, BUFSZ, &len, SHOAL_NOWAIT);
        shoal_pipe_send(p, buf2, 1, SHOAL_NOWAIT);
        shoal_pipe_close(p);
    }
}

static void fuzz_locks(void)
{
    shoal_lock *lk;
    int rec, died;
    int32_t owner;
    uint32_t depth;
    for (int r = 0; r < 2; r++) {
        if ((r ? shoal_rlock_open : shoal_lock_open)(&lk, NAME, SHOAL_OPEN, NULL))
            continue;
        shoal_lock_state(lk, &rec, &owner, &depth);
        died = shoal_lock_holder_died(lk);
        (void)died;
        shoal_lock_locked(lk);
        int rc = shoal_lock_try(lk);
        if (rc == 0 || rc == SHOAL_EOWNERDEAD) {
            shoal_lock_try(lk); /* re-entry, or EDEADLK */
            shoal_lock_release(lk);
            shoal_lock_release(lk);
        }
        shoal_lock_release(lk); /* not held: EPERM */
        shoal_lock_close(lk);
    }
}

static void fuzz_sync(void)
{
    shoal_sem *s;
    for (int b = 0; b < 2; b++)
        if ((b ? shoal_bsem_open : shoal_sem_open)(&s, NAME, SHOAL_OPEN, 0, NULL) == 0) {
            shoal_sem_value(s);
            if (shoal_sem_try(s) == 0)
                shoal_sem_release(s);
            shoal_sem_release(s);
            shoal_sem_acquire(s, SHOAL_NOWAIT);
            shoal_sem_close(s);
        }
    shoal_event *ev;
    if (shoal_event_open(&ev, NAME, SHOAL_OPEN, NULL) == 0) {
        shoal_event_is_set(ev);
        shoal_event_wait(ev, SHOAL_NOWAIT);
        shoal_event_set(ev);
        shoal_event_clear(ev);
        shoal_event_close(ev);
    }
    shoal_barrier *br;
    if (shoal_barrier_open(&br, NAME, SHOAL_OPEN, 1, NULL) == 0) {
        uint32_t parties, waiting;
        int broken;
        shoal_barrier_state(br, &parties, &waiting, &broken);
        shoal_barrier_wait(br, SHOAL_NOWAIT);
        shoal_barrier_reset(br);
        shoal_barrier_abort(br);
        shoal_barrier_close(br);
    }
    shoal_cond *c;
    if (shoal_cond_open(&c, NAME, SHOAL_OPEN, NULL) == 0) {
        static shoal_lock lk;
        shoal_lock_init(&lk, 0);
        if (shoal_lock_try(&lk) == 0) {
            shoal_cond_wait(c, &lk, SHOAL_NOWAIT);
            shoal_lock_release(&lk);
        }
        shoal_cond_notify(c, 1);
        shoal_cond_notify_all(c);
        shoal_cond_close(c);
    }
}

static void fuzz_shm(void)
{
    shoal_shm *m;
    if (shoal_shm_open(&m, NAME, SHOAL_OPEN, 0, NULL))
        return;
    size_t n = shoal_shm_size(m);
    unsigned char *p = shoal_shm_data(m);
    if (n)
        p[n - 1] ^= p[0];
    shoal_shm_close(m);
}

/* ---- inspection and listing -------------------------------------------------------- */

static void format_msg(void *arg, const void *msg, size_t len)
{
    char text[256];
    shoal_inspect_format(arg, msg, len, text, sizeof(text));
}

static void fuzz_inspect(void)
{
    shoal_inspect *in;
    if (shoal_inspect_open(&in, NAME, NULL))
        return;
    shoal_inspect_header h;
    shoal_inspect_user users[8];
    shoal_inspect_lock lk;
    shoal_inspect_sync sy;
    shoal_inspect_end end;
    shoal_queue_stats st;
    const shoal_type *t;
    char text[512];
    shoal_inspect_header_get(in, &h);
    shoal_inspect_users(in, users, 8);
    shoal_inspect_lock_get(in, &lk);
    shoal_inspect_sync_get(in, &sy);
    int rings = shoal_inspect_rings(in);
    for (int r = 0; r < rings; r++) {
        shoal_inspect_ring_stats(in, r, &st);
        shoal_inspect_messages(in, r, 8, format_msg, in);
        shoal_inspect_pipe_end(in, r, &end);
    }
    if (shoal_inspect_type(in, &t) == 0 && t->size <= BUFSZ / 4) {
        int n = shoal_inspect_elements(in, 0, buf, 4);
        for (int i = 0; i < n; i++)
            shoal_inspect_format(in, buf + (size_t)i * t->size, t->size, text,
                                 sizeof(text));
    }
    int n = shoal_inspect_bytes(in, 0, buf, 64);
    if (n >= 0)
        shoal_inspect_format(in, buf, (size_t)n, text, sizeof(text));
    shoal_inspect_close(in);
}

static int count_one(const shoal_object_info *info, void *arg)
{
    (void)info;
    ++*(int *)arg;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!root[0])
        setup();
    /* Each kind starts from the input as given (an operation may change the file, and
     * the last user's close of an anonymous object removes it). */
    shoal_queue_config typed = {.type = shoal_typecode('q')}, bytes = {.max_msg = 40};
    data = as_written(data, size);
    write_file(data, size);
    fuzz_value();
    write_file(data, size);
    fuzz_array();
    write_file(data, size);
    fuzz_queue(NULL);
    fuzz_queue(&typed);
    fuzz_queue(&bytes);
    write_file(data, size);
    fuzz_pipe();
    write_file(data, size);
    fuzz_locks();
    fuzz_sync();
    fuzz_shm();
    write_file(data, size);
    fuzz_inspect();
    write_file(data, size);
    int n = 0;
    shoal_object_info info;
    shoal_list(NULL, count_one, &n);
    shoal_stat(NAME, NULL, &info);
    return 0;
}
