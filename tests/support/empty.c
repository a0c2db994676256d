/* empty.c — keeps the test support library non-empty before other files exist. */
typedef int vigil_test_support_empty;
