/*
 * seed_queue_squares.c — tutorial B.4 ("Queue"): process p1 puts the squares of
 * [1, 2, 3, 4] on a queue; after p1 has ended, process p2 prints the queue's elements
 * and then "Queue is now empty!".
 *
 * The queue is anonymous (created without a name) and shared with the children
 * through fork, as multiprocessing.Queue() is. Exits non-zero if p2 did not get
 * exactly 1 4 9 16.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shoal.h>

static int square_list(shoal_queue *q)
{
    int32_t mylist[] = {1, 2, 3, 4};
    for (int i = 0; i < 4; i++) {
        int32_t sq = mylist[i] * mylist[i];
        if (shoal_queue_put(q, &sq, sizeof(sq), SHOAL_SEC(10)) != 0)
            return 1;
    }
    return 0;
}

static int print_queue(shoal_queue *q)
{
    const int32_t want[] = {1, 4, 9, 16};
    int n = 0, bad = 0;
    int32_t v;
    size_t len;
    printf("Queue elements:\n");
    while (shoal_queue_try_get(q, &v, sizeof(v), &len) == 0) {
        printf("%d\n", v);
        bad |= n >= 4 || v != want[n];
        n++;
    }
    printf("Queue is now empty!\n");
    return bad || n != 4;
}

static int run(int (*fn)(shoal_queue *), shoal_queue *q)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int rc = fn(q);
        fflush(stdout); /* _exit does not flush */
        _exit(rc);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return 1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

int main(void)
{
    shoal_queue *q;
    shoal_queue_config cfg = {.type = shoal_typecode('i')};
    int rc = shoal_queue_open(&q, NULL, SHOAL_CREATE, &cfg, NULL);
    if (rc) {
        fprintf(stderr, "queue: %s: %s\n", shoal_strerror(rc), shoal_errdetail());
        return 1;
    }
    rc = run(square_list, q) || run(print_queue, q); /* p1, then p2 */
    shoal_queue_close(q);
    return rc;
}
