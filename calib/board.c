/* Calibration boards: the --board text form, corner counts and descriptions. Detection
 * itself is in cv/board.cpp (OpenCV). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/calib.h"

/* cv::aruco::PREDEFINED_DICTIONARY_NAME, in OpenCV's order (value = index). */
static const char *const DICTIONARIES[] = {
    "DICT_4X4_50",   "DICT_4X4_100",  "DICT_4X4_250",  "DICT_4X4_1000",
    "DICT_5X5_50",   "DICT_5X5_100",  "DICT_5X5_250",  "DICT_5X5_1000",
    "DICT_6X6_50",   "DICT_6X6_100",  "DICT_6X6_250",  "DICT_6X6_1000",
    "DICT_7X7_50",   "DICT_7X7_100",  "DICT_7X7_250",  "DICT_7X7_1000",
    "DICT_ARUCO_ORIGINAL", "DICT_APRILTAG_16h5", "DICT_APRILTAG_25h9",
    "DICT_APRILTAG_36h10", "DICT_APRILTAG_36h11",
};
#define DICTIONARY_COUNT ((int)(sizeof DICTIONARIES / sizeof DICTIONARIES[0]))
#define DICT_6X6_250 10

static bool parse_positive(const char *s, size_t len, double *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (*end != '\0' || errno != 0 || !isfinite(v) || !(v > 0.0) || v > 10.0)
        return false;
    *out = v;
    return true;
}

km_status km_board_parse(const char *spec, km_board *board)
{
    if (spec == NULL || board == NULL)
        return km_error(KM_ERR_INVALID_ARGUMENT, "board: NULL argument");
    memset(board, 0, sizeof *board);
    const char *usage = "expected chessboard:COLSxROWS:SQUARE_M (inner corners, e.g. "
                        "chessboard:9x6:0.025) or charuco:COLSxROWS:SQUARE_M:MARKER_M[:DICT] "
                        "(squares, e.g. charuco:5x7:0.04:0.02:DICT_6X6_250)";
    /* Split at ':' into at most 5 fields. */
    const char *field[6];
    size_t len[6];
    int n = 0;
    const char *p = spec;
    while (n < 6) {
        const char *colon = strchr(p, ':');
        field[n] = p;
        len[n] = colon ? (size_t)(colon - p) : strlen(p);
        n++;
        if (!colon)
            break;
        p = colon + 1;
    }
    if (n < 3 || n > 5)
        return km_error(KM_ERR_PARSE, "board '%s': %s", spec, usage);
    if (len[0] == 10 && strncmp(field[0], "chessboard", 10) == 0)
        board->type = KM_BOARD_CHESSBOARD;
    else if (len[0] == 7 && strncmp(field[0], "charuco", 7) == 0)
        board->type = KM_BOARD_CHARUCO;
    else
        return km_error(KM_ERR_PARSE, "board '%s': unknown type '%.*s'; %s", spec, (int)len[0],
                        field[0], usage);
    if ((board->type == KM_BOARD_CHESSBOARD && n != 3) ||
        (board->type == KM_BOARD_CHARUCO && n < 4))
        return km_error(KM_ERR_PARSE, "board '%s': wrong number of fields; %s", spec, usage);
    int cols = 0, rows = 0, used = 0;
    char size[32];
    if (len[1] >= sizeof size)
        return km_error(KM_ERR_PARSE, "board '%s': bad size; %s", spec, usage);
    memcpy(size, field[1], len[1]);
    size[len[1]] = '\0';
    if (sscanf(size, "%dx%d%n", &cols, &rows, &used) != 2 || used != (int)len[1])
        return km_error(KM_ERR_PARSE, "board '%s': bad size '%s' (COLSxROWS); %s", spec, size,
                        usage);
    const int min = board->type == KM_BOARD_CHESSBOARD ? 2 : 3;
    if (cols < min || rows < min || cols > 64 || rows > 64)
        return km_error(KM_ERR_PARSE, "board '%s': size %dx%d out of range [%d, 64]", spec, cols,
                        rows, min);
    board->columns = cols;
    board->rows = rows;
    if (!parse_positive(field[2], len[2], &board->square_m))
        return km_error(KM_ERR_PARSE, "board '%s': square size must be a length in metres in "
                        "(0, 10], e.g. 0.025", spec);
    if (board->type == KM_BOARD_CHARUCO) {
        if (!parse_positive(field[3], len[3], &board->marker_m) ||
            board->marker_m >= board->square_m)
            return km_error(KM_ERR_PARSE, "board '%s': marker size must be a length in metres "
                            "smaller than the square", spec);
        board->dictionary = DICT_6X6_250;
        if (n == 5) {
            int d = 0;
            while (d < DICTIONARY_COUNT && !(strlen(DICTIONARIES[d]) == len[4] &&
                                             strncmp(DICTIONARIES[d], field[4], len[4]) == 0))
                d++;
            if (d == DICTIONARY_COUNT)
                return km_error(KM_ERR_PARSE, "board '%s': unknown dictionary '%.*s' (e.g. "
                                "DICT_4X4_50 ... DICT_7X7_1000, DICT_ARUCO_ORIGINAL)", spec,
                                (int)len[4], field[4]);
            board->dictionary = d;
        }
    }
    return KM_OK;
}

int km_board_max_corners(const km_board *board)
{
    if (board == NULL || board->columns < 1 || board->rows < 1)
        return 0;
    return board->type == KM_BOARD_CHESSBOARD ? board->columns * board->rows
                                              : (board->columns - 1) * (board->rows - 1);
}

void km_board_describe(const km_board *board, char *out, size_t out_size)
{
    if (out == NULL || out_size == 0)
        return;
    if (board == NULL) {
        snprintf(out, out_size, "(no board)");
    } else if (board->type == KM_BOARD_CHESSBOARD) {
        snprintf(out, out_size, "chessboard %dx%d inner corners, %.1f mm squares",
                 board->columns, board->rows, board->square_m * 1e3);
    } else {
        const char *dict = board->dictionary >= 0 && board->dictionary < DICTIONARY_COUNT
                               ? DICTIONARIES[board->dictionary]
                               : "?";
        snprintf(out, out_size, "ChArUco %dx%d squares, %.1f mm squares, %.1f mm markers, %s",
                 board->columns, board->rows, board->square_m * 1e3, board->marker_m * 1e3,
                 dict);
    }
}
