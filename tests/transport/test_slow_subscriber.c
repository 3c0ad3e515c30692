/* A subscriber that stops reading (10 s by default; env KM_SLOW_SUB_SECONDS) must not change
 * the publisher's frame rate or latency, nor a healthy subscriber's latency, and memory
 * must stay bounded (RSS reaches a plateau instead of growing with the backlog).
 *
 * A publisher thread paces 240 Hz frames (49 markers, 400 2D observations: ~7.8 KB on the
 * `frame` topic) through km_publisher_send; subscriber A drains continuously and measures
 * capture -> receipt latency; subscriber B reads during the baseline, then stalls. Figures
 * of the baseline and the stall are compared. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "kinema/transport.h"

#define RATE_HZ 240
#define MARKERS 49
#define OBSERVATIONS 400
#define MAX_SAMPLES 20000
#define BASELINE_S 2.0

/* ASan keeps freed blocks in a quarantine (RSS grows with every free until its cap) and slows
 * everything down: the memory plateau cannot be seen there, and timings get a wider margin. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

enum { PHASE_WARMUP, PHASE_BASELINE, PHASE_STALL, PHASE_DONE };

typedef struct samples {
    uint32_t value_ns[MAX_SAMPLES];
    int count;
} samples;

typedef struct shared {
    km_publisher *pub;
    _Atomic int phase;
    _Atomic int stop;
    /* Publisher thread: duration of km_publisher_send and frames sent, per phase. */
    samples send_ns[PHASE_DONE];
    int frames[PHASE_DONE];
    uint64_t phase_start_ns[PHASE_DONE], phase_end_ns[PHASE_DONE];
    /* Subscriber A: capture -> receipt, per phase. */
    samples latency_ns[PHASE_DONE];
    char endpoint[256];
} shared;

static void add(samples *s, uint64_t v)
{
    if (s->count < MAX_SAMPLES)
        s->value_ns[s->count++] = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static int cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile_us(samples *s, double p)
{
    if (s->count == 0)
        return 0;
    qsort(s->value_ns, (size_t)s->count, sizeof s->value_ns[0], cmp);
    int i = (int)(p * (s->count - 1) + 0.5);
    return s->value_ns[i] / 1000.0;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void *publisher_thread(void *arg)
{
    shared *sh = arg;
    static km_marker markers[MARKERS];
    static km_observation obs[OBSERVATIONS];
    for (int i = 0; i < MARKERS; i++) {
        markers[i].id = (uint32_t)i;
        markers[i].pos_m = km_vec3_make(0.01 * i, 1.0, 0.5);
        markers[i].views = 3;
    }
    for (int i = 0; i < OBSERVATIONS; i++) {
        obs[i].x = i;
        obs[i].y = 2 * i;
        obs[i].area_px = 9;
        obs[i].camera = i % 8;
    }
    km_marker_set set = {0, 0, MARKERS, MARKERS, markers};
    km_observation_set oset = {0, 0, OBSERVATIONS, OBSERVATIONS, obs};
    const uint64_t period = 1000000000u / RATE_HZ;
    uint64_t t0 = km_time_now_ns();
    for (uint64_t k = 0; !atomic_load(&sh->stop); k++) {
        km_time_sleep_until_ns(t0 + k * period);
        int phase = atomic_load(&sh->phase);
        km_solved_frame f;
        memset(&f, 0, sizeof f);
        f.frame = k;
        f.capture_time_ns = km_time_now_ns();
        f.camera_count = 8;
        f.markers = &set;
        f.observations = &oset;
        uint64_t before = km_time_now_ns();
        km_publisher_send(sh->pub, &f);
        uint64_t after = km_time_now_ns();
        if (phase < PHASE_DONE) {
            if (sh->frames[phase] == 0)
                sh->phase_start_ns[phase] = before;
            sh->phase_end_ns[phase] = before;
            sh->frames[phase]++;
            add(&sh->send_ns[phase], after - before);
        }
    }
    return NULL;
}

/* Healthy subscriber A. */
static void *subscriber_thread(void *arg)
{
    shared *sh = arg;
    void *ctx = zmq_ctx_new();
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int linger = 0;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(sub, sh->endpoint);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "frame", 5);
    static uint8_t buf[65536];
    while (!atomic_load(&sh->stop)) {
        zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 20) <= 0)
            continue;
        char topic[16];
        zmq_recv(sub, topic, sizeof topic, 0);
        int n = zmq_recv(sub, buf, sizeof buf, 0);
        uint64_t now = km_time_now_ns();
        if (n < 56)
            continue;
        uint64_t capture;
        memcpy(&capture, buf + 32, 8); /* wire v1 header: capture_time_ns, little-endian */
        int phase = atomic_load(&sh->phase);
        if (phase < PHASE_DONE)
            add(&sh->latency_ns[phase], now - capture);
    }
    zmq_close(sub);
    zmq_ctx_term(ctx);
    return NULL;
}

static int drain(void *sub)
{
    static uint8_t buf[65536];
    int n = 0;
    while (zmq_recv(sub, buf, sizeof buf, ZMQ_DONTWAIT) >= 0)
        n++;
    return n;
}

static void test_stalled_subscriber(void **state)
{
    (void)state;
    double stall_s = 10.0;
    const char *env = getenv("KM_SLOW_SUB_SECONDS");
    if (env && atof(env) > 0)
        stall_s = atof(env);
    static shared sh;
    memset(&sh, 0, sizeof sh);
    km_publisher_config c = km_publisher_config_default();
    snprintf(c.zmq_endpoint, sizeof c.zmq_endpoint, "tcp://127.0.0.1:*");
    c.osc_enabled = false;
    c.zmq_sndhwm = 100;
    km_status st;
    sh.pub = km_publisher_create(&c, &st);
    assert_non_null(sh.pub);
    snprintf(sh.endpoint, sizeof sh.endpoint, "%s", km_publisher_zmq_endpoint(sh.pub));

    /* Subscriber B (the one that will stall), in this thread. */
    void *ctx = zmq_ctx_new();
    void *slow = zmq_socket(ctx, ZMQ_SUB);
    int linger = 0, rcvhwm = 100;
    zmq_setsockopt(slow, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(slow, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
    assert_int_equal(zmq_connect(slow, sh.endpoint), 0);
    zmq_setsockopt(slow, ZMQ_SUBSCRIBE, "frame", 5);

    pthread_t pub_thread, sub_thread;
    assert_int_equal(pthread_create(&pub_thread, NULL, publisher_thread, &sh), 0);
    assert_int_equal(pthread_create(&sub_thread, NULL, subscriber_thread, &sh), 0);

    /* Warm-up 0.5 s, baseline with B reading, then B stops reading. */
    uint64_t t = km_time_now_ns();
    while (km_time_now_ns() - t < 500000000u) {
        drain(slow);
        zmq_poll(NULL, 0, 2);
    }
    atomic_store(&sh.phase, PHASE_BASELINE);
    long rss_baseline_start = rss_kb();
    t = km_time_now_ns();
    while (km_time_now_ns() - t < (uint64_t)(BASELINE_S * 1e9)) {
        drain(slow);
        zmq_poll(NULL, 0, 2);
    }
    long rss_before = rss_kb();
    atomic_store(&sh.phase, PHASE_STALL);
    t = km_time_now_ns();
    long rss_half = 0, rss_max = rss_before;
    while (km_time_now_ns() - t < (uint64_t)(stall_s * 1e9)) {
        usleep(250000);
        long r = rss_kb();
        if (r > rss_max)
            rss_max = r;
        if (!rss_half && km_time_now_ns() - t >= (uint64_t)(stall_s * 0.5e9))
            rss_half = r;
    }
    long rss_end = rss_kb();
    atomic_store(&sh.phase, PHASE_DONE);
    int backlog = drain(slow) / 2; /* two frames per message */
    atomic_store(&sh.stop, 1);
    pthread_join(pub_thread, NULL);
    pthread_join(sub_thread, NULL);

    double rate[PHASE_DONE];
    for (int p = PHASE_BASELINE; p < PHASE_DONE; p++)
        rate[p] = sh.frames[p] > 1 ? (sh.frames[p] - 1) * 1e9 /
                                         (double)(sh.phase_end_ns[p] - sh.phase_start_ns[p])
                                   : 0;
    double send50[PHASE_DONE], send99[PHASE_DONE], sendmax[PHASE_DONE], lat50[PHASE_DONE],
        lat99[PHASE_DONE];
    for (int p = PHASE_BASELINE; p < PHASE_DONE; p++) {
        send50[p] = percentile_us(&sh.send_ns[p], 0.5);
        send99[p] = percentile_us(&sh.send_ns[p], 0.99);
        sendmax[p] = percentile_us(&sh.send_ns[p], 1.0);
        lat50[p] = percentile_us(&sh.latency_ns[p], 0.5);
        lat99[p] = percentile_us(&sh.latency_ns[p], 0.99);
    }
    print_message("subscriber stalled %.1f s (sndhwm 100, its rcvhwm 100), 240 Hz, 7.8 KB frames\n",
                  stall_s);
    print_message("                 rate Hz   send p50/p99/max us     healthy sub latency p50/p99 us\n");
    print_message("  baseline      %8.2f   %6.1f %6.1f %7.1f     %7.1f %7.1f\n", rate[1],
                  send50[1], send99[1], sendmax[1], lat50[1], lat99[1]);
    print_message("  slow stalled  %8.2f   %6.1f %6.1f %7.1f     %7.1f %7.1f\n", rate[2],
                  send50[2], send99[2], sendmax[2], lat50[2], lat99[2]);
    print_message("  RSS kB: baseline %ld -> %ld, stall start %ld, half %ld, end %ld (max %ld); "
                  "stalled subscriber then had %d frames queued\n", rss_baseline_start,
                  rss_before, rss_before, rss_half, rss_end, rss_max, backlog);

    /* The publisher kept its rate: every frame was published on time (the pacing loop
     * would fall behind if a send blocked). */
    assert_true(rate[PHASE_STALL] > RATE_HZ * 0.99 && rate[PHASE_STALL] < RATE_HZ * 1.01);
    assert_true(sh.frames[PHASE_STALL] >= (int)(stall_s * RATE_HZ * 0.98));
    /* Send cost unchanged: a blocked PUB would take a frame period (4.2 ms) or forever, at
     * every frame; a preempted thread on a busy machine takes that long once in a while. */
    int slow_sends = 0;
    for (int i = 0; i < sh.send_ns[PHASE_STALL].count; i++)
        slow_sends += sh.send_ns[PHASE_STALL].value_ns[i] > 1000000000u / RATE_HZ;
    print_message("  sends longer than a frame period during the stall: %d of %d\n", slow_sends,
                  sh.send_ns[PHASE_STALL].count);
    /* A blocked PUB would be slow at every send; a shared CI machine preempts a few. The
     * medians carry the verdict, the tails are printed above (p99 on a loaded 2-core
     * machine measures the neighbours as much as us). */
    assert_true(slow_sends <= sh.send_ns[PHASE_STALL].count / 100 + 1);
    assert_true(send50[PHASE_STALL] < send50[PHASE_BASELINE] + (SANITIZED ? 1000.0 : 200.0));
    /* The healthy subscriber's latency unchanged. */
    assert_true(sh.latency_ns[PHASE_STALL].count >= sh.frames[PHASE_STALL] * 95 / 100);
    assert_true(lat50[PHASE_STALL] < lat50[PHASE_BASELINE] + (SANITIZED ? 3000.0 : 1000.0));
    /* Memory bounded: the backlog that would have built up is ~stall * 240 * 7.8 KB
     * (18 MB for 10 s); what the queues may hold is bounded by the high-water marks plus
     * socket buffers. RSS must stop growing: the second half of the stall adds < 1 MB. */
    if (SANITIZED) {
        print_message("  (ASan build: RSS includes ASan's quarantine of freed blocks; the "
                      "plateau is checked in the plain build)\n");
    } else {
        assert_true(rss_end - rss_before < 12 * 1024);
        assert_true(rss_end - rss_half < 1024);
    }
    assert_true(backlog <= 100 + 100 + 400); /* hwm + hwm + what TCP buffers hold */
    zmq_close(slow);
    zmq_ctx_term(ctx);
    km_publisher_destroy(sh.pub);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stalled_subscriber),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
