/* Store-and-forward ring: oldest first, copies kept intact (boot/seq inside), drops counted, wrap-around. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tinyfleet/tf_event.h"
#include "tinyfleet/tf_ring.h"

static size_t encode_seq(uint32_t seq, uint8_t *buf, size_t cap)
{
    tf_event_t ev;
    size_t n = 0;
    memset(&ev, 0, sizeof ev);
    ev.boot = 7;
    ev.seq = seq;
    ev.model = tf_str("vib-cls");
    ev.kind = TF_KIND_CLASSIFICATION;
    ev.label = (uint16_t)(seq % 5u);
    ev.has = TF_EVT_LABEL;
    assert_int_equal(tf_event_encode(&ev, 0, buf, cap, &n), TF_OK);
    return n;
}

static uint32_t decode_seq(const uint8_t *p, size_t n)
{
    tf_event_decoder_t d;
    tf_event_t ev;
    static tf_decode_buf_t db;
    assert_int_equal(tf_events_begin(&d, p, n, NULL, NULL), TF_OK);
    assert_int_equal(tf_events_next(&d, &ev, &db, NULL), TF_OK);
    assert_int_equal(ev.boot, 7);
    return ev.seq;
}

static void test_replays_oldest_first(void **state)
{
    uint8_t mem[256], buf[64];
    tf_ring_t r;
    const uint8_t *p;
    size_t n;
    uint32_t i;
    (void)state;
    assert_int_equal(tf_ring_init(&r, mem, sizeof mem), TF_OK);
    assert_int_equal(tf_ring_peek(&r, &p, &n), TF_ERR_END);
    for (i = 0; i < 5; i++) {
        n = encode_seq(i, buf, sizeof buf);
        assert_int_equal(tf_ring_push(&r, buf, n), TF_OK);
    }
    assert_int_equal(r.count, 5);
    for (i = 0; i < 5; i++) {
        assert_int_equal(tf_ring_peek(&r, &p, &n), TF_OK);
        assert_int_equal(decode_seq(p, n), i);
        assert_int_equal(tf_ring_pop(&r), TF_OK);
    }
    assert_int_equal(tf_ring_pop(&r), TF_ERR_END);
    assert_int_equal(r.dropped, 0);
}

static void test_full_drops_oldest_and_counts(void **state)
{
    uint8_t mem[200], buf[64];
    tf_ring_t r;
    const uint8_t *p;
    size_t n, per;
    uint32_t i, first;
    (void)state;
    assert_int_equal(tf_ring_init(&r, mem, sizeof mem), TF_OK);
    per = encode_seq(0, buf, sizeof buf) + 2;
    for (i = 0; i < 100; i++) {
        n = encode_seq(i, buf, sizeof buf);
        assert_int_equal(tf_ring_push(&r, buf, n), TF_OK);
        /* interleave some replays so the ring wraps at every position */
        if (i % 7u == 3u) {
            assert_int_equal(tf_ring_pop(&r), TF_OK);
        }
    }
    assert_true(r.count >= 200 / per - 1 && r.count <= 200 / per);
    assert_true(r.dropped > 0);
    /* what is left is the newest run, in order, ending with 99 */
    assert_int_equal(tf_ring_peek(&r, &p, &n), TF_OK);
    first = decode_seq(p, n);
    for (i = first; i < 100; i++) {
        assert_int_equal(tf_ring_peek(&r, &p, &n), TF_OK);
        assert_int_equal(decode_seq(p, n), i);
        assert_int_equal(tf_ring_pop(&r), TF_OK);
    }
    assert_int_equal(r.count, 0);
    /* every event is either replayed, popped early, or counted as dropped */
    assert_int_equal(r.dropped + (100u - first) + 100u / 7u + (100u % 7u > 3u ? 1u : 0u), 100u);
}

static void test_refuses_what_never_fits(void **state)
{
    uint8_t mem[16], buf[32] = {1};
    tf_ring_t r;
    (void)state;
    assert_int_equal(tf_ring_init(&r, mem, sizeof mem), TF_OK);
    assert_int_equal(tf_ring_push(&r, buf, 15), TF_ERR_NO_SPACE);
    assert_int_equal(tf_ring_push(&r, buf, 14), TF_OK);
    assert_int_equal(tf_ring_push(&r, buf, 0), TF_ERR_ARG);
    assert_int_equal(tf_ring_init(&r, mem, 2), TF_ERR_ARG);
    assert_int_equal(r.dropped, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replays_oldest_first),
        cmocka_unit_test(test_full_drops_oldest_and_counts),
        cmocka_unit_test(test_refuses_what_never_fits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
