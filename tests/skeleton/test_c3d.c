/* C3D reader and writer: every real file of the data folder parses or fails with a clear
 * error (never crashes), the six processor/storage variants of c3d.org sample02 decode to
 * the same data, known header/parameter values, writer round trips (float and int16),
 * malformed and truncated input. Real data from KINEMA_DATA (skipped when absent). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kinema/skeleton.h"

static const char *data_root(void)
{
    const char *d = getenv("KINEMA_DATA");
    if (!d || !*d)
        d = getenv("KINEMA_DATA_DEFAULT");
    return d;
}

/* Path of a file under <data>/c3d; false (and a skip message) when absent. */
static bool c3d_path(char *out, size_t size, const char *rel)
{
    const char *root = data_root();
    if (!root)
        return false;
    snprintf(out, size, "%s/c3d/%s", root, rel);
    struct stat sb;
    return stat(out, &sb) == 0;
}

#define NEED_FILE(path, rel)                                                              \
    do {                                                                                  \
        if (!c3d_path(path, sizeof path, rel)) {                                          \
            print_message("real data %s absent (set KINEMA_DATA): skipped\n", rel);       \
            skip();                                                                       \
        }                                                                                 \
    } while (0)

/* ------------------------------------------------------------ all real files */

static int walk(const char *dir, char paths[][512], int capacity, int count)
{
    DIR *d = opendir(dir);
    if (!d)
        return count;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            count = walk(p, paths, capacity, count);
        } else {
            size_t n = strlen(p);
            if (n > 4 && !strcasecmp(p + n - 4, ".c3d") && count < capacity)
                snprintf(paths[count++], 512, "%s", p);
        }
    }
    closedir(d);
    return count;
}

static void test_every_real_file(void **state)
{
    (void)state;
    char dir[512];
    NEED_FILE(dir, "");
    static char paths[128][512];
    int n = walk(dir, paths, 128, 0);
    assert_true(n >= 27);
    int parsed = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        km_c3d c;
        km_status st = km_c3d_read(paths[i], &c);
        if (st == KM_OK) {
            parsed++;
            assert_true(c.point_count >= 0 && c.frame_count >= 0);
            assert_true(c.units_to_m > 0.0);
            /* valid coordinates are finite and inside a 100 m volume */
            size_t nv = (size_t)c.point_count * (size_t)c.frame_count;
            for (size_t k = 0; k < nv; k++) {
                if (c.residual[k] < 0)
                    continue;
                for (int a = 0; a < 3; a++) {
                    double v = c.pos[k * 3 + (size_t)a] * c.units_to_m;
                    assert_true(isfinite(v) && fabs(v) < 100.0);
                }
            }
            print_message("  ok   %-70s %3d pts %5d frames %7.2f Hz %s %s\n",
                          paths[i] + strlen(dir), c.point_count, c.frame_count, c.rate_hz,
                          c.processor == KM_C3D_PROCESSOR_INTEL ? "Intel"
                          : c.processor == KM_C3D_PROCESSOR_DEC ? "DEC"
                                                                : "SGI",
                          c.scale < 0 ? "float" : "int");
        } else {
            failed++;
            /* a clear error: format error naming the file and an offset */
            assert_int_equal(st, KM_ERR_FORMAT);
            assert_non_null(strstr(km_last_error(), paths[i]));
            assert_non_null(strstr(km_last_error(), "offset"));
            print_message("  err  %s\n", km_last_error());
        }
        km_c3d_free(&c);
    }
    /* Only ezc3d's Optotrak.c3d (28 KB for 1149 frames of 54 points) is expected to fail. */
    assert_int_equal(failed, 1);
    assert_int_equal(parsed, n - 1);
}

static void test_optotrak_truncated(void **state)
{
    (void)state;
    char p[512];
    NEED_FILE(p, "ezc3d_testfiles/Optotrak.c3d");
    km_c3d c;
    assert_int_equal(km_c3d_read(p, &c), KM_ERR_FORMAT);
    assert_non_null(strstr(km_last_error(), "truncated"));
    assert_null(c.pos);
    km_c3d_free(&c);
}

/* ---------------------------------------------------------------- sample02 */

static void test_sample02_identical(void **state)
{
    (void)state;
    static const char *names[6] = {"pc_real", "pc_int", "dec_int", "dec_real", "sgi_int",
                                   "sgi_real"};
    static const km_c3d_processor procs[6] = {
        KM_C3D_PROCESSOR_INTEL, KM_C3D_PROCESSOR_INTEL, KM_C3D_PROCESSOR_DEC,
        KM_C3D_PROCESSOR_DEC,   KM_C3D_PROCESSOR_SGI,   KM_C3D_PROCESSOR_SGI};
    km_c3d ref;
    char p[512];
    NEED_FILE(p, "c3d_org/sample02/pc_real.c3d");
    assert_int_equal(km_c3d_read(p, &ref), KM_OK);
    /* documented reference values */
    assert_int_equal(ref.point_count, 36);
    assert_int_equal(ref.frame_count, 89);
    assert_int_equal(ref.first_frame, 1);
    assert_true(fabs(ref.rate_hz - 50.0) < 1e-9);
    assert_true(fabs(fabs(ref.scale) - 0.28) < 0.002);
    assert_int_equal(ref.data_start_block, 13);
    assert_true(fabs(ref.analog_rate_hz - 200.0) < 1e-6);
    assert_int_equal(ref.analog_per_frame, 16 * 4);
    const km_c3d_parameter *used = km_c3d_find_parameter(&ref, "analog", "used");
    assert_non_null(used);
    assert_true(km_c3d_parameter_number(used, 0) == 16.0);
    assert_string_equal(ref.labels[0], "RFT1");
    size_t nv = (size_t)ref.point_count * (size_t)ref.frame_count;
    int valid = 0;
    for (size_t k = 0; k < nv; k++)
        valid += ref.residual[k] >= 0;
    assert_true(valid > (int)(nv * 9 / 10));

    for (int f = 0; f < 6; f++) {
        char q[512], rel[128];
        snprintf(rel, sizeof rel, "c3d_org/sample02/%s.c3d", names[f]);
        NEED_FILE(q, rel);
        km_c3d c;
        assert_int_equal(km_c3d_read(q, &c), KM_OK);
        assert_int_equal(c.processor, procs[f]);
        assert_int_equal(c.scale < 0, strstr(names[f], "real") != NULL);
        assert_int_equal(c.point_count, ref.point_count);
        assert_int_equal(c.frame_count, ref.frame_count);
        assert_int_equal(c.parameter_count, ref.parameter_count);
        for (int i = 0; i < c.point_count; i++)
            assert_string_equal(c.labels[i], ref.labels[i]);
        /* every parameter: same type, dims and values */
        for (int i = 0; i < ref.parameter_count; i++) {
            const km_c3d_parameter *a = &ref.parameters[i];
            const km_c3d_parameter *b = km_c3d_find_parameter(&c, a->group, a->name);
            assert_non_null(b);
            assert_int_equal(a->type, b->type);
            assert_int_equal(a->element_count, b->element_count);
            if (!strcmp(a->group, "POINT") && !strcmp(a->name, "SCALE"))
                continue; /* negative in the float files: that is what tells them apart */
            for (int e = 0; e < a->element_count; e++) {
                double va = km_c3d_parameter_number(a, e), vb = km_c3d_parameter_number(b, e);
                if (!(fabs(va - vb) <= 1e-6 * (1.0 + fabs(va)))) {
                    print_message("%s: %s:%s[%d] %g != %g\n", names[f], a->group, a->name, e,
                                  vb, va);
                    fail();
                }
            }
            if (a->type == KM_C3D_TYPE_CHAR)
                assert_memory_equal(a->data, b->data, (size_t)a->element_count);
        }
        /* The six files were converted from one recording by different programs: the
         * validity of every point is the same, coordinates agree to one quantisation step
         * (|scale| = 0.28 mm; the int files round, two DEC values differ by one count) and
         * the camera masks of a few points differ (bit 8 vs 9 of the DEC files). */
        double max_diff = 0.0;
        size_t same = 0, values = 0;
        for (size_t k = 0; k < nv; k++) {
            assert_int_equal(c.residual[k] < 0, ref.residual[k] < 0);
            if (ref.residual[k] < 0)
                continue;
            assert_true(fabs(c.residual[k] - ref.residual[k]) <= fabs(c.scale) * 1.001);
            for (int a = 0; a < 3; a++) {
                double d = fabs(c.pos[k * 3 + (size_t)a] - ref.pos[k * 3 + (size_t)a]);
                if (d > max_diff)
                    max_diff = d;
                same += d < 1e-3;
                values++;
            }
        }
        print_message("  %-9s max |diff| to pc_real: %.3f mm, %.2f%% of coordinates within "
                      "0.001 mm\n", names[f], max_diff, 100.0 * (double)same / (double)values);
        assert_true(max_diff <= fabs(c.scale) * 1.001);
        assert_true((double)same >= 0.99 * (double)values);
        km_c3d_free(&c);
    }
    km_c3d_free(&ref);
}

static void test_sample01_int_equals_float(void **state)
{
    (void)state;
    char pi[512], pr[512];
    NEED_FILE(pi, "c3d_org/sample01/Eb015pi.c3d");
    NEED_FILE(pr, "c3d_org/sample01/Eb015pr.c3d");
    km_c3d a, b;
    assert_int_equal(km_c3d_read(pi, &a), KM_OK);
    assert_int_equal(km_c3d_read(pr, &b), KM_OK);
    assert_true(a.scale > 0 && b.scale < 0);
    assert_int_equal(a.point_count, 26);
    assert_int_equal(a.frame_count, 450);
    size_t nv = (size_t)a.point_count * (size_t)a.frame_count;
    for (size_t k = 0; k < nv; k++) {
        assert_int_equal(a.residual[k] < 0, b.residual[k] < 0);
        if (a.residual[k] >= 0)
            for (int i = 0; i < 3; i++)
                assert_true(fabs(a.pos[k * 3 + (size_t)i] - b.pos[k * 3 + (size_t)i]) < 1e-3);
    }
    km_c3d_free(&a);
    km_c3d_free(&b);
}

static void test_plug_in_gait_file(void **state)
{
    (void)state;
    char p[512];
    NEED_FILE(p, "c3d_org/sample00_nexgen_ergonomics/test1.c3d");
    km_c3d c;
    assert_int_equal(km_c3d_read(p, &c), KM_OK);
    assert_int_equal(c.point_count, 40);
    assert_int_equal(c.frame_count, 721);
    assert_true(fabs(c.rate_hz - 128.0) < 1e-9);
    assert_string_equal(c.units, "m");
    assert_true(c.units_to_m == 1.0);
    static const char *pig[] = {"LFHD", "RFHD", "LBHD", "RBHD", "C7",   "T10",  "CLAV",
                                "STRN", "LSHO", "LELB", "LWRA", "LWRB", "LFIN", "RSHO",
                                "RELB", "RWRA", "RWRB", "RFIN", "LASI", "RASI", "LTHI",
                                "LKNE", "LTIB", "LANK", "LHEE", "LTOE", "RTHI", "RKNE",
                                "RTIB", "RANK", "RHEE", "RTOE"};
    for (size_t i = 0; i < sizeof pig / sizeof pig[0]; i++)
        assert_true(km_c3d_find_label(&c, pig[i]) >= 0);
    assert_int_equal(km_c3d_find_label(&c, "NOPE"), -1);
    /* one frame as markers in metres (this file is already Y up): the head is above the
     * ankles */
    km_marker items[64];
    km_marker_set set = {0, 0, 0, 64, items};
    assert_int_equal(km_c3d_frame_markers(&c, 0, NULL, &set), KM_OK);
    assert_true(set.count >= 30);
    int head = km_c3d_find_label(&c, "LFHD"), ank = km_c3d_find_label(&c, "LANK");
    km_vec3 ph = {0}, pa = {0};
    for (int i = 0; i < set.count; i++) {
        if ((int)items[i].id == head)
            ph = items[i].pos_m;
        if ((int)items[i].id == ank)
            pa = items[i].pos_m;
    }
    assert_true(ph.y - pa.y > 1.2 && ph.y - pa.y < 2.0);
    /* capacity */
    km_marker_set small = {0, 0, 0, 4, items};
    assert_int_equal(km_c3d_frame_markers(&c, 0, NULL, &small), KM_ERR_CAPACITY);
    assert_int_equal(small.count, 4);
    assert_int_equal(km_c3d_frame_markers(&c, 721, NULL, &set), KM_ERR_INVALID_ARGUMENT);
    km_c3d_free(&c);
}

static void test_dec_int_edge_case(void **state)
{
    (void)state;
    char p[512];
    NEED_FILE(p, "ezc3d_testfiles/read_NOTworking2.c3d");
    km_c3d c;
    assert_int_equal(km_c3d_read(p, &c), KM_OK);
    assert_int_equal(c.processor, KM_C3D_PROCESSOR_DEC);
    assert_true(c.scale > 0);
    assert_int_equal(c.point_count, 23);
    assert_int_equal(c.frame_count, 670);
    assert_int_equal(c.first_frame, 0);
    assert_true(fabs(c.rate_hz - 25.0) < 1e-9);
    assert_string_equal(c.labels[0], "LFHD");
    /* a head marker of a standing person: about 1.5-1.9 m up (Z up, mm) */
    assert_true(c.pos[2] > 1500 && c.pos[2] < 1900);
    km_c3d_free(&c);
}

/* ------------------------------------------------------------------ writer */

static void fill_synthetic(km_c3d *c)
{
    for (int f = 0; f < c->frame_count; f++)
        for (int p = 0; p < c->point_count; p++) {
            size_t k = (size_t)f * (size_t)c->point_count + (size_t)p;
            c->pos[k * 3 + 0] = 0.1 * p + 0.001 * f;
            c->pos[k * 3 + 1] = -0.5 + 0.01 * p;
            c->pos[k * 3 + 2] = 1.0 + 0.002 * f;
            c->residual[k] = (p + f) % 7 == 0 ? -1.0f : 0.0005f;
            c->camera_mask[k] = (uint8_t)(p & 0x7f);
        }
    for (int p = 0; p < c->point_count; p++)
        snprintf(c->labels[p], KM_C3D_LABEL_MAX, "MK%d", p);
}

static void round_trip(double scale)
{
    km_c3d c, back;
    assert_int_equal(km_c3d_alloc(&c, 300, 20), KM_OK); /* > 255: LABELS2 */
    fill_synthetic(&c);
    c.rate_hz = 120.0;
    c.scale = scale;
    uint8_t *buf;
    size_t size;
    assert_int_equal(km_c3d_write_memory(&c, &buf, &size), KM_OK);
    assert_int_equal(size % 512, 0);
    assert_int_equal(km_c3d_parse(buf, size, "rt", &back), KM_OK);
    free(buf);
    assert_int_equal(back.point_count, 300);
    assert_int_equal(back.frame_count, 20);
    assert_true(back.rate_hz == 120.0);
    assert_string_equal(back.units, "m");
    assert_string_equal(back.labels[0], "MK0");
    assert_string_equal(back.labels[299], "MK299");
    double tol = scale > 0 ? scale / 2 + 1e-12 : 1e-6;
    for (size_t k = 0; k < 300u * 20u; k++) {
        assert_int_equal(back.residual[k] < 0, c.residual[k] < 0);
        if (c.residual[k] < 0)
            continue;
        assert_int_equal(back.camera_mask[k], c.camera_mask[k]);
        for (int a = 0; a < 3; a++)
            assert_true(fabs(back.pos[k * 3 + (size_t)a] - c.pos[k * 3 + (size_t)a]) <= tol);
    }
    km_c3d_free(&back);
    km_c3d_free(&c);
}

static void test_write_round_trip_float(void **state)
{
    (void)state;
    round_trip(-1.0);
}

static void test_write_round_trip_int(void **state)
{
    (void)state;
    round_trip(0.001);
}

static void test_write_int_out_of_range(void **state)
{
    (void)state;
    km_c3d c;
    assert_int_equal(km_c3d_alloc(&c, 1, 1), KM_OK);
    c.pos[0] = 10.0;
    c.residual[0] = 0.0f;
    c.scale = 0.0001; /* 10 m / 0.1 mm does not fit in int16 */
    uint8_t *buf;
    size_t size;
    assert_int_equal(km_c3d_write_memory(&c, &buf, &size), KM_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(km_last_error(), "int16"));
    km_c3d_free(&c);
}

static void test_write_file_real_copy(void **state)
{
    (void)state;
    char p[512];
    NEED_FILE(p, "c3d_org/sample00_nexgen_ergonomics/test1.c3d");
    km_c3d c, back;
    assert_int_equal(km_c3d_read(p, &c), KM_OK);
    char out[] = "/tmp/kinema_test_c3d_XXXXXX";
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(km_c3d_write(out, &c), KM_OK);
    assert_int_equal(km_c3d_read(out, &back), KM_OK);
    remove(out);
    assert_int_equal(back.point_count, c.point_count);
    assert_int_equal(back.frame_count, c.frame_count);
    for (int i = 0; i < c.point_count; i++)
        assert_string_equal(back.labels[i], c.labels[i]);
    size_t nv = (size_t)c.point_count * (size_t)c.frame_count;
    for (size_t k = 0; k < nv * 3; k++)
        if (c.residual[k / 3] >= 0)
            assert_true(fabs(back.pos[k] - c.pos[k]) < 1e-6);
    km_c3d_free(&back);
    km_c3d_free(&c);
    assert_int_equal(km_c3d_write("/nonexistent-dir/x.c3d", &c), KM_ERR_IO);
}

/* --------------------------------------------------------------- malformed */

static uint8_t *valid_file(size_t *size)
{
    km_c3d c;
    assert_int_equal(km_c3d_alloc(&c, 3, 4), KM_OK);
    fill_synthetic(&c);
    uint8_t *buf;
    assert_int_equal(km_c3d_write_memory(&c, &buf, size), KM_OK);
    km_c3d_free(&c);
    return buf;
}

static void expect_format_error(const uint8_t *buf, size_t size, const char *needle)
{
    km_c3d c;
    km_status st = km_c3d_parse(buf, size, "bad.c3d", &c);
    assert_int_equal(st, KM_ERR_FORMAT);
    assert_non_null(strstr(km_last_error(), "bad.c3d: offset"));
    if (needle && !strstr(km_last_error(), needle)) {
        print_message("message was: %s\n", km_last_error());
        fail();
    }
    assert_null(c.pos);
    km_c3d_free(&c);
}

static void test_malformed(void **state)
{
    (void)state;
    size_t size;
    uint8_t *good = valid_file(&size);
    uint8_t *buf = malloc(size);
    km_c3d c;
    assert_int_equal(km_c3d_parse(good, size, "good", &c), KM_OK);
    km_c3d_free(&c);

    /* every truncation that cuts data is an error (the last block may be padding), and
     * none crashes */
    for (size_t n = 0; n < size - 512; n++) {
        km_status st = km_c3d_parse(good, n, "bad.c3d", &c);
        assert_int_not_equal(st, KM_OK);
        km_c3d_free(&c);
    }
    expect_format_error(good, 100, "512-byte header");
    size_t data_at = ((size_t)(good[16] | (good[17] << 8)) - 1) * 512;
    expect_format_error(good, data_at + 100, "truncated");

    memcpy(buf, good, size);
    buf[1] = 0x51;
    expect_format_error(buf, size, "0x50");
    memcpy(buf, good, size);
    buf[0] = 0;
    expect_format_error(buf, size, "block 2");
    memcpy(buf, good, size);
    buf[0] = 200;
    expect_format_error(buf, size, "past the end");
    memcpy(buf, good, size);
    buf[512 + 3] = 90;
    expect_format_error(buf, size, "processor type 90");
    /* first record (group POINT) is fine; the USED parameter's type byte is broken */
    memcpy(buf, good, size);
    size_t used = 512 + 4 + 2 + 5 + 2 + 1 + strlen("3-D point parameters");
    assert_int_equal(buf[used + 2], 'U');
    buf[used + 2 + 4 + 2] = 3;
    expect_format_error(buf, size, "bad data type 3");
    /* too many dimensions */
    memcpy(buf, good, size);
    buf[used + 2 + 4 + 3] = 9;
    expect_format_error(buf, size, "dimensions");
    /* a parameter whose data runs past the file */
    memcpy(buf, good, size);
    buf[used + 2 + 4 + 3] = 2;
    buf[used + 2 + 4 + 4] = 255;
    buf[used + 2 + 4 + 5] = 255;
    km_status st = km_c3d_parse(buf, size, "bad.c3d", &c);
    assert_int_not_equal(st, KM_OK);
    km_c3d_free(&c);
    /* data start before the parameters */
    memcpy(buf, good, size);
    buf[16] = 1;
    buf[17] = 0;
    st = km_c3d_parse(buf, size, "bad.c3d", &c);
    km_c3d_free(&c);
    /* (the POINT:DATA_START parameter still points right: accepted) */
    assert_int_equal(st, KM_OK);
    /* NULL and IO errors */
    assert_int_equal(km_c3d_parse(NULL, 10, "x", &c), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_c3d_read("/nonexistent/file.c3d", &c), KM_ERR_IO);
    km_c3d_free(NULL);
    free(buf);
    free(good);
}

/* VAX F floats of the DEC processor: 1.0 is stored as 0x4080 0x0000 (word order). */
static void test_dec_float_decoding(void **state)
{
    (void)state;
    size_t size;
    uint8_t *buf = valid_file(&size);
    /* switch the processor to DEC and rewrite POINT:RATE (float) in VAX format */
    buf[512 + 3] = KM_C3D_PROCESSOR_DEC;
    km_c3d c;
    assert_int_equal(km_c3d_parse(buf, size, "dec", &c), KM_OK);
    const km_c3d_parameter *rate = km_c3d_find_parameter(&c, "POINT", "RATE");
    assert_non_null(rate);
    km_c3d_free(&c);
    /* find the RATE record's data in the buffer and store 50.0 as VAX F: IEEE 50.0 is
     * 0x42480000; VAX F of 50.0 = IEEE bits of 200.0 (0x43480000), words swapped, LE. */
    for (size_t i = 512; i + 4 < size; i++) {
        if (!memcmp(buf + i, "RATE", 4) && buf[i - 1] == 1) {
            size_t d = i + 4 + 2 + 2;
            buf[d + 0] = 0x48;
            buf[d + 1] = 0x43;
            buf[d + 2] = 0x00;
            buf[d + 3] = 0x00;
            break;
        }
    }
    assert_int_equal(km_c3d_parse(buf, size, "dec", &c), KM_OK);
    assert_true(fabs(c.rate_hz - 50.0) < 1e-9);
    km_c3d_free(&c);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_real_file),
        cmocka_unit_test(test_optotrak_truncated),
        cmocka_unit_test(test_sample02_identical),
        cmocka_unit_test(test_sample01_int_equals_float),
        cmocka_unit_test(test_plug_in_gait_file),
        cmocka_unit_test(test_dec_int_edge_case),
        cmocka_unit_test(test_write_round_trip_float),
        cmocka_unit_test(test_write_round_trip_int),
        cmocka_unit_test(test_write_int_out_of_range),
        cmocka_unit_test(test_write_file_real_copy),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_dec_float_decoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
