// cv::calibrateCamera behind the C API, for the intrinsics calibration (calib/intrinsics.c).
// Never throws: OpenCV exceptions become km_status.
#include "kinema/cv.h"

#include <cmath>
#include <exception>
#include <vector>

#include <opencv2/calib3d.hpp>
#include <opencv2/core.hpp>

extern "C" km_status km_cv_calibrate_camera(const km_cv_calibration_view *views,
                                            int view_count, int width, int height,
                                            unsigned flags, double K[9], double dist[5],
                                            double *rms_px, double *view_rms_px,
                                            double *residual_px, double *std_dev)
{
    if (views == nullptr || view_count < 1 || width < 1 || height < 1 || K == nullptr ||
        dist == nullptr || rms_px == nullptr)
        return km_error(KM_ERR_INVALID_ARGUMENT, "cv calibrate camera: bad arguments");
    for (int v = 0; v < view_count; v++)
        if (views[v].corners == nullptr || views[v].count < 4)
            return km_error(KM_ERR_INVALID_ARGUMENT,
                            "cv calibrate camera: view %d has %d corners (need >= 4)", v,
                            views[v].count);
    try {
        std::vector<std::vector<cv::Point3f>> object((size_t)view_count);
        std::vector<std::vector<cv::Point2f>> image((size_t)view_count);
        for (int v = 0; v < view_count; v++)
            for (int i = 0; i < views[v].count; i++) {
                const km_board_corner &c = views[v].corners[i];
                object[(size_t)v].emplace_back((float)c.x_m, (float)c.y_m, 0.0f);
                image[(size_t)v].emplace_back((float)c.u_px, (float)c.v_px);
            }
        int cv_flags = 0;
        if (flags & KM_CALIB_FIX_ASPECT_RATIO)
            cv_flags |= cv::CALIB_FIX_ASPECT_RATIO;
        if (flags & KM_CALIB_ZERO_TANGENT_DIST)
            cv_flags |= cv::CALIB_ZERO_TANGENT_DIST;
        if (flags & KM_CALIB_FIX_PRINCIPAL_POINT)
            cv_flags |= cv::CALIB_FIX_PRINCIPAL_POINT;
        if (flags & KM_CALIB_FIX_K3)
            cv_flags |= cv::CALIB_FIX_K3;
        // Identity start: with CALIB_FIX_ASPECT_RATIO OpenCV keeps fx/fy of this matrix (1).
        cv::Mat camera = cv::Mat::eye(3, 3, CV_64F);
        cv::Mat coeffs = cv::Mat::zeros(1, 5, CV_64F);
        std::vector<cv::Mat> rvecs, tvecs;
        cv::Mat std_intrinsics, std_extrinsics, per_view;
        double rms = cv::calibrateCamera(object, image, cv::Size(width, height), camera, coeffs,
                                         rvecs, tvecs, std_intrinsics, std_extrinsics,
                                         per_view, cv_flags);
        if (!std::isfinite(rms))
            return km_error(KM_ERR_NUMERIC, "cv calibrate camera: solver diverged");
        for (int i = 0; i < 9; i++)
            K[i] = camera.at<double>(i / 3, i % 3);
        for (int i = 0; i < 5; i++)
            dist[i] = coeffs.at<double>(0, i);
        *rms_px = rms;
        if (std_dev != nullptr) {
            // OpenCV's order: fx fy cx cy k1 k2 p1 p2 k3 k4 ...; 0 for fixed parameters.
            cv::Mat sd;
            std_intrinsics.convertTo(sd, CV_64F);
            for (int i = 0; i < 9; i++)
                std_dev[i] = i < (int)sd.total() ? sd.at<double>(i) : 0.0;
        }
        size_t point = 0;
        for (int v = 0; v < view_count; v++) {
            std::vector<cv::Point2f> proj;
            cv::projectPoints(object[(size_t)v], rvecs[(size_t)v], tvecs[(size_t)v], camera,
                              coeffs, proj);
            double sum = 0.0;
            for (size_t i = 0; i < proj.size(); i++) {
                double dx = (double)proj[i].x - views[v].corners[i].u_px;
                double dy = (double)proj[i].y - views[v].corners[i].v_px;
                sum += dx * dx + dy * dy;
                if (residual_px != nullptr)
                    residual_px[point] = std::sqrt(dx * dx + dy * dy);
                point++;
            }
            if (view_rms_px != nullptr)
                view_rms_px[v] = std::sqrt(sum / (double)proj.size());
        }
        return KM_OK;
    } catch (const std::exception &e) {
        return km_error(KM_ERR_NUMERIC, "cv calibrate camera: %s", e.what());
    } catch (...) {
        return km_error(KM_ERR_INTERNAL, "cv calibrate camera: unknown exception");
    }
}
