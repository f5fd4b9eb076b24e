/* TFLM int8 output helpers, and the three calls from an output tensor to a published event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tinyfleet/tf_event.h"
#include "tinyfleet/tf_tflm.h"
#include "tinyfleet/tf_topic.h"

/* a softmax output as TFLM quantizes it: scale 1/256, zero point -128 */
static const int8_t probs[6] = {-128, -60, 110, -100, 0, 110};

static void test_top1_and_topk(void **state)
{
    uint16_t label;
    float score;
    tf_top_t top[TF_CFG_MAX_TOP_K];
    size_t n;
    (void)state;
    assert_int_equal(tf_tflm_top1(probs, 6, 1.0f / 256, -128, &label, &score), TF_OK);
    assert_int_equal(label, 2); /* the first of two equal maxima */
    assert_float_equal(score, 238.0f / 256, 1e-6);
    assert_int_equal(tf_tflm_topk(probs, 6, 1.0f / 256, -128, 3, top, &n), TF_OK);
    assert_int_equal(n, 3);
    assert_int_equal(top[0].label, 2);
    assert_int_equal(top[1].label, 5);
    assert_int_equal(top[2].label, 4);
    assert_float_equal(top[2].score, 0.5f, 1e-6);
    assert_int_equal(tf_tflm_topk(probs, 6, 1.0f / 256, -128, 10, top, &n), TF_OK);
    assert_int_equal(n, 6); /* capped at the tensor's length */
    assert_int_equal(tf_tflm_top1(probs, 0, 1.0f, 0, &label, &score), TF_ERR_ARG);
    assert_int_equal(tf_tflm_top1(probs, 6, 0.0f, 0, &label, &score), TF_ERR_ARG);
}

static void test_scores_clamped_to_unit_interval(void **state)
{
    const int8_t raw[2] = {127, -128};
    uint16_t label;
    float score;
    (void)state;
    assert_int_equal(tf_tflm_top1(raw, 2, 0.1f, 0, &label, &score), TF_OK);
    assert_float_equal(score, 1.0f, 0.0);
}

static void test_anomaly_mse(void **state)
{
    const int8_t in[4] = {10, 20, 30, 40};
    const int8_t out[4] = {12, 20, 26, 40};
    tf_real_t mse;
    (void)state;
    assert_int_equal(tf_tflm_anomaly_mse(in, 0.5f, 0, out, 0.5f, 0, 4, &mse), TF_OK);
    assert_float_equal(mse, (1.0 + 0.0 + 4.0 + 0.0) / 4.0, 1e-12);
    assert_int_equal(tf_tflm_anomaly_mse(in, 0.5f, 10, in, 0.5f, 10, 4, &mse), TF_OK);
    assert_float_equal(mse, 0.0, 0.0);
}

static void test_three_calls_to_a_published_event(void **state)
{
    tf_event_t ev;
    tf_top_t top[3];
    uint8_t payload[128];
    char topic[TF_TOPIC_MAX];
    size_t n;
    (void)state;
    memset(&ev, 0, sizeof ev);
    ev.seq = 5;
    ev.boot = 3;
    ev.model = tf_str("vib-cls");
    assert_int_equal(tf_tflm_classification(probs, 6, 1.0f / 256, -128, 3, top, &ev), TF_OK);
    assert_int_equal(tf_event_encode(&ev, 0, payload, sizeof payload, &n), TF_OK);
    assert_int_equal(tf_topic_build(NULL, "press-007", TF_CH_EVT, topic, sizeof topic, NULL), TF_OK);
    assert_string_equal(topic, "tf/v1/press-007/evt");
    /* a6 map of 8 ... kind 0, label 2, score float32, top 3 pairs */
    assert_int_equal(payload[0], 0xa8);
    assert_true(n < 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top1_and_topk),
        cmocka_unit_test(test_scores_clamped_to_unit_interval),
        cmocka_unit_test(test_anomaly_mse),
        cmocka_unit_test(test_three_calls_to_a_published_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
