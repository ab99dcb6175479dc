/*
 * shoal/segment.h — named shared-memory segments, SharedMemory, unlink and gc.
 *
 * Every shared object lives in one segment: a file under <root>/<domain>/<name>,
 * where root defaults to /dev/shm/shoal (or $SHOAL_ROOT) and domain to "default" (or
 * $SHOAL_DOMAIN). The first page is a header (magic, format version, kind, element
 * type name and layout hash, sizes, creator pid and start time, users); the payload
 * follows. Creation is atomic: a segment is fully initialised in a hidden file and
 * then linked under its name, so no process ever sees a half-made object, and a
 * creator that dies part way leaves only a hidden file that `shoal_gc` removes.
 * Space is reserved at creation, so a full file system fails creation with
 * SHOAL_ENOSPC instead of a SIGBUS later.
 *
 * An object created with a NULL name gets a unique generated name (see the
 * *_name() accessors) and is removed when its last user closes it or dies.
 */
#ifndef SHOAL_SEGMENT_H
#define SHOAL_SEGMENT_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A raw named block of bytes, like Python's multiprocessing.shared_memory. */
typedef struct shoal_shm shoal_shm;

/*
 * Opens or creates the SharedMemory `name` of `size` bytes (size is only used when
 * creating; 0 with SHOAL_OPEN accepts any size). A new block is zero-filled.
 * Returns 0 and sets *out, or SHOAL_ENAME, SHOAL_ENOENT, SHOAL_EEXIST, SHOAL_EKIND,
 * SHOAL_ELAYOUT (size differs), SHOAL_ECORRUPT, SHOAL_ETRUNCATED, SHOAL_EFOREIGN,
 * SHOAL_EVERSION, SHOAL_ENOSPC, SHOAL_EACCES, SHOAL_ENOMEM, SHOAL_ESYS.
 */
SHOAL_API int shoal_shm_open(shoal_shm **out, const char *name, int mode, size_t size,
                             const shoal_attr *attr);
/* The mapped bytes and their number. */
SHOAL_API void *shoal_shm_data(shoal_shm *shm);
SHOAL_API size_t shoal_shm_size(const shoal_shm *shm);
/* The object's name (generated if it was created without one). */
SHOAL_API const char *shoal_shm_name(const shoal_shm *shm);
/* Unmaps and releases the handle. Returns 0. */
SHOAL_API int shoal_shm_close(shoal_shm *shm);

/*
 * Removes the name of any object. Processes that have it open keep using it; new
 * opens get SHOAL_ENOENT. Returns 0, SHOAL_ENAME, SHOAL_ENOENT, SHOAL_EACCES, SHOAL_ESYS.
 */
SHOAL_API int shoal_unlink(const char *name, const shoal_attr *attr);

/* Validates a name: 0 or SHOAL_ENAME (with a detail message saying why). */
SHOAL_API int shoal_name_check(const char *name);

/*
 * Writes the directory holding the objects of attr's domain (root and domain resolved
 * as for every open: attr, then $SHOAL_ROOT / $SHOAL_DOMAIN, then the defaults) into
 * buf, cap bytes. The directory need not exist. Returns 0, SHOAL_EINVAL (buf NULL) or
 * SHOAL_ENAME (a domain name that is not valid, or a path longer than cap).
 */
SHOAL_API int shoal_domain_dir(const shoal_attr *attr, char *buf, size_t cap);

/* What shoal_list() reports of one object. */
typedef struct shoal_object_info {
    char name[SHOAL_NAME_MAX + 1];
    int kind;           /* enum shoal_kind, or 0 when status != 0 */
    int status;         /* 0, or the error opening it would give (SHOAL_ECORRUPT, ...) */
    char type_name[64]; /* element type */
    uint64_t layout_hash;
    uint64_t elem_size; /* bytes per element */
    uint64_t count;     /* elements, or capacity for queues */
    uint64_t file_size; /* bytes on disk, header included */
    int32_t creator_pid;
    int users;     /* live processes that have it open */
    int anonymous; /* created without a name: removed when unused */
} shoal_object_info;

/*
 * Lists the objects of a domain, calling fn for each (in name order) until it returns
 * non-zero. Returns 0, or SHOAL_ENOENT when the domain directory does not exist.
 */
SHOAL_API int shoal_list(const shoal_attr *attr,
                         int (*fn)(const shoal_object_info *info, void *arg), void *arg);

/* Fills *info for one object. Returns 0 or the error opening it would give. */
SHOAL_API int shoal_stat(const char *name, const shoal_attr *attr,
                         shoal_object_info *info);

/*
 * Garbage collection: removes the domain's segments that no live process has open
 * (their users all exited or died), and the hidden leftovers of creators that died
 * during initialisation. Returns the number removed (>= 0) or a negative error.
 */
SHOAL_API int shoal_gc(const shoal_attr *attr);

#ifdef __cplusplus
}
#endif
#endif
