/*
 * seed_pipe_counter.c — tutorial C.3 ("Pipe"): a worker process counts to 1,000,000
 * and sends the total through a pipe; the parent receives it and prints 1000000 with
 * the elapsed time. Exits non-zero if the total is wrong.
 */
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shoal.h>

static int worker(shoal_pipe *conn)
{
    volatile int64_t total = 0;
    for (int i = 0; i < 1000000; i++)
        total = total + 1;
    int64_t t = total;
    int rc = shoal_pipe_send(conn, &t, sizeof(t), SHOAL_SEC(10));
    shoal_pipe_close(conn);
    return rc != 0;
}

int main(void)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    shoal_pipe *parent_conn, *child_conn;
    shoal_queue_config cfg = {.type = shoal_typecode('q')};
    int rc = shoal_pipe_pair(&parent_conn, &child_conn, NULL, &cfg, NULL);
    if (rc) {
        fprintf(stderr, "pipe: %s: %s\n", shoal_strerror(rc), shoal_errdetail());
        return 1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        shoal_pipe_close(parent_conn);
        _exit(worker(child_conn));
    }
    shoal_pipe_close(child_conn);
    int64_t total = 0;
    size_t len;
    rc = shoal_pipe_recv(parent_conn, &total, sizeof(total), &len, SHOAL_SEC(10));
    int st;
    waitpid(pid, &st, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc) {
        fprintf(stderr, "recv: %s: %s\n", shoal_strerror(rc), shoal_errdetail());
        return 1;
    }
    printf("%lld\n", (long long)total);
    printf("Elapsed time: %.4f s\n",
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    shoal_pipe_close(parent_conn);
    return total == 1000000 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
