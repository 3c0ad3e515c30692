/* Device clock mapping: a simulated UVC camera clock (48 MHz and 300 MHz, +-50 ppm drift,
 * counter wrapping) sampled through SCRs whose host completion times are late by a random
 * delay (exponential, mean 100 us, plus rare multi-millisecond stalls). The PTS of every frame
 * mapped to host time must land within 50 us of the true exposure time. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uvc.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((rng_state >> 11) + 0.5) / 9007199254740992.0;
}

typedef struct sim {
    double nominal_hz, ppm;
    double dev0;              /* device ticks at host time 0 */
    uint64_t host0_ns;
} sim;

static uint32_t ticks_at(const sim *s, uint64_t host_ns)
{
    double t = (double)(host_ns - s->host0_ns) * 1e-9;
    double ticks = s->dev0 + t * s->nominal_hz * (1.0 + s->ppm * 1e-6);
    return (uint32_t)(uint64_t)fmod(ticks, 4294967296.0);
}

/* Runs `seconds` of a 120 Hz camera with an SCR every 1 ms; returns the largest mapping
 * error (ns) over frames after the first second; *ppm_out the final rate estimate. */
static double run(double nominal_hz, double ppm, double dev0, double seconds, double gap_at_s,
                  double gap_s, double *ppm_out, int *mapped_out)
{
    sim s = {nominal_hz, ppm, dev0, 1000000000000ull};
    km_uvc_clock c;
    km_uvc_clock_init(&c, nominal_hz, 0);
    double worst = 0;
    int mapped = 0;
    uint64_t frame_period = 8333333;
    uint64_t next_frame = s.host0_ns + frame_period;
    uint64_t end = s.host0_ns + (uint64_t)(seconds * 1e9);
    for (uint64_t t = s.host0_ns; t < end; t += 1000000) {
        double since = (double)(t - s.host0_ns) * 1e-9;
        if (gap_s > 0 && since >= gap_at_s && since < gap_at_s + gap_s) {
            next_frame = t + frame_period;
            continue; /* the stream stopped: no samples, no frames */
        }
        /* completion delay: exponential mean 100 us, 2% stalls of 1..4 ms */
        double delay = -log(uniform()) * 100000.0;
        if (uniform() < 0.02)
            delay += 1e6 + 3e6 * uniform();
        km_uvc_clock_add(&c, ticks_at(&s, t), t + (uint64_t)delay);
        while (next_frame <= t) {
            /* exposure started 3 ms before the frame's SCR sample */
            uint64_t exposure = next_frame - 3000000;
            uint64_t host;
            if (km_uvc_clock_map(&c, ticks_at(&s, exposure), &host) == KM_OK && since > 1.0) {
                double err = fabs((double)host - (double)exposure);
                if (err > worst)
                    worst = err;
                mapped++;
            }
            next_frame += frame_period;
        }
    }
    *ppm_out = km_uvc_clock_ppm(&c);
    *mapped_out = mapped;
    return worst;
}

static void test_drift_and_jitter(void **state)
{
    (void)state;
    const double ppms[3] = {50, -50, 0};
    for (int i = 0; i < 3; i++) {
        double est;
        int mapped;
        double worst = run(48e6, ppms[i], 1234567.0, 10, 0, 0, &est, &mapped);
        print_message("48 MHz %+.0f ppm: worst error %.1f us over %d frames, rate %+.1f ppm\n",
                      ppms[i], worst / 1000, mapped, est);
        assert_true(mapped > 1000);
        assert_true(worst < 50000.0);
        assert_true(fabs(est - ppms[i]) < 15.0);
    }
}

static void test_wraps(void **state)
{
    (void)state;
    double est;
    int mapped;
    /* 48 MHz starting 1 s before the 32-bit wrap */
    double worst = run(48e6, 30, 4294967296.0 - 48e6, 5, 0, 0, &est, &mapped);
    print_message("48 MHz across the wrap: worst %.1f us\n", worst / 1000);
    assert_true(worst < 50000.0);
    /* 300 MHz (the C920's clock) wraps every 14.3 s; a 20 s gap in the stream crosses a
     * wrap without a sample */
    worst = run(300e6, -40, 5e8, 30, 5, 20, &est, &mapped);
    print_message("300 MHz with a 20 s gap: worst %.1f us over %d frames\n", worst / 1000,
                  mapped);
    assert_true(mapped > 500);
    assert_true(worst < 50000.0);
}

static void test_reset_on_jump_and_basics(void **state)
{
    (void)state;
    km_uvc_clock c;
    km_uvc_clock_init(&c, 1e6, 8); /* 1 MHz: one tick per microsecond */
    c.bin_ns = 0;
    uint64_t h;
    assert_int_equal(km_uvc_clock_map(&c, 0, &h), KM_ERR_AGAIN);
    uint64_t base = 5000000000ull;
    for (int i = 0; i < 8; i++)
        km_uvc_clock_add(&c, 1000u + 1000u * (uint32_t)i, base + 1000000ull * (uint64_t)i);
    assert_int_equal(km_uvc_clock_map(&c, 3500, &h), KM_OK);
    assert_true(llabs((long long)h - (long long)(base + 2500000)) < 10);
    /* a repeated SCR value is not a new sample */
    int count = c.count;
    km_uvc_clock_add(&c, 8000, base + 9000000);
    assert_int_equal(c.count, count);
    /* the device clock jumps back (device reset): the fit restarts */
    uint64_t resets = c.resets;
    km_uvc_clock_add(&c, 5, base + 10000000);
    assert_int_equal(c.resets, resets + 1);
    assert_int_equal(km_uvc_clock_map(&c, 5, &h), KM_ERR_AGAIN);
    km_uvc_clock_add(&c, 2005, base + 12000000);
    assert_int_equal(km_uvc_clock_map(&c, 1005, &h), KM_OK);
    assert_true(llabs((long long)h - (long long)(base + 11000000)) < 10);
    /* SOF deltas wrap at 2048 */
    assert_int_equal(km_uvc_sof_delta(2040, 5), 13);
    assert_int_equal(km_uvc_sof_delta(100, 100), 0);
    assert_int_equal(km_uvc_sof_delta(0, 2047), 2047);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drift_and_jitter),
        cmocka_unit_test(test_wraps),
        cmocka_unit_test(test_reset_on_jump_and_basics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
