/* test_rpc_shm_batch.c — batch messages over shm:// (rpc_shm.c): a client whose
 * connection request says it reads them gets the responses of a server turn in one
 * batch message, and a batch of requests is served as the frames one by one; a client
 * that does not say so (an older one) gets every frame as its own message, and a batch
 * it sends is one undecodable frame; a corrupt batch (a length past its end, no length,
 * another version) is dropped whole, counted, and the connection serves on; a response
 * too big for a batch goes alone, in order; a client that sends a batch and closes, or
 * is killed with SIGKILL right after, has every request of it run, and the server
 * serves on. The server's ACCEPT comes as a batch message of one frame to a client that
 * said batch1, plain to one that did not. On the client's side, with a fake server in
 * a child process: a corrupt batch breaks the connection with an error naming it, and
 * a server killed right after a batch leaves its frames delivered once each, in order,
 * then UNAVAILABLE; requests sent with shoal_rpc_call_send_more leave in one batch
 * message once flushed when the ACCEPT came in one, else one message each; and a
 * fork child that flushes does not send again what its parent kept.
 *
 * The clients of the server's tests speak at the level of the pipe (the frames of
 * rpc_wire.c), so that they see each message as it came. */
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "bytes_echo.h"
#include "forked_server.h"
#include "rpc_internal.h"
#include "testutil.h"

#define NAME     "batch-echo"
#define ADDR     "shm://" NAME
#define FAKE     "batch-fake"
#define SERVICE  "test.Batch"
#define METHOD   SERVICE "/Echo"
#define MAX_MSG  (64 * 1024)
#define BIG      20000 /* more than a batch message holds (rpc_shm.c BATCH_BYTES) */
#define MAX_MSGS 64

struct shared {
    fs_flags srv;
    _Atomic int handled; /* requests the Echo handler got */
    _Atomic int stage;   /* the fake server's steps */
    _Atomic int fake_ok; /* ... and whether the client's request said batch1 */
    _Atomic int frames;  /* the MESSAGE frames the fake server got */
    _Atomic int msgs;    /* ... and the pipe messages that carried them */
};

static struct shared *sh;

static int counted_echo(shoal_rpc_ctx *ctx, void *arg)
{
    atomic_fetch_add(&sh->handled, 1);
    return bytes_echo(ctx, arg);
}

/* Unary and not blocking: run on the loop's thread, in the turn that read it. */
static const shoal_rpc_method methods[] = {
    {"Echo", SHOAL_RPC_UNARY, NULL, NULL, counted_echo, 0}};
static const shoal_rpc_service service = {SERVICE, methods, 1, NULL};

static pid_t server_pid;

static int setup(void **state)
{
    (void)state;
    sh = t_shared_alloc(sizeof(*sh));
    server_pid = fs_start(&service, ADDR, &sh->srv);
    return server_pid < 0 ? -1 : 0;
}

static int setup_fake(void **state)
{
    (void)state;
    sh = t_shared_alloc(sizeof(*sh));
    server_pid = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = server_pid > 0 ? fs_stop(server_pid, &sh->srv) : 0;
    munmap(sh, sizeof(*sh));
    return rc;
}

/* ---- frames and batch messages --------------------------------------------------- */

typedef struct msgbuf {
    uint8_t b[MAX_MSG];
    size_t len;
} msgbuf;

static size_t encode(uint8_t *out, size_t cap, const rpc_frame *f)
{
    uint8_t *p = out;
    size_t len;
    T_OK(rpc__frame_encode(f, NULL, &p, cap, &len));
    assert_ptr_equal(p, out);
    return len;
}

static void batch_begin(msgbuf *m)
{
    m->b[0] = 0;
    m->b[1] = 1;
    m->len = 2;
}

static void batch_len(msgbuf *m, uint32_t n)
{
    for (int i = 0; i < 4; i++)
        m->b[m->len++] = (uint8_t)(n >> (8 * i));
}

static void batch_add(msgbuf *m, const rpc_frame *f)
{
    size_t n = encode(m->b + m->len + 4, sizeof(m->b) - m->len - 4, f);
    batch_len(m, (uint32_t)n);
    m->len += n;
}

/* A unary request of call id: "r<id>", or (big) BIG bytes of id's letter. */
static rpc_frame start_frame(uint64_t id, int big, char *text)
{
    size_t len = big ? BIG : (size_t)snprintf(text, 32, "r%llu", (unsigned long long)id);
    if (big)
        memset(text, 'a' + (int)(id % 26), BIG);
    return (rpc_frame){.call = id,
                       .type = RPC_F_START,
                       .flags = RPC_FLAG_END,
                       .method = METHOD,
                       .method_len = strlen(METHOD),
                       .payload = (const uint8_t *)text,
                       .payload_len = len,
                       .has_payload = 1};
}

static void add_start(msgbuf *m, uint64_t id, int big)
{
    static char text[BIG];
    rpc_frame f = start_frame(id, big, text);
    batch_add(m, &f);
}

static void send_start(shoal_pipe *p, uint64_t id)
{
    msgbuf m;
    char text[32];
    rpc_frame f = start_frame(id, 0, text);
    m.len = encode(m.b, sizeof(m.b), &f);
    T_OK(shoal_pipe_send(p, m.b, m.len, SHOAL_SEC(5)));
}

/* ---- a client at the level of the pipe ------------------------------------------- */

/* Connects to shm://name as rpc_shm.c does, the request saying batch1 or not; returns
 * the client's end once the server's ACCEPT came. */
static shoal_pipe *raw_connect(const char *name, int hello)
{
    static unsigned n;
    char pname[SHOAL_NAME_MAX + 1], req[SHOAL_NAME_MAX + 16];
    snprintf(pname, sizeof(pname), "%s:t%d.%u", name, (int)getpid(), n++);
    shoal_queue_config pc = {.max_msg = MAX_MSG, .capacity = 64};
    shoal_pipe *p;
    T_OK(shoal_pipe_open(&p, pname, 0, SHOAL_CREATE, &pc, NULL));
    size_t len = strlen(pname) + 1;
    memcpy(req, pname, len);
    if (hello) {
        memcpy(req + len, "batch1", 6);
        len += 6;
    }
    shoal_queue *q;
    T_OK(shoal_queue_open(&q, name, SHOAL_OPEN, NULL, NULL));
    T_OK(shoal_queue_put(q, req, len, SHOAL_SEC(5)));
    shoal_queue_close(q);
    static msgbuf m;
    rpc_frame f;
    T_OK(shoal_pipe_recv(p, m.b, sizeof(m.b), &m.len, SHOAL_SEC(30)));
    size_t at = 0;
    if (hello) { /* a batch message of one frame: the server reads them too */
        assert_true(m.len > 6 && m.b[0] == 0 && m.b[1] == 1);
        assert_int_equal(m.b[2] | m.b[3] << 8 | m.b[4] << 16 | m.b[5] << 24, m.len - 6);
        at = 6;
    }
    T_OK(rpc__frame_decode(m.b + at, m.len - at, &f, NULL));
    assert_int_equal(f.type, RPC_F_ACCEPT);
    return p;
}

static void raw_close(shoal_pipe *p)
{
    char name[SHOAL_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%s", shoal_pipe_name(p));
    shoal_pipe_close(p);
    shoal_unlink(name, NULL);
}

/* What came back: the call of each TRAILERS frame in order (its status OK, its payload
 * the request's), and the messages that carried them. */
typedef struct replies {
    uint64_t call[256];
    int n;
    int msgs, batches;
    int frames_in[MAX_MSGS]; /* frames per message */
} replies;

static void check_reply(replies *r, const uint8_t *b, size_t len)
{
    rpc_frame f;
    T_OK(rpc__frame_decode(b, len, &f, NULL));
    assert_int_equal(f.type, RPC_F_TRAILERS);
    assert_int_equal(f.code, SHOAL_RPC_OK);
    char text[32];
    int big = f.payload_len == BIG;
    size_t want =
        big ? BIG : (size_t)snprintf(text, 32, "r%llu", (unsigned long long)f.call);
    assert_int_equal(f.payload_len, want);
    if (big)
        for (size_t i = 0; i < BIG; i++)
            assert_int_equal(f.payload[i], 'a' + (int)(f.call % 26));
    else
        assert_memory_equal(f.payload, text, want);
    assert_true(r->n < 256);
    r->call[r->n++] = f.call;
}

/* Receives messages until `want` responses came. */
static void collect(shoal_pipe *p, replies *r, int want)
{
    static msgbuf m;
    while (r->n < want) {
        T_OK(shoal_pipe_recv(p, m.b, sizeof(m.b), &m.len, SHOAL_SEC(30)));
        assert_true(r->msgs < MAX_MSGS);
        int before = r->n;
        if (m.b[0] != 0) {
            check_reply(r, m.b, m.len);
        } else { /* a batch message */
            r->batches++;
            assert_int_equal(m.b[1], 1);
            for (size_t at = 2; at < m.len;) {
                uint32_t n = m.b[at] | m.b[at + 1] << 8 | m.b[at + 2] << 16 |
                             (uint32_t)m.b[at + 3] << 24;
                assert_true(n > 0 && n <= m.len - at - 4);
                check_reply(r, m.b + at + 4, n);
                at += 4 + n;
            }
        }
        r->frames_in[r->msgs++] = r->n - before;
    }
}

/* Nothing more comes for a while. */
static void nothing_more(shoal_pipe *p)
{
    static msgbuf m;
    assert_int_equal(shoal_pipe_recv(p, m.b, sizeof(m.b), &m.len, SHOAL_MS(200)),
                     SHOAL_ETIMEDOUT);
}

/* ---- the server's side ------------------------------------------------------------- */

/* A batch of 8 requests is one turn: their 8 responses come in one batch message. */
static void test_batch_both_ways(void **state)
{
    (void)state;
    shoal_pipe *p = raw_connect(NAME, 1);
    for (int round = 0; round < 3; round++) {
        msgbuf m;
        batch_begin(&m);
        for (int i = 1; i <= 8; i++)
            add_start(&m, (uint64_t)(round * 8 + i), 0);
        T_OK(shoal_pipe_send(p, m.b, m.len, SHOAL_SEC(5)));
        replies r = {0};
        collect(p, &r, 8);
        assert_int_equal(r.msgs, 1);
        assert_int_equal(r.batches, 1);
        for (int i = 0; i < 8; i++)
            assert_int_equal(r.call[i], (uint64_t)(round * 8 + i + 1));
    }
    nothing_more(p);
    assert_int_equal(atomic_load(&sh->handled), 24);
    raw_close(p);
}

/* A client that did not say batch1 gets each frame alone, and a batch it sends is one
 * undecodable frame, dropped; it is served on. */
static void test_old_client(void **state)
{
    (void)state;
    shoal_pipe *p = raw_connect(NAME, 0);
    for (int i = 1; i <= 8; i++)
        send_start(p, (uint64_t)i);
    replies r = {0};
    collect(p, &r, 8);
    assert_int_equal(r.msgs, 8);
    assert_int_equal(r.batches, 0);
    msgbuf m;
    batch_begin(&m);
    add_start(&m, 50, 0);
    add_start(&m, 51, 0);
    T_OK(shoal_pipe_send(p, m.b, m.len, SHOAL_SEC(5)));
    send_start(p, 52);
    replies r2 = {0};
    collect(p, &r2, 1);
    assert_int_equal(r2.call[0], 52);
    nothing_more(p);
    assert_int_equal(atomic_load(&sh->handled), 9);
    raw_close(p);
}

/* Corrupt batches are dropped whole (not even their good first frame runs); the
 * connection goes on. */
static void test_corrupt_batch(void **state)
{
    (void)state;
    shoal_pipe *p = raw_connect(NAME, 1);
    msgbuf m;
    batch_begin(&m); /* the second frame's length runs past the end */
    add_start(&m, 20, 0);
    batch_len(&m, 1000);
    m.b[m.len++] = 0x08;
    T_OK(shoal_pipe_send(p, m.b, m.len, SHOAL_SEC(5)));
    batch_begin(&m); /* version 2 */
    m.b[1] = 2;
    add_start(&m, 21, 0);
    T_OK(shoal_pipe_send(p, m.b, m.len, SHOAL_SEC(5)));
    batch_begin(&m); /* a frame of no bytes */
    add_start(&m, 22, 0);
    batch_len(&m, 0);
    T_OK(shoal_pipe_send(p, m.b, m.len, SHOAL_SEC(5)));
    batch_begin(&m); /* a length cut short */
    add_start(&m, 23, 0);
    m.b[m.len++] = 5;
    m.b[m.len++] = 0;
    T_OK(shoal_pipe_send(p, m.b, m.len, SHOAL_SEC(5)));
    T_OK(shoal_pipe_send(p, "", 1, SHOAL_SEC(5))); /* the mark alone */
    batch_begin(&m);
    add_start(&m, 30, 0);
    add_start(&m, 31, 0);
    T_OK(shoal_pipe_send(p, m.b, m.len, SHOAL_SEC(5)));
    replies r = {0};
    collect(p, &r, 2);
    assert_int_equal(r.call[0], 30);
    assert_int_equal(r.call[1], 31);
    nothing_more(p);
    assert_int_equal(atomic_load(&sh->handled), 2);
    raw_close(p);
}

/* A response too big for a batch message goes alone, after the ones kept before it
 * and before the ones after it. */
static void test_big_response(void **state)
{
    (void)state;
    shoal_pipe *p = raw_connect(NAME, 1);
    msgbuf m;
    batch_begin(&m);
    add_start(&m, 1, 0);
    add_start(&m, 2, 0);
    add_start(&m, 3, 1);
    add_start(&m, 4, 0);
    add_start(&m, 5, 0);
    T_OK(shoal_pipe_send(p, m.b, m.len, SHOAL_SEC(5)));
    replies r = {0};
    collect(p, &r, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(r.call[i], (uint64_t)i + 1);
    assert_int_equal(r.msgs, 3); /* 1 and 2; 3 alone; 4 and 5 */
    assert_int_equal(r.frames_in[0], 2);
    assert_int_equal(r.frames_in[1], 1);
    assert_int_equal(r.frames_in[2], 2);
    raw_close(p);
}

/* Sends a batch of 40 requests and closes at once (arg NULL) or is killed. */
static int batch_and_go(void *arg)
{
    shoal_pipe *p = raw_connect(NAME, 1);
    msgbuf m;
    batch_begin(&m);
    for (int i = 1; i <= 40; i++)
        add_start(&m, (uint64_t)i, 0);
    if (shoal_pipe_send(p, m.b, m.len, SHOAL_SEC(5)) < 0)
        return 1;
    if (arg)
        raise(SIGKILL);
    shoal_pipe_close(p); /* the server unlinks the pipe */
    return 0;
}

/* A client gone right after its batch (closed, or killed with SIGKILL): every request
 * of it runs once, and the server serves the next client. */
static void test_client_gone_mid_batch(void **state)
{
    (void)state;
    for (int killed = 0; killed < 2; killed++) {
        atomic_store(&sh->handled, 0);
        pid_t pid = t_fork(batch_and_go, killed ? "kill" : NULL);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(killed ? WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL
                           : WIFEXITED(st) && WEXITSTATUS(st) == 0);
        assert_true(t_wait_atleast(&sh->handled, 40, SHOAL_SEC(30)));
        shoal_pipe *p = raw_connect(NAME, 1);
        send_start(p, 7);
        replies r = {0};
        collect(p, &r, 1);
        raw_close(p);
        assert_int_equal(atomic_load(&sh->handled), 41);
    }
}

/* ---- the client's side: a fake server ------------------------------------------------
 */

enum { FAKE_CORRUPT, FAKE_KILLED };

/* The fake server's listener FAKE, with one connection request read into req (its
 * length: *len, NUL-terminated), or NULL. */
static shoal_queue *fake_listen(char req[SHOAL_NAME_MAX + 2], size_t *len)
{
    shoal_queue_config qc = {.max_msg = SHOAL_NAME_MAX + 1, .capacity = 16};
    shoal_queue *q;
    if (shoal_queue_open(&q, FAKE, SHOAL_OPEN_OR_CREATE, &qc, NULL) < 0)
        return NULL;
    atomic_store(&sh->stage, 1);
    if (shoal_queue_get(q, req, SHOAL_NAME_MAX + 1, len, SHOAL_SEC(30)) < 0) {
        shoal_queue_close(q);
        return NULL;
    }
    req[*len] = 0;
    return q;
}

/* Listens on FAKE as rpc_shm.c does, accepts one client, reads its START and answers
 * with a batch message: a corrupt one, or two responses and then SIGKILL. */
static int fake_server(void *arg)
{
    int mode = (int)(intptr_t)arg;
    char req[SHOAL_NAME_MAX + 2];
    size_t len;
    shoal_queue *q = fake_listen(req, &len);
    if (!q)
        return 2;
    size_t n = strlen(req);
    atomic_store(&sh->fake_ok, len == n + 7 && !memcmp(req + n + 1, "batch1", 6));
    shoal_pipe *p;
    if (shoal_pipe_open(&p, req, 1, SHOAL_OPEN, NULL, NULL) < 0)
        return 3;
    static msgbuf m;
    rpc_frame f = {.type = RPC_F_ACCEPT};
    m.len = encode(m.b, sizeof(m.b), &f);
    if (shoal_pipe_send(p, m.b, m.len, SHOAL_SEC(5)) < 0 ||
        shoal_pipe_recv(p, m.b, sizeof(m.b), &m.len, SHOAL_SEC(30)) < 0 ||
        rpc__frame_decode(m.b, m.len, &f, NULL) < 0)
        return 4;
    uint64_t call = f.call;
    batch_begin(&m);
    for (int i = 0; i < 2; i++) {
        char text[8];
        snprintf(text, sizeof(text), "m%d", i);
        rpc_frame r = {.call = call,
                       .type = RPC_F_MESSAGE,
                       .payload = (const uint8_t *)text,
                       .payload_len = strlen(text) + 1,
                       .has_payload = 1};
        batch_add(&m, &r);
    }
    if (mode == FAKE_CORRUPT)
        batch_len(&m, 99);
    atomic_store(&sh->stage, 2); /* before: the client may see it and say 3 at once */
    if (shoal_pipe_send(p, m.b, m.len, SHOAL_SEC(5)) < 0)
        return 5;
    if (mode == FAKE_KILLED)
        raise(SIGKILL);
    t_wait_atleast(&sh->stage, 3, SHOAL_SEC(30)); /* the client has seen it */
    shoal_pipe_close(p);
    shoal_queue_close(q);
    return 0;
}

static const shoal_rpc_method chat = {"Chat", SHOAL_RPC_BIDI_STREAMING, NULL, NULL, NULL,
                                      0};

/* Counts the MESSAGE frames of the pipe message m (a frame, or a batch of them). */
static int message_frames(const msgbuf *m)
{
    rpc_frame f;
    if (m->b[0] != 0)
        return rpc__frame_decode(m->b, m->len, &f, NULL) == 0 && f.type == RPC_F_MESSAGE;
    int n = 0;
    for (size_t at = 2; at + 4 <= m->len;) {
        uint32_t len = m->b[at] | m->b[at + 1] << 8 | m->b[at + 2] << 16 |
                       (uint32_t)m->b[at + 3] << 24;
        if (len == 0 || len > m->len - at - 4)
            return -1000; /* a corrupt batch: fails the count */
        n += rpc__frame_decode(m->b + at + 4, len, &f, NULL) == 0 &&
             f.type == RPC_F_MESSAGE;
        at += 4 + len;
    }
    return n;
}

/* Accepts one client on FAKE, its ACCEPT in a batch message (arg not NULL: a server
 * that reads them) or plain (an older server), then counts the MESSAGE frames the
 * client sends and the messages carrying them, until none came for 300 ms. */
static int fake_counter(void *arg)
{
    char req[SHOAL_NAME_MAX + 2];
    size_t len;
    shoal_queue *q = fake_listen(req, &len);
    if (!q)
        return 2;
    shoal_pipe *p;
    if (shoal_pipe_open(&p, req, 1, SHOAL_OPEN, NULL, NULL) < 0)
        return 3;
    static msgbuf m;
    rpc_frame f = {.type = RPC_F_ACCEPT};
    if (arg) {
        batch_begin(&m);
        batch_add(&m, &f);
    } else {
        m.len = encode(m.b, sizeof(m.b), &f);
    }
    if (shoal_pipe_send(p, m.b, m.len, SHOAL_SEC(5)) < 0)
        return 4;
    atomic_store(&sh->stage, 2);
    shoal_duration wait = SHOAL_SEC(30); /* for the first */
    while (shoal_pipe_recv(p, m.b, sizeof(m.b), &m.len, wait) == 0) {
        int n = message_frames(&m);
        if (n) {
            atomic_fetch_add(&sh->frames, n);
            atomic_fetch_add(&sh->msgs, 1);
            wait = SHOAL_MS(300);
        }
    }
    atomic_store(&sh->stage, 3);
    t_wait_atleast(&sh->stage, 4, SHOAL_SEC(30)); /* the client has read the counts */
    shoal_pipe_close(p);
    shoal_queue_close(q);
    return 0;
}

/* A fork child of a client that kept requests: flushes (sending nothing of its
 * parent's) and ends. */
static int flush_child(void *arg)
{
    return shoal_rpc_channel_flush(arg) == 0 ? 0 : 1;
}

/* Requests sent with shoal_rpc_call_send_more: one batch message once flushed to a
 * server whose ACCEPT came in one, one message each to an older server; a fork child
 * does not send its parent's again. */
static void test_client_sends_batches(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        int batched = round != 1, forked = round == 2, n = forked ? 2 : 3;
        atomic_store(&sh->stage, 0);
        atomic_store(&sh->frames, 0);
        atomic_store(&sh->msgs, 0);
        pid_t pid = t_fork(fake_counter, batched ? "batched" : NULL);
        assert_true(t_wait_atleast(&sh->stage, 1, SHOAL_SEC(30)));
        shoal_rpc_channel *ch;
        shoal_rpc_channel_config cfg = {.connect_timeout = SHOAL_SEC(30)};
        T_OK(shoal_rpc_channel_open(&ch, "shm://" FAKE, &cfg));
        shoal_rpc_call *c;
        T_OK(shoal_rpc_call_start(&c, ch, SERVICE, &chat, NULL));
        for (int i = 0; i < n; i++)
            T_OK(shoal_rpc_call_send_more(c, "more", 5));
        if (forked)
            assert_int_equal(t_wait(t_fork(flush_child, ch)), 0);
        T_OK(shoal_rpc_channel_flush(ch));
        assert_true(t_wait_atleast(&sh->stage, 3, SHOAL_SEC(30)));
        assert_int_equal(atomic_load(&sh->frames), n);
        assert_int_equal(atomic_load(&sh->msgs), batched ? 1 : n);
        atomic_store(&sh->stage, 4);
        assert_int_equal(t_wait(pid), 0);
        shoal_rpc_call_free(c);
        shoal_rpc_channel_close(ch);
    }
}

static void test_client_reads_batches(void **state)
{
    (void)state;
    for (int mode = FAKE_CORRUPT; mode <= FAKE_KILLED; mode++) {
        atomic_store(&sh->stage, 0);
        pid_t pid = t_fork(fake_server, (void *)(intptr_t)mode);
        assert_true(t_wait_atleast(&sh->stage, 1, SHOAL_SEC(30)));
        shoal_rpc_channel *ch;
        shoal_rpc_channel_config cfg = {.connect_timeout = SHOAL_SEC(30)};
        T_OK(shoal_rpc_channel_open(&ch, "shm://" FAKE, &cfg));
        assert_int_equal(atomic_load(&sh->fake_ok), 1); /* the request said batch1 */
        shoal_rpc_call *c;
        T_OK(shoal_rpc_call_start(&c, ch, SERVICE, &chat, NULL));
        T_OK(shoal_rpc_call_send(c, "go", 3));
        void *msg;
        size_t len;
        char detail[SHOAL_RPC_DETAIL_MAX];
        if (mode == FAKE_CORRUPT) {
            assert_int_equal(shoal_rpc_call_recv(c, &msg, &len), 0);
            assert_int_equal(shoal_rpc_call_finish(c, detail, sizeof(detail)),
                             SHOAL_RPC_UNAVAILABLE);
            assert_non_null(strstr(detail, "corrupt batch message"));
            atomic_store(&sh->stage, 3);
            assert_int_equal(t_wait(pid), 0);
        } else { /* both responses, once each, in order, then the server's death */
            for (int i = 0; i < 2; i++) {
                char want[8];
                snprintf(want, sizeof(want), "m%d", i);
                assert_int_equal(shoal_rpc_call_recv(c, &msg, &len), 1);
                assert_string_equal(msg, want);
                free(msg);
            }
            assert_int_equal(shoal_rpc_call_recv(c, &msg, &len), 0);
            assert_int_equal(shoal_rpc_call_finish(c, detail, sizeof(detail)),
                             SHOAL_RPC_UNAVAILABLE);
            int st;
            assert_int_equal(waitpid(pid, &st, 0), pid);
            assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
        }
        shoal_rpc_call_free(c);
        shoal_rpc_channel_close(ch);
    }
}

int main(void)
{
    t_setup_root();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_both_ways, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_gone_mid_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_reads_batches, setup_fake, teardown),
        cmocka_unit_test_setup_teardown(test_client_sends_batches, setup_fake, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
