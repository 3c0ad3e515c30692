/* Tests of calib/board.c: the --board text form, corner counts, descriptions. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "kinema/calib.h"

static void test_parse_chessboard(void **state)
{
    (void)state;
    km_board b;
    assert_int_equal(km_board_parse("chessboard:9x6:0.025", &b), KM_OK);
    assert_int_equal(b.type, KM_BOARD_CHESSBOARD);
    assert_int_equal(b.columns, 9);
    assert_int_equal(b.rows, 6);
    assert_true(b.square_m == 0.025);
    assert_int_equal(km_board_max_corners(&b), 54);
    char text[160];
    km_board_describe(&b, text, sizeof text);
    assert_string_equal(text, "chessboard 9x6 inner corners, 25.0 mm squares");
}

static void test_parse_charuco(void **state)
{
    (void)state;
    km_board b;
    assert_int_equal(km_board_parse("charuco:5x7:0.04:0.02", &b), KM_OK);
    assert_int_equal(b.type, KM_BOARD_CHARUCO);
    assert_int_equal(b.dictionary, 10); /* DICT_6X6_250 by default */
    assert_int_equal(km_board_max_corners(&b), 24);
    assert_int_equal(km_board_parse("charuco:5x7:0.04:0.02:DICT_4X4_50", &b), KM_OK);
    assert_int_equal(b.dictionary, 0);
    assert_int_equal(km_board_parse("charuco:5x7:0.04:0.02:DICT_ARUCO_ORIGINAL", &b), KM_OK);
    assert_int_equal(b.dictionary, 16);
    char text[160];
    km_board_describe(&b, text, sizeof text);
    assert_non_null(strstr(text, "ChArUco 5x7 squares"));
    assert_non_null(strstr(text, "DICT_ARUCO_ORIGINAL"));
}

static void test_parse_errors(void **state)
{
    (void)state;
    km_board b;
    const char *bad[] = {"", "chessboard", "chessboard:9x6", "chessboard:9x6:0.025:1",
                         "chessboard:9*6:0.025", "chessboard:9x6x2:0.025", "chessboard:1x6:0.025",
                         "chessboard:9x65:0.025", "chessboard:9x6:0", "chessboard:9x6:-1",
                         "chessboard:9x6:abc", "chessboard:9x6:0.025mm", "checker:9x6:0.025",
                         "charuco:5x7:0.04", "charuco:5x7:0.04:0.05", "charuco:2x7:0.04:0.02",
                         "charuco:5x7:0.04:0.02:DICT_9X9", "charuco:5x7:0.04:0.02:DICT_6X6_250:x",
                         "chessboard:9x6:1e400", "chessboard:9x6:nan"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(km_board_parse(bad[i], &b), KM_ERR_PARSE);
        assert_true(strlen(km_last_error()) > 10);
    }
    assert_int_equal(km_board_parse(NULL, &b), KM_ERR_INVALID_ARGUMENT);
    assert_int_equal(km_board_max_corners(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_chessboard),
        cmocka_unit_test(test_parse_charuco),
        cmocka_unit_test(test_parse_errors),
    };
    return cmocka_run_group_tests_name("calib_board", tests, NULL, NULL);
}
