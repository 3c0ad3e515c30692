/* CRC-32 of the recording format (capture/crc32.c): the check value of the catalogue, the
 * value zlib's crc32 gives for a known text, incremental updates, and the carry-less
 * multiplication path against the table loop for every length 0..2100 at every alignment
 * 0..15 and for megabyte buffers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"

static void test_known_values(void **state)
{
    (void)state;
    assert_int_equal(km_crc32_update(0, "123456789", 9), 0xCBF43926u);
    assert_int_equal(km_crc32_update_portable(0, "123456789", 9), 0xCBF43926u);
    /* python3 -c "import zlib; print(hex(zlib.crc32(b'The quick brown fox jumps over the lazy dog')))" */
    const char *fox = "The quick brown fox jumps over the lazy dog";
    assert_int_equal(km_crc32_update(0, fox, strlen(fox)), 0x414FA339u);
    assert_int_equal(km_crc32_update(0, NULL, 0), 0);
    /* Pieces give the same as the whole. */
    uint32_t c = km_crc32_update(0, fox, 10);
    c = km_crc32_update(c, fox + 10, strlen(fox) - 10);
    assert_int_equal(c, 0x414FA339u);
}

static void test_fast_path_matches_table(void **state)
{
    (void)state;
    size_t n = 3u << 20;
    uint8_t *buf = malloc(n + 16);
    uint64_t x = 42;
    for (size_t i = 0; i < n + 16; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (uint8_t)(x >> 56);
    }
    for (size_t align = 0; align < 16; align++)
        for (size_t len = 0; len <= 2100; len += (len < 300 ? 1 : 7))
            assert_int_equal(km_crc32_update(0x12345678u, buf + align, len),
                             km_crc32_update_portable(0x12345678u, buf + align, len));
    assert_int_equal(km_crc32_update(0, buf + 3, n), km_crc32_update_portable(0, buf + 3, n));
    /* Incremental across the fast/slow boundary. */
    uint32_t a = km_crc32_update(0, buf, 1000);
    a = km_crc32_update(a, buf + 1000, n - 1000);
    assert_int_equal(a, km_crc32_update_portable(0, buf, n));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_fast_path_matches_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
