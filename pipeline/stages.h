/* The stages after marker tracking, run live on the solver thread (pipeline/stages.c):
 *
 *   tracked markers -> rigid bodies (tracking/rigid.c)
 *                   -> skeletons, from the markers no rigid body took (skeleton/multi.c)
 *                   -> hands and gestures (gesture/), with hand landmarks and gaze received
 *                      from outside trackers (transport/input.c)
 *   and the outputs that are not frames: VMC avatars (transport/vmc.c) and gesture events
 *   as OSC messages (transport/events.c).
 *
 * Internal to the pipeline library. Everything is allocated in km_stages_create;
 * km_stages_run allocates nothing. */
#ifndef KINEMA_PIPELINE_STAGES_H
#define KINEMA_PIPELINE_STAGES_H

#include "kinema/pipeline.h"

typedef struct km_stages km_stages;

/* Read the `rigid:`, `skeleton:` and `transport.vmc/events/input` sections. */
km_status km_stages_config_read(const km_config *cfg, km_pipeline_config *out);

/* scene: the synthetic scene when that is the source (its rigid bodies and actors give the
 * defaults), else NULL. */
km_stages *km_stages_create(const km_pipeline_config *cfg, const km_synthetic_scene *scene,
                            int max_markers, km_status *err);
void km_stages_destroy(km_stages *s);

/* Solve one frame's tracked markers into out's rigid bodies, skeletons, hands and events
 * (pointers into s, valid until the next call). */
km_status km_stages_run(km_stages *s, const km_marker_set *markers, uint64_t time_ns,
                        km_solved_frame *out);
/* After the frame was published: the VMC avatar and the OSC events. */
void km_stages_send(km_stages *s, km_publisher *pub, const km_solved_frame *frame,
                    uint64_t now_ns);

/* Control socket `define_rigid`: a new body from the current positions of tracked markers
 * (ids as published). Replaces the rigid tracker (allocates: not per frame). *id = its id. */
km_status km_stages_define_rigid(km_stages *s, const char *name, const uint32_t *marker_ids,
                                 int count, const km_marker_set *markers, uint32_t *id);
/* Counters for km_pipeline_stats. */
void km_stages_counts(const km_stages *s, uint64_t *rigid_tracked, uint64_t *skeletons_tracked,
                      uint64_t *events, uint64_t *input_messages);

#endif
