/* nabla/version.h and nb_version(): the generated header and the library
 * agree with each other and with project(nabla VERSION ...) in CMakeLists.txt
 * (NB_EXPECTED_VERSION, passed by tests/CMakeLists.txt). */
#include "testutil.h"

#include <stdio.h>

START_TEST(test_version_string) {
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", NB_VERSION_MAJOR, NB_VERSION_MINOR, NB_VERSION_PATCH);
    ck_assert_str_eq(NB_VERSION_STRING, expected);
    ck_assert_str_eq(NB_VERSION_STRING, NB_EXPECTED_VERSION);
    ck_assert_str_eq(nb_version(), NB_EXPECTED_VERSION);
    ck_assert_ptr_eq(nb_version(), nb_version()); /* static storage, nothing to free */
}
END_TEST

int main(void) {
    Suite *s = suite_create("version");
    TCase *tc = tcase_create("version");
    tcase_add_test(tc, test_version_string);
    suite_add_tcase(s, tc);
    return nbt_run_suite(s);
}
