/* test_rpc_window.c — the flow control's credit returns (rpc.c, rpc__call_pop), on a
 * receiving rpc_call driven by a simulated sender: the sender sends as much of its
 * batch as its credit allows, the receiver takes everything that arrived (one read)
 * and the credit it returns reaches the sender before its next send (one round trip).
 * A sender pipelining batches of a whole window, after a few messages that leave the
 * receiver's count of consumed messages off the half window, gets each batch through
 * in one round trip once it has run out of credit once (before, every batch took two);
 * a sender that never runs out gets credit back only every half window (no extra
 * frames in lock step or in small batches); the receiver never holds more than a
 * window, and all that it consumed is eventually returned. */
#include "rpc_internal.h"
#include "testutil.h"

typedef struct sim {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rpc_conn conn; /* announces SHOAL_RPC_WINDOW (no transport's limit) */
    rpc_call rx;
    int credit;  /* the sender's */
    long frames; /* WINDOW frames the receiver sent */
    long sent, credited;
} sim;

static void sim_init(sim *s)
{
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    memset(&s->conn, 0, sizeof(s->conn));
    rpc__call_init(&s->rx, &s->mu, &s->cv, &s->conn, 1, NULL, INT64_MAX,
                   SHOAL_RPC_WINDOW);
    s->credit = SHOAL_RPC_WINDOW;
    s->frames = s->sent = s->credited = 0;
}

static void sim_fini(sim *s)
{
    rpc__call_drain(&s->rx);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

/* Sends a batch of n messages; returns the round trips it took. */
static int batch(sim *s, int n)
{
    int trips = 0;
    while (n > 0) {
        int k = n < s->credit ? n : s->credit;
        assert_true(k > 0); /* credit always comes back: no deadlock */
        for (int i = 0; i < k; i++)
            assert_int_equal(rpc__call_push(&s->rx, "m", 1), 0);
        s->credit -= k;
        s->sent += k;
        n -= k;
        /* the receiver never holds more than a window unreturned */
        assert_true(s->rx.consumed + s->rx.queued <= SHOAL_RPC_WINDOW);
        rpc_msg *m;
        uint32_t credit;
        while (rpc__call_pop(&s->rx, &m, &credit) == 1) {
            rpc__msg_free(m);
            if (credit) {
                s->frames++;
                s->credit += (int)credit;
                s->credited += credit;
            }
        }
        assert_int_equal(s->credited + s->rx.consumed, s->sent);
        trips++;
    }
    return trips;
}

static void test_window_batches_one_trip(void **state)
{
    (void)state;
    for (int offset = 0; offset < SHOAL_RPC_WINDOW; offset++) {
        sim s;
        sim_init(&s);
        for (int i = 0; i < offset; i++)
            assert_int_equal(batch(&s, 1), 1);
        batch(&s, SHOAL_RPC_WINDOW); /* may take two: the receiver cannot know yet */
        for (int round = 0; round < 50; round++)
            assert_int_equal(batch(&s, SHOAL_RPC_WINDOW), 1);
        sim_fini(&s);
    }
}

static void test_small_batches_half_window(void **state)
{
    (void)state;
    for (int n = 1; n <= SHOAL_RPC_WINDOW / 2; n++) {
        sim s;
        sim_init(&s);
        for (int i = 0; i < 3; i++)
            batch(&s, 1);
        for (int round = 0; round < 40; round++)
            assert_int_equal(batch(&s, n), 1);
        /* returns only every half window: the sender never ran out */
        assert_int_equal(s.frames, s.sent / (SHOAL_RPC_WINDOW / 2));
        sim_fini(&s);
    }
}

/* A sender that ran out once, then sends one at a time: what was consumed comes back
 * at once, and from then on every half window again. */
static void test_starved_then_lock_step(void **state)
{
    (void)state;
    sim s;
    sim_init(&s);
    for (int i = 0; i < 5; i++)
        batch(&s, 1);
    batch(&s, SHOAL_RPC_WINDOW);
    batch(&s, SHOAL_RPC_WINDOW);
    long frames = s.frames;
    assert_int_equal(batch(&s, 1), 1);
    assert_int_equal(s.rx.consumed, 0); /* the rest of the starved sender's came back */
    assert_int_equal(s.frames, frames + 1);
    for (int i = 0; i < 3 * SHOAL_RPC_WINDOW; i++)
        batch(&s, 1);
    assert_int_equal(s.frames, frames + 1 + 3 * 2);
    sim_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_batches_one_trip),
        cmocka_unit_test(test_small_batches_half_window),
        cmocka_unit_test(test_starved_then_lock_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
