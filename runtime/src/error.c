/* error.c — error texts and the per-thread detail message. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static _Thread_local char detail[512];

static const char *const texts[] = {
    [0] = "success",
    [-SHOAL_EINVAL] = "invalid argument",
    [-SHOAL_ENOMEM] = "out of memory",
    [-SHOAL_ENOENT] = "no such object",
    [-SHOAL_EEXIST] = "object already exists",
    [-SHOAL_ENAME] = "invalid name",
    [-SHOAL_EKIND] = "wrong kind of object",
    [-SHOAL_ELAYOUT] = "layout mismatch",
    [-SHOAL_ECORRUPT] = "corrupt segment",
    [-SHOAL_ETRUNCATED] = "truncated segment",
    [-SHOAL_EFOREIGN] = "not a shoal segment",
    [-SHOAL_EVERSION] = "incompatible segment format version",
    [-SHOAL_ENOSPC] = "no space left for the segment",
    [-SHOAL_ETIMEDOUT] = "timed out",
    [-SHOAL_EAGAIN] = "would block",
    [-SHOAL_EOWNERDEAD] = "previous owner died",
    [-SHOAL_EPERM] = "not the owner",
    [-SHOAL_ERANGE] = "index out of range",
    [-SHOAL_EOVERFLOW] = "released too many times",
    [-SHOAL_EMSGSIZE] = "message size wrong or too large",
    [-SHOAL_ECLOSED] = "closed",
    [-SHOAL_EEOF] = "end of stream",
    [-SHOAL_EPEERDEAD] = "peer process died",
    [-SHOAL_EBROKEN] = "barrier broken",
    [-SHOAL_EDEADLK] = "lock already held by this thread",
    [-SHOAL_ETYPE] = "wrong element type for this operation",
    [-SHOAL_EACCES] = "permission denied",
    [-SHOAL_EBUSY] = "in use",
    [-SHOAL_ESYS] = "system error",
    [-SHOAL_EINVALID_DATA] = "invalid data",
    [-SHOAL_EINTR] = "interrupted by a signal",
};

const char *shoal_strerror(int rc)
{
    if (rc > 0 || -rc >= (int)(sizeof(texts) / sizeof(texts[0])) || !texts[-rc])
        return "unknown error";
    return texts[-rc];
}

const char *shoal_errdetail(void)
{
    return detail;
}

int shoal__err(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    return rc;
}

void shoal__err_clear(void)
{
    detail[0] = '\0';
}

int shoal__errno_to_rc(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
        return SHOAL_ENOENT;
    case EEXIST:
        return SHOAL_EEXIST;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return SHOAL_ENOSPC;
    case ENOMEM:
        return SHOAL_ENOMEM;
    case EACCES:
    case EPERM:
    case EROFS:
        return SHOAL_EACCES;
    case ENAMETOOLONG:
        return SHOAL_ENAME;
    case EINVAL:
        return SHOAL_EINVAL;
    default:
        return SHOAL_ESYS;
    }
}
