/*
 * encoded_helper.c — the C side of test_encoded_interop.py: notes (interop.Note of
 * encoded_note.proto, an encoded message: unbounded string, repeated field, map, oneof,
 * nested message) travel between C and Python through a queue of encoded messages.
 *
 *   encoded_helper produce QUEUE N   put notes 1..N (make_note) with Note_queue_put
 *   encoded_helper consume QUEUE N   get N notes with Note_queue_get; each must equal
 *                                    make_note(i) field by field
 *
 * Both sides build note i by the same rule (make_note here, note() in the test), so
 * every field's value is checked after the crossing. Exit status 0 when the step did
 * what it should, 1 otherwise (with a message).
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoded_note.shoal.h"

/* The storage of one note built by make_note. */
typedef struct note_buf {
    Note note;
    Meta meta;
    char text[64], why[32];
    int64_t values[2];
    Interop__Note__TagsEntry tag[2], *tags[2];
    uint8_t blob[3];
} note_buf;

static void make_note(note_buf *b, long i)
{
    *b = (note_buf){.note = Note_INIT, .meta = Meta_INIT};
    Note *n = &b->note;
    n->seq = (int32_t)i;
    snprintf(b->text, sizeof(b->text), "note %ld \xc3\xa9", i); /* "é" */
    n->text = b->text;
    b->values[0] = -i;
    b->values[1] = i * 1000000000000;
    n->n_values = 2;
    n->values = b->values;
    static const char *const keys[2] = {"n", "neg"};
    for (int k = 0; k < 2; k++) {
        b->tag[k] = (Interop__Note__TagsEntry)INTEROP__NOTE__TAGS_ENTRY__INIT;
        b->tag[k].key = (char *)keys[k];
        b->tag[k].value = k ? (int32_t)-i : (int32_t)i;
        b->tags[k] = &b->tag[k];
    }
    n->n_tags = 2;
    n->tags = b->tags;
    n->kind = (Interop__Kind)(i % 4); /* 3: a number Kind does not name, kept (open) */
    if (i % 2) {
        snprintf(b->why, sizeof(b->why), "odd %ld", i);
        n->extra_case = INTEROP__NOTE__EXTRA_WHY;
        n->why = b->why;
    } else {
        n->extra_case = INTEROP__NOTE__EXTRA_CODE;
        n->code = (uint64_t)i * 7;
    }
    b->blob[0] = 0;
    b->blob[1] = 0xff;
    b->blob[2] = (uint8_t)i;
    b->meta.blob.len = 3;
    b->meta.blob.data = b->blob;
    n->meta = &b->meta;
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "encoded_helper: %s: %s: %s\n", what, shoal_strerror(rc),
            shoal_errdetail());
    return 1;
}

static int differs(long i, const char *field)
{
    fprintf(stderr, "encoded_helper: note %ld: field %s differs\n", i, field);
    return 1;
}

/* 0 when got equals make_note(i) (map entries in any order), else 1 with a message. */
static int check_note(const Note *got, long i)
{
    note_buf w;
    make_note(&w, i);
    const Note *want = &w.note;
    if (got->seq != want->seq)
        return differs(i, "seq");
    if (strcmp(got->text, want->text))
        return differs(i, "text");
    if (got->n_values != 2 || memcmp(got->values, want->values, sizeof(w.values)))
        return differs(i, "values");
    if (got->n_tags != 2)
        return differs(i, "tags");
    for (size_t k = 0; k < 2; k++) {
        const Interop__Note__TagsEntry *e = got->tags[k];
        int32_t v = !strcmp(e->key, "n") ? (int32_t)i : (int32_t)-i;
        if ((strcmp(e->key, "n") && strcmp(e->key, "neg")) || e->value != v)
            return differs(i, "tags");
    }
    if (got->kind != want->kind)
        return differs(i, "kind");
    if (got->extra_case != want->extra_case ||
        (i % 2 ? strcmp(got->why, want->why) != 0 : got->code != want->code))
        return differs(i, "extra");
    if (!got->meta || got->meta->blob.len != 3 || memcmp(got->meta->blob.data, w.blob, 3))
        return differs(i, "meta");
    return 0;
}

static int produce(const char *name, long n)
{
    Note_queue *q;
    int rc = Note_queue_open(&q, name, SHOAL_OPEN, NULL, NULL);
    if (rc)
        return fail("open queue", rc);
    note_buf b;
    for (long i = 1; i <= n; i++) {
        make_note(&b, i);
        if ((rc = Note_queue_put(q, &b.note, SHOAL_SEC(60))))
            return fail("put", rc);
    }
    Note_queue_close(q);
    return 0;
}

static int consume(const char *name, long n)
{
    Note_queue *q;
    int rc = Note_queue_open(&q, name, SHOAL_OPEN, NULL, NULL);
    if (rc)
        return fail("open queue", rc);
    for (long i = 1; i <= n; i++) {
        Note *got = NULL;
        if ((rc = Note_queue_get(q, &got, SHOAL_SEC(60))))
            return fail("get", rc);
        int bad = check_note(got, i);
        Note_free(got);
        if (bad)
            return 1;
    }
    Note_queue_close(q);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: encoded_helper produce|consume QUEUE N\n");
        return 2;
    }
    long n = atol(argv[3]);
    if (!strcmp(argv[1], "produce"))
        return produce(argv[2], n);
    if (!strcmp(argv[1], "consume"))
        return consume(argv[2], n);
    fprintf(stderr, "encoded_helper: unknown command %s\n", argv[1]);
    return 2;
}
