/*
 * fuzz_request.c — libFuzzer target: the broker's own Request decoder against
 * protobuf-c's, on arbitrary bytes.
 *
 * Each input is a sequence of frames as fuzz_broker.c reads them (frames.h), so the
 * broker corpus seeds it. Each frame is decoded by the broker's
 * decoder (shoal__bv_unpack_in with an arena: one pass, by hand) and by
 * shoal__bv_unpack (the depth and size scan, protobuf-c's unpack, the model's checks):
 * both must refuse it, or both accept it and decode the same message
 * (request_same.h: every field and value, unknown fields aside). Any disagreement
 * aborts.
 *   sh tests/fuzz/run.sh build/tests/fuzz/fuzz_request tests/fuzz/broker_corpus 600 WORK
 */
#include <stdint.h>
#include <stdlib.h>

#include "../broker/request_same.h"
#include "frames.h"

static void differ(const uint8_t *buf, size_t len, void *arg)
{
    (void)arg;
    max_align_t space[256];
    shoal_bv_arena a;
    shoal__bv_arena_init(&a, space, sizeof(space));
    breq *ours =
        (breq *)shoal__bv_unpack_in(&shoal__broker__request__descriptor, buf, len, &a);
    breq *theirs =
        (breq *)shoal__bv_unpack(&shoal__broker__request__descriptor, buf, len);
    if (!ours != !theirs || (ours && !same_request(ours, theirs)))
        abort();
    if (theirs)
        protobuf_c_message_free_unpacked(&theirs->base, NULL);
    shoal__bv_arena_reset(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for_each_frame(data, size, differ, NULL);
    return 0;
}
