// Drawing primitives for report pictures (calibration reports): a caller-owned BGR buffer
// wrapped as a cv::Mat, no copy. Never throws.
#include "kinema/cv.h"

#include <cmath>
#include <exception>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

namespace {

bool canvas_ok(const km_cv_canvas *c)
{
    return c != nullptr && c->pixels != nullptr && c->width > 0 && c->height > 0 &&
           c->stride >= 3 * c->width;
}

cv::Mat wrap(km_cv_canvas *c)
{
    return cv::Mat(c->height, c->width, CV_8UC3, c->pixels, (size_t)c->stride);
}

cv::Scalar bgr(uint32_t rgb)
{
    return cv::Scalar(rgb & 0xFF, (rgb >> 8) & 0xFF, (rgb >> 16) & 0xFF);
}

// Fixed-point coordinates (4 fractional bits) so thin lines land between pixels.
constexpr int kShift = 4;
cv::Point fixed(double x, double y)
{
    return cv::Point((int)std::lround(x * (1 << kShift)), (int)std::lround(y * (1 << kShift)));
}

bool finite(double a, double b) { return std::isfinite(a) && std::isfinite(b); }

template <typename F> km_status guarded(const char *what, F f)
{
    try {
        f();
        return KM_OK;
    } catch (const std::exception &e) {
        return km_error(KM_ERR_INTERNAL, "cv draw %s: %s", what, e.what());
    } catch (...) {
        return km_error(KM_ERR_INTERNAL, "cv draw %s: unknown exception", what);
    }
}

} // namespace

extern "C" km_status km_cv_draw_line(km_cv_canvas *canvas, double x0, double y0, double x1,
                                     double y1, uint32_t rgb, int thickness)
{
    if (!canvas_ok(canvas))
        return km_error(KM_ERR_INVALID_ARGUMENT, "cv draw line: bad canvas");
    if (!finite(x0, y0) || !finite(x1, y1) || thickness < 1)
        return KM_OK;
    return guarded("line", [&] {
        cv::Mat m = wrap(canvas);
        cv::line(m, fixed(x0, y0), fixed(x1, y1), bgr(rgb), thickness, cv::LINE_AA, kShift);
    });
}

extern "C" km_status km_cv_draw_rect(km_cv_canvas *canvas, double x, double y, double w,
                                     double h, uint32_t rgb, int thickness)
{
    if (!canvas_ok(canvas))
        return km_error(KM_ERR_INVALID_ARGUMENT, "cv draw rect: bad canvas");
    if (!finite(x, y) || !finite(w, h))
        return KM_OK;
    return guarded("rect", [&] {
        cv::Mat m = wrap(canvas);
        cv::rectangle(m, fixed(x, y), fixed(x + w, y + h), bgr(rgb),
                      thickness < 0 ? cv::FILLED : thickness, cv::LINE_8, kShift);
    });
}

extern "C" km_status km_cv_draw_circle(km_cv_canvas *canvas, double x, double y, double radius,
                                       uint32_t rgb, int thickness)
{
    if (!canvas_ok(canvas))
        return km_error(KM_ERR_INVALID_ARGUMENT, "cv draw circle: bad canvas");
    if (!finite(x, y) || !std::isfinite(radius) || radius < 0)
        return KM_OK;
    return guarded("circle", [&] {
        cv::Mat m = wrap(canvas);
        cv::circle(m, fixed(x, y), (int)std::lround(radius * (1 << kShift)), bgr(rgb),
                   thickness < 0 ? cv::FILLED : thickness, cv::LINE_AA, kShift);
    });
}

extern "C" km_status km_cv_draw_text(km_cv_canvas *canvas, double x, double y, const char *text,
                                     double scale, uint32_t rgb, int thickness)
{
    if (!canvas_ok(canvas))
        return km_error(KM_ERR_INVALID_ARGUMENT, "cv draw text: bad canvas");
    if (text == nullptr || !finite(x, y) || !(scale > 0) || thickness < 1)
        return KM_OK;
    return guarded("text", [&] {
        cv::Mat m = wrap(canvas);
        cv::putText(m, text, cv::Point((int)std::lround(x), (int)std::lround(y)),
                    cv::FONT_HERSHEY_SIMPLEX, scale, bgr(rgb), thickness, cv::LINE_AA);
    });
}

extern "C" int km_cv_text_width(const char *text, double scale, int thickness)
{
    if (text == nullptr || !(scale > 0) || thickness < 1)
        return 0;
    try {
        int baseline = 0;
        return cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, thickness, &baseline).width;
    } catch (...) {
        return 0;
    }
}
