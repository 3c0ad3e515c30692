// Kinema's only C++: an extern "C" wrapper over OpenCV (imgcodecs for PNG/JPEG, core's
// FileStorage to read rig files the way other OpenCV tools do). Every entry point catches
// every exception and turns it into a km_status with the message, so C callers never see
// C++ unwinding.
#include "kinema/cv.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

namespace {

// OpenCV logs "can't open file" to stderr itself; check first so that a missing file is a
// plain KM_ERR_IO with errno's reason and nothing printed.
bool readable(const char *path)
{
    std::FILE *f = std::fopen(path, "rb");
    if (f == nullptr)
        return false;
    std::fclose(f);
    return true;
}

// Reported instead of throwing out of the FileStorage reader.
struct rig_error {
    km_status status;
    std::string message;
};

[[noreturn]] void fail(const std::string &path, const std::string &key, const std::string &why)
{
    throw rig_error{KM_ERR_PARSE, path + ": " + key + ": " + why};
}

cv::Mat read_mat(const cv::FileNode &section, const std::string &path, const std::string &key)
{
    cv::FileNode node = section[key];
    if (node.empty())
        fail(path, key, "not found");
    cv::Mat m;
    node >> m;
    if (m.empty())
        fail(path, key, "not an !!opencv-matrix");
    cv::Mat d;
    m.convertTo(d, CV_64F);
    return d;
}

void read_camera(const cv::FileStorage &fs, const std::string &path, int index, int count,
                 km_camera *cam)
{
    std::string key = "camera_" + std::to_string(index);
    cv::FileNode sec = fs[key];
    if (sec.empty() || !sec.isMap())
        fail(path, key, "not found or not a mapping");
    std::string name = "cam" + std::to_string(index);
    if (!sec["name"].empty())
        sec["name"] >> name;
    if (name.size() >= KM_NAME_MAX)
        fail(path, key + ".name", "too long");
    std::snprintf(cam->name, sizeof cam->name, "%s", name.c_str());
    int w = 0, h = 0;
    sec["image_width"] >> w;
    sec["image_height"] >> h;
    if (w < 1 || h < 1)
        fail(path, key, "image_width and image_height must be > 0");
    cam->width = w;
    cam->height = h;

    cv::Mat K = read_mat(sec, path + ": " + key, "camera_matrix");
    if (K.rows != 3 || K.cols != 3)
        fail(path, key + ".camera_matrix", "expected 3x3");
    for (int i = 0; i < 9; i++)
        cam->K[i] = K.at<double>(i / 3, i % 3);

    cv::Mat D = read_mat(sec, path + ": " + key, "distortion_coefficients");
    size_t n = D.total();
    if ((D.rows != 1 && D.cols != 1) || (n != 4 && n != 5 && n != 8 && n != 12 && n != 14))
        fail(path, key + ".distortion_coefficients", "expected 1x4, 1x5, 1x8, 1x12 or 1x14");
    D = D.reshape(1, 1);
    for (size_t i = 0; i < 5; i++)
        cam->dist[i] = i < n ? D.at<double>(0, (int)i) : 0.0;

    bool has_r = !sec["rotation"].empty(), has_t = !sec["translation"].empty();
    if (!has_r && !has_t && count == 1) {
        for (int i = 0; i < 9; i++)
            cam->R.m[i] = (i % 4 == 0) ? 1.0 : 0.0;
        cam->t = km_vec3{0.0, 0.0, 0.0};
        cam->has_pose = false;
        return;
    }
    cv::Mat R = read_mat(sec, path + ": " + key, "rotation");
    cv::Mat t = read_mat(sec, path + ": " + key, "translation");
    if (R.rows != 3 || R.cols != 3)
        fail(path, key + ".rotation", "expected 3x3");
    if (t.total() != 3)
        fail(path, key + ".translation", "expected 3x1");
    for (int i = 0; i < 9; i++)
        cam->R.m[i] = R.at<double>(i / 3, i % 3);
    t = t.reshape(1, 3);
    cam->t = km_vec3{t.at<double>(0, 0), t.at<double>(1, 0), t.at<double>(2, 0)};
    cam->has_pose = true;
}

} // namespace

extern "C" km_status km_cv_write_png(const char *path, const uint8_t *pixels, int width,
                                     int height, int stride, int channels)
{
    if (path == nullptr || pixels == nullptr || width < 1 || height < 1 ||
        (channels != 1 && channels != 3) || stride < width * channels)
        return km_error(KM_ERR_INVALID_ARGUMENT,
                        "cv write png: bad arguments (%dx%d, stride %d, %d channels)", width,
                        height, stride, channels);
    try {
        // OpenCV only reads through this header; the const_cast does not write.
        cv::Mat image(height, width, channels == 1 ? CV_8UC1 : CV_8UC3,
                      const_cast<uint8_t *>(pixels), (size_t)stride);
        if (!cv::imwrite(path, image))
            return km_error(KM_ERR_IO, "%s: cannot write PNG", path);
        return KM_OK;
    } catch (const std::exception &e) {
        return km_error(KM_ERR_IO, "%s: cannot write PNG: %s", path, e.what());
    } catch (...) {
        return km_error(KM_ERR_INTERNAL, "%s: cannot write PNG: unknown exception", path);
    }
}

extern "C" km_status km_cv_read_gray(const char *path, uint8_t **pixels, int *width,
                                     int *height)
{
    if (path == nullptr || pixels == nullptr || width == nullptr || height == nullptr)
        return km_error(KM_ERR_INVALID_ARGUMENT, "cv read gray: NULL argument");
    *pixels = nullptr;
    *width = *height = 0;
    if (!readable(path))
        return km_error(KM_ERR_IO, "%s: cannot open: %s", path, std::strerror(errno));
    try {
        cv::Mat image = cv::imread(path, cv::IMREAD_GRAYSCALE);
        if (image.empty())
            return km_error(KM_ERR_IO, "%s: cannot read image (missing or not a known format)",
                            path);
        if (image.type() != CV_8UC1)
            return km_error(KM_ERR_UNSUPPORTED, "%s: not 8-bit after grey conversion", path);
        size_t bytes = (size_t)image.cols * (size_t)image.rows;
        uint8_t *out = static_cast<uint8_t *>(std::malloc(bytes));
        if (out == nullptr)
            return km_error(KM_ERR_NO_MEMORY, "%s: %zu bytes", path, bytes);
        for (int r = 0; r < image.rows; r++)
            std::memcpy(out + (size_t)r * image.cols, image.ptr<uint8_t>(r), (size_t)image.cols);
        *pixels = out;
        *width = image.cols;
        *height = image.rows;
        return KM_OK;
    } catch (const std::exception &e) {
        return km_error(KM_ERR_IO, "%s: cannot read image: %s", path, e.what());
    } catch (...) {
        return km_error(KM_ERR_INTERNAL, "%s: cannot read image: unknown exception", path);
    }
}

extern "C" km_status km_cv_rig_read(const char *path, km_rig *rig)
{
    if (path == nullptr || rig == nullptr)
        return km_error(KM_ERR_INVALID_ARGUMENT, "cv rig read: NULL argument");
    std::memset(rig, 0, sizeof *rig);
    if (!readable(path))
        return km_error(KM_ERR_IO, "%s: cannot open: %s", path, std::strerror(errno));
    try {
        cv::FileStorage fs(path, cv::FileStorage::READ);
        if (!fs.isOpened())
            return km_error(KM_ERR_IO, "%s: cv::FileStorage cannot open", path);
        std::string rig_name;
        if (!fs["rig_name"].empty())
            fs["rig_name"] >> rig_name;
        if (rig_name.size() >= KM_NAME_MAX)
            fail(path, "rig_name", "too long");
        std::snprintf(rig->name, sizeof rig->name, "%s", rig_name.c_str());
        if (fs["camera_count"].empty() || !fs["camera_count"].isInt())
            fail(path, "camera_count", "not found or not an integer");
        int count = (int)fs["camera_count"];
        if (count < 1 || count > KM_MAX_CAMERAS)
            fail(path, "camera_count", "not in [1, " + std::to_string(KM_MAX_CAMERAS) + "]");
        rig->camera_count = count;
        for (int i = 0; i < count; i++)
            read_camera(fs, path, i, count, &rig->cameras[i]);
        return KM_OK;
    } catch (const rig_error &e) {
        std::memset(rig, 0, sizeof *rig);
        return km_error(e.status, "%s", e.message.c_str());
    } catch (const std::exception &e) {
        std::memset(rig, 0, sizeof *rig);
        return km_error(KM_ERR_PARSE, "%s: cv::FileStorage: %s", path, e.what());
    } catch (...) {
        std::memset(rig, 0, sizeof *rig);
        return km_error(KM_ERR_INTERNAL, "%s: cv::FileStorage: unknown exception", path);
    }
}
