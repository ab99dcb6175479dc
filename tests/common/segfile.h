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

#endif
