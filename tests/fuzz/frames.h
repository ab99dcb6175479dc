/*
 * frames.h — the input format of the broker's fuzz targets (fuzz_broker.c,
 * fuzz_request.c): a sequence of frames, each a 2-byte little-endian length and that
 * many bytes; what is left when a length overruns is the last frame. So one corpus
 * (broker_corpus/) seeds both.
 */
#ifndef SHOAL_FUZZ_FRAMES_H
#define SHOAL_FUZZ_FRAMES_H

#include <stddef.h>
#include <stdint.h>

/* Calls each(frame, its length, arg) for each frame of data[size], in order. */
static inline void for_each_frame(const uint8_t *data, size_t size,
                                  void (*each)(const uint8_t *, size_t, void *),
                                  void *arg)
{
    while (size >= 2) {
        size_t n = (size_t)data[0] | (size_t)data[1] << 8;
        data += 2;
        size -= 2;
        if (n > size)
            n = size;
        each(data, n, arg);
        data += n;
        size -= n;
    }
}

#endif
