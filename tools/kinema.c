/* kinema: the command-line tool. Thin: each command parses its arguments and calls the
 * library; every pipeline stage can so be run alone on files (formats.md).
 *
 * To add a command: write tools/cmd_<name>.c with kinema_cmd_<name>(), declare it in
 * tools/cli.h, add a row to COMMANDS below and the file to tools/meson.build. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kinema/core.h"

static const kinema_command COMMANDS[] = {
    {"detect", kinema_cmd_detect, "2D blob detection: images or a synthetic run -> obs.csv"},
    {"reconstruct", kinema_cmd_reconstruct, "obs.csv + rig.yaml -> 3D markers.csv"},
    {"synth-obs", kinema_cmd_synth_obs,
     "synthetic 2D observations (projected ground truth + noise) -> obs.csv, rig, truth"},
    {"rigid", kinema_cmd_rigid,
     "obs.csv + rig + rigid body definitions -> rigid.csv; `rigid define` makes definitions"},
    {"skeleton", kinema_cmd_skeleton,
     "skeletal tracking: calibrate a subject (C3D), solve skeletons (C3D/markers/obs) -> "
     "skeleton.csv or BVH"},
    {"calibrate", kinema_cmd_calibrate,
     "camera calibration: intrinsics (board images), wand (rig extrinsics), check"},
    {"synth-wand", kinema_cmd_synth_wand,
     "synthetic wand wave + L-frame -> wand.csv, ground.csv, intrinsics, true rig"},
    {"record", kinema_cmd_record, "record the synthetic cameras (+ rig, + solved frames) -> .kmr"},
    {"replay", kinema_cmd_replay, "run the pipeline on a recording -> markers.csv / publish"},
    {"inspect", kinema_cmd_inspect, "recording summary: streams, rates, drops, gaps, CRC"},
    {"export", kinema_cmd_export, "image stream of a recording -> PNG sequence"},
    {"gesture", kinema_cmd_gesture,
     "gesture templates: train (traj.csv -> model), classify, record (stdin -> traj.csv)"},
};
#define COMMAND_COUNT (sizeof COMMANDS / sizeof COMMANDS[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: kinema [--log-level error|warn|info|debug] <command> [options]\n"
               "       kinema <command> --help\n\ncommands:\n");
    for (size_t k = 0; k < COMMAND_COUNT; k++)
        fprintf(f, "  %-12s %s\n", COMMANDS[k].name, COMMANDS[k].summary);
    fprintf(f, "\nFile formats: docs/formats.md. Commands: docs/cli.md.\n");
}

int main(int argc, char **argv)
{
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        const char *value;
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return KINEMA_EXIT_OK;
        }
        if (cli_option(argc, argv, &i, "--log-level", &value)) {
            km_log_level level;
            if (!value || km_log_level_parse(value, &level) != KM_OK) {
                fprintf(stderr, "kinema: --log-level: expected error, warn, info or debug\n");
                return KINEMA_EXIT_USAGE;
            }
            km_log_set_level(level);
            continue;
        }
        fprintf(stderr, "kinema: unknown option '%s'\n\n", argv[i]);
        usage(stderr);
        return KINEMA_EXIT_USAGE;
    }
    if (i >= argc) {
        fprintf(stderr, "kinema: no command given\n\n");
        usage(stderr);
        return KINEMA_EXIT_USAGE;
    }
    for (size_t k = 0; k < COMMAND_COUNT; k++)
        if (strcmp(argv[i], COMMANDS[k].name) == 0)
            return COMMANDS[k].run(argc - i, argv + i);
    fprintf(stderr, "kinema: unknown command '%s'\n\n", argv[i]);
    usage(stderr);
    return KINEMA_EXIT_USAGE;
}

/* ------------------------------------------------------------ helpers */

bool cli_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

bool cli_option(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *arg = argv[*i];
    const size_t len = strlen(name);
    if (strncmp(arg, name, len) != 0)
        return false;
    if (arg[len] == '=') {
        *value = arg + len + 1;
        (*i)++;
        return true;
    }
    if (arg[len] != '\0')
        return false;
    if (*i + 1 >= argc) {
        fprintf(stderr, "kinema: option %s needs a value\n", name);
        *value = NULL;
        (*i)++;
        return true;
    }
    *value = argv[*i + 1];
    *i += 2;
    return true;
}

bool cli_parse_long(const char *s, long min, long max, long *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end != '\0' || errno != 0 || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool cli_parse_double(const char *s, double min, double max, double *out)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end != '\0' || errno != 0 || !isfinite(v) || v < min || v > max)
        return false;
    *out = v;
    return true;
}

int cli_usage_error(const char *cmd, const char *usage_text, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kinema %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n\n%s", usage_text);
    va_end(ap);
    return KINEMA_EXIT_USAGE;
}

FILE *cli_open_output(const char *cmd, const char *path)
{
    if (strcmp(path, "-") == 0)
        return stdout;
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "kinema %s: cannot write %s: %s\n", cmd, path, strerror(errno));
    return f;
}

bool cli_close_output(const char *cmd, FILE *f, const char *path)
{
    bool ok = !ferror(f);
    if (f == stdout)
        ok = fflush(f) == 0 && ok;
    else
        ok = fclose(f) == 0 && ok;
    if (!ok)
        fprintf(stderr, "kinema %s: error writing %s\n", cmd, path);
    return ok;
}
