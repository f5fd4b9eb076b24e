#include "tinyfleet/tf_tflm.h"

static int scale_ok(float s) { return s == s && s > 0.0f && s - s == 0.0f; }

static float dequant(int8_t q, float scale, int32_t zp)
{
    float v = scale * (float)((int32_t)q - zp);
    return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

tf_err_t tf_tflm_top1(const int8_t *data, size_t len, float scale, int32_t zero_point, uint16_t *label, float *score)
{
    size_t i, best = 0;
    if (data == NULL || label == NULL || score == NULL || len == 0 || len > 65536u || !scale_ok(scale)) {
        return TF_ERR_ARG;
    }
    for (i = 1; i < len; i++) {
        if (data[i] > data[best]) {
            best = i;
        }
    }
    *label = (uint16_t)best;
    *score = dequant(data[best], scale, zero_point);
    return TF_OK;
}

tf_err_t tf_tflm_topk(const int8_t *data, size_t len, float scale, int32_t zero_point, size_t k, tf_top_t *out,
                      size_t *out_n)
{
    size_t n, i, j;
    if (data == NULL || out == NULL || out_n == NULL || len == 0 || len > 65536u || k == 0 || !scale_ok(scale)) {
        return TF_ERR_ARG;
    }
    n = k < len ? k : len;
    n = n < TF_CFG_MAX_TOP_K ? n : TF_CFG_MAX_TOP_K;
    /* k selections over the tensor: k <= 16, no scratch memory; a previous pick is skipped by (value, index) */
    for (j = 0; j < n; j++) {
        size_t best = len;
        for (i = 0; i < len; i++) {
            int taken = 0;
            size_t p;
            for (p = 0; p < j; p++) {
                if (out[p].label == (uint16_t)i) {
                    taken = 1;
                    break;
                }
            }
            if (!taken && (best == len || data[i] > data[best])) {
                best = i;
            }
        }
        out[j].label = (uint16_t)best;
        out[j].score = dequant(data[best], scale, zero_point);
    }
    *out_n = n;
    return TF_OK;
}

tf_err_t tf_tflm_anomaly_mse(const int8_t *input, float in_scale, int32_t in_zero_point, const int8_t *output,
                             float out_scale, int32_t out_zero_point, size_t len, tf_real_t *mse)
{
    size_t i;
    tf_real_t acc = 0;
    if (input == NULL || output == NULL || mse == NULL || len == 0 || !scale_ok(in_scale) || !scale_ok(out_scale)) {
        return TF_ERR_ARG;
    }
    for (i = 0; i < len; i++) {
        tf_real_t a = (tf_real_t)in_scale * (tf_real_t)((int32_t)input[i] - in_zero_point);
        tf_real_t b = (tf_real_t)out_scale * (tf_real_t)((int32_t)output[i] - out_zero_point);
        acc += (a - b) * (a - b);
    }
    *mse = acc / (tf_real_t)len;
    return TF_OK;
}

tf_err_t tf_tflm_classification(const int8_t *data, size_t len, float scale, int32_t zero_point, size_t top_k,
                                tf_top_t *top_buf, tf_event_t *ev)
{
    tf_err_t e;
    if (ev == NULL) {
        return TF_ERR_ARG;
    }
    e = tf_tflm_top1(data, len, scale, zero_point, &ev->label, &ev->score);
    if (e != TF_OK) {
        return e;
    }
    ev->kind = TF_KIND_CLASSIFICATION;
    ev->has |= TF_EVT_LABEL | TF_EVT_SCORE;
    if (top_k > 1) {
        if (top_buf == NULL) {
            return TF_ERR_ARG;
        }
        e = tf_tflm_topk(data, len, scale, zero_point, top_k, top_buf, &ev->top_len);
        if (e != TF_OK) {
            return e;
        }
        ev->top = top_buf;
        ev->has |= TF_EVT_TOP;
    }
    return TF_OK;
}
