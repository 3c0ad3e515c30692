/* kinema gesture train | classify | record: the dynamic-gesture recognizer on files
 * (traj.csv and the gesture model of docs/formats.md). Thin: parse arguments, call the
 * gesture library. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kinema/gesture.h"

#define CMD "gesture"
#define MAX_INPUTS 64

static const char USAGE[] =
    "usage: kinema gesture train --traj train.csv [--traj more.csv ...] --out model [options]\n"
    "       kinema gesture classify --model model --traj test.csv --out predictions.csv\n"
    "       kinema gesture record --label NAME --out traj.csv [--in FILE] [--append]\n"
    "\n"
    "train     every sample of the traj.csv files becomes a template; writes the model\n"
    "          (docs/formats.md \"Gesture model\").\n"
    "          --builtin N        also add the N variants per gesture of the built-in set\n"
    "                             (swipes, push, pull, circles, wave, raise_hand)\n"
    "          --resample N       points per template (default 64)\n"
    "          --matcher NAME     dtw (default), path, cloud\n"
    "          --min-score D      rejection threshold in [0,1] (default 0.3)\n"
    "classify  one row per sample of test.csv: sample,label,score,accepted (label = the\n"
    "          closest template's label; accepted 0 when its score is below the model's\n"
    "          min_score). With labels in test.csv, the accuracy goes to stderr.\n"
    "record    reads 3D samples, one point per line (\"x,y,z\" or \"t_ns,x,y,z\", commas or\n"
    "          spaces, '#' comments), a blank line ends a sample; or a traj.csv stream (its\n"
    "          header first), relabelled. Appends them to --out as samples\n"
    "          <label>-<n> (times 1/rate apart when not given).\n"
    "          --in FILE          input (default \"-\" = stdin)\n"
    "          --rate HZ          sample rate when lines carry no time (default 60)\n"
    "          --append           keep the samples already in --out\n";

static int fail(const char *what)
{
    fprintf(stderr, "kinema %s: %s: %s\n", CMD, what, km_last_error());
    return KINEMA_EXIT_FAILURE;
}

static int train(int argc, char **argv)
{
    const char *inputs[MAX_INPUTS];
    int n_inputs = 0;
    const char *out = NULL, *value;
    long builtin = 0, resample = 64;
    double min_score = -1;
    km_gesture_config cfg = km_gesture_config_default();
    for (int i = 1; i < argc;) {
        if (cli_is_help(argv[i])) {
            fputs(USAGE, stdout);
            return KINEMA_EXIT_OK;
        } else if (cli_option(argc, argv, &i, "--traj", &value)) {
            if (!value || n_inputs >= MAX_INPUTS)
                return cli_usage_error(CMD, USAGE, "--traj needs a file (at most %d)", MAX_INPUTS);
            inputs[n_inputs++] = value;
        } else if (cli_option(argc, argv, &i, "--out", &value)) {
            if (!(out = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--builtin", &value)) {
            if (!cli_parse_long(value, 0, 100, &builtin))
                return cli_usage_error(CMD, USAGE, "--builtin: expected 0..100");
        } else if (cli_option(argc, argv, &i, "--resample", &value)) {
            if (!cli_parse_long(value, 8, 1024, &resample))
                return cli_usage_error(CMD, USAGE, "--resample: expected 8..1024");
        } else if (cli_option(argc, argv, &i, "--matcher", &value)) {
            if (!value || km_gesture_matcher_parse(value, &cfg.matcher))
                return cli_usage_error(CMD, USAGE, "--matcher: dtw, path or cloud");
        } else if (cli_option(argc, argv, &i, "--min-score", &value)) {
            if (!cli_parse_double(value, 0, 1, &min_score))
                return cli_usage_error(CMD, USAGE, "--min-score: expected 0..1");
        } else {
            return cli_usage_error(CMD, USAGE, "unknown option '%s'", argv[i]);
        }
    }
    if (!out || (n_inputs == 0 && builtin == 0))
        return cli_usage_error(CMD, USAGE, "train needs --out and --traj (or --builtin)");
    km_gesture_set *set = km_gesture_set_create();
    if (!set)
        return fail("out of memory");
    for (int k = 0; k < n_inputs; k++)
        if (km_gesture_load_traj_csv(set, inputs[k])) {
            km_gesture_set_destroy(set);
            return fail("reading the trajectories");
        }
    cfg.resample_count = (size_t)resample;
    cfg.max_templates = set->count + (size_t)builtin * KM_GESTURE_BUILTIN_COUNT;
    if (min_score >= 0)
        cfg.min_score = min_score;
    km_status st;
    km_gesture_recognizer *rec = km_gesture_recognizer_create(&cfg, &st);
    int rc = KINEMA_EXIT_OK;
    if (!rec) {
        rc = fail("recognizer");
    } else {
        for (size_t k = 0; k < set->count && rc == KINEMA_EXIT_OK; k++) {
            const km_gesture_sample *s = &set->samples[k];
            if (km_gesture_recognizer_add(rec, s->label, s->traj.pos, s->traj.count)) {
                fprintf(stderr, "kinema %s: sample '%s': %s\n", CMD, s->id, km_last_error());
                rc = KINEMA_EXIT_FAILURE;
            }
        }
        if (rc == KINEMA_EXIT_OK && builtin > 0 && km_gesture_add_builtin(rec, (int)builtin))
            rc = fail("built-in gestures");
        if (rc == KINEMA_EXIT_OK && km_gesture_model_save(rec, out))
            rc = fail("writing the model");
        if (rc == KINEMA_EXIT_OK)
            fprintf(stderr, "kinema %s train: %zu templates, %zu labels -> %s\n", CMD,
                    km_gesture_recognizer_template_count(rec),
                    km_gesture_recognizer_label_count(rec), out);
    }
    km_gesture_recognizer_destroy(rec);
    km_gesture_set_destroy(set);
    return rc;
}

static int classify(int argc, char **argv)
{
    const char *model = NULL, *traj = NULL, *out = NULL, *value;
    for (int i = 1; i < argc;) {
        if (cli_is_help(argv[i])) {
            fputs(USAGE, stdout);
            return KINEMA_EXIT_OK;
        } else if (cli_option(argc, argv, &i, "--model", &value)) {
            if (!(model = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--traj", &value)) {
            if (!(traj = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--out", &value)) {
            if (!(out = value))
                return KINEMA_EXIT_USAGE;
        } else {
            return cli_usage_error(CMD, USAGE, "unknown option '%s'", argv[i]);
        }
    }
    if (!model || !traj || !out)
        return cli_usage_error(CMD, USAGE, "classify needs --model, --traj and --out");
    km_status st;
    km_gesture_recognizer *rec = km_gesture_model_load(model, 0, &st);
    if (!rec)
        return fail("reading the model");
    km_gesture_set *set = km_gesture_set_create();
    if (!set || km_gesture_load_traj_csv(set, traj)) {
        km_gesture_set_destroy(set);
        km_gesture_recognizer_destroy(rec);
        return fail("reading the trajectories");
    }
    FILE *f = cli_open_output(CMD, out);
    int rc = f ? KINEMA_EXIT_OK : KINEMA_EXIT_FAILURE;
    size_t correct = 0, labelled = 0, accepted = 0;
    if (f)
        fprintf(f, "sample,label,score,accepted\n");
    for (size_t k = 0; k < set->count && f; k++) {
        const km_gesture_sample *s = &set->samples[k];
        km_gesture_result r;
        if (km_gesture_classify(rec, s->traj.pos, s->traj.count, &r)) {
            fprintf(stderr, "kinema %s: sample '%s': %s\n", CMD, s->id, km_last_error());
            rc = KINEMA_EXIT_FAILURE;
            break;
        }
        const char *best = r.best_label >= 0
                               ? km_gesture_recognizer_label_name(rec, (size_t)r.best_label)
                               : "";
        fprintf(f, "%s,%s,%.6f,%d\n", s->id, best, r.score, r.label >= 0);
        accepted += r.label >= 0;
        if (s->label[0]) {
            labelled++;
            correct += strcmp(best, s->label) == 0;
        }
    }
    if (f && !cli_close_output(CMD, f, out))
        rc = KINEMA_EXIT_FAILURE;
    if (rc == KINEMA_EXIT_OK) {
        fprintf(stderr, "kinema %s classify: %zu samples, %zu accepted", CMD, set->count, accepted);
        if (labelled)
            fprintf(stderr, ", accuracy %.4f (%zu/%zu)", (double)correct / labelled, correct, labelled);
        fprintf(stderr, "\n");
    }
    km_gesture_set_destroy(set);
    km_gesture_recognizer_destroy(rec);
    return rc;
}

/* Parses "x,y,z" or "t_ns,x,y,z" (commas and/or spaces). 3 or 4 on success, -1 otherwise. */
static int parse_point(char *line, double v[4])
{
    int n = 0;
    char *p = line;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p || *p == '\n' || *p == '\r')
            break;
        if (n == 4)
            return -1;
        char *end;
        errno = 0;
        v[n] = strtod(p, &end);
        if (end == p || errno || !isfinite(v[n]))
            return -1;
        n++;
        p = end;
        if (*p && *p != ' ' && *p != '\t' && *p != ',' && *p != '\n' && *p != '\r')
            return -1;
    }
    return n == 3 || n == 4 ? n : (n == 0 ? 0 : -1);
}

static int record(int argc, char **argv)
{
    const char *label = NULL, *in = "-", *out = NULL, *value;
    double rate = 60.0;
    bool append = false;
    for (int i = 1; i < argc;) {
        if (cli_is_help(argv[i])) {
            fputs(USAGE, stdout);
            return KINEMA_EXIT_OK;
        } else if (cli_option(argc, argv, &i, "--label", &value)) {
            if (!(label = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--in", &value)) {
            if (!(in = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--out", &value)) {
            if (!(out = value))
                return KINEMA_EXIT_USAGE;
        } else if (cli_option(argc, argv, &i, "--rate", &value)) {
            if (!cli_parse_double(value, 1, 100000, &rate))
                return cli_usage_error(CMD, USAGE, "--rate: expected 1..100000 Hz");
        } else if (!strcmp(argv[i], "--append")) {
            append = true;
            i++;
        } else {
            return cli_usage_error(CMD, USAGE, "unknown option '%s'", argv[i]);
        }
    }
    if (!label || !out)
        return cli_usage_error(CMD, USAGE, "record needs --label and --out");
    km_gesture_set *set = km_gesture_set_create();
    km_gesture_set *got = km_gesture_set_create();
    km_trajectory cur = {0};
    int rc = KINEMA_EXIT_OK;
    if (!set || !got || km_trajectory_init(&cur, 1 << 16)) {
        rc = fail("out of memory");
        goto done;
    }
    if (append) {
        FILE *probe = fopen(out, "r");
        if (probe) {
            fclose(probe);
            if (km_gesture_load_traj_csv(set, out)) {
                rc = fail("reading the existing --out");
                goto done;
            }
        }
    }
    size_t start = 1; /* recorded samples are numbered after the label's existing ones */
    for (size_t k = 0; k < set->count; k++)
        if (!strcmp(set->samples[k].label, label))
            start++;
    FILE *f = strcmp(in, "-") ? fopen(in, "r") : stdin;
    if (!f) {
        fprintf(stderr, "kinema %s: %s: %s\n", CMD, in, strerror(errno));
        rc = KINEMA_EXIT_FAILURE;
        goto done;
    }
    char line[4096];
    int line_no = 0;
    bool first = true, traj_csv = false;
    char id[KM_GESTURE_NAME_MAX];
    /* a traj.csv stream: read whole, relabel */
    if (fgets(line, sizeof line, f)) {
        line_no = 1;
        if (!strncmp(line, "sample,label,t_ns,x,y,z", 23)) {
            traj_csv = true;
            size_t cap = 1 << 16, len = strlen(line);
            char *text = malloc(cap);
            memcpy(text, line, len);
            size_t r;
            while (text && (r = fread(text + len, 1, cap - len - 1, f)) > 0) {
                len += r;
                if (len + 1 == cap) {
                    char *bigger = realloc(text, cap *= 2);
                    if (!bigger) {
                        free(text);
                        text = NULL;
                    }
                    text = bigger;
                }
            }
            if (!text || km_gesture_parse_traj_csv(got, text, len, in)) {
                free(text);
                if (f != stdin)
                    fclose(f);
                rc = fail("reading the traj.csv stream");
                goto done;
            }
            free(text);
        }
    }
    while (!traj_csv) {
        bool eof = false;
        if (!first && !fgets(line, sizeof line, f)) {
            eof = true;
        } else if (!first) {
            line_no++;
        }
        first = false;
        if (!eof && line[0] == '#')
            continue;
        double v[4];
        int n = eof ? 0 : parse_point(line, v);
        if (n < 0) {
            fprintf(stderr, "kinema %s: %s:%d: expected x,y,z or t_ns,x,y,z\n", CMD, in, line_no);
            rc = KINEMA_EXIT_FAILURE;
            break;
        }
        if (n == 0) { /* blank line or end: the sample is complete */
            if (cur.count >= 2) {
                snprintf(id, sizeof id, "%s-%zu", label, start + got->count);
                if (km_gesture_set_add(got, id, label, -1, cur.pos, cur.t_ns, cur.count)) {
                    rc = fail("storing the sample");
                    break;
                }
            } else if (cur.count == 1) {
                fprintf(stderr, "kinema %s: %s:%d: a sample needs at least 2 points\n", CMD, in,
                        line_no);
                rc = KINEMA_EXIT_FAILURE;
                break;
            }
            km_trajectory_clear(&cur);
            if (eof)
                break;
            continue;
        }
        int64_t t = n == 4 ? (int64_t)v[0] : (int64_t)llround((double)cur.count * 1e9 / rate);
        const double *p = n == 4 ? v + 1 : v;
        if (cur.count && t <= cur.t_ns[cur.count - 1]) {
            fprintf(stderr, "kinema %s: %s:%d: time does not increase\n", CMD, in, line_no);
            rc = KINEMA_EXIT_FAILURE;
            break;
        }
        if (km_trajectory_push(&cur, km_vec3_make(p[0], p[1], p[2]), t)) {
            fprintf(stderr, "kinema %s: %s:%d: sample longer than %zu points\n", CMD, in, line_no,
                    cur.capacity);
            rc = KINEMA_EXIT_FAILURE;
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    if (rc)
        goto done;
    for (size_t k = 0; k < got->count; k++) {
        const km_gesture_sample *s = &got->samples[k];
        snprintf(id, sizeof id, "%s-%zu", label, start + k);
        if (km_gesture_set_add(set, id, label, s->subject, s->traj.pos, s->traj.t_ns, s->traj.count)) {
            rc = fail("storing the sample");
            goto done;
        }
    }
    FILE *o = cli_open_output(CMD, out);
    if (!o || km_gesture_write_traj_csv(set, o)) {
        if (o)
            fclose(o);
        rc = KINEMA_EXIT_FAILURE;
        goto done;
    }
    if (!cli_close_output(CMD, o, out)) {
        rc = KINEMA_EXIT_FAILURE;
        goto done;
    }
    fprintf(stderr, "kinema %s record: %zu samples of '%s' added, %zu in %s\n", CMD, got->count,
            label, set->count, out);
done:
    km_trajectory_release(&cur);
    km_gesture_set_destroy(got);
    km_gesture_set_destroy(set);
    return rc;
}

int kinema_cmd_gesture(int argc, char **argv)
{
    if (argc < 2 || cli_is_help(argv[1])) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? KINEMA_EXIT_USAGE : KINEMA_EXIT_OK;
    }
    if (!strcmp(argv[1], "train"))
        return train(argc - 1, argv + 1);
    if (!strcmp(argv[1], "classify"))
        return classify(argc - 1, argv + 1);
    if (!strcmp(argv[1], "record"))
        return record(argc - 1, argv + 1);
    return cli_usage_error(CMD, USAGE, "unknown subcommand '%s' (train, classify, record)", argv[1]);
}
