// Video files through cv::VideoWriter / cv::VideoCapture, for `kinema export --video` and
// its test (reading the export back). Whether a codec can be written depends on the video
// I/O backends OpenCV was built with, so a writer that does not open is reported with the
// backends there are, not as a generic I/O error.
#include "kinema/cv.h"

#include <cctype>
#include <cstring>
#include <exception>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <opencv2/videoio/registry.hpp>

struct km_cv_video_writer {
    cv::VideoWriter writer;
    int width, height;
    bool is_color;
    long frames;
};

struct km_cv_video_reader {
    cv::VideoCapture capture;
    int width, height;
    cv::Mat frame, converted;
};

namespace {

std::string writer_backends()
{
    std::string names;
    for (cv::VideoCaptureAPIs api : cv::videoio_registry::getWriterBackends()) {
        if (!names.empty()) names += ", ";
        names += cv::videoio_registry::getBackendName(api);
    }
    return names.empty() ? "none" : names;
}

bool ends_with(const char *path, const char *ext)
{
    size_t n = std::strlen(path), e = std::strlen(ext);
    if (n < e) return false;
    for (size_t i = 0; i < e; i++)
        if (std::tolower((unsigned char)path[n - e + i]) != ext[i]) return false;
    return true;
}

} // namespace

extern "C" const char *km_cv_video_default_fourcc(const char *path)
{
    if (!path) return nullptr;
    if (ends_with(path, ".avi")) return "MJPG";
    if (ends_with(path, ".mp4") || ends_with(path, ".m4v")) return "mp4v";
    if (ends_with(path, ".mkv")) return "FFV1";
    return nullptr;
}

extern "C" km_cv_video_writer *km_cv_video_writer_open(const char *path, const char *fourcc,
                                                       double fps, int width, int height,
                                                       bool is_color, km_status *err)
{
    km_status st = KM_OK;
    km_cv_video_writer *w = nullptr;
    if (!fourcc || !fourcc[0]) fourcc = km_cv_video_default_fourcc(path);
    if (!path || !fourcc || std::strlen(fourcc) != 4 || width < 1 || height < 1 ||
        !(fps > 0 && fps <= 10000)) {
        st = km_error(KM_ERR_INVALID_ARGUMENT,
                      "video: %s: need a 4-character codec (or a .avi/.mp4/.mkv name), a size "
                      "and a rate > 0 (got '%s', %dx%d, %g fps)", path ? path : "(null)",
                      fourcc ? fourcc : "", width, height, fps);
        goto done;
    }
    try {
        w = new km_cv_video_writer();
        w->width = width;
        w->height = height;
        w->is_color = is_color;
        w->frames = 0;
        int code = cv::VideoWriter::fourcc(fourcc[0], fourcc[1], fourcc[2], fourcc[3]);
        if (!w->writer.open(path, code, fps, cv::Size(width, height), is_color) ||
            !w->writer.isOpened()) {
            st = km_error(KM_ERR_UNSUPPORTED,
                          "video: this OpenCV (%s) cannot write %.4s video to %s (writer "
                          "backends: %s); try another codec or container (MJPG in .avi is the "
                          "most widely available) or export PNG images instead", CV_VERSION,
                          fourcc, path, writer_backends().c_str());
        }
    } catch (const std::exception &e) {
        st = km_error(KM_ERR_UNSUPPORTED, "video: %s: %s", path, e.what());
    } catch (...) {
        st = km_error(KM_ERR_INTERNAL, "video: %s: unknown exception", path);
    }
done:
    if (st) {
        delete w;
        w = nullptr;
    }
    if (err) *err = st;
    return w;
}

extern "C" km_status km_cv_video_writer_write(km_cv_video_writer *w, const uint8_t *pixels,
                                              int stride)
{
    if (!w || !pixels || stride < w->width * (w->is_color ? 3 : 1))
        return km_error(KM_ERR_INVALID_ARGUMENT, "video: write: bad arguments");
    try {
        cv::Mat m(w->height, w->width, w->is_color ? CV_8UC3 : CV_8UC1,
                  const_cast<uint8_t *>(pixels), (size_t)stride);
        w->writer.write(m);
        w->frames++;
        return KM_OK;
    } catch (const std::exception &e) {
        return km_error(KM_ERR_IO, "video: frame %ld: %s", w->frames, e.what());
    } catch (...) {
        return km_error(KM_ERR_INTERNAL, "video: frame %ld: unknown exception", w->frames);
    }
}

extern "C" long km_cv_video_writer_frames(const km_cv_video_writer *w) { return w ? w->frames : 0; }

extern "C" km_status km_cv_video_writer_close(km_cv_video_writer *w)
{
    if (!w) return KM_OK;
    km_status st = KM_OK;
    try {
        w->writer.release();
    } catch (const std::exception &e) {
        st = km_error(KM_ERR_IO, "video: finishing the file: %s", e.what());
    } catch (...) {
        st = km_error(KM_ERR_INTERNAL, "video: finishing the file: unknown exception");
    }
    delete w;
    return st;
}

extern "C" km_cv_video_reader *km_cv_video_reader_open(const char *path, int *width,
                                                       int *height, double *fps,
                                                       km_status *err)
{
    km_status st = KM_OK;
    km_cv_video_reader *r = nullptr;
    try {
        r = new km_cv_video_reader();
        if (!path || !r->capture.open(path) || !r->capture.isOpened()) {
            st = km_error(KM_ERR_IO, "video: OpenCV cannot open %s", path ? path : "(null)");
        } else {
            r->width = (int)r->capture.get(cv::CAP_PROP_FRAME_WIDTH);
            r->height = (int)r->capture.get(cv::CAP_PROP_FRAME_HEIGHT);
            if (width) *width = r->width;
            if (height) *height = r->height;
            if (fps) *fps = r->capture.get(cv::CAP_PROP_FPS);
        }
    } catch (const std::exception &e) {
        st = km_error(KM_ERR_IO, "video: %s: %s", path, e.what());
    } catch (...) {
        st = km_error(KM_ERR_INTERNAL, "video: %s: unknown exception", path);
    }
    if (st) {
        delete r;
        r = nullptr;
    }
    if (err) *err = st;
    return r;
}

static km_status read_as(km_cv_video_reader *r, uint8_t *out, int stride, int type)
{
    int channels = type == CV_8UC3 ? 3 : 1;
    if (!r || !out || stride < r->width * channels)
        return km_error(KM_ERR_INVALID_ARGUMENT, "video: read: bad arguments");
    try {
        if (!r->capture.read(r->frame) || r->frame.empty())
            return KM_ERR_END_OF_STREAM;
        if (r->frame.cols != r->width || r->frame.rows != r->height || r->frame.depth() != CV_8U)
            return km_error(KM_ERR_FORMAT, "video: a %dx%d frame in a %dx%d video",
                            r->frame.cols, r->frame.rows, r->width, r->height);
        cv::Mat dst(r->height, r->width, type, out, (size_t)stride);
        int have = r->frame.channels();
        if (have == channels)
            r->frame.copyTo(dst);
        else if (channels == 1 && have == 3)
            cv::cvtColor(r->frame, dst, cv::COLOR_BGR2GRAY);
        else if (channels == 1 && have == 4)
            cv::cvtColor(r->frame, dst, cv::COLOR_BGRA2GRAY);
        else if (channels == 3 && have == 1)
            cv::cvtColor(r->frame, dst, cv::COLOR_GRAY2BGR);
        else if (channels == 3 && have == 4)
            cv::cvtColor(r->frame, dst, cv::COLOR_BGRA2BGR);
        else
            return km_error(KM_ERR_FORMAT, "video: frames of %d channels", have);
        return KM_OK;
    } catch (const std::exception &e) {
        return km_error(KM_ERR_FORMAT, "video: %s", e.what());
    } catch (...) {
        return km_error(KM_ERR_INTERNAL, "video: unknown exception");
    }
}

extern "C" km_status km_cv_video_reader_read_gray(km_cv_video_reader *r, uint8_t *out,
                                                  int stride)
{
    return read_as(r, out, stride, CV_8UC1);
}

extern "C" km_status km_cv_video_reader_read_bgr(km_cv_video_reader *r, uint8_t *out,
                                                 int stride)
{
    return read_as(r, out, stride, CV_8UC3);
}

extern "C" void km_cv_video_reader_close(km_cv_video_reader *r) { delete r; }
