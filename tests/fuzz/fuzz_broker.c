/*
 * fuzz_broker.c — libFuzzer target: arbitrary bytes as the requests of one broker
 * session.
 *
 * Each input is a sequence of frames (frames.h: each a 2-byte little-endian length
 * and that many bytes), handed one by one to a fresh in-memory broker exactly as the
 * Session method hands the frames a client sends: decoded with the depth and size checks,
 * run through the dispatcher (create, every operation of every kind, paths into nested
 * containers, blocking operations that park), answered. The session then ends, which
 * drops its waiters and frees what it held. Whatever the bytes, nothing may crash, leak,
 * read or write out of bounds, or hang. Checked besides: every reply is what protobuf-c
 * would pack (the broker packs the common ones by hand), and a frame the Request decoder
 * accepts decodes the same once packed again by protobuf-c; and the client's Reply
 * decoder (shoal__bv_unpack_reply), given each frame and each reply, accepts what
 * shoal__bv_unpack accepts and decodes it to the same id, status, error and result.
 *
 * The corpus (broker_corpus/) holds valid sessions: creating each kind and running its
 * operations, so that mutations reach the dispatcher and not only the decoder.
 *   sh tests/fuzz/run.sh build/tests/fuzz/fuzz_broker tests/fuzz/broker_corpus 600 WORK
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "frames.h"

static size_t delivered;

/* protobuf-c's packing of what it decodes from buf[len] is buf[len] again (the
 * reply packer writes what protobuf-c writes). */
static void check_canonical(const ProtobufCMessageDescriptor *d, const void *buf,
                            size_t len)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, buf);
    if (!m)
        abort();
    size_t n;
    void *again = shoal__bv_pack(m, &n);
    if (!again || n != len || memcmp(again, buf, len))
        abort();
    free(again);
    protobuf_c_message_free_unpacked(m, NULL);
}

/* The client's Reply decoder on buf[len] agrees with shoal__bv_unpack (protobuf-c):
 * both refuse it, or both decode it to the same fields (the results compared once
 * packed by protobuf-c: the client's decoder drops a scalar's unknown fields, so
 * protobuf-c's are left out of its packing). */
static void check_reply_decoder(const void *buf, size_t len)
{
    shoal_bv_reply ours;
    int rc = shoal__bv_unpack_reply(buf, len, &ours);
    brep *theirs = (brep *)shoal__bv_unpack(&shoal__broker__reply__descriptor, buf, len);
    if ((rc == 0) != (theirs != NULL))
        abort();
    if (!theirs)
        return;
    if (ours.id != theirs->id || ours.status != theirs->status ||
        strnlen(ours.error, ours.error_len) != strlen(theirs->error) ||
        memcmp(ours.error, theirs->error, strlen(theirs->error)) ||
        !ours.result != !theirs->result)
        abort();
    if (ours.result) {
        size_t unknown = theirs->result->base.n_unknown_fields, na, nb;
        if (!ours.msg)
            theirs->result->base.n_unknown_fields = 0;
        void *a = shoal__bv_pack(&ours.result->base, &na);
        void *b = shoal__bv_pack(&theirs->result->base, &nb);
        theirs->result->base.n_unknown_fields = unknown;
        if (!a || !b || na != nb || memcmp(a, b, na))
            abort();
        free(a);
        free(b);
    }
    shoal__bv_reply_free(&ours);
    protobuf_c_message_free_unpacked(&theirs->base, NULL);
}

static void deliver(broker_session *s, broker_reply *r, size_t n)
{
    (void)s;
    for (size_t i = 0; i < n; i++) {
        check_canonical(&shoal__broker__reply__descriptor, broker_reply_bytes(&r[i]),
                        r[i].len);
        check_reply_decoder(broker_reply_bytes(&r[i]), r[i].len);
        delivered += r[i].len;
        free(r[i].buf);
    }
}

/* The Request decoder (shoal__bv_unpack_in) on frame buf[len]: when it accepts it,
 * it accepts protobuf-c's packing of what it decoded, and decodes that to the same
 * message again. */
static void check_decoder(const void *buf, size_t len)
{
    max_align_t space[256];
    shoal_bv_arena a;
    shoal__bv_arena_init(&a, space, sizeof(space));
    ProtobufCMessage *m =
        shoal__bv_unpack_in(&shoal__broker__request__descriptor, buf, len, &a);
    size_t n;
    void *packed = m ? shoal__bv_pack(m, &n) : NULL;
    if (m && !packed)
        abort();
    shoal__bv_arena_reset(&a);
    if (packed) {
        m = shoal__bv_unpack_in(&shoal__broker__request__descriptor, packed, n, &a);
        size_t n2;
        void *again = m ? shoal__bv_pack(m, &n2) : NULL;
        if (!again || n2 != n || memcmp(again, packed, n))
            abort();
        free(again);
        free(packed);
        shoal__bv_arena_reset(&a);
    }
}

/* The session the frames of one input are the requests of. */
typedef struct session {
    shoal_broker *b;
    broker_session *s;
    uint64_t sid;
} session;

static void request(const uint8_t *data, size_t n, void *arg)
{
    session *ss = arg;
    check_decoder(data, n);
    check_reply_decoder(data, n);
    broker_request(ss->b, ss->s, ss->sid, data, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    session ss;
    if (shoal_broker_create(&ss.b, NULL, deliver) != 0)
        return 0;
    ss.s = (broker_session *)&delivered; /* any address: a session's identity */
    ss.sid = broker_session_id(ss.b);
    for_each_frame(data, size, request, &ss);
    broker_session_end(ss.b, ss.s, ss.sid);
    shoal_broker_destroy(ss.b);
    return 0;
}
