// The OpenCV baseline of the detection benchmark: what a developer would write with OpenCV
// to get intensity-weighted blob centroids (threshold + findContours + moments). It exists
// to be measured against tracking/detect.c, not to be used in the pipeline.
#include "kinema/cv.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

extern "C" km_status km_cv_reference_detect(const uint8_t *image, int width, int height,
                                            int stride, int threshold, km_blob *out,
                                            int capacity, int *count)
{
    if (count)
        *count = 0;
    if (!image || !count || capacity < 0 || (capacity > 0 && !out) || width < 1 ||
        height < 1 || stride < width || threshold < 0 || threshold > 255)
        return km_error(KM_ERR_INVALID_ARGUMENT, "cv reference detect: bad argument");
    try {
        const cv::Mat src(height, width, CV_8UC1, const_cast<uint8_t *>(image),
                          static_cast<size_t>(stride));
        cv::Mat binary;
        cv::threshold(src, binary, threshold, 255, cv::THRESH_BINARY);
        std::vector<std::vector<cv::Point>> contours;
        cv::findContours(binary, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);

        std::vector<km_blob> blobs;
        blobs.reserve(contours.size());
        cv::Mat weights;
        for (const auto &contour : contours) {
            const cv::Rect r = cv::boundingRect(contour);
            // Weights only inside the box (saturating subtraction: dark pixels weigh 0).
            // A neighbour's pixels inside the box would be counted too; blobs of the
            // benchmark are far enough apart for that not to happen.
            cv::subtract(src(r), cv::Scalar(threshold), weights);
            const cv::Moments m = cv::moments(weights, false);
            if (m.m00 <= 0.0)
                continue;
            km_blob b;
            std::memset(&b, 0, sizeof b);
            const double cx = m.m10 / m.m00, cy = m.m01 / m.m00;
            b.x = r.x + cx;
            b.y = r.y + cy;
            b.area_px = cv::countNonZero(binary(r));
            b.intensity = m.m00;
            const double cxx = m.mu20 / m.m00 + 1.0 / 12.0;
            const double cyy = m.mu02 / m.m00 + 1.0 / 12.0;
            const double cxy = m.mu11 / m.m00;
            const double half_trace = 0.5 * (cxx + cyy);
            const double disc = std::sqrt(0.25 * (cxx - cyy) * (cxx - cyy) + cxy * cxy);
            const double lmax = half_trace + disc;
            const double lmin = std::max(half_trace - disc, 0.0);
            b.roundness = lmax > 0.0 ? std::sqrt(lmin / lmax) : 1.0;
            b.min_x = r.x;
            b.min_y = r.y;
            b.max_x = r.x + r.width - 1;
            b.max_y = r.y + r.height - 1;
            if (b.min_x == 0 || b.min_y == 0 || b.max_x == width - 1 || b.max_y == height - 1)
                b.flags |= KM_BLOB_FLAG_BORDER;
            blobs.push_back(b);
        }
        std::sort(blobs.begin(), blobs.end(), [](const km_blob &a, const km_blob &b) {
            if (a.y != b.y)
                return a.y < b.y;
            if (a.x != b.x)
                return a.x < b.x;
            return a.intensity > b.intensity;
        });
        const size_t n = std::min(blobs.size(), static_cast<size_t>(capacity));
        if (n)
            std::memcpy(out, blobs.data(), n * sizeof *out);
        *count = static_cast<int>(n);
        if (blobs.size() > n)
            return km_error(KM_ERR_CAPACITY, "cv reference detect: %zu blobs, capacity %d",
                            blobs.size(), capacity);
        return KM_OK;
    } catch (const std::exception &e) {
        return km_error(KM_ERR_INTERNAL, "cv reference detect: %s", e.what());
    } catch (...) {
        return km_error(KM_ERR_INTERNAL, "cv reference detect: unknown exception");
    }
}

extern "C" void km_cv_set_num_threads(int threads)
{
    try {
        cv::setNumThreads(threads);
    } catch (...) {
        // Only a benchmark knob: nothing useful to report.
    }
}
