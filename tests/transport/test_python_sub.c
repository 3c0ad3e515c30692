/* Clients we ship, run as real processes against a real publisher on 127.0.0.1:
 * `/usr/bin/python3 examples/kinema_subscribe.py --count 3 --json` (pyzmq + struct only) and
 * the C example `kinema_subscribe --count 3 --json`. The test publishes frames until the
 * subscriber exits, then checks its JSON lines. Bounded to 20 s per client; the Python
 * case is skipped when /usr/bin/python3 has no zmq module. */
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

static void check_json_output(char *out)
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
    print_message("python subscriber exit %d, output:\n%s", status, out);
    assert_int_equal(status, 0);
    check_json_output(out);
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
    check_json_output(out);
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
