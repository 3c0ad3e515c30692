/* --help for the benchmarks: every program of the project answers it (README "Benchmarks").
 * Prints `usage` on stdout and exits 0 when --help or -h is among the arguments. */
#ifndef KINEMA_BENCH_HELP_H
#define KINEMA_BENCH_HELP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void bench_help(int argc, char **argv, const char *usage)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            exit(0);
        }
}

#endif /* KINEMA_BENCH_HELP_H */
