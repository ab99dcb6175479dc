/*
 * segfile.h — editing segment files as a hostile or buggy writer would: change a
 * header field and recompute the header checksum (FNV-1a-64 of the header bytes
 * before the checksum field), change payload bytes, cut the file. For the tests of
 * bad input and for the fuzz corpus generator. Needs internal.h (runtime/src).
 */
#ifndef SHOAL_SEGFILE_H
#define SHOAL_SEGFILE_H

#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* The header page of a segment file, as bytes and as the header struct. */
typedef union sf_page {
    unsigned char bytes[SHOAL_HEADER_SIZE];
    struct shoal__header h;
} sf_page;

/* <$SHOAL_ROOT>/default/<name> into buf. */
static inline const char *sf_path(char *buf, size_t cap, const char *name)
{
    const char *root = getenv("SHOAL_ROOT");
    snprintf(buf, cap, "%s/default/%s", root ? root : "/dev/shm/shoal", name);
    return buf;
}

static inline int sf_open(const char *name)
{
    char path[512];
    int fd = open(sf_path(path, sizeof(path), name), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        perror(path);
        abort();
    }
    return fd;
}

/* Reads bytes [off, off+n) of the file; what lies past its end reads as zeros. */
static inline void sf_read(const char *name, size_t off, void *buf, size_t n)
{
    int fd = sf_open(name);
    memset(buf, 0, n);
    if (pread(fd, buf, n, (off_t)off) < 0)
        abort();
    close(fd);
}

/* Writes bytes [off, off+n) of the file (no checksum update). */
static inline void sf_write(const char *name, size_t off, const void *buf, size_t n)
{
    int fd = sf_open(name);
    if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
        abort();
    close(fd);
}

static inline void sf_read_page(const char *name, sf_page *p)
{
    sf_read(name, 0, p, sizeof(*p));
}

/* Recomputes the checksum and writes the header page back. */
static inline void sf_write_page(const char *name, sf_page *p)
{
    p->h.checksum =
        shoal_fnv1a(SHOAL_FNV_OFFSET, &p->h, offsetof(struct shoal__header, checksum));
    sf_write(name, 0, p, sizeof(*p));
}

/* Cuts (or extends) the file to n bytes. */
static inline void sf_truncate(const char *name, size_t n)
{
    int fd = sf_open(name);
    if (ftruncate(fd, (off_t)n) != 0)
        abort();
    close(fd);
}

/* Makes the segment a header page only: payload_size 0, with a valid checksum. */
static inline void sf_make_empty(const char *name)
{
    sf_page p;
    sf_read_page(name, &p);
    p.h.payload_size = 0;
    p.h.file_size = SHOAL_HEADER_SIZE;
    sf_write_page(name, &p);
    sf_truncate(name, SHOAL_HEADER_SIZE);
}

/*
 * The payload offset of the first naturally aligned word of `width` bytes (4 or 8)
 * within the first `limit` payload bytes that went from `from` in `before` (a copy of
 * the payload taken earlier) to `to` now, or -1. Tests find the ring's indexes and
 * message lengths this way instead of hard-coding the ring's private layout: e.g. the
 * tail is the 8-byte word that went 0 -> 1 with the first put.
 */
static inline long sf_find_change(const char *name, const unsigned char *before,
                                  size_t limit, int width, uint64_t from, uint64_t to)
{
    unsigned char *now = malloc(limit);
    if (!now)
        abort();
    sf_read(name, SHOAL_HEADER_SIZE, now, limit);
    long at = -1;
    for (size_t off = 0; off + (size_t)width <= limit && at < 0; off += (size_t)width) {
        uint64_t a = 0, b = 0;
        memcpy(&a, before + off, (size_t)width);
        memcpy(&b, now + off, (size_t)width);
        if (a == from && b == to)
            at = (long)off;
    }
    free(now);
    return at;
}

/*
 * The payload offset of a variable-size message's length word: the first 4-byte word
 * within the first `limit` payload bytes that went from 0 in `before` to len now and
 * is followed, within the next 16 bytes, by the message's len bytes msg; or -1. (The
 * ring's header also holds words a put changes, which a small length could match.)
 */
static inline long sf_find_len(const char *name, const unsigned char *before,
                               size_t limit, uint32_t len, const void *msg)
{
    unsigned char *now = malloc(limit);
    if (!now)
        abort();
    sf_read(name, SHOAL_HEADER_SIZE, now, limit);
    long at = -1;
    for (size_t off = 0; off + 4 <= limit && at < 0; off += 4) {
        uint32_t a, b;
        memcpy(&a, before + off, 4);
        memcpy(&b, now + off, 4);
        if (a != 0 || b != len)
            continue;
        for (size_t d = 4; d <= 16 && off + d + len <= limit && at < 0; d += 4)
            if (memcmp(now + off + d, msg, len) == 0)
                at = (long)off;
    }
    free(now);
    return at;
}

/* The objects sf_make_each_kind makes: one of each kind that has a payload. */
__attribute__((unused)) static const char *const sf_each_kind[] = {
    "e-lock",  "e-sem",   "e-barrier", "e-event", "e-cond",
    "e-value", "e-array", "e-queue",   "e-pipe"};
#define SF_EACH_KIND (sizeof(sf_each_kind) / sizeof(sf_each_kind[0]))

/* Creates the objects named in sf_each_kind (queue and pipe with cfg) and closes
 * them, so their files can be cut: an access to a mapping past the end of its file
 * faults. Returns 0 or the first error. */
static inline int sf_make_each_kind(const shoal_queue_config *cfg)
{
    shoal_lock *lk;
    shoal_sem *sem;
    shoal_barrier *b;
    shoal_event *ev;
    shoal_cond *c;
    shoal_value *v;
    shoal_array *a;
    shoal_queue *q;
    shoal_pipe *p0, *p1;
    int rc;
    if ((rc = shoal_rlock_open(&lk, "e-lock", SHOAL_CREATE, NULL)))
        return rc;
    shoal_lock_close(lk);
    if ((rc = shoal_sem_open(&sem, "e-sem", SHOAL_CREATE, 1, NULL)))
        return rc;
    shoal_sem_close(sem);
    if ((rc = shoal_barrier_open(&b, "e-barrier", SHOAL_CREATE, 2, NULL)))
        return rc;
    shoal_barrier_close(b);
    if ((rc = shoal_event_open(&ev, "e-event", SHOAL_CREATE, NULL)))
        return rc;
    shoal_event_close(ev);
    if ((rc = shoal_cond_open(&c, "e-cond", SHOAL_CREATE, NULL)))
        return rc;
    shoal_cond_close(c);
    if ((rc = shoal_value_open(&v, "e-value", SHOAL_CREATE, shoal_typecode('i'), NULL,
                               NULL)))
        return rc;
    shoal_value_close(v);
    if ((rc = shoal_array_open(&a, "e-array", SHOAL_CREATE, shoal_typecode('d'), 3, NULL,
                               NULL)))
        return rc;
    shoal_array_close(a);
    if ((rc = shoal_queue_open(&q, "e-queue", SHOAL_CREATE, cfg, NULL)))
        return rc;
    shoal_queue_close(q);
    if ((rc = shoal_pipe_pair(&p0, &p1, "e-pipe", cfg, NULL)))
        return rc;
    shoal_pipe_close(p0);
    shoal_pipe_close(p1);
    return 0;
}

#endif
