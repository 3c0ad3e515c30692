/* Tests of calib/camera.c: projection against values computed by hand from OpenCV's
 * formulas, undistortion as the inverse of projection, rays, look_at. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "kinema/calib.h"

static km_camera identity_camera(void)
{
    km_camera c;
    memset(&c, 0, sizeof c);
    c.width = 640;
    c.height = 480;
    const double K[9] = {800, 0, 320, 0, 820, 240, 0, 0, 1};
    memcpy(c.K, K, sizeof K);
    c.R = km_mat3_identity();
    c.has_pose = true;
    return c;
}

/* The left camera of OpenCV's stereo chessboard sample (left_intrinsics.yml): a real lens
 * with strong barrel distortion and a large k3. */
static km_camera real_lens_camera(void)
{
    km_camera c = identity_camera();
    const double K[9] = {535.91573396163199, 0, 342.28315473308373, 0, 535.91573396163199,
                         235.57082909788173, 0, 0, 1};
    const double d[5] = {-0.26637260909660682, -0.038588898922304653, 0.0017831947042852964,
                         -0.00028122100441115472, 0.23839153080878486};
    memcpy(c.K, K, sizeof K);
    memcpy(c.dist, d, sizeof d);
    return c;
}

static void test_project_hand_computed(void **state)
{
    (void)state;
    km_camera c = identity_camera();
    const double d[5] = {0.1, -0.05, 0.001, 0.002, 0.01};
    memcpy(c.dist, d, sizeof d);
    double u, v;
    /* X=(0.2,-0.1,2): x=0.1, y=-0.05, r2=0.0125,
     * radial = 1 + 0.1*0.0125 - 0.05*0.0125^2 + 0.01*0.0125^3 = 1.00124220703125
     * xd = x*radial + p1*2xy + p2*(r2+2x^2) = 0.100179220703125
     * yd = y*radial + p1*(r2+2y^2) + p2*2xy = -0.0500646103515625
     * u = 800*xd + 320, v = 820*yd + 240 */
    assert_true(km_camera_project(&c, km_vec3_make(0.2, -0.1, 2.0), &u, &v));
    assert_true(fabs(u - 400.1433765625) < 1e-9);
    assert_true(fabs(v - 198.94701951171875) < 1e-9);

    double xd, yd;
    km_camera_distort_normalized(&c, 0.1, -0.05, &xd, &yd);
    assert_true(fabs(xd - 0.100179220703125) < 1e-15);
    assert_true(fabs(yd + 0.0500646103515625) < 1e-15);

    /* No distortion: plain pinhole; the optical axis hits the principal point. */
    memset(c.dist, 0, sizeof c.dist);
    assert_true(km_camera_project(&c, km_vec3_make(0.0, 0.0, 5.0), &u, &v));
    assert_true(u == 320.0 && v == 240.0);
    assert_true(km_camera_project(&c, km_vec3_make(1.0, 0.5, 4.0), &u, &v));
    assert_true(fabs(u - (320.0 + 800.0 * 0.25)) < 1e-12);
    assert_true(fabs(v - (240.0 + 820.0 * 0.125)) < 1e-12);
}

static void test_project_behind_camera(void **state)
{
    (void)state;
    km_camera c = identity_camera();
    double u, v;
    assert_false(km_camera_project(&c, km_vec3_make(0.0, 0.0, -1.0), &u, &v));
    assert_false(km_camera_project(&c, km_vec3_make(0.0, 0.0, 0.0), &u, &v));
    assert_false(km_camera_project(&c, km_vec3_make(0.0, 0.0, 0.0009), &u, &v));
    assert_true(km_camera_project(&c, km_vec3_make(0.0, 0.0, 0.0011), &u, &v));
}

static void test_pose(void **state)
{
    (void)state;
    km_camera c = identity_camera();
    c.R = km_mat3_from_axis_angle(km_vec3_normalize(km_vec3_make(0.3, 1.0, -0.2)), 0.7);
    c.t = km_vec3_make(0.1, -0.2, 4.0);
    km_vec3 C = km_camera_center(&c);
    /* The centre maps to the camera-frame origin. */
    km_vec3 o = km_camera_to_camera_frame(&c, C);
    assert_true(km_vec3_norm(o) < 1e-12);
    /* x_cam = R X + t for an arbitrary point. */
    km_vec3 X = km_vec3_make(1.0, 2.0, 3.0);
    km_vec3 p = km_camera_to_camera_frame(&c, X);
    km_vec3 q = km_vec3_add(km_mat3_apply(c.R, X), c.t);
    assert_true(km_vec3_dist(p, q) < 1e-15);
}

/* Undistort every 4th pixel of the image (corners included) and distort back: OpenCV's
 * model is reproduced to far better than 1e-6 px over the whole image of a real lens. */
static void test_undistort_round_trip(void **state)
{
    (void)state;
    km_camera cams[2] = {real_lens_camera(), identity_camera()};
    /* A strong wide-angle lens with tangential terms. */
    const double wide[5] = {-0.38, 0.16, 0.0015, -0.0012, -0.03};
    memcpy(cams[1].dist, wide, sizeof wide);
    for (int k = 0; k < 2; k++) {
        const km_camera *c = &cams[k];
        double worst = 0.0;
        for (int v = 0; v <= 480; v += 4) {
            for (int u = 0; u <= 640; u += 4) {
                double pu = u - 0.5, pv = v - 0.5; /* reach the outer pixel edges */
                double x, y, xd, yd;
                km_camera_undistort_point(c, pu, pv, &x, &y);
                km_camera_distort_normalized(c, x, y, &xd, &yd);
                double ru = c->K[0] * xd + c->K[2], rv = c->K[4] * yd + c->K[5];
                worst = fmax(worst, fmax(fabs(ru - pu), fabs(rv - pv)));
            }
        }
        print_message("camera %d: worst undistort->project error %.3g px\n", k, worst);
        assert_true(worst < 1e-6);
    }

    /* And the other way: project a point, undistort its pixel, recover x/z, y/z. */
    const km_camera *c = &cams[0];
    for (double X = -1.0; X <= 1.0; X += 0.25) {
        for (double Y = -0.7; Y <= 0.7; Y += 0.35) {
            km_vec3 P = km_vec3_make(X, Y, 2.0);
            double u, v, x, y;
            assert_true(km_camera_project(c, P, &u, &v));
            km_camera_undistort_point(c, u, v, &x, &y);
            assert_true(fabs(x - X / 2.0) < 1e-9);
            assert_true(fabs(y - Y / 2.0) < 1e-9);
        }
    }
}

static void test_undistort_no_distortion_is_exact(void **state)
{
    (void)state;
    km_camera c = identity_camera();
    double x, y;
    km_camera_undistort_point(&c, 720.0, 35.0, &x, &y);
    assert_true(x == (720.0 - 320.0) / 800.0);
    assert_true(y == (35.0 - 240.0) / 820.0);
}

static void test_pixel_ray(void **state)
{
    (void)state;
    km_camera c = real_lens_camera();
    c.R = km_mat3_from_axis_angle(km_vec3_normalize(km_vec3_make(-0.4, 1.0, 0.3)), 2.1);
    c.t = km_vec3_make(0.5, 1.5, 3.0);
    km_vec3 C = km_camera_center(&c);
    const double pixels[][2] = {{0, 0}, {639, 479}, {342.3, 235.6}, {100.25, 400.75}};
    for (size_t i = 0; i < sizeof pixels / sizeof pixels[0]; i++) {
        km_vec3 r = km_camera_pixel_ray(&c, pixels[i][0], pixels[i][1]);
        assert_true(fabs(km_vec3_norm(r) - 1.0) < 1e-12);
        for (double depth = 0.5; depth < 20.0; depth *= 3.0) {
            double u, v;
            assert_true(km_camera_project(&c, km_vec3_add(C, km_vec3_scale(r, depth)), &u, &v));
            assert_true(fabs(u - pixels[i][0]) < 1e-8);
            assert_true(fabs(v - pixels[i][1]) < 1e-8);
        }
    }
    /* The principal point's ray is the optical axis: the third row of R. */
    km_vec3 axis = km_camera_pixel_ray(&c, c.K[2], c.K[5]);
    assert_true(fabs(axis.x - c.R.m[6]) < 1e-12 && fabs(axis.y - c.R.m[7]) < 1e-12 &&
                fabs(axis.z - c.R.m[8]) < 1e-12);
}

static void test_look_at(void **state)
{
    (void)state;
    km_camera c;
    const double hfov = 1.2;
    km_vec3 eye = km_vec3_make(3.0, 2.0, 4.0), target = km_vec3_make(0.0, 1.0, 0.0);
    km_camera_look_at(&c, "cam-a", 1280, 1024, hfov, eye, target);
    assert_string_equal(c.name, "cam-a");
    assert_int_equal(c.width, 1280);
    assert_int_equal(c.height, 1024);
    assert_true(c.has_pose);
    assert_true(c.K[2] == 639.5 && c.K[5] == 511.5 && c.K[8] == 1.0 && c.K[0] == c.K[4]);
    for (int i = 0; i < 5; i++)
        assert_true(c.dist[i] == 0.0);
    /* R is a rotation. */
    km_mat3 RRt = km_mat3_mul(c.R, km_mat3_transpose(c.R));
    for (int i = 0; i < 9; i++)
        assert_true(fabs(RRt.m[i] - (i % 4 == 0 ? 1.0 : 0.0)) < 1e-12);
    assert_true(fabs(km_mat3_det(c.R) - 1.0) < 1e-12);
    assert_true(km_vec3_dist(km_camera_center(&c), eye) < 1e-12);

    double u, v;
    assert_true(km_camera_project(&c, target, &u, &v));
    assert_true(fabs(u - 639.5) < 1e-9 && fabs(v - 511.5) < 1e-9);
    /* World up is image up (v decreases); a point above the target shows higher. */
    double u2, v2;
    assert_true(km_camera_project(&c, km_vec3_make(0.0, 1.5, 0.0), &u2, &v2));
    assert_true(v2 < v - 10.0);
    assert_true(fabs(u2 - u) < 1.0); /* vertical stays vertical: no roll */

    /* A camera looking along -Z: world +X is image right, and a point at hfov/2 to the right
     * lands on the outer edge of the last column (u = width - 0.5). */
    km_camera_look_at(&c, "front", 640, 480, hfov, km_vec3_make(0, 1, 5), km_vec3_make(0, 1, 0));
    assert_true(km_camera_project(&c, km_vec3_make(5.0 * tan(hfov / 2), 1.0, 0.0), &u, &v));
    assert_true(fabs(u - 639.5) < 1e-9);
    assert_true(fabs(v - 239.5) < 1e-9);
    assert_true(km_camera_project(&c, km_vec3_make(-5.0 * tan(hfov / 2), 1.0, 0.0), &u, &v));
    assert_true(fabs(u + 0.5) < 1e-9);

    /* Straight down (forward parallel to world up): still a proper rotation, target centred. */
    km_camera_look_at(&c, NULL, 640, 480, hfov, km_vec3_make(0, 5, 0), km_vec3_make(0, 0, 0));
    assert_string_equal(c.name, "");
    assert_true(fabs(km_mat3_det(c.R) - 1.0) < 1e-12);
    assert_true(km_camera_project(&c, km_vec3_make(0, 0, 0), &u, &v));
    assert_true(fabs(u - 319.5) < 1e-9 && fabs(v - 239.5) < 1e-9);

    /* Long names are cut, not overflowed. */
    char long_name[200];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    km_camera_look_at(&c, long_name, 640, 480, hfov, eye, target);
    assert_int_equal(strlen(c.name), KM_NAME_MAX - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_project_hand_computed),
        cmocka_unit_test(test_project_behind_camera),
        cmocka_unit_test(test_pose),
        cmocka_unit_test(test_undistort_round_trip),
        cmocka_unit_test(test_undistort_no_distortion_is_exact),
        cmocka_unit_test(test_pixel_ray),
        cmocka_unit_test(test_look_at),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
