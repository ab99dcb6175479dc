/*
 * fuzz_broker.c — libFuzzer target: arbitrary bytes as the requests of one broker
 * session.
 *
 * Each input is a sequence of frames, each a 2-byte little-endian length and that
 * many bytes (what is left when a length overruns is the last frame), handed one by
 * one to a fresh in-memory broker exactly as the Session method hands the frames a
 * client sends: decoded with the depth and size checks, run through the dispatcher
 * (create, every operation of every kind, paths into nested containers, blocking
 * operations that park), answered. The session then ends, which drops its waiters and
 * frees what it held. Whatever the bytes, nothing may crash, leak, read or write out
 * of bounds, or hang.
 *
 * The corpus (broker_corpus/) holds valid sessions: creating each kind and running its
 * operations, so that mutations reach the dispatcher and not only the decoder.
 *   sh tests/fuzz/run.sh build/tests/fuzz/fuzz_broker tests/fuzz/broker_corpus 600 WORK
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"

static size_t delivered;

static void deliver(broker_session *s, uint64_t id, void *buf, size_t len)
{
    (void)s;
    (void)id;
    delivered += len;
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    shoal_broker *b;
    if (shoal_broker_create(&b, NULL, deliver) != 0)
        return 0;
    broker_session *s =
        (broker_session *)&delivered; /* any address: a session's identity */
    uint64_t sid = broker_session_id(b);
    while (size >= 2) {
        size_t n = (size_t)data[0] | (size_t)data[1] << 8;
        data += 2;
        size -= 2;
        if (n > size)
            n = size;
        broker_request(b, s, sid, data, n);
        data += n;
        size -= n;
    }
    broker_session_end(b, s, sid);
    shoal_broker_destroy(b);
    return 0;
}
