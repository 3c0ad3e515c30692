/* Fuzz target: UVC payload reassembly (capture/uvc_payload.c) and the device clock
 * (capture/uvc_clock.c) on arbitrary bytes. The input is a control byte (frame size mode,
 * deliver_incomplete) followed by payloads, each as one length byte then that many bytes; a
 * length byte of 0xff means "a packet was lost". Frames are reassembled as the backend does
 * (a new buffer after each delivered frame, the same payload fed again after a FID toggle).
 * Never a crash or a write past the frame buffer (it sits between guard bytes that must stay
 * intact); every delivered frame is within its limits; the clock maps without crashing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../capture/uvc.h"

#define CAPACITY 512
#define GUARD 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t memory[2][GUARD + CAPACITY + GUARD];
    if (size < 1)
        return 0;
    uint8_t control = data[0];
    km_uvc_assembler_config cfg = {
        .frame_bytes = (control & 1) ? 0 : 64u * (1u + ((control >> 1) & 3u)),
        .max_frame_bytes = (control & 8) ? CAPACITY : 200,
        .deliver_incomplete = (control & 16) != 0};
    km_uvc_assembler a;
    km_uvc_assembler_init(&a, &cfg);
    km_uvc_clock clock;
    km_uvc_clock_init(&clock, 48e6, 0);
    for (int b = 0; b < 2; b++)
        memset(memory[b], 0xa5, sizeof memory[b]);
    int current = 0;
    km_uvc_assembler_set_buffer(&a, memory[current] + GUARD, CAPACITY);
    uint64_t host = 1000000000ull;
    size_t i = 1;
    uint64_t last_sequence = 0;
    bool any = false;
    while (i < size) {
        size_t len = data[i++];
        if (len == 0xff) {
            km_uvc_assembler_lost(&a, 1);
            continue;
        }
        if (len > size - i)
            len = size - i;
        const uint8_t *p = data + i;
        i += len;
        host += 125000;
        for (int again = 0; again < 2; again++) {
            km_uvc_payload_header h;
            km_uvc_feed_event ev;
            km_uvc_frame_result r;
            km_status st = km_uvc_assembler_feed(&a, p, len, again ? NULL : &h, &ev, &r);
            if (st == KM_OK && !again && len > 0 && h.has_scr)
                km_uvc_clock_add(&clock, h.stc, host);
            if (ev == KM_UVC_FEED_CONTINUE)
                break;
            /* a delivered frame */
            if (r.buffer != memory[current] + GUARD)
                abort();
            if (r.bytes > CAPACITY || (cfg.frame_bytes && !(r.flags & KM_FRAME_FLAG_INCOMPLETE) &&
                                       r.bytes != cfg.frame_bytes))
                abort();
            if ((r.flags & KM_FRAME_FLAG_INCOMPLETE) && !cfg.deliver_incomplete)
                abort();
            if (any && r.sequence <= last_sequence)
                abort();
            any = true;
            last_sequence = r.sequence;
            if (r.has_pts) {
                uint64_t t;
                (void)km_uvc_clock_map(&clock, r.pts, &t);
            }
            current ^= 1;
            km_uvc_assembler_set_buffer(&a, memory[current] + GUARD, CAPACITY);
            if (ev == KM_UVC_FEED_FRAME)
                break;
        }
    }
    for (int b = 0; b < 2; b++)
        for (size_t k = 0; k < GUARD; k++)
            if (memory[b][k] != 0xa5 || memory[b][GUARD + CAPACITY + k] != 0xa5)
                abort();
    return 0;
}
