/* Multi-host, solver side (pipeline/node.c): receive the camera nodes' `obs2d` streams,
 * estimate each node's clock offset over its control socket, merge the per-camera
 * observation sets by capture time into frame sets. Internal to the pipeline library
 * (docs/protocol.md "Multi-host" is the contract between processes). */
#ifndef KINEMA_PIPELINE_NODE_H
#define KINEMA_PIPELINE_NODE_H

#include "kinema/pipeline.h"

typedef struct km_node_solver km_node_solver;

/* Connects the SUB sockets (nothing is received yet). Everything allocated here. */
km_node_solver *km_node_solver_create(const km_pipeline_config *cfg, int camera_count,
                                      int max_blobs, double rate_hz, km_status *err);
void km_node_solver_destroy(km_node_solver *s);
/* NTP-style exchange with each node's control socket: `sync_rounds` requests, the offset of
 * the round with the smallest round trip is kept. Waits up to wait_ns for nodes to answer;
 * a node that does not answer keeps offset 0 and is logged. */
void km_node_solver_sync(km_node_solver *s, uint64_t wait_ns);
/* Receive what the nodes sent (never blocks) and merge it. */
void km_node_solver_poll(km_node_solver *s, uint64_t now_ns);
/* The next frame set (oldest first) when every camera of the nodes still alive delivered,
 * or the set waited longer than the timeout. Fills obs (camera order, like the single
 * process) and out->camera_count / observation_count / capture_time_ns. *complete: every
 * configured camera is in it; *present: cameras in it. */
bool km_node_solver_pop(km_node_solver *s, uint64_t now_ns, km_observation_set *obs,
                        km_solved_frame *out, bool *complete, int *present);
/* True once frames were received, every node has been silent for longer than the timeout
 * and nothing is pending: the nodes' streams ended. */
bool km_node_solver_ended(const km_node_solver *s, uint64_t now_ns);
/* Camera frames received (messages decoded) and nodes currently missing. */
void km_node_solver_counts(const km_node_solver *s, uint64_t *messages, int *missing);
/* `,"nodes":[...]` for the status message (km_publisher_status_fn). */
size_t km_node_solver_status_json(void *user, char *out, size_t size);

#endif
