/* Test driver for tests/transport/test_osc_peers.sh: sends, through Kinema's public API, what
 * the OSC peers (the npm `osc` package, liblo's oscdump) must parse:
 *   VMC (a full 55-bone skeleton, then "not loaded"), /kinema/gesture events and /kinema
 *   frame bundles (3 markers), `count` rounds, 20 ms apart.
 *   osc_peer_send HOST PORT COUNT */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/transport.h"

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: osc_peer_send HOST PORT COUNT\n");
        return 2;
    }
    km_status st;
    km_vmc_config vc = km_vmc_config_default();
    snprintf(vc.destinations[0].host, sizeof vc.destinations[0].host, "%s", argv[1]);
    snprintf(vc.destinations[0].port, sizeof vc.destinations[0].port, "%s", argv[2]);
    km_vmc_sender *vmc = km_vmc_sender_create(&vc, &st);
    km_event_sender_config ec = km_event_sender_config_default();
    ec.destinations[0] = vc.destinations[0];
    km_event_sender *events = km_event_sender_create(&ec, &st);
    km_publisher_config pc = km_publisher_config_default();
    pc.zmq_enabled = false;
    snprintf(pc.osc_host, sizeof pc.osc_host, "%s", argv[1]);
    snprintf(pc.osc_port, sizeof pc.osc_port, "%s", argv[2]);
    km_publisher *pub = km_publisher_create(&pc, &st);
    if (!vmc || !events || !pub) {
        fprintf(stderr, "osc_peer_send: %s\n", km_last_error());
        return 1;
    }
    static km_vmc_pose pose;
    memset(&pose, 0, sizeof pose);
    pose.present = (1ull << KM_HUMAN_BONE_COUNT) - 1;
    km_marker markers[3] = {{1, {0.1, 1.0, 0.2}, 0.3, 2}, {2, {0.2, 1.1, 0.2}, 0.2, 3},
                            {3, {0.3, 1.2, 0.2}, 0.1, 4}};
    km_marker_set set = {0, 0, 3, 3, markers};
    int count = atoi(argv[3]);
    for (int k = 0; k < count; k++) {
        for (int b = 0; b < KM_HUMAN_BONE_COUNT; b++) {
            pose.pos_m[b] = km_vec3_make(0.01 * b, 1.0 + 0.01 * b, 0.05 * sin(b + k));
            pose.rotation[b] = km_quat_from_axis_angle(km_vec3_make(0, 1, 0), 0.01 * (b + k));
        }
        pose.time_ns = km_time_now_ns();
        if (km_vmc_send(vmc, &pose, km_time_now_ns()) != KM_OK)
            return 1;
        if (km_vmc_send(vmc, NULL, km_time_now_ns()) != KM_OK)
            return 1;
        km_gesture_event e;
        memset(&e, 0, sizeof e);
        e.t_ns = km_time_now_ns();
        snprintf(e.name, sizeof e.name, "swipe_left");
        e.person = k % 2;
        e.hand = KM_HAND_SIDE_RIGHT;
        e.score = 0.5;
        if (km_event_send_gesture(events, &e) != KM_OK)
            return 1;
        km_solved_frame f;
        memset(&f, 0, sizeof f);
        f.frame = (uint64_t)k;
        f.capture_time_ns = km_time_now_ns();
        f.camera_count = 2;
        f.markers = &set;
        if (km_publisher_send(pub, &f) != KM_OK)
            return 1;
        km_time_sleep_until_ns(km_time_now_ns() + 20000000u);
    }
    km_publisher_destroy(pub);
    km_event_sender_destroy(events);
    km_vmc_sender_destroy(vmc);
    return 0;
}
