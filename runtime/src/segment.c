/*
 * segment.c — named segments: create, open, validate, users, close.
 *
 * Creation never exposes a half-made object: the creator builds the whole segment in
 * a hidden file (".init.<name>.<pid>.<n>") and then link()s it under its name, which
 * either succeeds atomically or fails with EEXIST when another process won the race.
 * A creator that dies before the link leaves only the hidden file, which gc removes.
 *
 * Liveness of users has two records, both held through the segment's file descriptor
 * and dropped by the kernel when the process dies: a shared flock() on the file (gc
 * removes a file nobody holds), and a user slot in the header with a byte lock (see
 * owner.c), which also names who owns what inside the segment.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

_Static_assert(sizeof(struct shoal__header) <= SHOAL_HEADER_SIZE - 1024,
               "the header must leave room for a layout descriptor");

#define DEFAULT_ROOT   "/dev/shm/shoal"
#define DEFAULT_DOMAIN "default"

static bool name_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-' || c == '.' || c == ':';
}

static int check_label(const char *what, const char *s, size_t max)
{
    if (!s || !*s)
        return shoal__err(SHOAL_ENAME, "%s is empty", what);
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return shoal__err(SHOAL_ENAME, "%s \"%.40s...\" is longer than %zu bytes", what,
                          s, max);
    if (s[0] == '.')
        return shoal__err(SHOAL_ENAME, "%s \"%s\" must not start with '.'", what, s);
    for (size_t i = 0; i < n; i++)
        if (!name_char_ok(s[i]))
            return shoal__err(SHOAL_ENAME,
                              "%s \"%s\" has the character '%c' (0x%02x); allowed are "
                              "letters, digits and . _ - :",
                              what, s, s[i] >= 32 && s[i] < 127 ? s[i] : '?',
                              (unsigned char)s[i]);
    return 0;
}

int shoal_name_check(const char *name)
{
    return check_label("name", name, SHOAL_NAME_MAX);
}

static const char *root_of(const shoal_attr *attr, bool *is_default)
{
    const char *root = attr && attr->root ? attr->root : getenv("SHOAL_ROOT");
    *is_default = !root || !*root;
    return *is_default ? DEFAULT_ROOT : root;
}

static const char *domain_of(const shoal_attr *attr)
{
    const char *d = attr && attr->domain ? attr->domain : getenv("SHOAL_DOMAIN");
    return d && *d ? d : DEFAULT_DOMAIN;
}

int shoal__domain_dir(const shoal_attr *attr, char *buf, size_t cap)
{
    bool dflt;
    const char *root = root_of(attr, &dflt);
    const char *domain = domain_of(attr);
    int rc = check_label("domain", domain, SHOAL_DOMAIN_MAX);
    if (rc)
        return rc;
    if ((size_t)snprintf(buf, cap, "%s/%s", root, domain) >= cap)
        return shoal__err(SHOAL_ENAME, "root directory path is too long");
    return 0;
}

int shoal_domain_dir(const shoal_attr *attr, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return shoal__err(SHOAL_EINVAL, "domain directory: no buffer");
    return shoal__domain_dir(attr, buf, cap);
}

/* The error for a failed look-up of dir's entry `name` (or of dir itself, name NULL):
 * a root or domain that is not a directory is named as such, not left to strerror. */
static int lookup_err(int err, const char *what, const char *name, const char *dir)
{
    if (err == ENOTDIR)
        return shoal__err(SHOAL_ENOENT,
                          "%s \"%s\": \"%s\" or a directory above it is not a directory "
                          "(check the root: SHOAL_ROOT or shoal_attr.root)",
                          what, name ? name : dir, dir);
    return shoal__err(shoal__errno_to_rc(err), "%s \"%s\": %s", what, name ? name : dir,
                      err == ENOENT ? "no such object" : strerror(err));
}

/* Makes sure <root>/<domain> exists. A root the caller named must already exist; the
 * default root is made on first use, sticky and world-writable like /dev/shm. */
static int ensure_domain_dir(const shoal_attr *attr, const char *dir, unsigned mode)
{
    bool dflt;
    const char *root = root_of(attr, &dflt);
    struct stat st;
    if (stat(root, &st) != 0) {
        if (errno == ENOTDIR)
            return lookup_err(errno, "root", NULL, root);
        if (!dflt)
            return shoal__err(SHOAL_ENOENT, "root directory \"%s\" does not exist", root);
        if (mkdir(root, 01777) != 0 && errno != EEXIST)
            return shoal__err(shoal__errno_to_rc(errno), "cannot create \"%s\": %s", root,
                              strerror(errno));
        chmod(root, 01777);
    } else if (!S_ISDIR(st.st_mode)) {
        return shoal__err(SHOAL_ENOENT,
                          "root \"%s\" is not a directory (check SHOAL_ROOT or "
                          "shoal_attr.root)",
                          root);
    }
    /* The domain directory is searchable by whoever the objects are shared with. */
    unsigned dmode = 0700 | ((mode & 0060) ? 0050 : 0) | ((mode & 0006) ? 0005 : 0);
    if (mkdir(dir, dmode) != 0 && errno != EEXIST)
        return shoal__err(shoal__errno_to_rc(errno), "cannot create domain \"%s\": %s",
                          dir, strerror(errno));
    return 0;
}

/* dir + "/" + name into out; false if it does not fit. */
static bool path_join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < cap;
}

static uint64_t header_checksum(const struct shoal__header *h)
{
    return shoal_fnv1a(SHOAL_FNV_OFFSET, h, offsetof(struct shoal__header, checksum));
}

static uint64_t total_size(const shoal__seg_spec *spec)
{
    return SHOAL_HEADER_SIZE + spec->payload_size;
}

/* ---- validation -------------------------------------------------------------------- */

static const char *type_label(char *buf, size_t cap, const char *name, uint64_t hash)
{
    snprintf(buf, cap, "%s#%016llx", name, (unsigned long long)hash);
    return buf;
}

/* The layout descriptor after the checksum must decode, and describe the element the
 * checksummed fields name (a changed descriptor must not decide how many bytes a tool
 * reads). */
static int check_desc(const struct shoal__header *h)
{
    shoal_type *t;
    int rc = shoal__layout_decode(h->desc, h->desc_size, &t);
    if (rc)
        return rc;
    bool same = t->size == h->elem_size && t->align == h->elem_align &&
                t->layout_hash == h->layout_hash && !strcmp(t->name, h->type_name);
    free(t);
    return same ? 0 : SHOAL_ECORRUPT;
}

/* Validates a header page read from a file of st_size bytes against spec (the
 * descriptor is only looked at when the file holds the whole page). */
static int validate_header(const struct shoal__header *h, uint64_t st_size,
                           const char *name, const shoal__seg_spec *spec)
{
    const char *what = spec && spec->what ? spec->what : "object";
    if (st_size < sizeof(h->magic) || (st_size < sizeof(*h) && h->magic == SHOAL_MAGIC))
        return shoal__err(SHOAL_ETRUNCATED,
                          "%s \"%s\": file is truncated (%llu bytes, header needs %zu)",
                          what, name, (unsigned long long)st_size, sizeof(*h));
    if (h->magic != SHOAL_MAGIC)
        return shoal__err(SHOAL_EFOREIGN, "%s \"%s\": not a shoal segment (bad magic)",
                          what, name);
    if (h->version != SHOAL_FORMAT_VERSION)
        return shoal__err(SHOAL_EVERSION,
                          "%s \"%s\": format version %u, this library reads %u", what,
                          name, h->version, SHOAL_FORMAT_VERSION);
    if (h->checksum != header_checksum(h) || h->state != SHOAL_STATE_READY ||
        h->header_size != SHOAL_HEADER_SIZE ||
        h->file_size != (uint64_t)h->header_size + h->payload_size ||
        h->elem_align == 0 || (h->elem_align & (h->elem_align - 1)) ||
        memchr(h->type_name, '\0', sizeof(h->type_name)) == NULL)
        return shoal__err(SHOAL_ECORRUPT, "%s \"%s\": header fails validation (corrupt)",
                          what, name);
    if (st_size < h->file_size)
        return shoal__err(SHOAL_ETRUNCATED,
                          "%s \"%s\": file is truncated (%llu bytes, header says %llu)",
                          what, name, (unsigned long long)st_size,
                          (unsigned long long)h->file_size);
    if (st_size > h->file_size)
        return shoal__err(SHOAL_ECORRUPT,
                          "%s \"%s\": file is larger than its header says", what, name);
    /* Objects are opened only with a descriptor that agrees with the header;
     * inspection (spec NULL) opens them anyway and names the damaged descriptor. */
    if (h->desc_size > SHOAL_DESC_MAX ||
        (spec && h->desc_size && st_size >= SHOAL_HEADER_SIZE && check_desc(h) != 0))
        return shoal__err(SHOAL_ECORRUPT,
                          "%s \"%s\": layout descriptor fails validation (corrupt)", what,
                          name);
    if (!spec)
        return 0;
    if (h->kind != spec->kind)
        return shoal__err(SHOAL_EKIND, "\"%s\" is a %s, not a %s", name,
                          shoal_kind_name((int)h->kind),
                          shoal_kind_name((int)spec->kind));
    if (spec->type &&
        (h->layout_hash != spec->type->layout_hash || h->elem_size != spec->type->size ||
         strcmp(h->type_name, spec->type->name) != 0)) {
        char a[96], b[96];
        return shoal__err(
            SHOAL_ELAYOUT,
            "%s \"%s\": layout mismatch: segment holds %s (%llu bytes), "
            "caller expects %s (%u bytes)",
            what, name, type_label(a, sizeof(a), h->type_name, h->layout_hash),
            (unsigned long long)h->elem_size,
            type_label(b, sizeof(b), spec->type->name, spec->type->layout_hash),
            spec->type->size);
    }
    if (spec->check_count && h->count != spec->count)
        return shoal__err(
            SHOAL_ELAYOUT, "%s \"%s\": holds %llu elements, caller expects %llu", what,
            name, (unsigned long long)h->count, (unsigned long long)spec->count);
    return 0;
}

/* ---- open -------------------------------------------------------------------------- */

static shoal__seg *seg_new(const char *dir, const char *name)
{
    shoal__seg *seg = calloc(1, sizeof(*seg));
    if (!seg)
        return NULL;
    seg->fd = -1;
    seg->fork_fd = -1;
    seg->user_slot = -1;
    snprintf(seg->name, sizeof(seg->name), "%s", name);
    if (!path_join(seg->path, sizeof(seg->path), dir, name)) {
        free(seg);
        return NULL;
    }
    return seg;
}

static void seg_free(shoal__seg *seg)
{
    if (seg->hdr)
        munmap(seg->hdr, seg->map_size);
    if (seg->fd >= 0)
        close(seg->fd);
    free(seg);
}

static int map_segment(shoal__seg *seg, size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, seg->fd, 0);
    if (p == MAP_FAILED)
        return shoal__err(shoal__errno_to_rc(errno), "\"%s\": mmap: %s", seg->name,
                          strerror(errno));
    seg->hdr = p;
    seg->map_size = size;
    seg->payload = (unsigned char *)p + SHOAL_HEADER_SIZE;
    return 0;
}

/* The directory part of seg->path, in buf. */
static const char *dir_of(const shoal__seg *seg, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", seg->path);
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = '\0';
    return buf;
}

/* A header page read from a file. */
union header_page {
    struct shoal__header h;
    unsigned char bytes[SHOAL_HEADER_SIZE];
};

/* Reads the header page of fd (zero-filled past the end of a short file). */
static int read_header(int fd, union header_page *page, const char *name,
                       const char *what)
{
    memset(page, 0, sizeof(*page));
    if (pread(fd, page, sizeof(*page), 0) < 0)
        return shoal__err(shoal__errno_to_rc(errno), "%s \"%s\": read: %s", what, name,
                          strerror(errno));
    return 0;
}

/* Opens the existing segment seg->path. Returns 0, SHOAL_ENOENT or a validation error. */
static int open_existing(shoal__seg *seg, const shoal__seg_spec *spec)
{
    const char *what = spec && spec->what ? spec->what : "object";
    char dir[PATH_MAX];
    for (int attempt = 0; attempt < 8; attempt++) {
        seg->fd = open(seg->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (seg->fd < 0)
            return lookup_err(errno, what, seg->name, dir_of(seg, dir, sizeof(dir)));
        /* Take the user lock, then make sure gc did not unlink the file meanwhile. */
        struct stat st, now;
        if (flock(seg->fd, LOCK_SH) != 0 || fstat(seg->fd, &st) != 0)
            return shoal__err(shoal__errno_to_rc(errno), "%s \"%s\": %s", what, seg->name,
                              strerror(errno));
        if (stat(seg->path, &now) != 0 || now.st_ino != st.st_ino ||
            now.st_dev != st.st_dev) {
            close(seg->fd);
            seg->fd = -1;
            continue;
        }
        union header_page page;
        int rc = read_header(seg->fd, &page, seg->name, what);
        if (rc || (rc = validate_header(&page.h, (uint64_t)st.st_size, seg->name, spec)))
            return rc;
        if ((rc = map_segment(seg, page.h.file_size)))
            return rc;
        shoal__user_register(seg);
        return 0;
    }
    return shoal__err(SHOAL_EBUSY, "%s \"%s\": keeps being replaced", what, seg->name);
}

/* ---- create ------------------------------------------------------------------------ */

static void fill_header(struct shoal__header *h, const shoal__seg_spec *spec, bool anon)
{
    h->magic = SHOAL_MAGIC;
    h->version = SHOAL_FORMAT_VERSION;
    h->kind = spec->kind;
    h->flags = anon ? SHOAL_SEG_ANON : 0;
    if (spec->type) {
        h->layout_hash = spec->type->layout_hash;
        snprintf(h->type_name, sizeof(h->type_name), "%s", spec->type->name);
        h->elem_size = spec->type->size;
        h->elem_align = spec->type->align ? spec->type->align : 1;
    } else {
        h->elem_align = 1;
    }
    h->header_size = SHOAL_HEADER_SIZE;
    h->count = spec->count;
    h->payload_size = spec->payload_size;
    h->file_size = total_size(spec);
    h->creator_pid = getpid();
    h->creator_uid = getuid();
    h->creator_start = shoal__self_start();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->created_ns = (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
    memcpy(h->aux, spec->aux, sizeof(h->aux));
    if (spec->aux_name)
        snprintf(h->aux_name, sizeof(h->aux_name), "%s", spec->aux_name);
    h->state = SHOAL_STATE_READY;
    h->checksum = header_checksum(h);
    if (spec->type)
        h->desc_size =
            (uint32_t)shoal__layout_encode(spec->type, h->desc, SHOAL_DESC_MAX);
}

/* Builds the segment in a hidden file and links it under seg->path.
 * Returns 0, SHOAL_EEXIST (someone else created it first) or an error. */
static int create_new(shoal__seg *seg, const char *dir, const shoal__seg_spec *spec,
                      const shoal_attr *attr, bool anon)
{
    static _Atomic unsigned counter;
    const char *what = spec->what ? spec->what : "object";
    char tmp[PATH_MAX];
    int len = snprintf(tmp, sizeof(tmp), "%s/.init.%s.%d.%u", dir, seg->name,
                       (int)getpid(), atomic_fetch_add(&counter, 1));
    if (len < 0 || (size_t)len >= sizeof(tmp))
        return shoal__err(SHOAL_ENAME, "%s \"%s\": path too long", what, seg->name);
    unsigned mode = attr && attr->mode ? attr->mode & 0777 : 0600;
    seg->fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (seg->fd < 0)
        return shoal__err(shoal__errno_to_rc(errno), "%s \"%s\": cannot create: %s", what,
                          seg->name, strerror(errno));
    fchmod(seg->fd, mode); /* the umask must not narrow what the caller asked for */
    uint64_t size = total_size(spec);
    int rc, err = posix_fallocate(seg->fd, 0, (off_t)size);
    if (err) {
        rc = shoal__err(shoal__errno_to_rc(err),
                        "%s \"%s\": cannot reserve %llu bytes under \"%s\": %s", what,
                        seg->name, (unsigned long long)size, dir, strerror(err));
        goto fail;
    }
    if ((rc = map_segment(seg, size)))
        goto fail;
    if (flock(seg->fd, LOCK_SH) != 0) {
        rc = shoal__err(SHOAL_ESYS, "flock: %s", strerror(errno));
        goto fail;
    }
    fill_header(seg->hdr, spec, anon);
    if (spec->init && (rc = spec->init(seg, spec->arg)))
        goto fail;
    shoal__user_register(seg);
    shoal__test_point("segment.init");
    if (link(tmp, seg->path) != 0) {
        rc = errno == EEXIST
                 ? SHOAL_EEXIST
                 : shoal__err(shoal__errno_to_rc(errno), "%s \"%s\": link: %s", what,
                              seg->name, strerror(errno));
        goto fail;
    }
    unlink(tmp);
    return 0;
fail:
    unlink(tmp);
    if (seg->hdr)
        munmap(seg->hdr, seg->map_size);
    seg->hdr = NULL;
    close(seg->fd);
    seg->fd = -1;
    seg->user_slot = -1;
    return rc;
}

static bool remove_if_unused(const char *path);
static int read_names(const char *dir, bool hidden, char ***names, size_t *n);
static void free_names(char **names, size_t n);

static bool is_anonymous(const char *path)
{
    struct shoal__header h;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    bool anon = pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
                h.magic == SHOAL_MAGIC && (h.flags & SHOAL_SEG_ANON);
    close(fd);
    return anon;
}

/* Anonymous objects whose users all died without closing them are removed by the
 * next process that makes an anonymous object in the domain (once per process), so
 * crashed programs do not leak them until someone runs gc. */
static void sweep_dead_anonymous(const char *dir)
{
    static _Atomic int swept;
    if (atomic_exchange(&swept, 1))
        return;
    char **names, path[PATH_MAX];
    size_t n;
    if (read_names(dir, false, &names, &n))
        return;
    for (size_t i = 0; i < n; i++)
        if (!strncmp(names[i], "anon-", 5) &&
            path_join(path, sizeof(path), dir, names[i]) && is_anonymous(path))
            remove_if_unused(path);
    free_names(names, n);
}

static void anon_name(char *buf, size_t cap)
{
    static _Atomic unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(buf, cap, "anon-%d-%u-%lx", (int)getpid(), atomic_fetch_add(&counter, 1),
             (unsigned long)(ts.tv_nsec ^ (ts.tv_sec << 20)));
}

int shoal__seg_open(shoal__seg **out, const char *name, int mode,
                    const shoal__seg_spec *spec, const shoal_attr *attr)
{
    char dir[PATH_MAX], generated[SHOAL_NAME_MAX + 1];
    int rc;
    *out = NULL;
    shoal__err_clear();
    if (mode != SHOAL_OPEN && mode != SHOAL_CREATE && mode != SHOAL_OPEN_OR_CREATE)
        return shoal__err(SHOAL_EINVAL,
                          "open mode %d is not SHOAL_OPEN, SHOAL_CREATE or "
                          "SHOAL_OPEN_OR_CREATE",
                          mode);
    bool anon = name == NULL;
    if (anon) {
        if (mode == SHOAL_OPEN)
            return shoal__err(SHOAL_ENAME, "opening needs a name");
        anon_name(generated, sizeof(generated));
        name = generated;
        mode = SHOAL_CREATE;
    }
    if ((rc = shoal_name_check(name)) || (rc = shoal__domain_dir(attr, dir, sizeof(dir))))
        return rc;
    shoal__seg *seg = seg_new(dir, name);
    if (!seg)
        return shoal__err(SHOAL_ENOMEM, "\"%s\": out of memory or path too long", name);
    for (int attempt = 0; attempt < 16; attempt++) {
        if (mode != SHOAL_CREATE) {
            rc = open_existing(seg, spec);
            if (rc != SHOAL_ENOENT || mode == SHOAL_OPEN)
                break;
        }
        if ((rc = ensure_domain_dir(attr, dir, attr ? attr->mode : 0)))
            break;
        if (anon)
            sweep_dead_anonymous(dir);
        rc = create_new(seg, dir, spec, attr, anon);
        if (rc == SHOAL_EEXIST && mode == SHOAL_CREATE)
            rc = shoal__err(SHOAL_EEXIST, "%s \"%s\" already exists",
                            spec->what ? spec->what : "object", name);
        if (rc != SHOAL_EEXIST)
            break; /* created, or failed; EEXIST with open-or-create: open the winner's */
    }
    if (rc) {
        seg_free(seg);
        return rc;
    }
    shoal__seg_track(seg);
    *out = seg;
    return 0;
}

void shoal__seg_close(shoal__seg *seg)
{
    if (!seg)
        return;
    struct shoal__header *h = seg->hdr;
    shoal__seg_untrack(seg);
    shoal__user_unregister(seg);
    if ((h->flags & SHOAL_SEG_ANON) && shoal__users_live(h, seg->fd) == 0 &&
        flock(seg->fd, LOCK_EX | LOCK_NB) == 0) {
        /* Last user of an anonymous object: remove it, unless gc already did and the
         * name now belongs to another file. */
        struct stat a, b;
        if (fstat(seg->fd, &a) == 0 && stat(seg->path, &b) == 0 && a.st_ino == b.st_ino)
            unlink(seg->path);
    }
    seg_free(seg);
}

void shoal__seg_note_owner_died(shoal__seg *seg)
{
    atomic_fetch_add(&seg->hdr->owner_died, 1);
}

/* ---- unlink, stat, list, gc -------------------------------------------------------- */

int shoal_unlink(const char *name, const shoal_attr *attr)
{
    char dir[PATH_MAX], path[PATH_MAX];
    int rc;
    shoal__err_clear();
    if ((rc = shoal_name_check(name)) || (rc = shoal__domain_dir(attr, dir, sizeof(dir))))
        return rc;
    if (!path_join(path, sizeof(path), dir, name))
        return shoal__err(SHOAL_ENAME, "\"%s\": path too long", name);
    if (unlink(path) != 0)
        return shoal__err(shoal__errno_to_rc(errno), "\"%s\": %s", name,
                          errno == ENOENT ? "no such object" : strerror(errno));
    return 0;
}

static int stat_path(const char *path, const char *name, shoal_object_info *info)
{
    memset(info, 0, sizeof(*info));
    snprintf(info->name, sizeof(info->name), "%s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return info->status = shoal__err(shoal__errno_to_rc(errno), "\"%s\": %s", name,
                                         strerror(errno));
    struct stat st;
    union header_page page;
    const struct shoal__header *hp = &page.h;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = shoal__err(shoal__errno_to_rc(errno), "\"%s\": fstat: %s", name,
                        strerror(errno));
    if (!rc && !(rc = read_header(fd, &page, name, "object"))) {
        info->file_size = (uint64_t)st.st_size;
        rc = validate_header(hp, (uint64_t)st.st_size, name, NULL);
    }
    if (!rc) {
        info->kind = (int)hp->kind;
        snprintf(info->type_name, sizeof(info->type_name), "%s", hp->type_name);
        info->layout_hash = hp->layout_hash;
        info->elem_size = hp->elem_size;
        info->count = hp->count;
        info->creator_pid = hp->creator_pid;
        info->anonymous = (hp->flags & SHOAL_SEG_ANON) != 0;
        info->users = shoal__users_live(hp, fd);
    }
    close(fd);
    return info->status = rc;
}

int shoal_stat(const char *name, const shoal_attr *attr, shoal_object_info *info)
{
    char dir[PATH_MAX], path[PATH_MAX];
    int rc;
    shoal__err_clear();
    if ((rc = shoal_name_check(name)) || (rc = shoal__domain_dir(attr, dir, sizeof(dir))))
        return rc;
    if (!path_join(path, sizeof(path), dir, name))
        return shoal__err(SHOAL_ENAME, "\"%s\": path too long", name);
    return stat_path(path, name, info);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects the names in the domain directory (hidden ones too when `hidden`). */
static int read_names(const char *dir, bool hidden, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return lookup_err(errno, "domain", NULL, dir);
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (e->d_name[0] == '.' && !hidden)
            continue;
        char *copy = NULL, **grown = *names;
        if (*n == cap) {
            cap = cap ? cap * 2 : 32;
            grown = realloc(*names, cap * sizeof(char *));
        }
        if (grown)
            *names = grown;
        if (!grown || !(copy = strdup(e->d_name))) {
            closedir(d);
            free_names(*names, *n);
            *names = NULL;
            *n = 0;
            return shoal__err(SHOAL_ENOMEM, "domain \"%s\": out of memory listing it",
                              dir);
        }
        (*names)[(*n)++] = copy;
    }
    closedir(d);
    if (*n)
        qsort(*names, *n, sizeof(char *), cmp_names);
    return 0;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int shoal_list(const shoal_attr *attr, int (*fn)(const shoal_object_info *, void *),
               void *arg)
{
    char dir[PATH_MAX], path[PATH_MAX];
    char **names;
    size_t n;
    int rc;
    shoal__err_clear();
    if ((rc = shoal__domain_dir(attr, dir, sizeof(dir))) ||
        (rc = read_names(dir, false, &names, &n)))
        return rc;
    for (size_t i = 0; i < n; i++) {
        shoal_object_info info;
        if (!path_join(path, sizeof(path), dir, names[i]))
            continue;
        stat_path(path, names[i], &info);
        if (fn(&info, arg))
            break;
    }
    free_names(names, n);
    return 0;
}

/* A hidden ".init.<name>.<pid>.<n>" file whose creator is dead. */
static bool dead_init_leftover(const char *file)
{
    if (strncmp(file, ".init.", 6) != 0)
        return false;
    const char *dot = strrchr(file, '.');
    if (!dot || dot == file)
        return false;
    const char *p = dot - 1;
    while (p > file && *p != '.')
        p--;
    int pid = atoi(p + 1);
    return pid > 0 && !shoal__proc_alive(pid, 0);
}

/* Removes path if no process holds it open (no shared flock). */
static bool remove_if_unused(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    bool removed = false;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino)
            removed = unlink(path) == 0;
    }
    close(fd);
    return removed;
}

int shoal_gc(const shoal_attr *attr)
{
    char dir[PATH_MAX], path[PATH_MAX];
    char **names;
    size_t n;
    int rc;
    shoal__err_clear();
    if ((rc = shoal__domain_dir(attr, dir, sizeof(dir))) ||
        (rc = read_names(dir, true, &names, &n)))
        return rc;
    int removed = 0;
    for (size_t i = 0; i < n; i++) {
        if (!path_join(path, sizeof(path), dir, names[i]))
            continue;
        if (names[i][0] == '.') {
            if (dead_init_leftover(names[i]) && unlink(path) == 0)
                removed++;
        } else if (remove_if_unused(path)) {
            removed++;
        }
    }
    free_names(names, n);
    return removed;
}
