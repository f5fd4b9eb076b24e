/* Every case of events.json, state.json, telemetry.json, ota_status.json and topics.json through the C
 * codec — CBOR cases through the decoders, JSON cases through the JSON reader (tf_json.h) and then the
 * decoders: they give the vector's code / field / index, decoded values re-encode to the reference's
 * canonical bytes, canonical cases encode back to their exact bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tinyfleet/tf_event.h"
#include "tinyfleet/tf_json.h"
#include "tinyfleet/tf_state.h"
#include "tinyfleet/tf_topic.h"
#include "vectors.h"

static int failures;

#define CHECK(cond, name, ...)                                                                                       \
    do {                                                                                                             \
        if (!(cond)) {                                                                                               \
            print_error("case %s: ", (name));                                                                        \
            print_error(__VA_ARGS__);                                                                                \
            print_error("\n");                                                                                       \
            failures++;                                                                                              \
        }                                                                                                            \
    } while (0)

static tf_decode_buf_t db;
static uint8_t out[300000];
static uint8_t body[300000];
static uint8_t json_cbor[3u * 262144u + 16u]; /* a JSON payload transcoded (at most 3 x its size) */

/* The CBOR decoders on a JSON payload: the message-level size checks, then unsupported_format. */
static const char *raw_json_result(const tf_vec_wire_t *c)
{
    if (c->error != NULL && (strcmp(c->error, "empty_payload") == 0 || strcmp(c->error, "message_too_large") == 0)) {
        return c->error;
    }
    return "unsupported_format";
}

static tf_decode_opts_t opts_of(const tf_vec_wire_t *c)
{
    tf_decode_opts_t o;
    (void)tf_decode_opts_default(&o);
    o.strict = c->strict;
    o.has_now = c->has_now;
    o.now_ms = c->now_ms;
    o.limits = c->limits;
    return o;
}

static const char *field_or_empty(const char *f) { return f != NULL ? f : ""; }

static void hexdump(const char *what, const uint8_t *p, size_t n)
{
    size_t i;
    print_error("  %s (%zu): ", what, n);
    for (i = 0; i < n && i < 200; i++) {
        print_error("%02x", p[i]);
    }
    print_error("\n");
}

static int same_bytes(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
    if (na != nb || (na > 0 && memcmp(a, b, na) != 0)) {
        hexdump("got", a, na);
        hexdump("expected", b, nb);
        return 0;
    }
    return 1;
}

/* Decode an evt payload with the C decoder; re-encode the valid events (as a batch when the payload is
 * one); report the first reject. */
static tf_err_t decode_events(const uint8_t *p, size_t n, int is_json, const tf_decode_opts_t *o, size_t *out_len,
                              size_t *kept, tf_wire_error_t *first_reject)
{
    tf_event_decoder_t d;
    tf_wire_error_t e;
    tf_event_t ev;
    tf_cbor_writer_t w, bw;
    tf_err_t r;
    *kept = 0;
    *out_len = 0;
    first_reject->code = TF_OK;
    r = is_json ? tf_json_events_begin(&d, p, n, o, json_cbor, sizeof json_cbor, &e) : tf_events_begin(&d, p, n, o, &e);
    if (r != TF_OK) {
        *first_reject = e;
        return r;
    }
    (void)tf_cbor_writer_init(&bw, body, sizeof body);
    while ((r = tf_events_next(&d, &ev, &db, &e)) != TF_ERR_END) {
        if (r == TF_OK) {
            assert_int_equal(tf_event_write(&bw, &ev, 0), TF_OK);
            (*kept)++;
        } else if (first_reject->code == TF_OK) {
            *first_reject = e;
        }
    }
    (void)tf_cbor_writer_init(&w, out, sizeof out);
    if (d.is_batch && *kept > 0) {
        (void)tf_batch_begin(&w, *kept);
    }
    (void)tf_cbor_put_raw(&w, body, bw.len);
    *out_len = w.len;
    return first_reject->code;
}

static void test_event_vectors(void **state)
{
    size_t i, handled = 0, json_cases = 0;
    (void)state;
    failures = 0;
    for (i = 0; i < tf_vec_events_count; i++) {
        const tf_vec_wire_t *c = &tf_vec_events[i];
        tf_decode_opts_t o = opts_of(c);
        tf_wire_error_t rej;
        size_t n, kept;
        tf_err_t r;
        if (c->is_json) {
            tf_event_decoder_t raw;
            r = tf_events_begin(&raw, c->data, c->len, &o, NULL);
            CHECK(strcmp(tf_err_str(r), raw_json_result(c)) == 0, c->name, "CBOR decoder on JSON: %s", tf_err_str(r));
        }
        r = decode_events(c->data, c->len, c->is_json, &o, &n, &kept, &rej);
        if (c->c_error == NULL) {
            CHECK(r == TF_OK, c->name, "expected ok, got %s (field %s)", tf_err_str(r), rej.field);
        } else {
            CHECK(strcmp(tf_err_str(r), c->c_error) == 0, c->name, "expected %s, got %s (field '%s')", c->c_error,
                  tf_err_str(r), rej.field);
            if (r != TF_OK) {
                CHECK(rej.index == c->index, c->name, "index %d, expected %d", (int)rej.index, (int)c->index);
                CHECK(strcmp(rej.field, field_or_empty(c->field)) == 0, c->name, "field '%s', expected '%s'",
                      rej.field, field_or_empty(c->field));
            }
        }
        if (c->expect != NULL) {
            CHECK(same_bytes(out, n, c->expect, c->expect_len), c->name, "re-encoding differs from the reference");
            CHECK(c->valid || kept == c->kept, c->name, "kept %zu events, expected %zu", kept, c->kept);
        }
        json_cases += (size_t)c->is_json;
        if (c->canonical) {
            /* canonical: the C encoder reproduces the exact bytes (with the case's encoder options) */
            tf_event_decoder_t d;
            tf_event_t ev;
            tf_cbor_writer_t w;
            (void)tf_cbor_writer_init(&w, out, sizeof out);
            assert_int_equal(tf_events_begin(&d, c->data, c->len, &o, NULL), TF_OK);
            if (d.is_batch) {
                (void)tf_batch_begin(&w, d.count);
            }
            while (tf_events_next(&d, &ev, &db, NULL) == TF_OK) {
                CHECK(tf_event_write(&w, &ev, c->flags) == TF_OK, c->name, "encode failed");
            }
            CHECK(same_bytes(out, w.len, c->data, c->len), c->name, "canonical encoding differs");
        }
        handled++;
    }
    assert_int_equal(handled, tf_vec_events_in_file);
    assert_true(json_cases > 0); /* the JSON cases are read, not skipped */
    assert_int_equal(failures, 0);
}

typedef tf_err_t (*record_roundtrip_fn)(const uint8_t *p, size_t n, const tf_decode_opts_t *o, size_t *out_len,
                                        tf_wire_error_t *e);

static tf_err_t telemetry_rt(const uint8_t *p, size_t n, const tf_decode_opts_t *o, size_t *out_len,
                             tf_wire_error_t *e)
{
    tf_telemetry_t t;
    tf_err_t r = tf_telemetry_decode(p, n, o, &t, &db, e);
    *out_len = 0;
    if (r == TF_OK) {
        assert_int_equal(tf_telemetry_encode(&t, out, sizeof out, out_len), TF_OK);
    }
    return r;
}

static tf_err_t state_rt(const uint8_t *p, size_t n, const tf_decode_opts_t *o, size_t *out_len, tf_wire_error_t *e)
{
    tf_state_t s;
    tf_err_t r = tf_state_decode(p, n, o, &s, &db, e);
    *out_len = 0;
    if (r == TF_OK) {
        assert_int_equal(tf_state_encode(&s, out, sizeof out, out_len), TF_OK);
    }
    return r;
}

static tf_err_t ota_status_rt(const uint8_t *p, size_t n, const tf_decode_opts_t *o, size_t *out_len,
                              tf_wire_error_t *e)
{
    tf_ota_status_t s;
    tf_err_t r = tf_ota_status_decode(p, n, o, &s, &db, e);
    *out_len = 0;
    if (r == TF_OK) {
        assert_int_equal(tf_ota_status_encode(&s, out, sizeof out, out_len), TF_OK);
    }
    return r;
}

static void run_records(const tf_vec_wire_t *cases, size_t count, size_t in_file, tf_json_kind_t kind,
                        record_roundtrip_fn fn)
{
    size_t i, handled = 0;
    failures = 0;
    for (i = 0; i < count; i++) {
        const tf_vec_wire_t *c = &cases[i];
        tf_decode_opts_t o = opts_of(c);
        tf_wire_error_t e;
        size_t n = 0;
        tf_err_t r;
        memset(&e, 0, sizeof e);
        r = fn(c->data, c->len, &o, &n, &e);
        if (c->is_json) {
            /* the CBOR decoder says unsupported_format (after the size checks); the JSON reader goes on */
            CHECK(strcmp(tf_err_str(r), raw_json_result(c)) == 0, c->name, "CBOR decoder on JSON: %s", tf_err_str(r));
            if (r == TF_ERR_UNSUPPORTED_FORMAT) {
                size_t m = 0;
                r = tf_json_to_cbor(kind, c->data, c->len, json_cbor, sizeof json_cbor, &m, NULL);
                if (r == TF_OK) {
                    memset(&e, 0, sizeof e);
                    r = fn(json_cbor, m, &o, &n, &e);
                }
            }
        }
        if (c->c_error == NULL) {
            CHECK(r == TF_OK, c->name, "expected ok, got %s (field '%s')", tf_err_str(r), e.field);
        } else {
            CHECK(strcmp(tf_err_str(r), c->c_error) == 0, c->name, "expected %s, got %s (field '%s')", c->c_error,
                  tf_err_str(r), e.field);
            if (!c->valid) {
                CHECK(strcmp(e.field, field_or_empty(c->field)) == 0, c->name, "field '%s', expected '%s'", e.field,
                      field_or_empty(c->field));
            }
        }
        if (c->expect != NULL && c->expect_len > 0) {
            CHECK(r == TF_OK, c->name, "decode for re-encoding: %s", tf_err_str(r));
            CHECK(same_bytes(out, n, c->expect, c->expect_len), c->name, "re-encoding differs from the reference");
            if (c->canonical) {
                CHECK(same_bytes(out, n, c->data, c->len), c->name, "canonical encoding differs");
            }
        }
        handled++;
    }
    assert_int_equal(handled, in_file);
    assert_int_equal(failures, 0);
}

static void test_telemetry_vectors(void **state)
{
    (void)state;
    run_records(tf_vec_telemetry, tf_vec_telemetry_count, tf_vec_telemetry_in_file, TF_JSON_TELEMETRY, telemetry_rt);
}

static void test_state_vectors(void **state)
{
    (void)state;
    run_records(tf_vec_state, tf_vec_state_count, tf_vec_state_in_file, TF_JSON_STATE, state_rt);
}

static void test_ota_status_vectors(void **state)
{
    (void)state;
    run_records(tf_vec_ota_status, tf_vec_ota_status_count, tf_vec_ota_status_in_file, TF_JSON_OTA_STATUS,
                ota_status_rt);
}

static void test_topic_vectors(void **state)
{
    size_t i;
    char buf[TF_TOPIC_MAX + 64];
    (void)state;
    failures = 0;
    for (i = 0; i < tf_vec_ids_valid_count; i++) {
        const char *id = tf_vec_ids_valid[i];
        CHECK(tf_device_id_check(id, strlen(id)) == TF_OK, id, "valid id refused");
    }
    for (i = 0; i < tf_vec_ids_invalid_count; i++) {
        const tf_vec_bad_id_t *c = &tf_vec_ids_invalid[i];
        CHECK(strcmp(tf_err_str(tf_device_id_check(c->id, c->len)), c->error) == 0, c->id, "invalid id accepted");
    }
    for (i = 0; i < tf_vec_topics_valid_count; i++) {
        const tf_vec_topic_t *c = &tf_vec_topics_valid[i];
        tf_str_t dev;
        tf_channel_t ch;
        const char *name = NULL;
        size_t n = 0;
        CHECK(tf_topic_parse(tf_vec_prefix, c->topic, strlen(c->topic), &dev, &ch) == TF_OK, c->topic, "parse");
        CHECK(dev.len == strlen(c->device_id) && memcmp(dev.ptr, c->device_id, dev.len) == 0, c->topic, "device id");
        CHECK(tf_channel_name(ch, &name) == TF_OK && strcmp(name, c->channel) == 0, c->topic, "channel");
        CHECK(tf_topic_build(tf_vec_prefix, c->device_id, ch, buf, sizeof buf, &n) == TF_OK, c->topic, "build");
        CHECK(strcmp(buf, c->topic) == 0 && n == strlen(c->topic), c->topic, "built %s", buf);
    }
    for (i = 0; i < tf_vec_topics_invalid_count; i++) {
        const tf_vec_bad_topic_t *c = &tf_vec_topics_invalid[i];
        tf_str_t dev;
        tf_channel_t ch;
        tf_err_t r = tf_topic_parse(tf_vec_prefix, c->topic, strlen(c->topic), &dev, &ch);
        CHECK(strcmp(tf_err_str(r), c->error) == 0, c->topic, "got %s, expected %s", tf_err_str(r), c->error);
    }
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_vectors),     cmocka_unit_test(test_telemetry_vectors),
        cmocka_unit_test(test_state_vectors),     cmocka_unit_test(test_ota_status_vectors),
        cmocka_unit_test(test_topic_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
