/*
 * store.c — the broker's objects in LMDB (--data-dir).
 *
 * One LMDB environment in the data directory, one unnamed database. Format version 3
 * (the record "m:version"); its records:
 *
 *   "m:version"                  the format version (a uint32, 3)
 *   "m:boot"                     how many times a broker started on this directory
 *                                (session ids carry it, so an id of a previous life
 *                                never matches a live session)
 *   "h" name                     the object's header: its packed Object message
 *                                (broker.proto) — kind, typecode, count, limit, owner,
 *                                flag — with its data, except for the record kinds
 *                                (their data is None here):
 *   "e" name "\0" id (8 bytes,   one entry of a dict or Namespace (a packed Value
 *    big-endian)                 tuple (key, value)), or one item of a list, Array,
 *                                Queue or JoinableQueue (a packed Value)
 *
 * A dict entry's id is given when its key is inserted and kept while the key stays
 * (index.c), so LMDB's key order is the dict's insertion order. A list item's id (its
 * key) is its own too, kept beside it in memory (o->keys[i] for items[i], the holes
 * before item 0 included: broker__settle moves both) while the broker has a data
 * directory; the keys increase along the list and are spaced out: an append takes the
 * last key + KEY_GAP (2^32), an insert at the front the first - KEY_GAP, an insert
 * between two items the middle of their keys, the first item of an empty list
 * KEY_MID (2^63). When there is no room between the neighbours (or past an end), the
 * smallest window of items around the new one whose span has room at the gap its size
 * asks is renumbered: its items' old records deleted and written again under keys
 * spread over the span (place_key): an insert writes O(log n) records amortized,
 * usually one, and the whole list only when it is packed (a list of version 2, whose
 * ids were contiguous, at its first insert in the middle). So an append or an insert
 * writes one record (now and then a few more), a pop or a del anywhere deletes one. A
 * write to one key of a dict of any size writes that key's record and nothing else;
 * d['x'].append(1) rewrites the record of 'x'. Operations that move many items
 * (reverse, clear) rewrite the object's records (o->full), the items under fresh keys
 * spread over the whole key space; while o->full the keys are not looked at. The
 * header is written when the object is created and, for the other kinds, with each
 * change (it is their whole state).
 *
 * core.c logs each record change as the operation makes it (broker__store_rec: the
 * record packed then); at the end of the request (or of a pipelined batch, or of the
 * group of sessions' requests that joined a batch: core.c, "Group commit") the
 * commit applies the log in order, then the headers and full rewrites of the changed
 * objects from their state now, in one write transaction, and only after
 * mdb_txn_commit returned are the replies handed out: with the default sync policy
 * LMDB has fsync'ed the data, so an acknowledged write survives a SIGKILL of the
 * broker and a crash of the machine; --sync=none (MDB_NOSYNC) keeps it across a
 * SIGKILL of the broker only. LMDB's copy-on-write B-tree never leaves a
 * half-written transaction visible. Applying the log in order and the full rewrites
 * from the final state gives the final state: a full rewrite clears every record of
 * the object first, and a deleted object's records are dropped at their place in the
 * log (a new object of the same name may follow it in the same transaction).
 *
 * Version 1 (no "m:version"; "o" name held each whole Object) is migrated when it is
 * opened: read as before, written as the current version and its "o" records
 * deleted, in the transaction that opens the directory. Version 2 differs only in its
 * list item ids (head + position: contiguous, increasing, which are valid keys as they
 * are): opening it writes "m:version" and nothing else. Loading takes any increasing
 * keys of an object's items (LMDB's order gives nothing else; anything else is a
 * damaged file and refused, naming the directory and the object). A newer version is
 * refused with an error naming the directory and both versions. A second broker on
 * the same directory is refused (an flock on broker.lock), since two would each
 * believe they hold the objects.
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
    const char *dir;
};

#define MAP_SIZE       ((size_t)1 << 34) /* address space reserved; the file grows as used */
#define BOOT_KEY       "m:boot"
#define VERSION_KEY    "m:version"
#define FORMAT_VERSION 3u

static int lmdb_err(int rc, const char *what)
{
    return shoal__err(rc == ENOSPC || rc == MDB_MAP_FULL ? SHOAL_ENOSPC
                      : rc == EACCES                     ? SHOAL_EACCES
                                                         : SHOAL_ESYS,
                      "broker data directory: %s: %s", what, mdb_strerror(rc));
}

static int oom(void)
{
    return shoal__err(SHOAL_ENOMEM, "broker: out of memory");
}

bool broker__records_kind(int k)
{
    return k == SHOAL__BROKER__KIND__DICT || k == SHOAL__BROKER__KIND__NAMESPACE ||
           k == SHOAL__BROKER__KIND__LIST || k == SHOAL__BROKER__KIND__ARRAY ||
           k == SHOAL__BROKER__KIND__QUEUE || k == SHOAL__BROKER__KIND__JOINABLE_QUEUE;
}

static bool is_map_kind(int k)
{
    return k == SHOAL__BROKER__KIND__DICT || k == SHOAL__BROKER__KIND__NAMESPACE;
}

/* ---- keys and records ---- */

/* The key "e" name "\0" [id]: the prefix of o's entry / item records, with the id
 * when with_id. Returns its length (key has room for it: name_len + 10). */
static size_t entry_key(char *key, const char *name, size_t name_len, uint64_t id,
                        bool with_id)
{
    key[0] = 'e';
    memcpy(key + 1, name, name_len);
    key[1 + name_len] = 0;
    if (!with_id)
        return name_len + 2;
    for (int i = 0; i < 8; i++)
        key[name_len + 2 + i] = (char)(id >> (56 - 8 * i));
    return name_len + 10;
}

/* The packed record of dict entry e: a tuple (key, value). */
static void *pack_entry(const Shoal__Broker__Entry *e, size_t *len)
{
    bv *items[2] = {e->key, e->value};
    Shoal__Broker__Seq s = SHOAL__BROKER__SEQ__INIT;
    s.n_items = 2;
    s.items = items;
    bv t = SHOAL__BROKER__VALUE__INIT;
    t.kind_case = BV_TUPLE;
    t.tuple = &s;
    return shoal__bv_pack(&t.base, len);
}

static int put(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, const void *buf,
               size_t len)
{
    MDB_val k = {klen, (void *)key}, v = {len, (void *)buf};
    int rc = mdb_put(txn, dbi, &k, &v, 0);
    return rc ? lmdb_err(rc, "write") : 0;
}

static int del(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen)
{
    MDB_val k = {klen, (void *)key};
    int rc = mdb_del(txn, dbi, &k, NULL);
    return rc && rc != MDB_NOTFOUND ? lmdb_err(rc, "delete") : 0;
}

/* Deletes every record whose key starts with prefix[plen]. */
static int del_prefix(MDB_txn *txn, MDB_dbi dbi, const void *prefix, size_t plen)
{
    MDB_cursor *cur;
    MDB_val k = {plen, (void *)prefix}, v;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        return lmdb_err(rc, "cursor");
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size >= plen && !memcmp(k.mv_data, prefix, plen);
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) { /* after a delete: the next */
        rc = mdb_cursor_del(cur, 0);
        if (rc)
            break;
    }
    mdb_cursor_close(cur);
    return rc && rc != MDB_NOTFOUND ? lmdb_err(rc, "delete") : 0;
}

/* Writes o's header: its Object without the data of a record kind. */
static int write_header(MDB_txn *txn, MDB_dbi dbi, bobj *o)
{
    size_t n = strlen(o->name), len;
    char key[n + 1];
    key[0] = 'h';
    memcpy(key + 1, o->name, n);
    bv *data = o->st->data, none = SHOAL__BROKER__VALUE__INIT;
    none.kind_case = BV_NONE;
    if (broker__records_kind(o->st->kind))
        o->st->data = &none; /* its records hold it */
    void *buf = shoal__bv_pack(&o->st->base, &len);
    o->st->data = data;
    int rc = buf ? put(txn, dbi, key, n + 1, buf, len) : oom();
    free(buf);
    return rc;
}

/* ---- list item keys ---- */

#define KEY_GAP ((uint64_t)1 << 32) /* between the keys of appended items */
#define KEY_MID ((uint64_t)1 << 63) /* an empty list's first item */
#define KEY_TOP UINT64_MAX          /* above every key given (0 is below them) */

/* Room in o->keys for n. 0 or -1 (out of memory). */
static int keys_room(bobj *o, size_t n)
{
    if (n <= o->capkeys)
        return 0;
    size_t cap = o->capkeys ? o->capkeys : 16;
    while (cap < n)
        cap *= 2;
    uint64_t *k = realloc(o->keys, cap * sizeof(*k));
    if (!k)
        return -1;
    o->keys = k;
    o->capkeys = cap;
    return 0;
}

/* Gives the cnt keys k[] new values strictly between lo and hi (lo < hi - cnt),
 * increasing: evenly spread, except that at an end of the list (open_lo: nothing
 * before k[0]; open_hi: nothing after) they are at most KEY_GAP apart and leave the
 * room on that side, for the items to come there. */
static void spread(uint64_t *k, size_t cnt, uint64_t lo, uint64_t hi, bool open_lo,
                   bool open_hi)
{
    uint64_t g = (hi - lo) / (cnt + 1), start = lo + g;
    if (open_lo || open_hi) {
        g = g < KEY_GAP ? g : KEY_GAP;
        uint64_t used = (cnt - 1) * g;
        start = open_lo && open_hi ? lo + ((hi - lo) - used) / 2
                : open_lo          ? hi - g - used
                                   : lo + g;
    }
    for (size_t i = 0; i < cnt; i++)
        k[i] = start + i * g;
}

/* o's item keys anew, spread over the whole key space (a full rewrite). */
static int keys_fresh(bobj *o)
{
    size_t n = o->st->data->list->n_items; /* settled: no holes */
    if (keys_room(o, n) < 0)
        return -1;
    if (n)
        spread(o->keys, n, 0, KEY_TOP, true, true);
    return 0;
}

/* The keys of o lost (out of memory): the commit fails (the broker then takes no
 * more writes), and nothing reads them again. */
static void keys_lost(shoal_broker *b, bobj *o)
{
    free(o->keys);
    o->keys = NULL;
    o->capkeys = 0;
    o->full = 1;
    b->recs_lost = 1;
}

/* The keys k[0..m) but k[p] (new) increase; gives k[p] one between its neighbours,
 * or renumbers the smallest window around p whose span has room for its items at
 * the gap its size asks, and logs the deletes of the old keys of the items
 * renumbered. The windows grow threefold, and each asks a gap 4 times the one the
 * windows inside it ask (up to KEY_GAP / 2, which appended items have): once a window
 * is renumbered, the windows inside it take several times their size in inserts
 * before they run out of room again, so an insert renumbers O(1) items per window
 * size, amortized (O(log n) in all, whatever the pattern). Returns the window
 * [*wlo, *whi). A list has fewer items than the keys between 0 and KEY_TOP, so the
 * whole list always has room. */
static void place_key(shoal_broker *b, bobj *o, uint64_t *k, size_t m, size_t p,
                      size_t *wlo, size_t *whi)
{
    *wlo = p;
    *whi = p + 1;
    if (m == 1) {
        k[p] = KEY_MID;
        return;
    }
    uint64_t lo = p > 0 ? k[p - 1] : 0, hi = p + 1 < m ? k[p + 1] : KEY_TOP;
    if (p + 1 == m && lo < KEY_TOP - KEY_GAP) { /* an append */
        k[p] = lo + KEY_GAP;
        return;
    }
    if (p == 0 && hi > KEY_GAP) {
        k[p] = hi - KEY_GAP;
        return;
    }
    if (p > 0 && p + 1 < m && hi - lo >= 2) {
        k[p] = lo + (hi - lo) / 2;
        return;
    }
    size_t a = p, z = p + 1; /* the window: items a..z-1 */
    for (int level = 0;; level++) {
        lo = a > 0 ? k[a - 1] : 0;
        hi = z < m ? k[z] : KEY_TOP;
        uint64_t need = level < 16 ? (uint64_t)1 << 2 * level : KEY_GAP / 2;
        if ((hi - lo) / (z - a + 1) >= need || (a == 0 && z == m))
            break;
        size_t w = z - a;
        a = a > w ? a - w : 0;
        z = z + w < m ? z + w : m;
    }
    for (size_t i = a; i < z; i++)
        if (i != p)
            broker__store_gone(b, o, k[i]);
    spread(k + a, z - a, lo, hi, a == 0, z == m);
    *wlo = a;
    *whi = z;
}

void broker__store_item_added(shoal_broker *b, bobj *o, size_t pos)
{
    if (!b->store)
        return;
    size_t n = o->st->data->list->n_items, at = o->front + pos; /* n: with it */
    if (keys_room(o, n) < 0)
        return keys_lost(b, o);
    memmove(o->keys + at + 1, o->keys + at, (n - 1 - at) * sizeof(*o->keys));
    if (o->full) /* all rewritten at the commit, with fresh keys */
        return;
    size_t a, z;
    uint64_t *k = o->keys + o->front;
    place_key(b, o, k, n - o->front, pos, &a, &z);
    for (size_t i = a; i < z; i++)
        broker__store_item(b, o, i);
}

void broker__store_item_going(shoal_broker *b, bobj *o, size_t pos, bool hole)
{
    if (!b->store || !o->keys)
        return;
    size_t n = o->st->data->list->n_items, at = o->front + pos; /* n: with it */
    if (!o->full)
        broker__store_gone(b, o, o->keys[at]);
    if (!hole)
        memmove(o->keys + at, o->keys + at + 1, (n - 1 - at) * sizeof(*o->keys));
}

/* Rewrites all of o's entry or item records from its state now (a list's items with
 * fresh keys). */
static int write_records(MDB_txn *txn, MDB_dbi dbi, bobj *o)
{
    size_t n = strlen(o->name);
    char key[n + 10];
    int rc = del_prefix(txn, dbi, key, entry_key(key, o->name, n, 0, false));
    broker__settle(o);
    bv *d = o->st->data;
    bool map = is_map_kind(o->st->kind);
    if (!map && rc == 0 && keys_fresh(o) < 0)
        rc = oom();
    size_t count = map ? d->map->n_entries : d->list->n_items;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        size_t len;
        void *buf = map ? pack_entry(d->map->entries[i], &len)
                        : shoal__bv_pack(&d->list->items[i]->base, &len);
        uint64_t id = map ? broker__index_id(o->idx, i) : o->keys[i];
        rc = buf ? put(txn, dbi, key, entry_key(key, o->name, n, id, true), buf, len)
                 : oom();
        free(buf);
    }
    return rc;
}

enum { REC_PUT, REC_DEL, REC_DROP };

static void log_rec(shoal_broker *b, bobj *o, int what, uint64_t id, void *buf,
                    size_t len)
{
    if (!b->store) {
        free(buf);
        return;
    }
    if (b->nrecs == b->caprecs) {
        size_t cap = b->caprecs ? b->caprecs * 2 : 64;
        struct broker_rec *r = realloc(b->recs, cap * sizeof(*r));
        if (!r) {
            free(buf);
            b->recs_lost = 1;
            return;
        }
        b->recs = r;
        b->caprecs = cap;
    }
    if (what == REC_PUT && !buf)
        b->recs_lost = 1; /* its packing ran out of memory */
    b->recs[b->nrecs++] = (struct broker_rec){o, what, id, buf, len};
}

void broker__store_entry(shoal_broker *b, bobj *o, size_t pos)
{
    size_t len = 0;
    void *buf = b->store ? pack_entry(o->st->data->map->entries[pos], &len) : NULL;
    log_rec(b, o, REC_PUT, broker__index_id(o->idx, pos), buf, len);
}

void broker__store_item(shoal_broker *b, bobj *o, size_t pos)
{
    if (!b->store || o->full) /* a full rewrite writes it */
        return;
    size_t len = 0, at = o->front + pos;
    void *buf = shoal__bv_pack(&o->st->data->list->items[at]->base, &len);
    log_rec(b, o, REC_PUT, o->keys[at], buf, len);
}

void broker__store_gone(shoal_broker *b, bobj *o, uint64_t id)
{
    log_rec(b, o, REC_DEL, id, NULL, 0);
}

void broker__store_drop(shoal_broker *b, bobj *o)
{
    log_rec(b, o, REC_DROP, 0, NULL, 0);
}

static int apply_rec(MDB_txn *txn, MDB_dbi dbi, const struct broker_rec *r)
{
    size_t n = strlen(r->o->name);
    char key[n + 10];
    if (r->what == REC_DROP)
        return del_prefix(txn, dbi, key, entry_key(key, r->o->name, n, 0, false));
    size_t klen = entry_key(key, r->o->name, n, r->id, true);
    return r->what == REC_PUT ? put(txn, dbi, key, klen, r->buf, r->len)
                              : del(txn, dbi, key, klen);
}

/* What the commit writes for a changed object after the log. */
static int write_object(MDB_txn *txn, MDB_dbi dbi, bobj *o)
{
    if (!o->st) { /* deleted (its records were dropped in the log) */
        size_t n = strlen(o->name);
        char key[n + 1];
        key[0] = 'h';
        memcpy(key + 1, o->name, n);
        return del(txn, dbi, key, n + 1);
    }
    int rc = 0;
    if (!broker__records_kind(o->st->kind) || o->hdr ||
        o->st->kind == SHOAL__BROKER__KIND__JOINABLE_QUEUE) /* its count */
        rc = write_header(txn, dbi, o);
    if (rc == 0 && o->full && broker__records_kind(o->st->kind))
        rc = write_records(txn, dbi, o);
    return rc;
}

static void drop_recs(shoal_broker *b)
{
    for (size_t i = 0; i < b->nrecs; i++)
        free(b->recs[i].buf);
    b->nrecs = 0;
    b->recs_lost = 0;
}

int broker__store_commit(shoal_broker *b, bobj **objs, size_t n)
{
    if (b->recs_lost) {
        drop_recs(b);
        return oom();
    }
    MDB_txn *txn;
    int rc = mdb_txn_begin(b->store->env, NULL, 0, &txn);
    if (rc) {
        drop_recs(b);
        return lmdb_err(rc, "begin");
    }
    MDB_dbi dbi = b->store->dbi;
    int err = 0;
    for (size_t i = 0; i < b->nrecs && !err; i++)
        err = apply_rec(txn, dbi, &b->recs[i]);
    for (size_t i = 0; i < n && !err; i++)
        err = write_object(txn, dbi, objs[i]);
    drop_recs(b);
    if (err) {
        mdb_txn_abort(txn);
        return err;
    }
    rc = mdb_txn_commit(txn);
    return rc ? lmdb_err(rc, "commit") : 0;
}

/* ---- loading ---- */

static int corrupt(const char *dir, const char *what, const char *name)
{
    return shoal__err(SHOAL_ECORRUPT, "broker data directory %s: %s \"%s\"", dir, what,
                      name ? name : "?");
}

/* The empty container a record kind's data starts from. */
static bv *empty_data(int kind)
{
    return is_map_kind(kind) ? shoal__bv_map() : shoal__bv_seq(BV_LIST);
}

/* Loads the objects whose records start with tag: "o" (version 1: each holds the
 * whole Object, which is then to be written anew) or "h" (headers; a record
 * kind's entries or items follow in records of their own). */
static int load_objects(shoal_broker *b, MDB_cursor *cur, char tag, const char *dir)
{
    MDB_val k = {1, &tag}, v;
    int rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0 && k.mv_size >= 2 && ((char *)k.mv_data)[0] == tag;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        char *name = strndup((char *)k.mv_data + 1, k.mv_size - 1);
        bobjstate *st = (bobjstate *)shoal__bv_unpack(&shoal__broker__object__descriptor,
                                                      v.mv_data, v.mv_size);
        if (st && tag == 'h' && broker__records_kind(st->kind)) {
            shoal__bv_free(st->data);
            st->data = empty_data(st->kind);
        }
        bobj *o = name && st && st->data ? broker__insert(b, name, st) : NULL;
        if (!o) {
            if (st)
                protobuf_c_message_free_unpacked(&st->base, NULL);
            int err = name ? corrupt(dir, "an object does not decode:", name) : oom();
            free(name);
            return err;
        }
        free(name);
        o->hdr = o->full = tag == 'o'; /* version 1: written anew */
    }
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : lmdb_err(rc, "read");
}

/* Adds the record v (id) to o: a dict entry, or the next list item. */
static int add_record(bobj *o, uint64_t id, const MDB_val *v, uint64_t **ids,
                      size_t *capids, const char *dir)
{
    bv *r =
        (bv *)shoal__bv_unpack(&shoal__broker__value__descriptor, v->mv_data, v->mv_size);
    bv *d = o->st->data;
    if (!r)
        return corrupt(dir, "a record does not decode: object", o->name);
    if (!is_map_kind(o->st->kind)) {
        size_t n = d->list->n_items;
        if (n && id <= o->keys[n - 1]) { /* LMDB's order: only a damaged file */
            shoal__bv_free(r);
            return corrupt(dir, "the item keys do not increase: object", o->name);
        }
        if (keys_room(o, n + 1) < 0 || shoal__bv_seq_insert(d, n, r) < 0) {
            shoal__bv_free(r);
            return oom();
        }
        o->keys[n] = id;
        return 0;
    }
    if (r->kind_case != BV_TUPLE || r->tuple->n_items != 2 ||
        !shoal__bv_is_key(r->tuple->items[0])) {
        shoal__bv_free(r);
        return corrupt(dir, "an entry is not a (key, value) pair: object", o->name);
    }
    size_t n = d->map->n_entries;
    if (n == *capids) {
        size_t cap = n ? n * 2 : 16;
        uint64_t *p = realloc(*ids, cap * sizeof(*p));
        if (!p) {
            shoal__bv_free(r);
            return oom();
        }
        *ids = p;
        *capids = cap;
    }
    bv *key = r->tuple->items[0], *val = r->tuple->items[1];
    r->tuple->n_items = 0;
    shoal__bv_free(r);
    /* a plain append: the index is built once the object's records are all read */
    Shoal__Broker__Entry *e = malloc(sizeof(*e));
    Shoal__Broker__Entry **ents =
        e ? realloc(d->map->entries, (n + 1) * sizeof(*ents)) : NULL;
    if (!ents) {
        free(e);
        shoal__bv_free(key);
        shoal__bv_free(val);
        return oom();
    }
    shoal__broker__entry__init(e);
    e->key = key;
    e->value = val;
    d->map->entries = ents;
    ents[n] = e;
    d->map->n_entries = n + 1;
    (*ids)[n] = id;
    return 0;
}

/* Indexes dict o once its entries are read (ids: their record ids). */
static int finish_object(bobj *o, const uint64_t *ids)
{
    if (!o || !o->idx)
        return 0;
    return broker__index_build(o->idx, o->st->data, ids) < 0 ? oom() : 0;
}

static int load_records(shoal_broker *b, MDB_cursor *cur, const char *dir)
{
    MDB_val k = {1, "e"}, v;
    bobj *o = NULL;
    uint64_t *ids = NULL;
    size_t capids = 0;
    int rc, err = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         !err && rc == 0 && k.mv_size >= 1 && ((char *)k.mv_data)[0] == 'e';
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const char *p = (const char *)k.mv_data + 1;
        const char *nul = memchr(p, 0, k.mv_size - 1);
        if (!nul || k.mv_size - 1 - (size_t)(nul - p) != 9) {
            err = corrupt(dir, "a record's key is malformed: object",
                          nul ? p : "(no name)");
            break;
        }
        uint64_t id = 0;
        for (int i = 1; i <= 8; i++)
            id = id << 8 | (uint8_t)nul[i];
        if (!o || strcmp(o->name, p)) {
            if ((err = finish_object(o, ids)) < 0)
                break;
            o = broker__find(b, p);
            if (!o || !broker__records_kind(o->st->kind)) {
                err = corrupt(dir, "records of no list or dict:", p);
                break;
            }
        }
        err = add_record(o, id, &v, &ids, &capids, dir);
    }
    if (!err)
        err = finish_object(o, ids);
    free(ids);
    if (!err && rc != 0 && rc != MDB_NOTFOUND)
        err = lmdb_err(rc, "read");
    return err;
}

/* Loads version v's objects. */
static int load_version(shoal_broker *b, MDB_txn *txn, MDB_dbi dbi, uint32_t v,
                        const char *dir)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        return lmdb_err(rc, "cursor");
    int err = load_objects(b, cur, v == 1 ? 'o' : 'h', dir);
    if (!err && v != 1)
        err = load_records(b, cur, dir);
    mdb_cursor_close(cur);
    return err;
}

/* Writes version 1's objects (loaded) as the current version and deletes their old
 * records. */
static int migrate(shoal_broker *b, MDB_txn *txn, MDB_dbi dbi)
{
    int err = del_prefix(txn, dbi, "o", 1);
    for (size_t i = 0; !err && i < b->ntab; i++)
        for (bobj *o = b->tab[i]; !err && o; o = o->next) {
            err = write_object(txn, dbi, o);
            o->hdr = o->full = 0;
        }
    return err;
}

/* Reads the format version (1 when absent from a directory that has records, the
 * current one in a new directory), loads the objects and leaves the directory in the
 * current format. */
static int load(shoal_broker *b, MDB_txn *txn, MDB_dbi dbi, const char *dir)
{
    MDB_val k = {sizeof(VERSION_KEY) - 1, VERSION_KEY}, v;
    uint32_t version = FORMAT_VERSION;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == 0 && v.mv_size == sizeof(version)) {
        memcpy(&version, v.mv_data, sizeof(version));
    } else if (rc == MDB_NOTFOUND) {
        MDB_stat stat;
        rc = mdb_stat(txn, dbi, &stat);
        if (rc)
            return lmdb_err(rc, "stat");
        version = stat.ms_entries ? 1 : FORMAT_VERSION;
    } else {
        return rc ? lmdb_err(rc, "read")
                  : corrupt(dir, "the format version record is malformed", VERSION_KEY);
    }
    if (version > FORMAT_VERSION || version < 1)
        return shoal__err(SHOAL_ECORRUPT,
                          "broker data directory %s: format version %u; this broker "
                          "reads versions 1 and 2 (migrating them) and %u",
                          dir, version, FORMAT_VERSION);
    int err = load_version(b, txn, dbi, version, dir);
    if (!err && version == 1)
        err = migrate(b, txn, dbi);
    version = FORMAT_VERSION;
    return err ? err
               : put(txn, dbi, VERSION_KEY, sizeof(VERSION_KEY) - 1, &version,
                     sizeof(version));
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
    int err = rc ? lmdb_err(rc, dir) : load(b, txn, s->dbi, dir);
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

void broker__store_close(shoal_broker *b)
{
    if (!b->store)
        return;
    mdb_env_close(b->store->env);
    close(b->store->lock_fd); /* releases the flock */
    free(b->store);
    b->store = NULL;
}
