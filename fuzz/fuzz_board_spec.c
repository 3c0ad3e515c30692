/* Fuzz target: km_board_parse on arbitrary bytes (the --board argument of
 * `kinema calibrate intrinsics`). Any input gives a valid board or KM_ERR_PARSE, never a
 * crash; an accepted board must satisfy what the detectors rely on. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinema/calib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *spec = malloc(size + 1);
    if (spec == NULL)
        return 0;
    memcpy(spec, data, size);
    spec[size] = '\0';
    km_board board;
    km_status st = km_board_parse(spec, &board);
    if (st == KM_OK) {
        int corners = km_board_max_corners(&board);
        if (board.columns < 2 || board.rows < 2 || board.columns > 64 || board.rows > 64 ||
            !(board.square_m > 0.0) || corners < 1 || corners > 64 * 64)
            abort();
        if (board.type == KM_BOARD_CHARUCO &&
            !(board.marker_m > 0.0 && board.marker_m < board.square_m))
            abort();
        char text[160];
        km_board_describe(&board, text, sizeof text);
    } else if (st != KM_ERR_PARSE) {
        abort();
    }
    free(spec);
    return 0;
}
