// Calibration boards through OpenCV: chessboard and ChArUco detection, and a renderer of
// what a camera sees of a board (synthetic views for tests). Part of the intrinsics
// calibration (calib/intrinsics.c). Never throws: OpenCV exceptions become km_status.
#include "kinema/cv.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <vector>

#include <opencv2/aruco.hpp>
#include <opencv2/aruco/charuco.hpp>
#include <opencv2/calib3d.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

namespace {

// Texture resolution of the rendered board: pixels per square before the 2x supersampled
// sampling; fine enough that squares of up to ~100 image pixels stay sharp.
constexpr int kTexturePxPerSquare = 96;

bool board_valid(const km_board *b)
{
    if (b == nullptr || !(b->square_m > 0.0) || !std::isfinite(b->square_m))
        return false;
    if (b->type == KM_BOARD_CHESSBOARD)
        return b->columns >= 2 && b->rows >= 2 && b->columns <= 64 && b->rows <= 64;
    if (b->type == KM_BOARD_CHARUCO)
        return b->columns >= 3 && b->rows >= 3 && b->columns <= 64 && b->rows <= 64 &&
               b->marker_m > 0.0 && b->marker_m < b->square_m && b->dictionary >= 0 &&
               b->dictionary <= cv::aruco::DICT_APRILTAG_36h11;
    return false;
}

cv::Ptr<cv::aruco::CharucoBoard> make_charuco(const km_board *b)
{
    cv::Ptr<cv::aruco::Dictionary> dict = cv::aruco::getPredefinedDictionary(b->dictionary);
    return cv::aruco::CharucoBoard::create(b->columns, b->rows, (float)b->square_m,
                                           (float)b->marker_m, dict);
}

int max_corners(const km_board *b)
{
    return b->type == KM_BOARD_CHESSBOARD ? b->columns * b->rows
                                          : (b->columns - 1) * (b->rows - 1);
}

// cornerSubPix's half window for one view: 0.3 x the smallest distance between grid
// neighbours (pixel-level corners from findChessboardCorners), 2..11. The gradients in the
// window must all come from the two edges through the corner; the outer squares of a board
// can be far narrower than the inner spacing (foreshortened, or cut by the page edge), and
// a window reaching past them picks up the board's border. On OpenCV's sample images
// (left and right, 26 views) 0.3 lets every view fit at 0.15-0.24 px RMS, where the fixed
// 11 px window gives up to 1.2 px (docs/calibration.md).
int subpix_half_window(const std::vector<cv::Point2f> &c, int columns, int rows)
{
    double spacing = 1e30;
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < columns; k++) {
            const cv::Point2f &p = c[(size_t)(r * columns + k)];
            if (k + 1 < columns)
                spacing = std::min(spacing, (double)cv::norm(p - c[(size_t)(r * columns + k + 1)]));
            if (r + 1 < rows)
                spacing = std::min(spacing, (double)cv::norm(p - c[(size_t)((r + 1) * columns + k)]));
        }
    return std::max(2, std::min(11, (int)std::floor(0.3 * spacing)));
}

km_status detect_chessboard(const km_board *b, km_cv_corner_method method, const cv::Mat &img,
                            km_board_corner *out, int *count)
{
    cv::Size pattern(b->columns, b->rows);
    std::vector<cv::Point2f> corners;
    bool found;
    if (method == KM_CV_CORNERS_CLASSIC || method == KM_CV_CORNERS_ADAPTIVE) {
        found = cv::findChessboardCorners(img, pattern, corners,
                                          cv::CALIB_CB_ADAPTIVE_THRESH |
                                              cv::CALIB_CB_FAST_CHECK |
                                              cv::CALIB_CB_NORMALIZE_IMAGE);
        if (found && (int)corners.size() == b->columns * b->rows) {
            int half = 11;
            if (method == KM_CV_CORNERS_ADAPTIVE)
                half = subpix_half_window(corners, b->columns, b->rows);
            cv::cornerSubPix(img, corners, cv::Size(half, half), cv::Size(-1, -1),
                             cv::TermCriteria(cv::TermCriteria::EPS + cv::TermCriteria::COUNT,
                                              30, 0.0001));
        }
    } else {
        found = cv::findChessboardCornersSB(img, pattern, corners,
                                            cv::CALIB_CB_NORMALIZE_IMAGE |
                                                cv::CALIB_CB_ACCURACY);
    }
    if (!found || (int)corners.size() != b->columns * b->rows)
        return KM_OK;
    for (int i = 0; i < (int)corners.size(); i++) {
        out[i].id = i;
        out[i].u_px = corners[i].x;
        out[i].v_px = corners[i].y;
        out[i].x_m = (i % b->columns) * b->square_m;
        out[i].y_m = (i / b->columns) * b->square_m;
    }
    *count = (int)corners.size();
    return KM_OK;
}

// Do the detected markers sit where this board puts them? A homography from the board plane
// fitted to all marker corners leaves residuals of a few pixels (lens distortion); markers
// of a board with other dimensions (e.g. columns and rows swapped) land squares away.
bool markers_fit_board(const cv::Ptr<cv::aruco::CharucoBoard> &board,
                       const std::vector<std::vector<cv::Point2f>> &corners,
                       const std::vector<int> &ids)
{
    std::vector<cv::Point3f> obj3;
    std::vector<cv::Point2f> img;
    cv::aruco::getBoardObjectAndImagePoints(board, corners, ids, obj3, img);
    if (obj3.size() < 8) // fewer than two markers: nothing to compare
        return true;
    std::vector<cv::Point2f> obj(obj3.size());
    for (size_t i = 0; i < obj3.size(); i++)
        obj[i] = cv::Point2f(obj3[i].x, obj3[i].y);
    cv::Mat H = cv::findHomography(obj, img, 0);
    if (H.empty())
        return false;
    std::vector<cv::Point2f> proj;
    cv::perspectiveTransform(obj, proj, H);
    std::vector<double> err(obj.size());
    double side = 0.0;
    for (size_t i = 0; i < obj.size(); i++) {
        err[i] = cv::norm(proj[i] - img[i]);
        // Marker side in pixels, averaged over the 4 sides of every marker.
        side += cv::norm(img[i] - img[(i / 4) * 4 + (i + 1) % 4]);
    }
    side /= (double)obj.size();
    std::nth_element(err.begin(), err.begin() + err.size() / 2, err.end());
    return err[err.size() / 2] < 0.25 * side;
}

km_status detect_charuco(const km_board *b, const cv::Mat &img, km_board_corner *out,
                         int *count, int *markers)
{
    cv::Ptr<cv::aruco::CharucoBoard> board = make_charuco(b);
    std::vector<std::vector<cv::Point2f>> corners, rejected;
    std::vector<int> ids;
    cv::Ptr<cv::aruco::DetectorParameters> params = cv::aruco::DetectorParameters::create();
    cv::aruco::detectMarkers(img, board->dictionary, corners, ids, params, rejected);
    // Keep only markers of this board: other ids are other boards (or another layout).
    std::vector<std::vector<cv::Point2f>> mine;
    std::vector<int> mine_ids;
    for (size_t i = 0; i < ids.size(); i++)
        if (ids[i] >= 0 && ids[i] < (int)board->ids.size()) {
            mine.push_back(corners[i]);
            mine_ids.push_back(ids[i]);
        }
    if (markers != nullptr)
        *markers = (int)ids.size();
    if (!ids.empty() && mine.empty())
        return km_error(KM_ERR_NUMERIC,
                        "%d ArUco markers seen, none with an id of this %dx%d board (ids < "
                        "%d): another board or dictionary",
                        (int)ids.size(), b->columns, b->rows, (int)board->ids.size());
    if (mine.empty())
        return KM_OK;
    if (!markers_fit_board(board, mine, mine_ids))
        return km_error(KM_ERR_NUMERIC,
                        "%d ArUco markers seen but they do not sit where a %dx%d ChArUco board "
                        "puts them (columns and rows swapped, or another board)",
                        (int)mine.size(), b->columns, b->rows);
    std::vector<cv::Point2f> ch_corners;
    std::vector<int> ch_ids;
    cv::aruco::interpolateCornersCharuco(mine, mine_ids, img, board, ch_corners, ch_ids);
    for (size_t i = 0; i < ch_ids.size(); i++) {
        int id = ch_ids[i];
        if (id < 0 || id >= (int)board->chessboardCorners.size())
            continue;
        km_board_corner &c = out[*count];
        c.id = id;
        c.u_px = ch_corners[i].x;
        c.v_px = ch_corners[i].y;
        c.x_m = board->chessboardCorners[(size_t)id].x;
        c.y_m = board->chessboardCorners[(size_t)id].y;
        (*count)++;
    }
    return KM_OK;
}

// Texture of the printed board with a white margin of one square, and the affine map
// board metres -> texture pixels (A: 2x3).
km_status board_texture(const km_board *b, cv::Mat &tex, cv::Matx23d &A)
{
    const int s = kTexturePxPerSquare;
    if (b->type == KM_BOARD_CHESSBOARD) {
        // (columns + 1) x (rows + 1) squares; inner corner (c, r) at (c, r) * square.
        // Texture pixel centre (tx + 0.5) <-> x = ((tx + 0.5) / s - 2) * square.
        int w = (b->columns + 3) * s, h = (b->rows + 3) * s;
        tex = cv::Mat(h, w, CV_8UC1, cv::Scalar(255));
        for (int j = 0; j <= b->rows; j++)
            for (int i = 0; i <= b->columns; i++)
                if ((i + j) % 2 == 0)
                    tex(cv::Rect((i + 1) * s, (j + 1) * s, s, s)).setTo(0);
        const double k = s / b->square_m;
        A = cv::Matx23d(k, 0, 2.0 * s - 0.5, 0, k, 2.0 * s - 0.5);
        return KM_OK;
    }
    // ChArUco: let OpenCV draw it, then find the map by detecting it on the flat drawing
    // (independent of how this OpenCV version orients the board frame).
    cv::Ptr<cv::aruco::CharucoBoard> board = make_charuco(b);
    cv::Mat drawn;
    board->draw(cv::Size(b->columns * s, b->rows * s), drawn, 0, 1);
    cv::copyMakeBorder(drawn, tex, s, s, s, s, cv::BORDER_CONSTANT, cv::Scalar(255));
    std::vector<km_board_corner> corners((size_t)max_corners(b));
    int count = 0;
    km_status st = detect_charuco(b, tex, corners.data(), &count, nullptr);
    if (st != KM_OK)
        return st;
    if (count < 3)
        return km_error(KM_ERR_INTERNAL, "render board: cannot locate the drawn ChArUco board");
    std::vector<cv::Point2f> from, to;
    for (int i = 0; i < count; i++) {
        from.emplace_back((float)corners[(size_t)i].x_m, (float)corners[(size_t)i].y_m);
        to.emplace_back((float)corners[(size_t)i].u_px, (float)corners[(size_t)i].v_px);
    }
    cv::Mat a = cv::estimateAffine2D(from, to, cv::noArray(), cv::LMEDS);
    if (a.empty())
        return km_error(KM_ERR_INTERNAL, "render board: no affine map of the drawn board");
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 3; c++)
            A(r, c) = a.at<double>(r, c);
    return KM_OK;
}

} // namespace

extern "C" km_status km_cv_detect_board(const km_board *board, km_cv_corner_method method,
                                        const uint8_t *gray, int width, int height,
                                        int stride, km_board_corner *out, int capacity,
                                        int *count, int *markers)
{
    if (count != nullptr)
        *count = 0;
    if (markers != nullptr)
        *markers = 0;
    if (!board_valid(board) || gray == nullptr || out == nullptr || count == nullptr ||
        width < 8 || height < 8 || stride < width)
        return km_error(KM_ERR_INVALID_ARGUMENT, "cv detect board: bad arguments");
    if (capacity < max_corners(board))
        return km_error(KM_ERR_CAPACITY, "cv detect board: room for %d corners, the board has %d",
                        capacity, max_corners(board));
    try {
        cv::Mat img(height, width, CV_8UC1, const_cast<uint8_t *>(gray), (size_t)stride);
        if (board->type == KM_BOARD_CHESSBOARD)
            return detect_chessboard(board, method, img, out, count);
        return detect_charuco(board, img, out, count, markers);
    } catch (const std::exception &e) {
        *count = 0;
        return km_error(KM_ERR_INTERNAL, "cv detect board: %s", e.what());
    } catch (...) {
        *count = 0;
        return km_error(KM_ERR_INTERNAL, "cv detect board: unknown exception");
    }
}

extern "C" km_status km_cv_render_board(const km_board *board, const km_camera *camera,
                                        uint8_t *gray, int stride, uint8_t background)
{
    if (!board_valid(board) || camera == nullptr || gray == nullptr || camera->width < 1 ||
        camera->height < 1 || stride < camera->width)
        return km_error(KM_ERR_INVALID_ARGUMENT, "cv render board: bad arguments");
    try {
        cv::Mat tex;
        cv::Matx23d A;
        km_status st = board_texture(board, tex, A);
        if (st != KM_OK)
            return st;
        const int ss = 2; // supersampling per axis, averaged down with INTER_AREA
        const int W = camera->width * ss, H = camera->height * ss;
        // Undistort a coarse grid (every kGrid supersampled pixels) and interpolate between:
        // the inverse distortion is smooth, so the error of the bilinear interpolation is
        // below 0.001 px, and it is 16 times fewer of cv::undistortPoints' iterations.
        const int kGrid = 4;
        const int gw = (W - 1) / kGrid + 2, gh = (H - 1) / kGrid + 2;
        std::vector<cv::Point2f> pix((size_t)gw * gh);
        for (int gy = 0; gy < gh; gy++)
            for (int gx = 0; gx < gw; gx++)
                pix[(size_t)gy * gw + gx] = cv::Point2f((float)((gx * kGrid + 0.5) / ss - 0.5),
                                                        (float)((gy * kGrid + 0.5) / ss - 0.5));
        cv::Matx33d K(camera->K);
        cv::Mat dist(1, 5, CV_64F, const_cast<double *>(camera->dist));
        std::vector<cv::Point2f> grid;
        cv::undistortPoints(pix, grid, K, dist, cv::noArray(), cv::noArray(),
                            cv::TermCriteria(cv::TermCriteria::COUNT | cv::TermCriteria::EPS,
                                             20, 1e-9));
        // Normalised homography board (x, y, 1) -> camera ray: [r1 r2 t].
        const double *R = camera->R.m;
        cv::Matx33d Hn(R[0], R[1], camera->t.x, R[3], R[4], camera->t.y, R[6], R[7],
                       camera->t.z);
        cv::Matx33d Hinv = Hn.inv();
        cv::Mat map_x(H, W, CV_32FC1), map_y(H, W, CV_32FC1);
        for (int y = 0; y < H; y++) {
            float *mx = map_x.ptr<float>(y), *my = map_y.ptr<float>(y);
            for (int x = 0; x < W; x++) {
                const int gx = x / kGrid, gy = y / kGrid;
                const double fx = (double)(x % kGrid) / kGrid, fy = (double)(y % kGrid) / kGrid;
                const cv::Point2f &p00 = grid[(size_t)gy * gw + gx];
                const cv::Point2f &p01 = grid[(size_t)gy * gw + gx + 1];
                const cv::Point2f &p10 = grid[(size_t)(gy + 1) * gw + gx];
                const cv::Point2f &p11 = grid[(size_t)(gy + 1) * gw + gx + 1];
                const double nx = (1 - fy) * ((1 - fx) * p00.x + fx * p01.x) +
                                  fy * ((1 - fx) * p10.x + fx * p11.x);
                const double ny = (1 - fy) * ((1 - fx) * p00.y + fx * p01.y) +
                                  fy * ((1 - fx) * p10.y + fx * p11.y);
                cv::Vec3d b = Hinv * cv::Vec3d(nx, ny, 1.0);
                if (!(b[2] > 0.0)) { // behind the camera
                    mx[x] = my[x] = -1e6f;
                    continue;
                }
                double bx = b[0] / b[2], by = b[1] / b[2];
                mx[x] = (float)(A(0, 0) * bx + A(0, 1) * by + A(0, 2));
                my[x] = (float)(A(1, 0) * bx + A(1, 1) * by + A(1, 2));
            }
        }
        cv::Mat big, small;
        cv::remap(tex, big, map_x, map_y, cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                  cv::Scalar(background));
        cv::resize(big, small, cv::Size(camera->width, camera->height), 0, 0, cv::INTER_AREA);
        for (int y = 0; y < camera->height; y++)
            std::memcpy(gray + (size_t)y * stride, small.ptr<uint8_t>(y), (size_t)camera->width);
        return KM_OK;
    } catch (const std::exception &e) {
        return km_error(KM_ERR_INTERNAL, "cv render board: %s", e.what());
    } catch (...) {
        return km_error(KM_ERR_INTERNAL, "cv render board: unknown exception");
    }
}
