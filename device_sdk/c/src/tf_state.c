/* Encoders of state, telemetry and ota/status (canonical: keys ascending, shortest integers). */
#include "tinyfleet/tf_state.h"

#include <string.h>

#include "tf_wire_internal.h"

static size_t popcount(uint32_t v)
{
    size_t n = 0;
    while (v != 0) {
        n += v & 1u;
        v >>= 1;
    }
    return n;
}

static tf_err_t finish(tf_cbor_writer_t *w, size_t *out_len)
{
    if (out_len != NULL) {
        *out_len = w->len;
    }
    return w->err;
}

static void put_model(tf_cbor_writer_t *w, int is_id, uint32_t id, tf_str_t text)
{
    if (is_id) {
        tf_cbor_put_uint(w, id);
    } else {
        tf_cbor_put_text(w, text.ptr, text.len);
    }
}

tf_err_t tf_telemetry_encode(const tf_telemetry_t *t, uint8_t *buf, size_t cap, size_t *out_len)
{
    tf_cbor_writer_t w;
    uint32_t h;
    int k;
    if (t == NULL || tf_cbor_writer_init(&w, buf, cap) != TF_OK) {
        return TF_ERR_ARG;
    }
    h = t->has & 0x3FFEu;
    if (((h & TF_HAS(TF_TEL_BATTERY_PCT)) && t->battery_pct > 100u) ||
        ((h & TF_HAS(TF_TEL_INFER_COUNT)) && t->infer_count > (uint64_t)INT64_MAX) ||
        ((h & TF_HAS(TF_TEL_TS)) && (t->ts_ms < TF_TS_FLOOR_MS || t->ts_ms > TF_TS_MAX_MS))) {
        return TF_ERR_OUT_OF_RANGE;
    }
    tf_cbor_put_map(&w, 1u + popcount(h));
    tf_cbor_put_uint(&w, 0);
    tf_cbor_put_uint(&w, 1);
    for (k = 1; k <= TF_TEL_X; k++) {
        if (!(h & TF_HAS(k))) {
            continue;
        }
        tf_cbor_put_uint(&w, (uint64_t)k);
        switch (k) {
        case TF_TEL_TS: tf_cbor_put_uint(&w, t->ts_ms); break;
        case TF_TEL_UPTIME_S: tf_cbor_put_uint(&w, t->uptime_s); break;
        case TF_TEL_BOOT: tf_cbor_put_uint(&w, t->boot); break;
        case TF_TEL_BATTERY_PCT: tf_cbor_put_uint(&w, t->battery_pct); break;
        case TF_TEL_BATTERY_MV: tf_cbor_put_uint(&w, t->battery_mv); break;
        case TF_TEL_RSSI_DBM: tf_cbor_put_int(&w, t->rssi_dbm); break;
        case TF_TEL_HEAP_FREE: tf_cbor_put_uint(&w, t->heap_free); break;
        case TF_TEL_ARENA_FREE: tf_cbor_put_uint(&w, t->arena_free); break;
        case TF_TEL_INFER_COUNT: tf_cbor_put_uint(&w, t->infer_count); break;
        case TF_TEL_LAT_AVG_US: tf_cbor_put_uint(&w, t->lat_avg_us); break;
        case TF_TEL_LAT_MAX_US: tf_cbor_put_uint(&w, t->lat_max_us); break;
        case TF_TEL_DROPPED: tf_cbor_put_uint(&w, t->dropped); break;
        default: {
            tf_err_t e = tf__write_extras(&w, t->x, t->x_len);
            if (e != TF_OK) {
                return e;
            }
        }
        }
    }
    return finish(&w, out_len);
}

tf_err_t tf_state_encode(const tf_state_t *s, uint8_t *buf, size_t cap, size_t *out_len)
{
    tf_cbor_writer_t w;
    uint32_t h;
    size_t i;
    int k;
    if (s == NULL || tf_cbor_writer_init(&w, buf, cap) != TF_OK) {
        return TF_ERR_ARG;
    }
    h = (s->has & 0x21FEu) | TF_HAS(TF_ST_ONLINE);
    if (((h & TF_HAS(TF_ST_MODEL)) && !(s->has & TF_ST_MODEL_ID) && tf__check_text(s->model, 64) != TF_OK) ||
        ((h & TF_HAS(TF_ST_FW)) && tf__check_text(s->fw, 64) != TF_OK) ||
        ((h & TF_HAS(TF_ST_REASON)) && tf__check_text(s->reason, 64) != TF_OK)) {
        return TF_ERR_OUT_OF_RANGE;
    }
    if (h & TF_HAS(TF_ST_CAPS)) {
        if ((s->caps.has & TF_HAS(TF_CAPS_OPS)) && (s->caps.ops_len > TF_CFG_MAX_OPS ||
                                                     (s->caps.ops == NULL && s->caps.ops_len > 0))) {
            return TF_ERR_OUT_OF_RANGE;
        }
        for (i = 0; (s->caps.has & TF_HAS(TF_CAPS_OPS)) && i < s->caps.ops_len; i++) {
            if (tf__check_text(s->caps.ops[i], 64) != TF_OK) {
                return TF_ERR_OUT_OF_RANGE;
            }
        }
    }
    tf_cbor_put_map(&w, 1u + popcount(h));
    tf_cbor_put_uint(&w, 0);
    tf_cbor_put_uint(&w, 1);
    for (k = 1; k <= TF_ST_X; k++) {
        if (!(h & TF_HAS(k))) {
            continue;
        }
        tf_cbor_put_uint(&w, (uint64_t)k);
        switch (k) {
        case TF_ST_TS: tf_cbor_put_uint(&w, s->ts_ms); break;
        case TF_ST_ONLINE: tf_cbor_put_bool(&w, s->online); break;
        case TF_ST_BOOT: tf_cbor_put_uint(&w, s->boot); break;
        case TF_ST_MODEL: put_model(&w, (s->has & TF_ST_MODEL_ID) != 0, s->model_id, s->model); break;
        case TF_ST_MVER: tf_cbor_put_uint(&w, s->mver); break;
        case TF_ST_FW: tf_cbor_put_text(&w, s->fw.ptr, s->fw.len); break;
        case TF_ST_CAPS: {
            uint32_t c = s->caps.has & 0xFu;
            tf_cbor_put_map(&w, popcount(c));
            if (c & TF_HAS(TF_CAPS_FLASH)) {
                tf_cbor_put_uint(&w, 0);
                tf_cbor_put_uint(&w, s->caps.flash);
            }
            if (c & TF_HAS(TF_CAPS_RAM)) {
                tf_cbor_put_uint(&w, 1);
                tf_cbor_put_uint(&w, s->caps.ram);
            }
            if (c & TF_HAS(TF_CAPS_ARENA)) {
                tf_cbor_put_uint(&w, 2);
                tf_cbor_put_uint(&w, s->caps.arena);
            }
            if (c & TF_HAS(TF_CAPS_OPS)) {
                tf_cbor_put_uint(&w, 3);
                tf_cbor_put_array(&w, s->caps.ops_len);
                for (i = 0; i < s->caps.ops_len; i++) {
                    tf_cbor_put_text(&w, s->caps.ops[i].ptr, s->caps.ops[i].len);
                }
            }
            break;
        }
        case TF_ST_REASON: tf_cbor_put_text(&w, s->reason.ptr, s->reason.len); break;
        default: {
            tf_err_t e = tf__write_extras(&w, s->x, s->x_len);
            if (e != TF_OK) {
                return e;
            }
        }
        }
    }
    return finish(&w, out_len);
}

tf_err_t tf_state_lwt(uint8_t *buf, size_t cap, size_t *out_len)
{
    tf_state_t s;
    if (buf == NULL || out_len == NULL) {
        return TF_ERR_ARG;
    }
    memset(&s, 0, sizeof s);
    s.online = 0;
    s.has = TF_HAS(TF_ST_REASON);
    s.reason = tf_str("lwt");
    return tf_state_encode(&s, buf, cap, out_len);
}

static const char ota_state_names[] = "downloading\0downloaded\0verified\0applied\0failed\0rolled_back";

tf_err_t tf_ota_state_name(tf_ota_state_t s, const char **out)
{
    if ((unsigned)s >= (unsigned)TF_OTA__STATE_COUNT || out == NULL) {
        return TF_ERR_ARG;
    }
    *out = tf__nth_name(ota_state_names, (unsigned)s);
    return TF_OK;
}

tf_err_t tf_ota_status_encode(const tf_ota_status_t *s, uint8_t *buf, size_t cap, size_t *out_len)
{
    tf_cbor_writer_t w;
    uint32_t h;
    const char *name;
    int k;
    if (s == NULL || tf_cbor_writer_init(&w, buf, cap) != TF_OK || tf_ota_state_name(s->state, &name) != TF_OK) {
        return TF_ERR_ARG;
    }
    h = (s->has & 0x23F2u) | TF_HAS(TF_OS_STATE) | TF_HAS(TF_OS_SEQ);
    if ((h & TF_HAS(TF_OS_REASON)) && !tf_err_is_ota_reason(s->reason)) {
        return TF_ERR_ARG;
    }
    if (s->state == TF_OTA_FAILED && !(h & TF_HAS(TF_OS_REASON))) {
        return TF_ERR_MISSING_FIELD;
    }
    if (((h & TF_HAS(TF_OS_MSG)) && tf__check_text(s->msg, TF_CFG_MAX_OTA_MSG) != TF_OK) ||
        ((h & TF_HAS(TF_OS_FW)) && tf__check_text(s->fw, 64) != TF_OK) ||
        ((h & TF_HAS(TF_OS_MODEL)) && !(s->has & TF_OS_MODEL_ID) && tf__check_text(s->model, 64) != TF_OK)) {
        return TF_ERR_OUT_OF_RANGE;
    }
    tf_cbor_put_map(&w, 1u + popcount(h));
    tf_cbor_put_uint(&w, 0);
    tf_cbor_put_uint(&w, 1);
    for (k = 1; k <= TF_OS_X; k++) {
        if (!(h & TF_HAS(k))) {
            continue;
        }
        tf_cbor_put_uint(&w, (uint64_t)k);
        switch (k) {
        case TF_OS_TS: tf_cbor_put_uint(&w, s->ts_ms); break;
        case TF_OS_STATE: tf_cbor_put_text(&w, name, strlen(name)); break;
        case TF_OS_SEQ: tf_cbor_put_uint(&w, s->seq); break;
        case TF_OS_REASON: {
            const char *r = tf__ota_reason_name(s->reason);
            tf_cbor_put_text(&w, r, strlen(r));
            break;
        }
        case TF_OS_MSG: tf_cbor_put_text(&w, s->msg.ptr, s->msg.len); break;
        case TF_OS_MODEL: put_model(&w, (s->has & TF_OS_MODEL_ID) != 0, s->model_id, s->model); break;
        case TF_OS_MVER: tf_cbor_put_uint(&w, s->mver); break;
        case TF_OS_FW: tf_cbor_put_text(&w, s->fw.ptr, s->fw.len); break;
        case TF_OS_PROGRESS: tf_cbor_put_uint(&w, s->progress); break;
        default: {
            tf_err_t e = tf__write_extras(&w, s->x, s->x_len);
            if (e != TF_OK) {
                return e;
            }
        }
        }
    }
    return finish(&w, out_len);
}
