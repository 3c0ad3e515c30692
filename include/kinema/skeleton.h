/* Kinema skeleton: skeletal motion (issue 6 builds skeletal tracking on it).
 *   BVH files - read and write Biovision Hierarchy motion (a joint hierarchy with offsets
 *               and channel order, then one row of channel values per frame), and forward
 *               kinematics from a frame to world joint positions and orientations. Used to
 *               drive synthetic scenes with real motion capture and, later, to export
 *               solved skeletons.
 * Units: a BVH file has none written down. Offsets and position channels are kept in the
 * file's units; km_bvh_pose scales them by scale_m (metres per file unit), for which
 * km_bvh_guess_scale_m gives a guess from the skeleton's size. */
#ifndef KINEMA_SKELETON_H
#define KINEMA_SKELETON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "kinema/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --------------------------------------------------------------- BVH files */

#define KM_BVH_NAME_MAX 64
#define KM_BVH_MAX_JOINTS 1024       /* ROOT + JOINT + End Site entries */
#define KM_BVH_MAX_VALUES (1L << 27) /* frames x channels held in memory */

/* Channel kinds, as written in CHANNELS lines ("Xposition" ... "Zrotation"). */
typedef enum km_bvh_channel {
    KM_BVH_XPOSITION = 0,
    KM_BVH_YPOSITION,
    KM_BVH_ZPOSITION,
    KM_BVH_XROTATION,
    KM_BVH_YROTATION,
    KM_BVH_ZROTATION
} km_bvh_channel;

/* One node of the hierarchy, in file order (a parent always comes before its children). */
typedef struct km_bvh_joint {
    char name[KM_BVH_NAME_MAX]; /* as in the file; an End Site is named "<parent>_End" */
    int parent;                 /* index of the parent, -1 for the root */
    km_vec3 offset;             /* translation from the parent, file units */
    int channel_count;          /* 0..6 (0 for End Sites) */
    km_bvh_channel channels[6]; /* in file order: this order is the rotation order */
    int first_channel;          /* column of this joint's first channel in a frame row */
    bool end_site;
} km_bvh_joint;

typedef struct km_bvh km_bvh;

/* Parse a BVH file: HIERARCHY, one ROOT with nested JOINT / End Site blocks (each an OFFSET,
 * then CHANNELS n followed by n channel names, none for End Sites), then MOTION, "Frames: N",
 * "Frame Time: T" (seconds, > 0) and N lines of exactly as many numbers as there are
 * channels. Anything else - unknown keyword, missing brace, duplicate channel, a value that
 * is not a finite number, too few or too many rows - is KM_ERR_PARSE with "file:line: ..."
 * in km_last_error(). CRLF line ends are accepted. Free with km_bvh_destroy. */
km_bvh *km_bvh_load(const char *path, km_status *err);
/* Same, from text in memory (not kept); `name` stands for the file name in messages. */
km_bvh *km_bvh_parse(const char *text, size_t length, const char *name, km_status *err);
void km_bvh_destroy(km_bvh *bvh);

int km_bvh_joint_count(const km_bvh *bvh);       /* including End Sites */
const km_bvh_joint *km_bvh_joint_at(const km_bvh *bvh, int index); /* NULL out of range */
/* Index of the joint with this name, -1 if none. */
int km_bvh_find_joint(const km_bvh *bvh, const char *name);
int km_bvh_channel_count(const km_bvh *bvh);
int km_bvh_frame_count(const km_bvh *bvh);
double km_bvh_frame_time_s(const km_bvh *bvh);
/* The channel values of a frame (channel_count doubles, owned by bvh); NULL out of range. */
const double *km_bvh_frame(const km_bvh *bvh, int frame);

/* Forward kinematics of one frame. Each joint's local transform is a translation - its
 * OFFSET, with each axis that has a position channel replaced by the channel's value (so
 * files that repeat the offset in position channels, and roots that carry the global
 * position, both come out right) - followed by its rotation channels multiplied in file
 * order (CHANNELS ... Zrotation Xrotation Yrotation means R = Rz Rx Ry), angles in degrees.
 * World = parent world * local. Writes km_bvh_joint_count() positions in metres (file units
 * times scale_m) and, when rotations is not NULL, world orientations (joint frame -> world;
 * an End Site takes its parent's). No allocation. */
km_status km_bvh_pose(const km_bvh *bvh, int frame, double scale_m, km_vec3 *positions_m,
                      km_mat3 *rotations);

/* A guess of metres per file unit: the rest pose's height (all channels zero, position
 * channels at their offsets) compared with a 1.7 m person, choosing among metres,
 * centimetres, millimetres, inches and the CMU converters' unit (1/0.45 inch = 0.056444 m).
 * 0 when the skeleton has no height (a single joint). */
double km_bvh_guess_scale_m(const km_bvh *bvh);

/* Write the hierarchy and motion in the layout the reader accepts (tabs, one frame per line,
 * values with %.9g so that reading back gives the same numbers to 9 digits). */
km_status km_bvh_save(const km_bvh *bvh, const char *path);
km_status km_bvh_write(const km_bvh *bvh, FILE *f);

#ifdef __cplusplus
}
#endif
#endif /* KINEMA_SKELETON_H */
