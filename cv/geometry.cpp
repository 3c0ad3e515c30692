// Two-view geometry behind the C API, for the wand calibration (calib/extrinsics_init.c):
// the essential matrix by the five-point algorithm in RANSAC (cv::findEssentialMat) and its
// decomposition into the relative pose with the cheirality check (cv::recoverPose).
// Never throws: OpenCV exceptions become km_status.
#include "kinema/cv.h"

#include <cmath>
#include <exception>
#include <vector>

#include <opencv2/calib3d.hpp>
#include <opencv2/core.hpp>

extern "C" km_status km_cv_relative_pose(const double *x0, const double *y0, const double *x1,
                                         const double *y1, int count, double threshold,
                                         km_mat3 *R, km_vec3 *t, uint8_t *inlier_mask,
                                         int *inliers)
{
    if (x0 == nullptr || y0 == nullptr || x1 == nullptr || y1 == nullptr || R == nullptr ||
        t == nullptr || inliers == nullptr || !(threshold > 0.0))
        return km_error(KM_ERR_INVALID_ARGUMENT, "cv relative pose: bad arguments");
    if (count < 5)
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "cv relative pose: %d correspondences (need >= 5)", count);
    try {
        std::vector<cv::Point2d> a((size_t)count), b((size_t)count);
        for (int i = 0; i < count; i++) {
            a[(size_t)i] = cv::Point2d(x0[i], y0[i]);
            b[(size_t)i] = cv::Point2d(x1[i], y1[i]);
        }
        // Normalised coordinates: focal 1, principal point 0; the threshold is in the same
        // normalised units. OpenCV's RNG is seeded here so the result is reproducible.
        cv::theRNG().state = 0x4b494e454d41ull;
        cv::Mat mask;
        cv::Mat E = cv::findEssentialMat(a, b, 1.0, cv::Point2d(0.0, 0.0), cv::RANSAC, 0.9999,
                                         threshold, mask);
        if (E.empty() || E.rows < 3 || E.cols != 3)
            return km_error(KM_ERR_NUMERIC, "cv relative pose: no essential matrix found");
        if (E.rows > 3)
            E = E.rowRange(0, 3).clone(); // several solutions: RANSAC picked the first best
        cv::Mat Rm, tm;
        int good = cv::recoverPose(E, a, b, Rm, tm, 1.0, cv::Point2d(0.0, 0.0), mask);
        if (good < 5)
            return km_error(KM_ERR_NUMERIC,
                            "cv relative pose: only %d points in front of both cameras", good);
        for (int i = 0; i < 9; i++)
            R->m[i] = Rm.at<double>(i / 3, i % 3);
        *t = km_vec3{tm.at<double>(0, 0), tm.at<double>(1, 0), tm.at<double>(2, 0)};
        if (inlier_mask != nullptr)
            for (int i = 0; i < count; i++)
                inlier_mask[i] = mask.at<uchar>(i) ? 1 : 0;
        *inliers = good;
        return KM_OK;
    } catch (const std::exception &e) {
        return km_error(KM_ERR_NUMERIC, "cv relative pose: %s", e.what());
    } catch (...) {
        return km_error(KM_ERR_INTERNAL, "cv relative pose: unknown exception");
    }
}
