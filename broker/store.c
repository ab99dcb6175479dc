/*
 * store.c — the broker's objects in LMDB (--data-dir).
 *
 * One LMDB environment in the data directory, one unnamed database: the key "o" +
 * name holds the object's packed Object message (broker.proto), "m:boot" the number
 * of times a broker has started on this directory (session ids carry it, so an id of
 * a previous life never matches a live session). core.c writes every object a
 * request changed in one write transaction and hands out the replies only after
 * mdb_txn_commit returned: with the default sync policy LMDB has fsync'ed the data,
 * so an acknowledged write survives a SIGKILL of the broker and a crash of the
 * machine; --sync=none (MDB_NOSYNC) keeps it across a SIGKILL of the broker only.
 * LMDB's copy-on-write B-tree never leaves a half-written transaction visible. A
 * second broker on the same directory is refused (an flock on broker.lock), since two
 * would each believe they hold the objects.
 */
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <sys/file.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker_internal.h"
#include "internal.h"

struct broker_store {
    MDB_env *env;
    MDB_dbi dbi;
    int lock_fd; /* flock'ed: one broker per data directory */
};

#define MAP_SIZE ((size_t)1 << 34) /* address space reserved; the file grows as used */
#define BOOT_KEY "m:boot"

static int lmdb_err(int rc, const char *what)
{
    return shoal__err(rc == ENOSPC || rc == MDB_MAP_FULL ? SHOAL_ENOSPC
                      : rc == EACCES                     ? SHOAL_EACCES
                                                         : SHOAL_ESYS,
                      "broker data directory: %s: %s", what, mdb_strerror(rc));
}

static int load(shoal_broker *b, MDB_txn *txn, MDB_dbi dbi)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        return lmdb_err(rc, "cursor");
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 2 || ((char *)k.mv_data)[0] != 'o')
            continue;
        char *name = strndup((char *)k.mv_data + 1, k.mv_size - 1);
        bobjstate *st = (bobjstate *)shoal__bv_unpack(&shoal__broker__object__descriptor,
                                                      v.mv_data, v.mv_size);
        if (!st || !st->data) {
            mdb_cursor_close(cur);
            if (st)
                protobuf_c_message_free_unpacked(&st->base, NULL);
            int err = shoal__err(SHOAL_ECORRUPT,
                                 "broker data directory: object \"%s\" "
                                 "does not decode",
                                 name ? name : "?");
            free(name);
            return err;
        }
        bobj *o = name ? broker__insert(b, name, st) : NULL;
        free(name);
        if (!o) {
            protobuf_c_message_free_unpacked(&st->base, NULL);
            mdb_cursor_close(cur);
            return shoal__err(SHOAL_ENOMEM, "broker: out of memory");
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : lmdb_err(rc, "read");
}

static int next_boot(shoal_broker *b, MDB_txn *txn, MDB_dbi dbi)
{
    MDB_val k = {sizeof(BOOT_KEY) - 1, BOOT_KEY}, v;
    uint64_t boot = 0;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == 0 && v.mv_size == sizeof(boot))
        memcpy(&boot, v.mv_data, sizeof(boot));
    else if (rc != MDB_NOTFOUND && rc != 0)
        return lmdb_err(rc, "read");
    b->boot = ++boot;
    v = (MDB_val){sizeof(boot), &boot};
    rc = mdb_put(txn, dbi, &k, &v, 0);
    return rc ? lmdb_err(rc, "write") : 0;
}

int broker__store_open(shoal_broker *b, const char *dir, int sync)
{
    struct broker_store *s = calloc(1, sizeof(*s));
    if (!s)
        return shoal__err(SHOAL_ENOMEM, "broker: out of memory");
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        free(s);
        return shoal__err(errno == EACCES ? SHOAL_EACCES : SHOAL_ESYS,
                          "broker data directory %s: %s", dir, strerror(errno));
    }
    char lock_path[4096];
    snprintf(lock_path, sizeof(lock_path), "%s/broker.lock", dir);
    s->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        int busy = s->lock_fd >= 0 && errno == EWOULDBLOCK;
        int err =
            shoal__err(busy ? SHOAL_EBUSY : SHOAL_ESYS, "broker data directory %s: %s",
                       dir, busy ? "another broker uses it" : strerror(errno));
        if (s->lock_fd >= 0)
            close(s->lock_fd);
        free(s);
        return err;
    }
    MDB_txn *txn = NULL;
    int rc = mdb_env_create(&s->env);
    if (!rc)
        rc = mdb_env_set_mapsize(s->env, MAP_SIZE);
    if (!rc)
        rc = mdb_env_open(s->env, dir, MDB_NOTLS | (sync ? 0 : MDB_NOSYNC), 0600);
    if (!rc)
        rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (!rc)
        rc = mdb_dbi_open(txn, NULL, 0, &s->dbi);
    int err = rc ? lmdb_err(rc, dir) : load(b, txn, s->dbi);
    if (!err)
        err = next_boot(b, txn, s->dbi);
    if (!err && (rc = mdb_txn_commit(txn)) != 0)
        err = lmdb_err(rc, "commit");
    else if (err && txn)
        mdb_txn_abort(txn);
    if (err) {
        if (s->env)
            mdb_env_close(s->env);
        close(s->lock_fd);
        free(s);
        return err;
    }
    b->store = s;
    return 0;
}

int broker__store_commit(shoal_broker *b, bobj **objs, size_t n)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(b->store->env, NULL, 0, &txn);
    if (rc)
        return lmdb_err(rc, "begin");
    for (size_t i = 0; i < n && !rc; i++) {
        bobj *o = objs[i];
        size_t klen = strlen(o->name) + 1;
        char key[klen];
        key[0] = 'o';
        memcpy(key + 1, o->name, klen - 1);
        MDB_val k = {klen, key};
        if (!o->st) {
            rc = mdb_del(txn, b->store->dbi, &k, NULL);
            rc = rc == MDB_NOTFOUND ? 0 : rc;
            continue;
        }
        MDB_val v = {protobuf_c_message_get_packed_size(&o->st->base), NULL};
        rc = mdb_put(txn, b->store->dbi, &k, &v, MDB_RESERVE);
        if (!rc)
            protobuf_c_message_pack(&o->st->base, v.mv_data);
    }
    if (rc) {
        mdb_txn_abort(txn);
        return lmdb_err(rc, "write");
    }
    rc = mdb_txn_commit(txn);
    return rc ? lmdb_err(rc, "commit") : 0;
}

void broker__store_close(shoal_broker *b)
{
    if (!b->store)
        return;
    mdb_env_close(b->store->env);
    close(b->store->lock_fd); /* releases the flock */
    free(b->store);
    b->store = NULL;
}
