/* Inference events: canonical encoder (always built) and the validating decoder (TF_WITH_DECODER). */
#include "tinyfleet/tf_event.h"

#include <string.h>

#include "tf_wire_internal.h"

static int score_ok(float s) { return s == s && s >= 0.0f && s <= 1.0f; }

static uint8_t score_q(float s)
{
    /* round(score * 255), half away from zero (Python rounds half to even; no float32 score is a tie) */
    return (uint8_t)((tf_real_t)s * (tf_real_t)255 + (tf_real_t)0.5);
}

static tf_err_t put_score(tf_cbor_writer_t *w, float s, unsigned flags)
{
    return (flags & TF_ENC_SCORE_UINT8) ? tf_cbor_put_uint(w, score_q(s)) : tf_cbor_put_f32(w, s);
}

static tf_err_t check_event(const tf_event_t *ev)
{
    size_t i;
    uint32_t h = ev->has;
    if (!(h & TF_EVT_MODEL_ID) && tf__check_text(ev->model, TF_CFG_MAX_TEXT) != TF_OK) {
        return TF_ERR_OUT_OF_RANGE;
    }
    if ((unsigned)ev->kind > 3u) {
        return TF_ERR_OUT_OF_RANGE;
    }
    if ((h & TF_EVT_TS) && (ev->ts_ms < TF_TS_FLOOR_MS || ev->ts_ms > TF_TS_MAX_MS)) {
        return ev->ts_ms < TF_TS_FLOOR_MS ? TF_ERR_TS_BEFORE_EPOCH_FLOOR : TF_ERR_OUT_OF_RANGE;
    }
    if ((h & TF_EVT_SCORE) && !score_ok(ev->score)) {
        return ev->score == ev->score && ev->score - ev->score == 0.0f ? TF_ERR_OUT_OF_RANGE : TF_ERR_NON_FINITE;
    }
    if ((h & TF_EVT_ANOM) && !tf__is_finite(ev->anom)) {
        return TF_ERR_NON_FINITE;
    }
    if (h & (TF_EVT_VAL | TF_EVT_VAL_ARRAY)) {
        size_t n = (h & TF_EVT_VAL_ARRAY) ? ev->val_len : 1u;
        if (ev->val == NULL || n == 0 || n > TF_CFG_MAX_VAL) {
            return TF_ERR_OUT_OF_RANGE;
        }
        for (i = 0; i < n; i++) {
            if (!tf__is_finite(ev->val[i])) {
                return TF_ERR_NON_FINITE;
            }
        }
    }
    if (h & TF_EVT_TOP) {
        if (ev->top == NULL || ev->top_len == 0 || ev->top_len > TF_CFG_MAX_TOP_K) {
            return TF_ERR_OUT_OF_RANGE;
        }
        for (i = 0; i < ev->top_len; i++) {
            if (!score_ok(ev->top[i].score)) {
                return ev->top[i].score == ev->top[i].score ? TF_ERR_OUT_OF_RANGE : TF_ERR_NON_FINITE;
            }
        }
    }
    if ((h & TF_EVT_X) && ev->x_len > 0 && ev->x == NULL) {
        return TF_ERR_ARG;
    }
    switch (ev->kind) {
    case TF_KIND_CLASSIFICATION: return (h & TF_EVT_LABEL) ? TF_OK : TF_ERR_KIND_FIELD_MISSING;
    case TF_KIND_ANOMALY: return (h & TF_EVT_ANOM) ? TF_OK : TF_ERR_KIND_FIELD_MISSING;
    case TF_KIND_REGRESSION: return (h & (TF_EVT_VAL | TF_EVT_VAL_ARRAY)) ? TF_OK : TF_ERR_KIND_FIELD_MISSING;
    default: return (h & (TF_EVT_TOP | TF_EVT_LABEL)) ? TF_OK : TF_ERR_KIND_FIELD_MISSING;
    }
}

tf_err_t tf_event_write(tf_cbor_writer_t *w, const tf_event_t *ev, unsigned flags)
{
    size_t n = 5, i;
    uint32_t h;
    tf_err_t e;
    if (w == NULL || ev == NULL) {
        return TF_ERR_ARG;
    }
    e = check_event(ev);
    if (e != TF_OK) {
        return e;
    }
    h = ev->has;
    if ((h & TF_EVT_VAL_ARRAY) && (h & TF_EVT_VAL)) {
        h &= ~(uint32_t)TF_EVT_VAL;
    }
    n += (size_t)((h & TF_EVT_TS) != 0) + ((h & TF_EVT_MVER) != 0) + ((h & TF_EVT_LABEL) != 0) +
         ((h & TF_EVT_SCORE) != 0) + ((h & TF_EVT_ANOM) != 0) + ((h & (TF_EVT_VAL | TF_EVT_VAL_ARRAY)) != 0) +
         ((h & TF_EVT_TOP) != 0) + ((h & TF_EVT_LAT) != 0) + ((h & TF_EVT_X) != 0);
    tf_cbor_put_map(w, n);
    tf__put_kv(w, 0, 1);
    if (h & TF_EVT_TS) {
        tf__put_kv(w, 1, ev->ts_ms);
    }
    tf__put_kv(w, 2, ev->seq);
    tf__put_kv(w, 3, ev->boot);
    tf_cbor_put_uint(w, 4);
    if (h & TF_EVT_MODEL_ID) {
        tf_cbor_put_uint(w, ev->model_id);
    } else {
        tf_cbor_put_text(w, ev->model.ptr, ev->model.len);
    }
    if (h & TF_EVT_MVER) {
        tf__put_kv(w, 5, ev->mver);
    }
    tf__put_kv(w, 6, (uint64_t)ev->kind);
    if (h & TF_EVT_LABEL) {
        tf__put_kv(w, 7, ev->label);
    }
    if (h & TF_EVT_SCORE) {
        tf_cbor_put_uint(w, 8);
        put_score(w, ev->score, flags);
    }
    if (h & TF_EVT_ANOM) {
        tf_cbor_put_uint(w, 9);
        tf_cbor_put_real(w, ev->anom);
    }
    if (h & (TF_EVT_VAL | TF_EVT_VAL_ARRAY)) {
        tf_cbor_put_uint(w, 10);
        if (h & TF_EVT_VAL_ARRAY) {
            tf_cbor_put_array(w, ev->val_len);
            for (i = 0; i < ev->val_len; i++) {
                tf_cbor_put_real(w, ev->val[i]);
            }
        } else {
            tf_cbor_put_real(w, ev->val[0]);
        }
    }
    if (h & TF_EVT_TOP) {
        tf_cbor_put_uint(w, 11);
        tf_cbor_put_array(w, ev->top_len);
        for (i = 0; i < ev->top_len; i++) {
            tf_cbor_put_array(w, 2);
            tf_cbor_put_uint(w, ev->top[i].label);
            put_score(w, ev->top[i].score, flags);
        }
    }
    if (h & TF_EVT_LAT) {
        tf__put_kv(w, 12, ev->lat_us);
    }
    if (h & TF_EVT_X) {
        tf_cbor_put_uint(w, 13);
        e = tf__write_extras(w, ev->x, ev->x_len);
        if (e != TF_OK) {
            return e;
        }
    }
    return w->err;
}

tf_err_t tf_event_encode(const tf_event_t *ev, unsigned flags, uint8_t *buf, size_t cap, size_t *out_len)
{
    tf_cbor_writer_t w;
    tf_err_t e;
    if (out_len == NULL || tf_cbor_writer_init(&w, buf, cap) != TF_OK) {
        return TF_ERR_ARG;
    }
    e = tf_event_write(&w, ev, flags);
    if (e == TF_OK && w.len > TF_CFG_MAX_EVENT_BYTES) {
        e = TF_ERR_EVENT_TOO_LARGE;
    }
    *out_len = w.len;
    return e;
}

tf_err_t tf_batch_begin(tf_cbor_writer_t *w, size_t n)
{
    if (w == NULL || n == 0 || n > TF_CFG_MAX_BATCH_EVENTS) {
        return TF_ERR_ARG;
    }
    return tf_cbor_put_array(w, n);
}
