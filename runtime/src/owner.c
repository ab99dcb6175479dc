/*
 * owner.c — who uses a segment and who owns what in it: the one encoding of process
 * identity shared by queue slots, pipe ends and the Value writer.
 *
 * Each process that has a segment open takes a slot in the header's user table and
 * holds, through its own open file description of the segment file, an OFD byte-range
 * lock on byte USER_LOCK_BASE + slot. The kernel drops that lock when the process
 * dies or closes the file (an exec closes it too: the descriptor is O_CLOEXEC), so
 * "is that byte locked by someone?" (F_OFD_GETLK) says whether the slot's user is
 * still there — from what the kernel guarantees, never from a pid number that may
 * have been reused. The slot entry packs the user's pid with a generation counter
 * that every registration bumps, in one 64-bit word changed by compare-and-swap.
 *
 * An owner id names a (slot, generation) pair in 29 bits — (generation << 7) | (slot
 * + 1), never 0 — small enough for a queue slot's state word. It is alive while the
 * slot still holds that generation and its byte is locked: a slot taken over by a
 * new user, or freed by a close, makes every id of the old user dead at once.
 *
 * Forking: a child shares its parent's open file descriptions, and with them the
 * parent's flock and byte locks, so without more it would be invisible (and an
 * anonymous object would be removed under it when the parent closes it). The fork
 * handlers therefore give the child, for every segment it inherits, its own open file
 * description (same file, even if unlinked), its own flock and its own user slot, and
 * run the segment's on_fork hook (a pipe makes the child a holder of its end) — all
 * prepared before fork() returns in either process, so a child that dies at once is
 * a user that died, and a parent that closes its handle right after fork() cannot
 * get ahead of the child's registration.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include "internal.h"

#define USER_LOCK_BASE (1ll << 40) /* byte locked by the user of slot i: base + i */
#define GEN_BITS       22
#define GEN_MASK       ((1u << GEN_BITS) - 1)
#define SLOT_BITS      7

_Static_assert(SHOAL_MAX_USERS < (1 << SLOT_BITS), "slot + 1 fits the owner id");

static inline uint32_t owner_make(int slot, uint32_t gen)
{
    return (gen & GEN_MASK) << SLOT_BITS | (uint32_t)(slot + 1);
}

static inline int owner_slot(uint32_t owner)
{
    return (int)(owner & ((1u << SLOT_BITS) - 1)) - 1;
}

static inline uint32_t id_gen(uint64_t id)
{
    return (uint32_t)(id >> 32);
}

static inline int32_t id_pid(uint64_t id)
{
    return (int32_t)(uint32_t)id;
}

static int byte_lock(int fd, int slot, short type)
{
    struct flock fl = {.l_type = type,
                       .l_whence = SEEK_SET,
                       .l_start = USER_LOCK_BASE + slot,
                       .l_len = 1};
    return fcntl(fd, F_OFD_SETLK, &fl);
}

/* Whether an open file description other than fd's holds slot's byte lock. */
static bool byte_locked(int fd, int slot)
{
    struct flock fl = {.l_type = F_WRLCK,
                       .l_whence = SEEK_SET,
                       .l_start = USER_LOCK_BASE + slot,
                       .l_len = 1};
    if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
        return true; /* cannot tell: never call a user dead on a guess */
    return fl.l_type != F_UNLCK;
}

/* ---- the user table ---------------------------------------------------------------- */

/* Takes a user slot for pid (start: its start time, 0 if not known yet) whose user
 * lock is held through fd. Returns the slot (and *owner) or -1 when the table is
 * full. */
static int take_slot(struct shoal__header *h, int fd, int32_t pid, uint64_t start,
                     uint32_t *owner)
{
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < SHOAL_MAX_USERS; i++) {
            struct shoal__user *u = &h->users[i];
            uint64_t id = atomic_load(&u->id);
            /* Pass 0 takes free slots; pass 1 also those of users that are gone. */
            if (id_pid(id) != 0 && (pass == 0 || byte_locked(fd, i)))
                continue;
            uint32_t gen = (id_gen(id) + 1) & GEN_MASK;
            if (!atomic_compare_exchange_strong(&u->id, &id,
                                                (uint64_t)gen << 32 | (uint32_t)pid))
                continue;
            atomic_store(&u->start, start);
            byte_lock(fd, i, F_WRLCK);
            *owner = owner_make(i, gen);
            return i;
        }
    }
    return -1;
}

int shoal__user_register(shoal__seg *seg)
{
    seg->owner = 0;
    seg->owner_pid = shoal__self_pid();
    seg->user_slot =
        take_slot(seg->hdr, seg->fd, seg->owner_pid, shoal__self_start(), &seg->owner);
    return seg->user_slot; /* -1: a user through its flock, but it owns nothing */
}

void shoal__user_unregister(shoal__seg *seg)
{
    if (seg->user_slot < 0 || seg->owner_pid != shoal__self_pid())
        return; /* not registered by this process (an inherited, unused handle) */
    /* Unlock first: a slot that looks free must be lockable by its next user. */
    byte_lock(seg->fd, seg->user_slot, F_UNLCK);
    _Atomic uint64_t *id = &seg->hdr->users[seg->user_slot].id;
    uint64_t cur = atomic_load(id);
    if (id_pid(cur) == seg->owner_pid &&
        (id_gen(cur) & GEN_MASK) == seg->owner >> SLOT_BITS)
        atomic_compare_exchange_strong(id, &cur, cur & ~(uint64_t)UINT32_MAX);
    seg->user_slot = -1;
    seg->owner = 0;
}

int shoal__users_live(const struct shoal__header *h, int fd)
{
    int32_t pids[SHOAL_MAX_USERS];
    int n = 0;
    for (int i = 0; i < SHOAL_MAX_USERS; i++) {
        int32_t pid = id_pid(atomic_load((_Atomic uint64_t *)&h->users[i].id));
        if (pid == 0 || !byte_locked(fd, i))
            continue;
        int k = 0;
        while (k < n && pids[k] != pid)
            k++;
        if (k == n)
            pids[n++] = pid; /* processes, not handles */
    }
    return n;
}

/* ---- owner ids --------------------------------------------------------------------- */

/* The slot's user if it still has the generation of `owner`, else 0. */
static int32_t owner_pid(const shoal__seg *seg, uint32_t owner)
{
    int slot = owner_slot(owner);
    if (slot < 0 || slot >= SHOAL_MAX_USERS)
        return 0;
    uint64_t id = atomic_load(&seg->hdr->users[slot].id);
    return (id_gen(id) & GEN_MASK) == owner >> SLOT_BITS ? id_pid(id) : 0;
}

uint32_t shoal__owner_refresh(shoal__seg *seg)
{
    shoal__user_register(seg);
    return seg->owner;
}

bool shoal__owner_alive(const shoal__seg *seg, uint32_t owner)
{
    if (owner == 0 || owner_pid(seg, owner) == 0)
        return false;
    if (shoal__owner_is_self(seg, owner))
        return true;
    return byte_locked(seg->fd, owner_slot(owner));
}

bool shoal__owner_is_self(const shoal__seg *seg, uint32_t owner)
{
    if (owner == 0 || owner_pid(seg, owner) != shoal__self_pid())
        return false;
    /* pid and full start time: another handle of this process, not an earlier process
     * whose pid this one reuses. */
    return atomic_load(&seg->hdr->users[owner_slot(owner)].start) == shoal__self_start();
}

int shoal__owner_slot(uint32_t owner)
{
    int slot = owner_slot(owner);
    return slot < SHOAL_MAX_USERS ? slot : -1;
}

int32_t shoal__owner_pid(const shoal__seg *seg, uint32_t owner)
{
    return owner_pid(seg, owner);
}

/* ---- segments open in this process, for fork ----------------------------------------
 */

static pthread_mutex_t open_mu = PTHREAD_MUTEX_INITIALIZER;
static shoal__seg *open_list;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/*
 * Before fork: for every open segment, a new open file description with its flock and
 * a user slot locked through it, for the child (the slot names the parent's pid and
 * no start time until the child fills them in). The parent closes its descriptor of
 * it after fork; the child's copy keeps the locks exactly as long as the child lives,
 * so the child is a user from its first instant, even one that dies at once.
 */
static void fork_prepare(void)
{
    pthread_mutex_lock(&open_mu);
    int32_t pid = shoal__self_pid();
    for (shoal__seg *s = open_list; s; s = s->next) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", s->fd);
        s->fork_fd = open(path, O_RDWR | O_CLOEXEC);
        if (s->fork_fd < 0)
            continue; /* no /proc: the child shares the parent's registration */
        if (flock(s->fork_fd, LOCK_SH) != 0 ||
            (s->fork_slot = take_slot(s->hdr, s->fork_fd, pid, 0, &s->fork_owner)) < 0) {
            close(s->fork_fd);
            s->fork_fd = -1;
            continue;
        }
        if (s->on_fork)
            s->on_fork(s, s->fork_owner, s->fork_slot);
    }
}

static void fork_parent(void)
{
    for (shoal__seg *s = open_list; s; s = s->next)
        if (s->fork_fd >= 0) {
            close(s->fork_fd);
            s->fork_fd = -1;
        }
    pthread_mutex_unlock(&open_mu);
}

/* In the child: adopt what fork_prepare made. */
static void adopt(shoal__seg *seg)
{
    int fd = seg->fork_fd;
    seg->fork_fd = -1;
    if (fd < 0 || dup3(fd, seg->fd, O_CLOEXEC) < 0) {
        if (fd >= 0)
            close(fd);
        return;
    }
    close(fd);
    int32_t me = shoal__self_pid();
    struct shoal__user *u = &seg->hdr->users[seg->fork_slot];
    uint64_t id = atomic_load(&u->id);
    atomic_compare_exchange_strong(&u->id, &id,
                                   (id & ~(uint64_t)UINT32_MAX) | (uint32_t)me);
    atomic_store(&u->start, shoal__self_start());
    seg->user_slot = seg->fork_slot;
    seg->owner = seg->fork_owner;
    seg->owner_pid = me;
}

static void fork_child(void)
{
    shoal__self_forked();
    for (shoal__seg *s = open_list; s; s = s->next)
        adopt(s);
    pthread_mutex_unlock(&open_mu);
}

static void atfork_register(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void shoal__seg_track(shoal__seg *seg)
{
    pthread_once(&atfork_once, atfork_register);
    pthread_mutex_lock(&open_mu);
    seg->prev = NULL;
    seg->next = open_list;
    if (open_list)
        open_list->prev = seg;
    open_list = seg;
    pthread_mutex_unlock(&open_mu);
}

void shoal__seg_untrack(shoal__seg *seg)
{
    pthread_mutex_lock(&open_mu);
    if (seg->prev)
        seg->prev->next = seg->next;
    else if (open_list == seg)
        open_list = seg->next;
    if (seg->next)
        seg->next->prev = seg->prev;
    seg->next = seg->prev = NULL;
    pthread_mutex_unlock(&open_mu);
}
