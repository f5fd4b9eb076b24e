/* The few cmocka calls the codec tests use, for the bare-metal Cortex-M4 run (no cmocka there): the same test
 * sources run on the host under cmocka and on the target under QEMU. */
#ifndef TF_CMOCKA_SHIM_H
#define TF_CMOCKA_SHIM_H

#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

extern jmp_buf tf_shim_jmp;

#define print_error(...) printf(__VA_ARGS__)
#define TF_SHIM_FAIL(...)                                                                                            \
    do {                                                                                                             \
        printf("  %s:%d: ", __FILE__, __LINE__);                                                                     \
        printf(__VA_ARGS__);                                                                                         \
        printf("\n");                                                                                                \
        longjmp(tf_shim_jmp, 1);                                                                                     \
    } while (0)
#define assert_int_equal(a, b)                                                                                       \
    do {                                                                                                             \
        long long tf_a_ = (long long)(a), tf_b_ = (long long)(b);                                                    \
        if (tf_a_ != tf_b_) {                                                                                        \
            TF_SHIM_FAIL("%lld != %lld", tf_a_, tf_b_);                                                              \
        }                                                                                                            \
    } while (0)
#define assert_true(c)                                                                                               \
    do {                                                                                                             \
        if (!(c)) {                                                                                                  \
            TF_SHIM_FAIL("%s", #c);                                                                                  \
        }                                                                                                            \
    } while (0)
#define assert_non_null(p) assert_true((p) != NULL)
#define assert_string_equal(a, b) assert_true(strcmp((a), (b)) == 0)
#define assert_float_equal(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (double)(eps))
#define fail_msg(...) TF_SHIM_FAIL(__VA_ARGS__)

typedef void (*CMUnitTestFunction)(void **state);
struct CMUnitTest {
    const char *name;
    CMUnitTestFunction fn;
};
#define cmocka_unit_test(f) {#f, f}

static inline int tf_shim_run(const struct CMUnitTest *t, size_t n)
{
    size_t i;
    int failed = 0;
    for (i = 0; i < n; i++) {
        if (setjmp(tf_shim_jmp) == 0) {
            t[i].fn(NULL);
            printf("[       OK ] %s\n", t[i].name);
        } else {
            printf("[  FAILED  ] %s\n", t[i].name);
            failed++;
        }
    }
    printf("%d of %u tests failed\n", failed, (unsigned)n);
    return failed;
}
#define cmocka_run_group_tests(tests, setup, teardown) tf_shim_run((tests), sizeof(tests) / sizeof((tests)[0]))

#endif
