/*
 * seed_pipe_messages.c — tutorial B.5 ("Pipe"): a sender process sends "hello",
 * "hey", "hru?" through one end of a pipe; a receiver process prints each message it
 * gets from the other end.
 *
 * The tutorial ends the conversation with an "END" sentinel message; here the sender
 * simply closes its end and the receiver stops on end-of-stream (SHOAL_EEOF), after
 * having received everything that was sent. Exits non-zero if the receiver did not get
 * the three messages in order followed by end-of-stream.
 */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shoal.h>

static const char *const msgs[] = {"hello", "hey", "hru?"};

static int sender(shoal_pipe *conn)
{
    for (int i = 0; i < 3; i++) {
        if (shoal_pipe_send(conn, msgs[i], strlen(msgs[i]), SHOAL_SEC(10)) != 0)
            return 1;
        printf("Sent the message: %s\n", msgs[i]);
        fflush(stdout);
    }
    shoal_pipe_close(conn);
    return 0;
}

static int receiver(shoal_pipe *conn)
{
    char buf[64];
    size_t len;
    int n = 0, rc, bad = 0;
    while ((rc = shoal_pipe_recv(conn, buf, sizeof(buf) - 1, &len, SHOAL_SEC(10))) == 0) {
        buf[len] = '\0';
        printf("Received the message: %s\n", buf);
        fflush(stdout);
        bad |= n >= 3 || strcmp(buf, msgs[n]) != 0;
        n++;
    }
    if (rc != SHOAL_EEOF)
        fprintf(stderr, "recv: %s: %s\n", shoal_strerror(rc), shoal_errdetail());
    return bad || n != 3 || rc != SHOAL_EEOF;
}

static pid_t spawn(int (*fn)(shoal_pipe *), shoal_pipe *mine, shoal_pipe *other)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        shoal_pipe_close(other); /* the end this child does not use */
        _exit(fn(mine));
    }
    return pid;
}

static int wait_ok(pid_t pid)
{
    int st;
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
           WEXITSTATUS(st) == 0;
}

int main(void)
{
    shoal_pipe *parent_conn, *child_conn;
    shoal_queue_config cfg = {.max_msg = 64};
    int rc = shoal_pipe_pair(&parent_conn, &child_conn, NULL, &cfg, NULL);
    if (rc) {
        fprintf(stderr, "pipe: %s: %s\n", shoal_strerror(rc), shoal_errdetail());
        return 1;
    }
    pid_t p1 = spawn(sender, parent_conn, child_conn);
    pid_t p2 = spawn(receiver, child_conn, parent_conn);
    shoal_pipe_close(parent_conn); /* both ends now belong to the children */
    shoal_pipe_close(child_conn);
    int ok = wait_ok(p1) & wait_ok(p2);
    return ok ? 0 : 1;
}
