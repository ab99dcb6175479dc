/*
 * seed_queue_five_workers.c — tutorial C.4 ("Queue"): five worker processes each
 * count to 1,000,000 and put their total on a queue; the parent gets the five totals
 * and prints their sum, 5000000. Exits non-zero if the sum is wrong.
 */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shoal.h>

#define WORKERS 5

static int worker(shoal_queue *q)
{
    volatile int64_t count = 0;
    for (int i = 0; i < 1000000; i++)
        count = count + 1;
    int64_t c = count;
    return shoal_queue_put(q, &c, sizeof(c), SHOAL_SEC(10)) != 0;
}

int main(void)
{
    shoal_queue *q;
    shoal_queue_config cfg = {.type = shoal_typecode('q')};
    int rc = shoal_queue_open(&q, NULL, SHOAL_CREATE, &cfg, NULL);
    if (rc) {
        fprintf(stderr, "queue: %s: %s\n", shoal_strerror(rc), shoal_errdetail());
        return 1;
    }
    pid_t pids[WORKERS];
    fflush(stdout);
    for (int i = 0; i < WORKERS; i++)
        if ((pids[i] = fork()) == 0)
            _exit(worker(q));
    int64_t sum = 0;
    for (int i = 0; i < WORKERS; i++) {
        int64_t total;
        size_t len;
        if ((rc = shoal_queue_get(q, &total, sizeof(total), &len, SHOAL_SEC(30))) != 0) {
            fprintf(stderr, "get: %s: %s\n", shoal_strerror(rc), shoal_errdetail());
            return 1;
        }
        sum += total;
    }
    int failed = 0;
    for (int i = 0; i < WORKERS; i++) {
        int st;
        failed |=
            waitpid(pids[i], &st, 0) != pids[i] || !WIFEXITED(st) || WEXITSTATUS(st);
    }
    printf("%lld\n", (long long)sum);
    shoal_queue_close(q);
    return sum == 5000000 && !failed ? 0 : 1;
}
