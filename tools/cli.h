/* Private to tools/: the command table of the `kinema` CLI and the small argument helpers
 * every command shares. A command is one file (tools/cmd_<name>.c) exporting
 * `int kinema_cmd_<name>(int argc, char **argv)`, where argv[0] is the command name; it
 * returns the process exit status: 0 success, 1 failure, 2 usage error. */
#ifndef KINEMA_TOOLS_CLI_H
#define KINEMA_TOOLS_CLI_H

#include <stdbool.h>
#include <stdio.h>

#define KINEMA_EXIT_OK 0
#define KINEMA_EXIT_FAILURE 1
#define KINEMA_EXIT_USAGE 2

typedef int (*kinema_cmd_fn)(int argc, char **argv);

typedef struct kinema_command {
    const char *name;
    kinema_cmd_fn run;
    const char *summary; /* one line for `kinema --help` */
} kinema_command;

int kinema_cmd_detect(int argc, char **argv);
int kinema_cmd_record(int argc, char **argv);
int kinema_cmd_replay(int argc, char **argv);
int kinema_cmd_inspect(int argc, char **argv);
int kinema_cmd_export(int argc, char **argv);
int kinema_cmd_reconstruct(int argc, char **argv);
int kinema_cmd_synth_obs(int argc, char **argv);
int kinema_cmd_rigid(int argc, char **argv);
int kinema_cmd_skeleton(int argc, char **argv);
int kinema_cmd_calibrate(int argc, char **argv);
/* tools/cmd_calibrate_wand.c: `kinema calibrate wand` and `kinema calibrate check`. */
int kinema_calibrate_wand(int argc, char **argv);
int kinema_calibrate_check(int argc, char **argv);
/* tools/cmd_calibrate_import.c: `kinema calibrate import` (anipose / Pose2Sim TOML). */
int kinema_calibrate_import(int argc, char **argv);
int kinema_cmd_synth_wand(int argc, char **argv);
int kinema_cmd_gesture(int argc, char **argv);

/* Is argv[*i] "--name VALUE" or "--name=VALUE"? Then *value is set, *i advanced past the
 * value and true returned. A missing value prints an error and sets *value = NULL (the
 * caller then returns a usage error). */
bool cli_option(int argc, char **argv, int *i, const char *name, const char **value);
/* "-h" or "--help". */
bool cli_is_help(const char *arg);
/* Strict number parsing: the whole string, within [min, max]. */
bool cli_parse_long(const char *s, long min, long max, long *out);
bool cli_parse_double(const char *s, double min, double max, double *out);
/* Print "kinema CMD: message" and the usage to stderr; returns KINEMA_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Open an output file ("-" = stdout). Prints the error and returns NULL on failure. */
FILE *cli_open_output(const char *cmd, const char *path);
/* Close what cli_open_output returned; false (after printing why) when a write failed. */
bool cli_close_output(const char *cmd, FILE *f, const char *path);

/* Write a camera image (8-bit grey) as a colour PNG with the observations of `camera`
 * drawn over it (ring around each blob, cross at its centroid). 0 on success, -1 after
 * printing why. */
#include "kinema/tracking.h"
int cli_write_detection_png(const char *path, const uint8_t *gray, int width, int height,
                            int stride, const km_observation *obs, int count, int camera);

#endif /* KINEMA_TOOLS_CLI_H */
