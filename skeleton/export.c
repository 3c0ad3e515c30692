/* Solved skeletons out (include/kinema/skeleton.h "poses"): skeleton.csv rows (formats.md)
 * and BVH files of one person's solved motion, readable by km_bvh_load and by animation
 * tools (Blender, MotionBuilder, Unity importers). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "skeleton_internal.h"

void km_skeleton_csv_write_header(FILE *f)
{
    fputs("frame,time_ns,person,joint,x,y,z,qx,qy,qz,qw\n", f);
}

void km_skeleton_csv_write(FILE *f, uint64_t frame, uint64_t time_ns,
                           const km_skeleton_pose *poses, int count)
{
    for (int p = 0; p < count; p++) {
        const km_skeleton_pose *ps = &poses[p];
        if (!ps->tracked)
            continue;
        for (int j = 0; j < KM_JOINT_COUNT; j++) {
            const km_vec3 *x = &ps->joint_pos_m[j];
            const km_quat *q = &ps->joint_rot[j];
            fprintf(f, "%" PRIu64 ",%" PRIu64 ",%d,%s,%.6f,%.6f,%.6f,%.7f,%.7f,%.7f,%.7f\n", frame,
                    time_ns, ps->person, km_joint_name(j), x->x, x->y, x->z, q->x, q->y, q->z,
                    q->w);
        }
    }
}

/* R = Rz(a) Rx(b) Ry(c) (BVH "Zrotation Xrotation Yrotation"), degrees. */
static void zxy_degrees(km_quat q, double *z, double *x, double *y)
{
    km_mat3 R = km_quat_to_mat3(km_quat_normalize(q));
    const double *m = R.m;
    double sb = m[7];
    if (sb > 1)
        sb = 1;
    if (sb < -1)
        sb = -1;
    double b = asin(sb), a, c;
    if (fabs(sb) < 0.999999) {
        a = atan2(-m[1], m[4]);
        c = atan2(-m[6], m[8]);
    } else {
        /* gimbal lock: put everything in Z */
        a = atan2(m[3], m[0]);
        c = 0;
    }
    *z = a * 180 / M_PI;
    *x = b * 180 / M_PI;
    *y = c * 180 / M_PI;
}

/* End sites: where a chain ends, a short bone along the last segment's direction. */
static bool is_leaf(int j)
{
    for (int k = 1; k < KM_JOINT_COUNT; k++)
        if (km_joint_parent(k) == j)
            return false;
    return true;
}

static km_vec3 end_offset(const km_subject *s, int j)
{
    km_vec3 b = s->bone_m[j];
    if (j == KM_JOINT_HEAD)
        return km_vec3_make(0, 0.18 * km_vec3_norm(s->bone_m[KM_JOINT_NECK]) / 0.22, 0);
    return km_vec3_scale(b, 0.5);
}

static void write_joint(FILE *f, const km_subject *s, int j, int depth)
{
    for (int i = 0; i < depth; i++)
        fputc('\t', f);
    if (j == KM_JOINT_HIPS)
        fprintf(f, "ROOT %s\n", km_joint_name(j));
    else
        fprintf(f, "JOINT %s\n", km_joint_name(j));
    for (int i = 0; i < depth; i++)
        fputc('\t', f);
    fputs("{\n", f);
    km_vec3 o = j == KM_JOINT_HIPS ? km_vec3_make(0, 0, 0) : s->bone_m[j];
    for (int i = 0; i <= depth; i++)
        fputc('\t', f);
    fprintf(f, "OFFSET %.6f %.6f %.6f\n", o.x, o.y, o.z);
    for (int i = 0; i <= depth; i++)
        fputc('\t', f);
    if (j == KM_JOINT_HIPS)
        fputs("CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation\n", f);
    else
        fputs("CHANNELS 3 Zrotation Xrotation Yrotation\n", f);
    for (int k = 1; k < KM_JOINT_COUNT; k++)
        if (km_joint_parent(k) == j)
            write_joint(f, s, k, depth + 1);
    if (is_leaf(j)) {
        km_vec3 e = end_offset(s, j);
        for (int i = 0; i <= depth; i++)
            fputc('\t', f);
        fputs("End Site\n", f);
        for (int i = 0; i <= depth; i++)
            fputc('\t', f);
        fputs("{\n", f);
        for (int i = 0; i <= depth + 1; i++)
            fputc('\t', f);
        fprintf(f, "OFFSET %.6f %.6f %.6f\n", e.x, e.y, e.z);
        for (int i = 0; i <= depth; i++)
            fputc('\t', f);
        fputs("}\n", f);
    }
    for (int i = 0; i < depth; i++)
        fputc('\t', f);
    fputs("}\n", f);
}

/* Joints in the depth-first order of the hierarchy (the channel order of a frame row). */
static int dfs_order(int j, int *order, int n)
{
    order[n++] = j;
    for (int k = 1; k < KM_JOINT_COUNT; k++)
        if (km_joint_parent(k) == j)
            n = dfs_order(k, order, n);
    return n;
}

km_status km_skeleton_bvh_write(FILE *f, const km_subject *subject,
                                const km_skeleton_pose *poses, int frames, double frame_time_s)
{
    if (!f || !subject || (frames > 0 && !poses) || frames < 0 || !(frame_time_s > 0))
        return km_error(KM_ERR_INVALID_ARGUMENT, "skeleton bvh: bad argument");
    fputs("HIERARCHY\n", f);
    write_joint(f, subject, KM_JOINT_HIPS, 0);
    fprintf(f, "MOTION\nFrames: %d\nFrame Time: %.9g\n", frames, frame_time_s);
    int order[KM_JOINT_COUNT];
    dfs_order(KM_JOINT_HIPS, order, 0);
    /* A frame where the person was not tracked repeats the last tracked one (the rest pose
     * before the first). */
    km_skeleton_pose last;
    memset(&last, 0, sizeof last);
    for (int j = 0; j < KM_JOINT_COUNT; j++) {
        last.joint_rot[j] = km_quat_identity();
        last.local_rot[j] = km_quat_identity();
    }
    for (int k = 0; k < frames; k++) {
        if (poses[k].tracked)
            last = poses[k];
        const km_skeleton_pose *p = &last;
        fprintf(f, "%.6f %.6f %.6f", p->joint_pos_m[0].x, p->joint_pos_m[0].y,
                p->joint_pos_m[0].z);
        for (int i = 0; i < KM_JOINT_COUNT; i++) {
            double z, x, y;
            zxy_degrees(p->local_rot[order[i]], &z, &x, &y);
            fprintf(f, " %.5f %.5f %.5f", z, x, y);
        }
        fputc('\n', f);
    }
    if (ferror(f))
        return km_error(KM_ERR_IO, "skeleton bvh: write failed");
    return KM_OK;
}
