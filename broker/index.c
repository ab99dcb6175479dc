/*
 * index.c — the hash index beside a dict's (or a Namespace's) entries.
 *
 * A dict's state stays what broker.proto says it is, a Map: an array of entries in
 * insertion order, as Python's dict iterates. Beside it the index keeps an open
 * addressing hash table (linear probing, at most half full) whose slots hold an
 * entry's position in that array (plus one: 0 is an empty slot) and 32 bits of its
 * key's hash, so a lookup hashes the key once and compares keys only on a hash match:
 * get, set, setdefault, contains, incr and cas cost the same in a dict of 100 keys
 * and of 100,000.
 *
 * The hash agrees with shoal__bv_equal, as Python's hash agrees with ==: 1, 1.0 and
 * True hash alike (a double with an integral value hashes as that integer), a tuple
 * combines its items' hashes, a string and the same bytes differ (they never compare
 * equal).
 *
 * Removing an entry keeps the order without moving anything: its slot is emptied by
 * backward shifting (so no tombstones accumulate in the table) and its place in the
 * entries array becomes a hole (a NULL entry; the index counts them). Positions of the
 * other entries do not change, so a delete costs what a lookup does. Once the holes
 * outnumber the live entries (and are more than a few), broker__index_compact squeezes
 * them out and refills the slots: a pass over the dict paid for by the deletes that
 * made the holes, so del and pop are O(1) amortized. Code that reads the whole map
 * (listing, copying, packing, freeing) compacts it first (broker__settle in core.c);
 * the operations that go through the index work with the holes in place.
 *
 * Each entry also has an id (ids[], parallel to the entries): a number that never
 * changes while the key stays in the dict, given in increasing order as keys are
 * inserted. store.c keeps each entry in its own LMDB record under that id, so a
 * write rewrites one record and the records' order is the insertion order.
 *
 * Building the index over a map that came whole (a dict created with its contents, or
 * read back) also drops repeated keys (1 and 1.0 are one key): the first stays, with
 * the last one's value, as in a Python dict display.
 *
 * The entries array grows by doubling (the index tracks its capacity); when the map
 * was reallocated by someone else (its pointer changed) the capacity is taken to be
 * its length.
 */
#include <stdlib.h>
#include <string.h>

#include "broker_internal.h"

struct bslot {
    uint32_t pos1; /* position + 1; 0: empty */
    uint32_t h;
};

struct broker_index {
    struct bslot *slot;
    size_t mask;  /* slots - 1 (a power of two) */
    size_t used;  /* entries indexed */
    size_t holes; /* NULL entries in the map, left by removals */
    uint64_t *ids;
    size_t capids;
    void *ents; /* the entries array the capacity below belongs to */
    size_t capents;
    uint64_t next_id;
};

/* ---- hashing ---- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Eight bytes at a time, each word mixed in with a multiply and shift step; the last
 * few bytes as one more word, read with fixed-size loads (the last eight, overlapping
 * the word before; or two overlapping four-byte halves; or three single bytes), the
 * length mixed in at the end: a 16-byte key costs two steps instead of sixteen. */
static uint64_t hash_bytes(uint64_t seed, const uint8_t *p, size_t n)
{
    const uint64_t k = 0x9e3779b97f4a7c15ull;
    uint64_t h = 1469598103934665603ull ^ seed, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        h = (h ^ w) * k;
        h ^= h >> 29;
    }
    size_t r = n - i;
    if (r) {
        if (n >= 8) {
            memcpy(&w, p + n - 8, 8);
        } else if (r >= 4) {
            uint32_t a, b;
            memcpy(&a, p, 4);
            memcpy(&b, p + r - 4, 4);
            w = (uint64_t)a << 32 | b;
        } else {
            w = (uint64_t)p[0] | (uint64_t)p[r / 2] << 8 | (uint64_t)p[r - 1] << 16;
        }
        h = (h ^ w) * k;
    }
    return mix(h + n);
}

uint64_t broker__bv_hash(const bv *v)
{
    switch (v->kind_case) {
    case BV_BOOL:
        return mix((uint64_t)v->b);
    case BV_INT:
        return mix((uint64_t)v->i);
    case BV_DOUBLE:
        if (v->d >= -9223372036854775808.0 && v->d < 9223372036854775808.0 &&
            (double)(int64_t)v->d == v->d)
            return mix((uint64_t)(int64_t)v->d); /* equal to that integer */
        {
            uint64_t bits;
            memcpy(&bits, &v->d, sizeof(bits));
            return mix(bits ^ 0x5bd1e9955bd1e995ull);
        }
    case BV_STR:
        return hash_bytes(1, (const uint8_t *)v->s, strlen(v->s));
    case BV_BYTES:
        return hash_bytes(2, v->bytes.data, v->bytes.len);
    case BV_TUPLE: {
        uint64_t h = 3 + v->tuple->n_items;
        for (size_t i = 0; i < v->tuple->n_items; i++)
            h = mix(h * 31 + broker__bv_hash(v->tuple->items[i]));
        return h;
    }
    default: /* none, and what is never a key */
        return 0x9e3779b97f4a7c15ull;
    }
}

/* ---- the table ---- */

broker_index *broker__index_new(void)
{
    broker_index *x = calloc(1, sizeof(*x));
    if (x && !(x->slot = calloc(8, sizeof(*x->slot)))) {
        free(x);
        return NULL;
    }
    if (x)
        x->mask = 7;
    return x;
}

void broker__index_free(broker_index *x)
{
    if (!x)
        return;
    free(x->slot);
    free(x->ids);
    free(x);
}

static size_t probe_start(const broker_index *x, uint32_t h)
{
    return h & x->mask;
}

/* Adds position pos (its key hashing to h) to the slots. */
static void slot_add(broker_index *x, uint32_t h, size_t pos)
{
    size_t i = probe_start(x, h);
    while (x->slot[i].pos1)
        i = (i + 1) & x->mask;
    x->slot[i] = (struct bslot){(uint32_t)pos + 1, h};
    x->used++;
}

static int slots_resize(broker_index *x, size_t n)
{
    struct bslot *old = x->slot;
    size_t oldn = x->mask + 1;
    struct bslot *s = calloc(n, sizeof(*s));
    if (!s)
        return -1;
    x->slot = s;
    x->mask = n - 1;
    x->used = 0;
    for (size_t i = 0; i < oldn; i++)
        if (old[i].pos1)
            slot_add(x, old[i].h, old[i].pos1 - 1);
    free(old);
    return 0;
}

/* Room for one more entry: in the slots, in ids[] and in the map's entries array. */
static int reserve(broker_index *x, bv *m)
{
    size_t n = m->map->n_entries;
    if ((x->used + 1) * 2 > x->mask + 1 && slots_resize(x, (x->mask + 1) * 2) < 0)
        return -1;
    if (n + 1 > x->capids) {
        size_t cap = x->capids ? x->capids * 2 : 8;
        uint64_t *ids = realloc(x->ids, cap * sizeof(*ids));
        if (!ids)
            return -1;
        x->ids = ids;
        x->capids = cap;
    }
    if (x->ents != (void *)m->map->entries)
        x->capents = n; /* not ours (any more): as long as it is */
    if (n + 1 > x->capents) {
        size_t cap = n ? n * 2 : 8;
        void *e = realloc(m->map->entries, cap * sizeof(*m->map->entries));
        if (!e)
            return -1;
        m->map->entries = e;
        x->ents = e;
        x->capents = cap;
    }
    return 0;
}

/* The slot holding position pos's key, or the empty slot where key would go. */
/* shoal__bv_equal, two strings (the common keys) compared straight. */
static inline bool same_key(const bv *a, const bv *b)
{
    if (a->kind_case == BV_STR && b->kind_case == BV_STR)
        return !strcmp(a->s, b->s);
    return shoal__bv_equal(a, b);
}

static size_t lookup(const broker_index *x, const bv *m, const bv *key, uint32_t h)
{
    size_t i = probe_start(x, h);
    for (; x->slot[i].pos1; i = (i + 1) & x->mask)
        if (x->slot[i].h == h && same_key(m->map->entries[x->slot[i].pos1 - 1]->key, key))
            return i;
    return i;
}

long broker__index_find(const broker_index *x, const bv *m, const bv *key)
{
    size_t i = lookup(x, m, key, (uint32_t)broker__bv_hash(key));
    return x->slot[i].pos1 ? (long)x->slot[i].pos1 - 1 : -1;
}

long broker__index_put(broker_index *x, bv *m, bv *key, bv *v, int *added)
{
    uint32_t h = (uint32_t)broker__bv_hash(key);
    size_t i = lookup(x, m, key, h);
    *added = 0;
    if (x->slot[i].pos1) {
        Shoal__Broker__Entry *e = m->map->entries[x->slot[i].pos1 - 1];
        shoal__bv_free(e->value);
        e->value = v;
        shoal__bv_free(key);
        return (long)x->slot[i].pos1 - 1;
    }
    Shoal__Broker__Entry *e = malloc(sizeof(*e));
    if (!e || reserve(x, m) < 0) {
        free(e);
        shoal__bv_free(key);
        shoal__bv_free(v);
        return -1;
    }
    shoal__broker__entry__init(e);
    e->key = key;
    e->value = v;
    size_t pos = m->map->n_entries++;
    m->map->entries[pos] = e;
    x->ids[pos] = x->next_id++;
    slot_add(x, h, pos); /* reserve() kept the table at most half full */
    *added = 1;
    return (long)pos;
}

/* Empties slot i, moving the entries of its probe run back so none is left behind a
 * gap it could not be found past. */
static void slot_remove(broker_index *x, size_t i)
{
    for (size_t j = (i + 1) & x->mask; x->slot[j].pos1; j = (j + 1) & x->mask) {
        size_t home = probe_start(x, x->slot[j].h);
        if (((j - home) & x->mask) >= ((j - i) & x->mask)) {
            x->slot[i] = x->slot[j];
            i = j;
        }
    }
    x->slot[i].pos1 = 0;
    x->used--;
}

bv *broker__index_take(broker_index *x, bv *m, size_t pos, uint64_t *id)
{
    Shoal__Broker__Map *map = m->map;
    Shoal__Broker__Entry *e = map->entries[pos];
    uint32_t h = (uint32_t)broker__bv_hash(e->key);
    size_t i = probe_start(x, h);
    while (x->slot[i].pos1 && x->slot[i].pos1 != pos + 1)
        i = (i + 1) & x->mask;
    if (x->slot[i].pos1) /* absent only for a duplicate key of a loaded map */
        slot_remove(x, i);
    *id = x->ids[pos];
    bv *v = e->value;
    e->value = NULL;
    protobuf_c_message_free_unpacked(&e->base, NULL);
    map->entries[pos] = NULL;
    x->holes++;
    if (x->holes > 32 && x->holes * 2 > map->n_entries)
        broker__index_compact(x, m);
    return v;
}

size_t broker__index_len(const broker_index *x, const bv *m)
{
    return m->map->n_entries - x->holes;
}

void broker__index_compact(broker_index *x, bv *m)
{
    if (!x->holes)
        return;
    Shoal__Broker__Map *map = m->map;
    size_t kept = 0;
    for (size_t pos = 0; pos < map->n_entries; pos++)
        if (map->entries[pos]) {
            x->ids[kept] = x->ids[pos];
            map->entries[kept++] = map->entries[pos];
        }
    map->n_entries = kept;
    x->holes = 0;
    memset(x->slot, 0, (x->mask + 1) * sizeof(*x->slot));
    x->used = 0;
    for (size_t pos = 0; pos < kept; pos++)
        slot_add(x, (uint32_t)broker__bv_hash(map->entries[pos]->key), pos);
}

uint64_t broker__index_id(const broker_index *x, size_t pos)
{
    return x->ids[pos];
}

int broker__index_build(broker_index *x, bv *m, const uint64_t *ids)
{
    size_t n = m->map->n_entries, cap = 8;
    while (cap < 2 * n + 2)
        cap *= 2;
    struct bslot *s = calloc(cap, sizeof(*s));
    uint64_t *idv = malloc((n ? n : 1) * sizeof(*idv));
    if (!s || !idv) {
        free(s);
        free(idv);
        return -1;
    }
    free(x->slot);
    free(x->ids);
    x->slot = s;
    x->mask = cap - 1;
    x->used = 0;
    x->holes = 0;
    x->ids = idv;
    x->capids = n ? n : 1;
    Shoal__Broker__Entry **e = m->map->entries;
    size_t kept = 0;
    for (size_t pos = 0; pos < n; pos++) {
        uint32_t h = (uint32_t)broker__bv_hash(e[pos]->key);
        m->map->n_entries = kept; /* lookup sees the entries kept so far */
        size_t i = lookup(x, m, e[pos]->key, h);
        if (x->slot[i].pos1) { /* a repeated key: as in a dict display, the first key
                                  stays with the last value */
            Shoal__Broker__Entry *first = e[x->slot[i].pos1 - 1];
            shoal__bv_free(first->value);
            first->value = e[pos]->value;
            e[pos]->value = NULL;
            protobuf_c_message_free_unpacked(&e[pos]->base, NULL);
            continue;
        }
        e[kept] = e[pos];
        idv[kept] = ids ? ids[pos] : x->next_id + kept;
        slot_add(x, h, kept++);
    }
    m->map->n_entries = kept;
    x->ents = m->map->entries;
    x->capents = n;
    if (kept)
        x->next_id = idv[kept - 1] + 1 > x->next_id ? idv[kept - 1] + 1 : x->next_id;
    return 0;
}
