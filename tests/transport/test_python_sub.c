/* Clients we ship, run as real processes against a real publisher on 127.0.0.1:
 * `/usr/bin/python3 examples/kinema_subscribe.py --count 3 --json` (pyzmq + struct only) and
 * the C example `kinema_subscribe --count 3 --json`. The test publishes frames with every
 * wire v1.2 section until the subscriber exits, then checks its JSON lines: every value of
 * every section for Python, the section counts for C. Bounded to 20 s per client; the
 * Python case is skipped when /usr/bin/python3 has no zmq module. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kinema/transport.h"

#define MARKERS 4

/* The v1.2 sections, values exact in f32 (the JSON text is compared). */
static void add_streams(km_solved_frame *frame)
{
    static km_rigid_pose rigid;
    static km_rigid_definition def;
    static km_skeleton_pose skel[2];
    static km_hand hand;
    static km_gesture_event event;
    static km_camera_status cams[3];
    memset(&rigid, 0, sizeof rigid);
    rigid.id = 42;
    rigid.tracked = true;
    rigid.markers_used = 5;
    rigid.pos_m = km_vec3_make(0.5, 1.25, -0.75);
    rigid.rot = km_quat_identity();
    rigid.error_m = 0.0009765625;
    snprintf(def.name, sizeof def.name, "wand");
    frame->rigid_bodies = &rigid;
    frame->rigid_definitions = &def;
    frame->rigid_body_count = 1;
    memset(skel, 0, sizeof skel);
    for (int p = 0; p < 2; p++) {
        skel[p].person = p;
        skel[p].tracked = p == 1;
        /* person 1: the right toes unsupported (wire v1.3 mask) */
        skel[p].joints_observed = p == 1 ? KM_SKELETON_ALL_JOINTS & ~(1u << KM_JOINT_RIGHT_TOES)
                                         : 0u;
        skel[p].residual_m = 0.0078125;
        skel[p].markers_used = 30;
        for (int j = 0; j < KM_JOINT_COUNT; j++) {
            skel[p].joint_pos_m[j] = km_vec3_make(p + 0.03125 * j, 1.0, -0.5);
            km_quat w = {0.0, 0.5, 0.0, 0.75};
            skel[p].joint_rot[j] = w;
            skel[p].local_rot[j] = km_quat_identity();
        }
    }
    frame->skeletons = skel;
    frame->skeleton_count = 2;
    hand = km_hand_init();
    hand.time_ns = 123456789;
    hand.person = 0;
    hand.side = KM_HAND_SIDE_LEFT;
    hand.confidence = 0.5;
    hand.centre_valid = true;
    hand.centre_m = km_vec3_make(0.25, 1.0, 0.125);
    hand.landmark_valid = 3;
    hand.landmark_m[0] = km_vec3_make(0.0, 1.0, 0.0);
    hand.landmark_m[1] = km_vec3_make(0.5, 1.0, 0.0);
    frame->hands = &hand;
    frame->hand_count = 1;
    memset(&event, 0, sizeof event);
    event.type = KM_EVENT_SELECT;
    event.t_ns = 99;
    event.person = 1;
    event.hand = KM_HAND_SIDE_LEFT;
    snprintf(event.target, sizeof event.target, "panel-3");
    event.score = 0.75;
    event.gaze_hand_angle_rad = 0.0625;
    event.gaze_lead_ms = 180.0;
    event.same_target = 1;
    frame->events = &event;
    frame->event_count = 1;
    km_camera_status c0 = {KM_CAMERA_STATE_OK, 10, 0, 0};
    km_camera_status c1 = {KM_CAMERA_STATE_MISSING, 11, 0, 0};
    km_camera_status c2 = {KM_CAMERA_STATE_DISCONNECTED, 12, 1, 2};
    cams[0] = c0;
    cams[1] = c1;
    cams[2] = c2;
    frame->camera_status = cams;
}

/* Run argv while publishing a frame every 5 ms; collect its stdout. Returns exit status. */
static int run_against_publisher(char *const argv[], km_publisher *pub, char *out,
                                 size_t out_size)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, O_NONBLOCK);

    km_marker markers[MARKERS];
    for (int i = 0; i < MARKERS; i++) {
        markers[i].id = (uint32_t)i + 1;
        markers[i].pos_m.x = 0.5 * i;
        markers[i].pos_m.y = 1.5;
        markers[i].pos_m.z = -0.25 * i;
        markers[i].residual_px = 0.125;
        markers[i].views = 2 + i;
    }
    km_marker_set set = {0, 0, MARKERS, MARKERS, markers};
    km_solved_frame frame;
    memset(&frame, 0, sizeof frame);
    frame.camera_count = 3;
    for (int c = 0; c < 3; c++)
        frame.observation_count[c] = (uint16_t)(c + 1);
    frame.markers = &set;
    add_streams(&frame);

    size_t used = 0;
    int status = -1;
    bool exited = false;
    uint64_t deadline = km_time_now_ns() + 20000000000ull;
    while (km_time_now_ns() < deadline) {
        frame.frame++;
        frame.capture_time_ns = km_time_now_ns();
        frame.solved_time_ns = frame.capture_time_ns + 1000;
        assert_int_equal(km_publisher_send(pub, &frame), KM_OK);
        struct pollfd p = {fds[0], POLLIN, 0};
        poll(&p, 1, 5);
        ssize_t n;
        while (used + 1 < out_size && (n = read(fds[0], out + used, out_size - 1 - used)) > 0)
            used += (size_t)n;
        if (exited)
            break; /* drained once more after the exit */
        if (waitpid(pid, &status, WNOHANG) == pid)
            exited = true;
    }
    if (!exited) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    close(fds[0]);
    out[used] = '\0';
    if (!exited)
        fail_msg("subscriber did not finish within 20 s; output so far:\n%s", out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Number after `"key": ` in line (the first occurrence after `from`). */
static double number_after(const char *from, const char *key)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\": ", key);
    const char *at = strstr(from, pattern);
    if (!at)
        fail_msg("no %s in: %s", pattern, from);
    return strtod(at + strlen(pattern), NULL);
}

static void check_python_streams(const char *line)
{
    static const char *const expect[] = {
        "\"rigid_bodies\": [{\"id\": 42, \"tracked\": true, \"markers_used\": 5, "
        "\"pos\": [0.5, 1.25, -0.75], \"rot\": [0.0, 0.0, 0.0, 1.0], "
        "\"error_m\": 0.0009765625}]",
        "\"skeletons\": [{\"person\": 0, \"tracked\": false, \"markers_used\": 30, "
        "\"residual_m\": 0.0078125, \"joints\": [{\"name\": \"Hips\", \"pos\": [0.0, 1.0, "
        "-0.5], \"rot\": [0.0, 0.5, 0.0, 0.75], \"local_rot\": [0.0, 0.0, 0.0, 1.0], "
        "\"observed\": false}",
        "{\"person\": 1, \"tracked\": true,",
        "{\"name\": \"RightFoot\", \"pos\": [1.59375, 1.0, -0.5], \"rot\": [0.0, 0.5, 0.0, "
        "0.75], \"local_rot\": [0.0, 0.0, 0.0, 1.0], \"observed\": true}",
        "{\"name\": \"RightToes\", \"pos\": [1.625, 1.0, -0.5], \"rot\": [0.0, 0.5, 0.0, "
        "0.75], \"local_rot\": [0.0, 0.0, 0.0, 1.0], \"observed\": false}]}]",
        "\"hands\": [{\"person\": 0, \"side\": \"left\", \"time_ns\": 123456789, "
        "\"confidence\": 0.5, \"centre\": [0.25, 1.0, 0.125], \"landmark_valid\": 3, "
        "\"landmarks\": [[0.0, 1.0, 0.0], [0.5, 1.0, 0.0], null, null,",
        "\"events\": [{\"type\": \"select\", \"hand\": \"left\", \"person\": 1, "
        "\"t_ns\": 99, \"t_start_ns\": 0, \"t_end_ns\": 0, \"score\": 0.75, "
        "\"gaze_hand_angle_rad\": 0.0625, \"gaze_lead_ms\": 180.0, \"same_target\": 1, "
        "\"name\": \"\", \"target\": \"panel-3\"}]",
        "\"camera_status\": [{\"state\": \"ok\", \"frames\": 10, \"dropped\": 0, "
        "\"errors\": 0}, {\"state\": \"missing\", \"frames\": 11, \"dropped\": 0, "
        "\"errors\": 0}, {\"state\": \"disconnected\", \"frames\": 12, \"dropped\": 1, "
        "\"errors\": 2}]",
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        if (!strstr(line, expect[i]))
            fail_msg("python output lacks\n  %s\nin\n  %s", expect[i], line);
}

static void check_c_counts(const char *line)
{
    assert_non_null(strstr(line, "\"rigid_body_count\": 1, \"skeleton_count\": 2, "
                                 "\"hand_count\": 1, \"event_count\": 1, "
                                 "\"camera_status_count\": 3"));
}

static void check_json_output(char *out, void (*check_streams)(const char *line))
{
    int lines = 0;
    double last_frame = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        lines++;
        assert_true(line[0] == '{');
        double frame = number_after(line, "frame");
        assert_true(frame > last_frame);
        last_frame = frame;
        assert_non_null(strstr(line, "\"topic\": \"frame\""));
        assert_non_null(strstr(line, "\"observation_count\": [1, 2, 3]"));
        assert_true(number_after(line, "solved_time_ns") - number_after(line, "capture_time_ns")
                    == 1000);
        const char *m3 = strstr(line, "\"id\": 3,");
        assert_non_null(m3);
        assert_true(fabs(number_after(m3, "x") - 1.0) < 1e-9);
        assert_true(fabs(number_after(m3, "y") - 1.5) < 1e-9);
        assert_true(fabs(number_after(m3, "z") - -0.5) < 1e-9);
        assert_true(fabs(number_after(m3, "residual_px") - 0.125) < 1e-9);
        assert_true(number_after(m3, "views") == 4);
        assert_true(number_after(line, "latency_ns") >= 0);
        check_streams(line);
    }
    assert_int_equal(lines, 3);
}

static km_publisher *make_publisher(void)
{
    km_publisher_config c = km_publisher_config_default();
    snprintf(c.zmq_endpoint, sizeof c.zmq_endpoint, "tcp://127.0.0.1:*");
    c.osc_enabled = false;
    km_status st;
    km_publisher *pub = km_publisher_create(&c, &st);
    assert_non_null(pub);
    return pub;
}

static void test_python_subscriber(void **state)
{
    (void)state;
    if (system("/usr/bin/python3 -c 'import zmq' >/dev/null 2>&1") != 0) {
        print_message("skipped: /usr/bin/python3 has no zmq module (apt install python3-zmq)\n");
        skip();
    }
    const char *source = getenv("KINEMA_SOURCE_DIR");
    if (!source)
        source = ".";
    char script[1024], endpoint[256];
    snprintf(script, sizeof script, "%s/examples/kinema_subscribe.py", source);
    if (access(script, R_OK) != 0)
        fail_msg("cannot read %s (set KINEMA_SOURCE_DIR)", script);
    km_publisher *pub = make_publisher();
    snprintf(endpoint, sizeof endpoint, "%s", km_publisher_zmq_endpoint(pub));
    char *argv[] = {"/usr/bin/python3", script, "--endpoint", endpoint, "--count", "3",
                    "--json", "--timeout", "15", NULL};
    static char out[65536];
    int status = run_against_publisher(argv, pub, out, sizeof out);
    print_message("python subscriber exit %d, %zu bytes of output\n", status, strlen(out));
    if (status != 0)
        print_message("%s", out);
    assert_int_equal(status, 0);
    check_json_output(out, check_python_streams);
    km_publisher_destroy(pub);
}

static void test_c_subscriber(void **state)
{
    (void)state;
    const char *build = getenv("KINEMA_BUILD_DIR");
    char program[1024], endpoint[256];
    snprintf(program, sizeof program, "%s/examples/kinema_subscribe", build ? build : ".");
    if (access(program, X_OK) != 0) {
        print_message("skipped: %s not built\n", program);
        skip();
    }
    km_publisher *pub = make_publisher();
    snprintf(endpoint, sizeof endpoint, "%s", km_publisher_zmq_endpoint(pub));
    char *argv[] = {program, "--endpoint", endpoint, "--count", "3", "--json", "--timeout",
                    "15", NULL};
    static char out[65536];
    int status = run_against_publisher(argv, pub, out, sizeof out);
    assert_int_equal(status, 0);
    check_json_output(out, check_c_counts);
    km_publisher_destroy(pub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_subscriber),
        cmocka_unit_test(test_c_subscriber),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
