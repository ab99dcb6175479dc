/*
 * manager_seed.h — what the Manager seed examples share: start a private broker (the
 * `shoal broker` command: $SHOAL_CLI, or `shoal` on the PATH) on shm://, as
 * multiprocessing.Manager() starts its server process; run a function in a forked
 * child with a connection of its own; stop the broker.
 */
#ifndef MANAGER_SEED_H
#define MANAGER_SEED_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shoal.h>

static char seed_address[64];

/* Starts the broker and returns its pid once it is ready (or -1). */
static inline pid_t seed_start_broker(void)
{
    snprintf(seed_address, sizeof(seed_address), "shm://seed-manager-%d", (int)getpid());
    const char *cli = getenv("SHOAL_CLI") ? getenv("SHOAL_CLI") : "shoal";
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execlp(cli, cli, "broker", "--listen", seed_address, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *out = fdopen(fds[0], "r");
    char line[256];
    while (out && fgets(line, sizeof(line), out))
        if (!strcmp(line, "shoal broker: ready\n")) {
            fclose(out);
            return pid;
        }
    if (out)
        fclose(out);
    fprintf(stderr, "the broker (%s broker) did not start\n", cli);
    return -1;
}

static inline void seed_stop_broker(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

static inline shoal_manager *seed_connect(void)
{
    shoal_manager *m;
    int rc = shoal_manager_connect(&m, seed_address, NULL);
    if (rc) {
        fprintf(stderr, "manager: %s: %s\n", shoal_strerror(rc), shoal_errdetail());
        exit(1);
    }
    return m;
}

/* Runs fn(m) in a forked child with its own connection; returns its exit code. */
static inline int seed_run(int (*fn)(shoal_manager *m))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        shoal_manager *m = seed_connect();
        int rc = fn(m);
        shoal_manager_close(m);
        fflush(stdout);
        _exit(rc);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return 1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

/* Prints v as Python's print() would (repr of containers) plus a newline. */
static inline void seed_print(const shoal_mv *v)
{
    char buf[1024];
    shoal_mv_format(v, buf, sizeof(buf));
    printf("%s\n", buf);
}

#endif
