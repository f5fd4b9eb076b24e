/* The JSON reader (tf_json.h) beyond the shared vectors (which test_wire_vectors runs through it): the CBOR it
 * writes, strings and escapes, numbers exactly or not at all, the names of each table, and what is not JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tinyfleet/tf_json.h"
#include "tinyfleet/tf_state.h"

static uint8_t out[1024];
static tf_decode_buf_t db;

static tf_err_t json(tf_json_kind_t kind, const char *text, size_t *n)
{
    return tf_json_to_cbor(kind, (const uint8_t *)text, strlen(text), out, sizeof out, n, NULL);
}

static void assert_cbor(tf_json_kind_t kind, const char *text, const uint8_t *want, size_t want_len)
{
    size_t n = 0;
    assert_int_equal(json(kind, text, &n), TF_OK);
    assert_int_equal(n, want_len);
    assert_true(memcmp(out, want, n) == 0);
}

static void test_maps_field_names_to_integer_keys_and_keeps_other_names_as_text(void **state)
{
    /* {"v":1,"boot":2,"zz":true} -> {_ 0: 1, 3: 2, "zz": true} */
    static const uint8_t ev[] = {0xBF, 0x00, 0x01, 0x03, 0x02, 0x62, 'z', 'z', 0xF5, 0xFF};
    /* names inside x stay names */
    static const uint8_t x[] = {0xBF, 0x0D, 0xBF, 0x61, 'v', 0x01, 0xFF, 0xFF};
    /* state: caps names are caps keys; telemetry and ota/status have their own tables */
    static const uint8_t st[] = {0xBF, 0x07, 0xBF, 0x01, 0x02, 0x03, 0x9F, 0xFF, 0xFF, 0xFF};
    static const uint8_t tel[] = {0xBF, 0x0C, 0x05, 0xFF};
    static const uint8_t os[] = {0xBF, 0x09, 0x07, 0xFF};
    static const uint8_t batch[] = {0x9F, 0xBF, 0x02, 0x01, 0xFF, 0xBF, 0x02, 0x02, 0xFF, 0xFF};
    (void)state;
    assert_cbor(TF_JSON_EVENTS, "{\"v\":1,\"boot\":2,\"zz\":true}", ev, sizeof ev);
    assert_cbor(TF_JSON_EVENTS, "{\"x\":{\"v\":1}}", x, sizeof x);
    assert_cbor(TF_JSON_STATE, "{\"caps\":{\"ram\":2,\"ops\":[]}}", st, sizeof st);
    assert_cbor(TF_JSON_TELEMETRY, "{\"dropped\":5}", tel, sizeof tel);
    assert_cbor(TF_JSON_OTA_STATUS, "{\"progress\":7}", os, sizeof os);
    assert_cbor(TF_JSON_EVENTS, " [ {\"seq\":1} , {\"seq\":2} ]\r\n", batch, sizeof batch);
}

static void test_resolves_escapes_and_surrogate_pairs_into_utf8(void **state)
{
    static const uint8_t want[] = {0x6A, '"', '\\', '/', '\b', '\f', '\n', '\r', '\t', 0xC3, 0xA9};
    static const uint8_t pair[] = {0x64, 0xF0, 0x9F, 0x98, 0x80};  /* U+1F600 */
    static const uint8_t raw[] = {0x63, 0xE2, 0x82, 0xAC};        /* a raw euro sign */
    (void)state;
    assert_cbor(TF_JSON_EVENTS, "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"", want, sizeof want);
    assert_cbor(TF_JSON_EVENTS, "\"\\ud83d\\ude00\"", pair, sizeof pair);
    assert_cbor(TF_JSON_EVENTS, "\"\xE2\x82\xAC\"", raw, sizeof raw);
}

static void test_writes_integers_as_integers_and_other_numbers_as_exact_float64(void **state)
{
    static const uint8_t big[] = {0x1B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    static const uint8_t neg[] = {0x3B, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE};
    static const uint8_t zero[] = {0x00};
    static const uint8_t f093[] = {0xFB, 0x3F, 0xED, 0xC2, 0x8F, 0x5C, 0x28, 0xF5, 0xC3}; /* 0.93 */
    static const uint8_t f100[] = {0xFB, 0x40, 0x59, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}; /* 1E2 = 100.0 */
    static const uint8_t fneg0[] = {0xFB, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    static const uint8_t ftiny[] = {0xFB, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}; /* 1e-999 = 0.0 */
    size_t n;
    (void)state;
    assert_cbor(TF_JSON_EVENTS, "18446744073709551615", big, sizeof big);
    assert_cbor(TF_JSON_EVENTS, "-18446744073709551615", neg, sizeof neg);
    assert_cbor(TF_JSON_EVENTS, "-0", zero, sizeof zero);
    assert_cbor(TF_JSON_EVENTS, "0.93", f093, sizeof f093);
    assert_cbor(TF_JSON_EVENTS, "1E2", f100, sizeof f100);
    assert_cbor(TF_JSON_EVENTS, "-0.0", fneg0, sizeof fneg0);
    assert_cbor(TF_JSON_EVENTS, "1e-999", ftiny, sizeof ftiny);
    /* limits: never a rounded value */
    assert_int_equal(json(TF_JSON_EVENTS, "18446744073709551616", &n), TF_ERR_OUT_OF_RANGE);
    assert_int_equal(json(TF_JSON_EVENTS, "0.12345678901234567890123", &n), TF_ERR_UNSUPPORTED_FORMAT);
    assert_int_equal(json(TF_JSON_EVENTS, "1e200", &n), TF_ERR_UNSUPPORTED_FORMAT);
    assert_int_equal(json(TF_JSON_EVENTS, "1e999", &n), TF_ERR_MALFORMED_JSON); /* out of a double's range */
}

static void test_refuses_what_is_not_json(void **state)
{
    static const char *const bad[] = {
        "", "   ", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{\"a\":1}}", "[1 2]", "01", "1.", ".5", "-",
        "1e", "+1", "tru", "nul", "NaN", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"",
        "\"a\tb\"", "\"\xC3\"", "\"\xED\xA0\x80\"", "{} x", "[1]]", "'a'",
    };
    size_t i, n;
    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tf_err_t r = json(TF_JSON_EVENTS, bad[i], &n);
        if (r != TF_ERR_MALFORMED_JSON) {
            fail_msg("%s: %s", bad[i], tf_err_str(r));
        }
    }
}

static void test_bounds_nesting_and_reports_a_small_buffer(void **state)
{
    uint8_t small[4];
    size_t n;
    (void)state;
    assert_int_equal(json(TF_JSON_EVENTS, "[[[[[[[[1]]]]]]]]", &n), TF_OK); /* 8 levels */
    assert_int_equal(json(TF_JSON_EVENTS, "[[[[[[[[[1]]]]]]]]]", &n), TF_ERR_TOO_DEEP);
    assert_int_equal(tf_json_to_cbor(TF_JSON_EVENTS, (const uint8_t *)"[1,2,3,4,5]", 11, small, sizeof small, &n, NULL),
                     TF_ERR_NO_SPACE);
    assert_int_equal(n, 7u); /* the size it needs */
}

static void test_decodes_a_json_state_with_caps_like_its_cbor_form(void **state)
{
    static const char text[] = "{\"v\":1,\"online\":true,\"boot\":4,\"model\":\"kws-ref\",\"mver\":3,"
                               "\"caps\":{\"flash\":1048576,\"ram\":262144,\"arena\":30000,\"ops\":[\"CONV_2D\"]}}";
    tf_state_t s;
    tf_decode_opts_t o;
    size_t n;
    (void)state;
    (void)tf_decode_opts_default(&o);
    assert_int_equal(tf_state_decode((const uint8_t *)text, strlen(text), &o, &s, &db, NULL), TF_ERR_UNSUPPORTED_FORMAT);
    assert_int_equal(json(TF_JSON_STATE, text, &n), TF_OK);
    assert_int_equal(tf_state_decode(out, n, &o, &s, &db, NULL), TF_OK);
    assert_int_equal(s.online, 1);
    assert_int_equal(s.boot, 4);
    assert_int_equal(s.caps.flash, 1048576);
    assert_int_equal(s.caps.arena, 30000);
    assert_int_equal(s.caps.ops_len, 1);
    assert_int_equal(s.caps.ops[0].len, 7);
}

static void test_measures_a_json_event_against_the_event_limit_on_its_own_bytes(void **state)
{
    static uint8_t work[4096];
    char text[1400];
    tf_event_decoder_t d;
    tf_wire_error_t e;
    size_t len;
    (void)state;
    /* 1,100 bytes of JSON whose CBOR form is under 1,024: event_too_large, as the reference measures it */
    len = (size_t)snprintf(text, sizeof text, "{\"v\":1,\"seq\":1,\"boot\":1,\"model\":\"m\",\"kind\":0,\"label\":0%*s}",
                           1100 - 56, "");
    assert_true(len > 1024);
    assert_int_equal(tf_json_events_begin(&d, (const uint8_t *)text, len, NULL, work, sizeof work, &e),
                     TF_ERR_EVENT_TOO_LARGE);
    assert_int_equal(e.code, TF_ERR_EVENT_TOO_LARGE);
    assert_int_equal(e.index, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maps_field_names_to_integer_keys_and_keeps_other_names_as_text),
        cmocka_unit_test(test_resolves_escapes_and_surrogate_pairs_into_utf8),
        cmocka_unit_test(test_writes_integers_as_integers_and_other_numbers_as_exact_float64),
        cmocka_unit_test(test_refuses_what_is_not_json),
        cmocka_unit_test(test_bounds_nesting_and_reports_a_small_buffer),
        cmocka_unit_test(test_decodes_a_json_state_with_caps_like_its_cbor_form),
        cmocka_unit_test(test_measures_a_json_event_against_the_event_limit_on_its_own_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
