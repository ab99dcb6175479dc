/*
 * manager_lock.h — the broker's lock table: Lock and RLock objects of a broker on
 * shm://NAME taken and released in shared memory (manager_lock.c explains the
 * mechanism; broker/locks.c keeps the table on the broker's side, manager.c uses it
 * on the client's).
 *
 * Layout of the segment NAME:locks (a SharedMemory block beside NAME:view):
 *
 *   header    one shoal_locks_header (magic, version, the number of slots)
 *   slots     nslots shoal_lockword entries of 256 bytes, found by the object's name
 *             (hash, then linear probing over at most SHOAL_LOCKS_PROBE slots)
 */
#ifndef SHOAL_MANAGER_LOCK_H
#define SHOAL_MANAGER_LOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal/common.h"

struct shoal__deadline;

#define SHOAL_LOCKS_MAGIC   0x314b434f4c484853ull /* "SHHLOCK1" */
#define SHOAL_LOCKS_VERSION 1
#define SHOAL_LOCKS_SLOTS   4096 /* lock objects past these stay on the broker */
#define SHOAL_LOCKS_PROBE   16   /* slots a name may be in: hash % nslots onwards */
#define SHOAL_LOCKS_NAME    192  /* longest name with a slot */

/* A slot's kind: free (never used), a Lock, an RLock, or a deleted object's (never
 * used again: a client that found the slot before the deletion touches nothing
 * another object uses). */
enum { SHOAL_LW_FREE = 0, SHOAL_LW_LOCK = 1, SHOAL_LW_RLOCK = 2, SHOAL_LW_GONE = 3 };

/* state: bits 0-28 the holder's owner id in NAME:locks (owner.c; 0: free), bit 30
 * while the taker writes its thread (the holder is not to be trusted yet), bit 31 on
 * a free lock: its last holder died holding it (the next taker is told), bits 32-63
 * the depth (an RLock's count; 1 for a held Lock). */
#define SHOAL_LW_OWNER(s) ((uint32_t)(s)&0x1fffffffu)
#define SHOAL_LW_TAKING   (1ull << 30)
#define SHOAL_LW_DIED     (1ull << 31)
#define SHOAL_LW_DEPTH(s) ((uint32_t)((s) >> 32))
#define SHOAL_LW_ONE      (1ull << 32)

typedef struct shoal_lockword {
    _Atomic uint64_t state;
    _Atomic uint64_t thread;   /* the holder's thread (the requests' thread field); 0
                                * while free or being taken */
    _Atomic uint32_t seq;      /* the futex word: moved by every release */
    _Atomic uint32_t sleepers; /* waiters asleep on seq (a release wakes them) */
    _Atomic uint32_t kind;     /* SHOAL_LW_*: set last when the slot is filled */
    uint32_t namelen;
    uint8_t pad_[32];
    char name[SHOAL_LOCKS_NAME];
} shoal_lockword;

_Static_assert(sizeof(shoal_lockword) == 256, "a lock slot's size");

typedef struct shoal_locks_header {
    uint64_t magic;
    uint32_t version;
    uint32_t nslots;
    uint64_t size; /* bytes of the payload */
    uint8_t pad_[40];
} shoal_locks_header;

/* A mapping of a broker's lock table (the broker's or a client's). */
typedef struct shoal__locks shoal__locks;

/* Creates NAME:locks for the broker on shm://name (a leftover is replaced): 0 or a
 * negative SHOAL_E* code. */
int shoal__locks_create(shoal__locks **out, const char *name, const shoal_attr *attr);
/* Opens the lock table of the broker on shm://name, or NULL (none, not valid, no
 * owner id for this process in it: lock requests then go to the broker). */
shoal__locks *shoal__locks_open(const char *name, const shoal_attr *attr);
/* Unmaps (and, for the broker, unlinks with unlink set). */
void shoal__locks_close(shoal__locks *l, bool unlink);

/* The slot of name[n]: its index, or -1 (none: not a Lock or RLock of this table).
 * *kind: SHOAL_LW_LOCK or SHOAL_LW_RLOCK. */
int shoal__locks_find(shoal__locks *l, const char *name, size_t n, int *kind);
/* The broker's side: fills a free slot for name (kind SHOAL_LW_LOCK or RLOCK); its
 * index, or -1 when the table has no room for it (too long a name, full). */
int shoal__locks_add(shoal__locks *l, const char *name, int kind);
/* The broker's side: the slot's object is gone (SHOAL_LW_GONE; a holder is dropped). */
void shoal__locks_drop(shoal__locks *l, int slot);
shoal_lockword *shoal__locks_word(shoal__locks *l, int slot);
/* This mapping's owner id (0: none). */
uint32_t shoal__locks_self(shoal__locks *l);
/* Whether the holder owner id is alive (owner.c). */
bool shoal__locks_alive(shoal__locks *l, uint32_t owner);
/* The pid of owner, 0 when gone. */
int32_t shoal__locks_pid(shoal__locks *l, uint32_t owner);

/*
 * One try to take slot's lock for owner (an owner id of the table: this mapping's,
 * or a client's the broker takes it for) and thread: 0 taken, 1 held by a live
 * holder (or, with alive_check false, by anyone), SHOAL_EOWNERDEAD taken but its last
 * holder died holding it (a free lock so flagged, or a dead holder found with
 * alive_check), SHOAL_EDEADLK a Lock owner's thread already holds. An RLock owner's
 * thread holds goes one deeper (0).
 */
int shoal__lw_try(shoal__locks *l, int slot, uint32_t owner, uint64_t thread,
                  bool alive_check);
/*
 * Releases slot's lock for owner's thread: 0, or 1 when it is free now (the depth
 * reached 0); SHOAL_EPERM when it is not held, SHOAL_EDEADLK when it is an RLock held
 * by another owner or thread. A Lock may be released by anyone.
 */
int shoal__lw_release(shoal__locks *l, int slot, uint32_t owner, uint64_t thread);
/* Frees slot's lock if owner holds it, marking it owner-died (the next taker is
 * told): whether it did. */
bool shoal__lw_abandon(shoal__locks *l, int slot, uint32_t owner);
/*
 * Takes slot's lock, waiting (shoal__wait: spin, then sleep on seq) until the
 * deadline; every sleep slice looks whether the holder is alive (a dead one's lock
 * is taken, SHOAL_EOWNERDEAD) and whether live(arg) still holds (else its code is
 * returned: the broker gone, the session closed). Returns what shoal__lw_try does,
 * or SHOAL_ETIMEDOUT, or live's code.
 */
int shoal__lw_acquire(shoal__locks *l, int slot, uint64_t thread,
                      const struct shoal__deadline *d, int (*live)(void *), void *arg);

#endif
