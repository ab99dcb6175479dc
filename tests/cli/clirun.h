/* clirun.h — running the `shoal` command from a test and checking its output. */
#ifndef SHOAL_CLIRUN_H
#define SHOAL_CLIRUN_H

#include "testutil.h"

static char out[16384];

/* Runs `shoal <args>`, capturing stdout+stderr into out; returns the exit code, or
 * 128 + the signal that killed it. */
static int run_cli(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' %s 2>&1", SHOAL_CLI_PATH, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    if (WIFEXITED(st) && WEXITSTATUS(st) >= 128) /* the shell reports a signal so */
        return WEXITSTATUS(st);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#define ASSERT_OUT_HAS(s)                                                                \
    do {                                                                                 \
        if (!strstr(out, (s)))                                                           \
            fail_msg("output lacks \"%s\":\n%s", (s), out);                              \
    } while (0)

#endif
