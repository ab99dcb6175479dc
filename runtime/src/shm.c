/* shm.c — SharedMemory: a raw named block of bytes. */
#include <stdlib.h>

#include "internal.h"

struct shoal_shm {
    shoal__seg *seg;
};

int shoal_shm_open(shoal_shm **out, const char *name, int mode, size_t size,
                   const shoal_attr *attr)
{
    if (!out)
        return shoal__err(SHOAL_EINVAL, "shm: NULL output pointer");
    *out = NULL;
    if (size == 0 && mode != SHOAL_OPEN)
        return shoal__err(SHOAL_EINVAL, "shm: size 0 cannot be created");
    shoal__seg_spec spec = {
        .kind = SHOAL_KIND_SHM,
        .what = "shm",
        .count = size,
        .check_count = size != 0,
        .payload_size = size,
    };
    shoal_shm *shm = calloc(1, sizeof(*shm));
    if (!shm)
        return shoal__err(SHOAL_ENOMEM, "out of memory");
    int rc = shoal__seg_open(&shm->seg, name, mode, &spec, attr);
    if (rc) {
        free(shm);
        return rc;
    }
    *out = shm;
    return 0;
}

void *shoal_shm_data(shoal_shm *shm)
{
    return shm->seg->payload;
}

size_t shoal_shm_size(const shoal_shm *shm)
{
    return shm->seg->hdr->payload_size;
}

const char *shoal_shm_name(const shoal_shm *shm)
{
    return shm->seg->name;
}

int shoal_shm_close(shoal_shm *shm)
{
    if (!shm)
        return SHOAL_EINVAL;
    shoal__seg_close(shm->seg);
    free(shm);
    return 0;
}
