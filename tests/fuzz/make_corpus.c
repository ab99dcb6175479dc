/*
 * make_corpus.c — writes the fuzz target's seed corpus: a small valid segment of each
 * kind (with some state: queued messages, a held lock, a set event), and damaged
 * copies made as a hostile writer would make them (header checksum recomputed): a
 * header page only, element size 0, a damaged layout descriptor, a garbage ring tail,
 * a slot length over max_msg.
 *
 * usage: make_corpus OUTDIR  (the checked-in corpus is tests/fuzz/corpus)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "segfile.h"
#include "shoal.h"

static const char *outdir;

static void die(const char *what, int rc)
{
    fprintf(stderr, "make_corpus: %s: %s: %s\n", what, shoal_strerror(rc),
            shoal_errdetail());
    exit(1);
}

#define OK(expr)                                                                         \
    do {                                                                                 \
        int rc_ = (expr);                                                                \
        if (rc_)                                                                         \
            die(#expr, rc_);                                                             \
    } while (0)

/* Copies the segment `name` to OUTDIR/<as>, with bit 0 of the header's unused word
 * after owner_died set: the fuzz target then recomputes the checksum of mutated
 * headers (see fuzz_segment.c). */
static void save(const char *name, const char *as)
{
    sf_page p;
    sf_read_page(name, &p);
    p.h.pad |= 1;
    sf_write(name, 0, &p, sizeof(p));
    char from[512], to[512];
    sf_path(from, sizeof(from), name);
    snprintf(to, sizeof(to), "%s/%s", outdir, as);
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out) {
        perror(in ? to : from);
        exit(1);
    }
    unsigned char b[4096];
    size_t n;
    while ((n = fread(b, 1, sizeof(b), in)) > 0)
        fwrite(b, 1, n, out);
    fclose(in);
    if (fclose(out) != 0) {
        perror(to);
        exit(1);
    }
}

/* Saves `name`, then a copy cut to a header page only. */
static void save_with_empty(const char *name)
{
    char as[128];
    snprintf(as, sizeof(as), "%s.seg", name);
    save(name, as);
    sf_make_empty(name);
    snprintf(as, sizeof(as), "%s-empty.seg", name);
    save(name, as);
}

static const shoal_field tick_fields[] = {
    {"id", 1, SHOAL_FIELD_INT32, 0, 4, 0, 0, NULL},
    {"ok", 2, SHOAL_FIELD_BOOL, 4, 1, 0, 0, NULL},
    {"price", 3, SHOAL_FIELD_DOUBLE, 8, 8, 0, 0, NULL},
    {"sym", 4, SHOAL_FIELD_STRING, 16, 12, 0, 8, NULL},
    {"fills", 5, SHOAL_FIELD_UINT16, 28, 12, 4, 0, NULL},
};
static const shoal_type tick = {"fuzz.Tick", 0x7117, 40, 8, 0, 5, tick_fields};

/* Saves a copy of `name` with its header edited by fn (checksum recomputed). */
static void save_edited(const char *name, const char *as, void (*fn)(sf_page *p))
{
    sf_page p, orig;
    sf_read_page(name, &orig);
    p = orig;
    fn(&p);
    sf_write_page(name, &p);
    save(name, as);
    sf_write(name, 0, &orig, sizeof(orig));
}

static void elem_size_0(sf_page *p)
{
    p->h.elem_size = 0;
}

static void desc_size_grown(sf_page *p)
{
    /* 'S' 'L' version, tag, name length, "fuzz.Tick", hash: the struct's size. */
    p->h.desc[3 + 1 + 1 + 9 + 8 + 1] ^= 0x40;
}

static void count_overflow(sf_page *p)
{
    p->h.count = UINT64_MAX / 8 + 2; /* count x 8 wraps to a small number */
}

static void values(void)
{
    shoal_value *v;
    unsigned char t[40] = {7, 0, 0, 0, 1};
    memcpy(t + 16, "\4\0\0\0ACME", 8);
    memcpy(t + 28, "\2\0\0\0\1\0\2\0", 8);
    OK(shoal_value_open(&v, "value-struct", SHOAL_CREATE, &tick, t, NULL));
    shoal_value_close(v);
    save_edited("value-struct", "value-struct-desc.seg", desc_size_grown);
    save_edited("value-struct", "value-struct-elem0.seg", elem_size_0);
    save_with_empty("value-struct");

    int32_t x = 42;
    shoal_attr nolock = {.lock = SHOAL_LOCK_NONE};
    OK(shoal_value_open(&v, "value-int", SHOAL_CREATE, shoal_typecode('i'), &x, NULL));
    shoal_value_close(v);
    save_with_empty("value-int");
    char c = 'z';
    OK(shoal_value_open(&v, "value-char", SHOAL_CREATE, shoal_typecode('c'), &c,
                        &nolock));
    shoal_value_close(v);
    save("value-char", "value-char.seg");

    shoal_array *a;
    double d[3] = {1.5, -2, 1e300};
    OK(shoal_array_open(&a, "array", SHOAL_CREATE, shoal_typecode('d'), 3, d, NULL));
    shoal_array_close(a);
    save_edited("array", "array-count-overflow.seg", count_overflow);
    save_with_empty("array");
}

/* A 64-byte element and a 128-byte one (two whole lines): an SPSC ring of either has
 * dense slots with no marker, published by the tail alone (ring_spsc.c). */
static const shoal_type wide = {"fuzz.Wide", 0x7164, 64, 8, 0, 0, NULL};
static const shoal_type lines = {"fuzz.Lines", 0x7165, 128, 8, 0, 0, NULL};

/* Saves a queue of elements of esz bytes (0: variable-size messages), then copies
 * with its tail set to garbage and its first message's length word (found as the word
 * that went 0 -> 3 with a 3-byte put, followed by the message: sf_find_len) set to
 * 65000. */
static void queue_variants(const char *name, shoal_queue *q, size_t esz)
{
    unsigned char before[2048], abc[128] = "abc", defgh[128] = "defgh";
    bool var = esz == 0;
    sf_read(name, SHOAL_HEADER_SIZE, before, sizeof(before));
    OK(shoal_queue_put(q, abc, var ? 3 : esz, SHOAL_NOWAIT));
    long tail = sf_find_change(name, before, 256, 8, 0, 1);
    long len = var ? sf_find_len(name, before, sizeof(before), 3, "abc") : -1;
    OK(shoal_queue_put(q, defgh, var ? 5 : esz, SHOAL_NOWAIT));
    char as[128];
    snprintf(as, sizeof(as), "%s.seg", name);
    save(name, as);
    sf_page page;
    sf_read_page(name, &page);
    unsigned char payload[2048];
    size_t psize = page.h.payload_size < sizeof(payload) ? page.h.payload_size : 0;
    sf_read(name, SHOAL_HEADER_SIZE, payload, psize);
    if (tail >= 0) {
        uint64_t garbage = (1ull << 62) + 3;
        sf_write(name, SHOAL_HEADER_SIZE + (size_t)tail, &garbage, 8);
        snprintf(as, sizeof(as), "%s-tail.seg", name);
        save(name, as);
        sf_write(name, SHOAL_HEADER_SIZE, payload, psize);
    }
    if (len >= 0) {
        uint32_t bogus = 65000;
        sf_write(name, SHOAL_HEADER_SIZE + (size_t)len, &bogus, 4);
        snprintf(as, sizeof(as), "%s-len.seg", name);
        save(name, as);
    }
}

static void channels(void)
{
    for (int spsc = 0; spsc < 2; spsc++)
        for (int var = 0; var < 2; var++) {
            char name[64];
            snprintf(name, sizeof(name), "queue-%s-%s", spsc ? "spsc" : "mpmc",
                     var ? "bytes" : "int64");
            shoal_queue_config cfg = {.capacity = 4, .spsc = spsc};
            if (var)
                cfg.max_msg = 24;
            else
                cfg.type = shoal_typecode('q');
            shoal_queue *q;
            OK(shoal_queue_open(&q, name, SHOAL_CREATE, &cfg, NULL));
            queue_variants(name, q, var ? 0 : 8);
            shoal_queue_close(q);
        }
    shoal_queue *q;
    shoal_queue_config wcfg = {.type = &wide, .capacity = 4, .spsc = 1};
    OK(shoal_queue_open(&q, "queue-spsc-wide", SHOAL_CREATE, &wcfg, NULL));
    queue_variants("queue-spsc-wide", q, wide.size);
    shoal_queue_close(q);
    shoal_queue_config lcfg = {.type = &lines, .capacity = 4, .spsc = 1};
    OK(shoal_queue_open(&q, "queue-spsc-lines", SHOAL_CREATE, &lcfg, NULL));
    queue_variants("queue-spsc-lines", q, lines.size);
    shoal_queue_close(q);
    shoal_queue_config tcfg = {.type = &tick, .capacity = 2};
    OK(shoal_queue_open(&q, "queue-struct", SHOAL_CREATE, &tcfg, NULL));
    unsigned char t[40] = {9};
    OK(shoal_queue_put(q, t, sizeof(t), SHOAL_NOWAIT));
    shoal_queue_close(q);
    save_with_empty("queue-struct");

    shoal_pipe *p0, *p1;
    shoal_queue_config pcfg = {.max_msg = 16, .capacity = 2};
    OK(shoal_pipe_pair(&p0, &p1, "pipe", &pcfg, NULL));
    OK(shoal_pipe_send(p0, "ping", 4, SHOAL_NOWAIT));
    OK(shoal_pipe_send(p1, "pong!", 5, SHOAL_NOWAIT));
    shoal_pipe_close(p0);
    shoal_pipe_close(p1);
    save_with_empty("pipe");
}

/* Every object is closed before save_with_empty cuts its file: an access to a mapping
 * past the end of its file faults. */
static void primitives(void)
{
    shoal_lock *lk;
    OK(shoal_lock_open(&lk, "lock", SHOAL_CREATE, NULL));
    OK(shoal_lock_acquire(lk, SHOAL_NOWAIT));
    save("lock", "lock-held.seg"); /* held by a thread that is gone when fuzzing */
    shoal_lock_release(lk);
    shoal_lock_close(lk);
    save_with_empty("lock");
    OK(shoal_rlock_open(&lk, "rlock", SHOAL_CREATE, NULL));
    shoal_lock_close(lk);
    save_with_empty("rlock");
    shoal_sem *s;
    OK(shoal_sem_open(&s, "sem", SHOAL_CREATE, 2, NULL));
    shoal_sem_close(s);
    save_with_empty("sem");
    OK(shoal_bsem_open(&s, "bsem", SHOAL_CREATE, 1, NULL));
    shoal_sem_close(s);
    save("bsem", "bsem.seg");
    shoal_cond *c;
    OK(shoal_cond_open(&c, "cond", SHOAL_CREATE, NULL));
    shoal_cond_close(c);
    save_with_empty("cond");
    shoal_event *ev;
    OK(shoal_event_open(&ev, "event", SHOAL_CREATE, NULL));
    OK(shoal_event_set(ev));
    shoal_event_close(ev);
    save_with_empty("event");
    shoal_barrier *b;
    OK(shoal_barrier_open(&b, "barrier", SHOAL_CREATE, 3, NULL));
    shoal_barrier_close(b);
    save_with_empty("barrier");
    shoal_shm *m;
    OK(shoal_shm_open(&m, "shm", SHOAL_CREATE, 64, NULL));
    memcpy(shoal_shm_data(m), "raw bytes", 9);
    shoal_shm_close(m);
    save("shm", "shm.seg");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus OUTDIR\n");
        return 2;
    }
    outdir = argv[1];
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
        perror(outdir);
        return 1;
    }
    char root[] = "/tmp/shoal-corpus-XXXXXX";
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    setenv("SHOAL_ROOT", root, 1);
    unsetenv("SHOAL_DOMAIN");
    values();
    channels();
    primitives();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : 1;
}
