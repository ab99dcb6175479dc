/*
 * inproc.h — an in-process broker for the broker's tests (broker_batch.c,
 * broker_store.c): requests go in through broker_request as session SESSION, and their
 * replies come to deliver(), which keeps the latest one decoded (`last`, until the
 * next) and counts them (`ndelivered`) — or, with ack_fd set (a child that is killed
 * along the way), writes each reply's id there instead. Each test gets a fresh data
 * directory under the test root (data_dir, made by setup; teardown frees `last`).
 */
#ifndef SHOAL_TESTS_BROKER_INPROC_H
#define SHOAL_TESTS_BROKER_INPROC_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker.h"
#include "internal.h"
#include "testutil.h"

static char data_dir[300];
static brep *last;        /* the latest reply delivered */
static size_t ndelivered; /* replies delivered (a test zeroes it before a request) */
static int ack_fd = -1;   /* >= 0: the ids of the replies go there, nothing is kept */

static void deliver(broker_session *s, broker_reply *r, size_t n)
{
    (void)s;
    for (size_t i = 0; i < n; i++) {
        ndelivered++;
        if (ack_fd >= 0) {
            if (write(ack_fd, &r[i].id, sizeof(r[i].id)) != sizeof(r[i].id))
                abort();
        } else {
            if (last)
                protobuf_c_message_free_unpacked(&last->base, NULL);
            last =
                (brep *)protobuf_c_message_unpack(&shoal__broker__reply__descriptor, NULL,
                                                  r[i].len, broker_reply_bytes(&r[i]));
        }
        free(r[i].buf);
    }
}

/* A broker on dir (NULL: in memory), replying to deliver(). */
static shoal_broker *open_broker(const char *dir)
{
    shoal_broker *b;
    shoal_broker_config cfg = {dir, 0};
    if (shoal_broker_create(&b, &cfg, deliver) < 0)
        fail_msg("broker on %s: %s", dir ? dir : "(memory)", shoal_errdetail());
    return b;
}

/* The session the requests come from (any address serves: the broker only passes it
 * back to deliver). */
static broker_session *const SESSION = (broker_session *)&data_dir;

static int setup(void **state)
{
    static int n;
    snprintf(data_dir, sizeof(data_dir), "%s/data-%d", t_root, ++n);
    *state = NULL;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (last)
        protobuf_c_message_free_unpacked(&last->base, NULL);
    last = NULL;
    return 0;
}

#endif
