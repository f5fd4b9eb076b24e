/* Validating decoders of telemetry, state and ota/status, in the reference decoder's order of checks:
 * v, unknown keys, the fields in key order, then x (merged with lenient unknown keys). */
#include <string.h>

#include "tinyfleet/tf_state.h"
#include "tf_wire_internal.h"

#define STEP(expr)                                                                                                   \
    do {                                                                                                             \
        r = (expr);                                                                                                  \
        if (r != TF_OK && r != TF_ABSENT) {                                                                          \
            return r;                                                                                                \
        }                                                                                                            \
    } while (0)
#define PRESENT(bit)                                                                                                 \
    do {                                                                                                             \
        if (r == TF_OK) {                                                                                            \
            has |= (bit);                                                                                            \
        }                                                                                                            \
    } while (0)

static tf_err_t begin(const uint8_t *p, size_t len, const tf_decode_opts_t *opts, tf_decode_opts_t *o,
                      uint32_t max_bytes_default, int which, uint32_t known, tf_map_scan_t *m, tf_decode_buf_t *db,
                      tf_wire_error_t *e)
{
    tf_cbor_reader_t rd;
    tf_err_t r;
    uint32_t max;
    if (opts != NULL) {
        *o = *opts;
    } else {
        (void)tf_decode_opts_default(o);
    }
    max = which == 0 ? o->limits.max_telemetry_bytes : which == 1 ? o->limits.max_state_bytes : max_bytes_default;
    db->text_used = 0;
    r = tf__record_begin(p, len, max, &rd, e);
    if (r != TF_OK) {
        return r;
    }
    r = tf__scan_map(&rd, known, m);
    if (r != TF_OK) {
        return tf__fail(e, r, NULL, NULL, -1, NULL);
    }
    if ((r = tf__version(m, e)) != TF_OK) {
        return r;
    }
    return tf__unknown(m, o->strict, NULL, e);
}

tf_err_t tf_telemetry_decode(const uint8_t *p, size_t len, const tf_decode_opts_t *opts, tf_telemetry_t *t,
                             tf_decode_buf_t *db, tf_wire_error_t *e)
{
    tf_decode_opts_t o;
    tf_map_scan_t m;
    tf_err_t r;
    uint64_t u;
    int64_t i;
    uint32_t has = 0;
    static const uint64_t maxes[13] = {0, 0, 0xFFFFFFFFu, 0xFFFFFFFFu, 100u, 0xFFFFu, 0, 0xFFFFFFFFu, 0xFFFFFFFFu,
                                       (uint64_t)INT64_MAX, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    static const char *const names[13] = {"v", "ts", "uptime_s", "boot", "battery_pct", "battery_mv", "rssi_dbm",
                                          "heap_free", "arena_free", "infer_count", "lat_avg_us", "lat_max_us",
                                          "dropped"};
    int k;
    if (t == NULL || db == NULL || (p == NULL && len != 0)) {
        return TF_ERR_ARG;
    }
    memset(t, 0, sizeof *t);
    if ((r = begin(p, len, opts, &o, 0, 0, 0x3FFFu, &m, db, e)) != TF_OK) {
        return r;
    }
    STEP(tf__ts(&m, TF_TEL_TS, &o, &t->ts_ms, e));
    PRESENT(TF_HAS(TF_TEL_TS));
    for (k = TF_TEL_UPTIME_S; k <= TF_TEL_DROPPED; k++) {
        if (k == TF_TEL_RSSI_DBM) {
            STEP(tf__int_range(&m, k, names[k], -128, 127, &i, e));
            t->rssi_dbm = (int8_t)(r == TF_OK ? i : 0);
        } else {
            u = 0;
            STEP(tf__uint(&m, k, names[k], maxes[k], 0, &u, e));
            switch (k) {
            case TF_TEL_UPTIME_S: t->uptime_s = (uint32_t)u; break;
            case TF_TEL_BOOT: t->boot = (uint32_t)u; break;
            case TF_TEL_BATTERY_PCT: t->battery_pct = (uint8_t)u; break;
            case TF_TEL_BATTERY_MV: t->battery_mv = (uint16_t)u; break;
            case TF_TEL_HEAP_FREE: t->heap_free = (uint32_t)u; break;
            case TF_TEL_ARENA_FREE: t->arena_free = (uint32_t)u; break;
            case TF_TEL_INFER_COUNT: t->infer_count = u; break;
            case TF_TEL_LAT_AVG_US: t->lat_avg_us = (uint32_t)u; break;
            case TF_TEL_LAT_MAX_US: t->lat_max_us = (uint32_t)u; break;
            default: t->dropped = (uint32_t)u; break;
            }
        }
        PRESENT(TF_HAS(k));
    }
    STEP(tf__extras(&m, TF_TEL_X, o.strict, NULL, 0, &o, db, &t->x, &t->x_len, e));
    PRESENT(TF_HAS(TF_TEL_X));
    t->has = has;
    return TF_OK;
}

static tf_err_t decode_caps(const tf_map_scan_t *top, const tf_decode_opts_t *o, tf_caps_t *c, tf_decode_buf_t *db,
                            tf_named_pos_t *extra, size_t *n_extra, tf_wire_error_t *e)
{
    tf_cbor_reader_t rd;
    tf_map_scan_t m;
    tf_cbor_item_t it;
    tf_err_t r;
    uint64_t u;
    uint32_t has = 0;
    size_t after, i;
    (void)tf__item_at(top->buf, top->len, top->pos[TF_ST_CAPS], &it, &after);
    if (it.type != TF_CBOR_MAP) {
        return tf__fail(e, TF_ERR_WRONG_TYPE, "caps", NULL, -1, NULL);
    }
    rd.buf = top->buf;
    rd.len = top->len;
    rd.pos = top->pos[TF_ST_CAPS];
    (void)tf__scan_map(&rd, 0xFu, &m);
    memset(c, 0, sizeof *c);
    /* the reference checks unknown keys after the first field of the table (flash) */
    STEP(tf__uint(&m, TF_CAPS_FLASH, "caps.flash", 0xFFFFFFFFu, 0, &u, e));
    if (r == TF_OK) {
        c->flash = (uint32_t)u;
        has |= TF_HAS(TF_CAPS_FLASH);
    }
    if ((r = tf__unknown(&m, o->strict, "caps", e)) != TF_OK) {
        return r;
    }
    STEP(tf__uint(&m, TF_CAPS_RAM, "caps.ram", 0xFFFFFFFFu, 0, &u, e));
    if (r == TF_OK) {
        c->ram = (uint32_t)u;
        has |= TF_HAS(TF_CAPS_RAM);
    }
    STEP(tf__uint(&m, TF_CAPS_ARENA, "caps.arena", 0xFFFFFFFFu, 0, &u, e));
    if (r == TF_OK) {
        c->arena = (uint32_t)u;
        has |= TF_HAS(TF_CAPS_ARENA);
    }
    if (tf__missing_or_null(&m, TF_CAPS_OPS, "caps.ops", 0, e) == TF_OK) {
        tf_cbor_reader_t ar;
        uint64_t n;
        (void)tf__item_at(m.buf, m.len, m.pos[TF_CAPS_OPS], &it, &after);
        if (it.type != TF_CBOR_ARRAY) {
            return tf__fail(e, TF_ERR_WRONG_TYPE, "caps.ops", NULL, -1, NULL);
        }
        ar.buf = m.buf;
        ar.len = m.len;
        ar.pos = after;
        if (it.indefinite) {
            tf_cbor_reader_t cnt = ar;
            n = 0;
            while (cnt.pos < cnt.len && cnt.buf[cnt.pos] != 0xFFu) {
                (void)tf_cbor_skip(&cnt);
                n++;
            }
        } else {
            n = it.val;
        }
        if (n > o->limits.max_ops || n > TF_CFG_MAX_OPS) {
            return tf__fail(e, TF_ERR_OUT_OF_RANGE, "caps.ops", NULL, -1, NULL);
        }
        for (i = 0; i < (size_t)n; i++) {
            tf_cbor_item_t op;
            tf_str_t *s = &db->ops[i];
            (void)tf__item_at(ar.buf, ar.len, ar.pos, &op, NULL);
            (void)tf_cbor_skip(&ar);
            if (op.type != TF_CBOR_TEXT) {
                return tf__fail(e, TF_ERR_WRONG_TYPE, "caps.ops", NULL, (long)i, NULL);
            }
            if (tf__get_text(&op, m.buf, m.len, db, s) != TF_OK) {
                return tf__fail(e, TF_ERR_NO_SPACE, "caps.ops", NULL, (long)i, NULL);
            }
            if (s->len == 0 || tf__utf8_chars(s->ptr, s->len) > o->limits.max_text_len || tf__has_nul(s->ptr, s->len)) {
                return tf__fail(e, TF_ERR_OUT_OF_RANGE, "caps.ops", NULL, (long)i, NULL);
            }
        }
        c->ops = db->ops;
        c->ops_len = (size_t)n;
        has |= TF_HAS(TF_CAPS_OPS);
    }
    c->has = has;
    /* lenient: unknown caps keys go to x as "caps.<name>" */
    *n_extra = 0;
    if (!o->strict) {
        size_t n_unk = m.n_unk < TF_CFG_MAX_EXTRAS + 1u ? m.n_unk : TF_CFG_MAX_EXTRAS + 1u;
        for (i = 0; i < n_unk && i < TF_CFG_MAX_EXTRAS; i++) {
            if (tf__unknown_name(&m, i, "caps.", db, &extra[i].name) != TF_OK) {
                return tf__fail(e, TF_ERR_NO_SPACE, "caps", NULL, -1, NULL);
            }
            extra[i].val = m.unk[i].val;
            (*n_extra)++;
        }
    }
    return TF_OK;
}

tf_err_t tf_state_decode(const uint8_t *p, size_t len, const tf_decode_opts_t *opts, tf_state_t *s,
                         tf_decode_buf_t *db, tf_wire_error_t *e)
{
    tf_decode_opts_t o;
    tf_map_scan_t m;
    tf_named_pos_t extra[TF_CFG_MAX_EXTRAS];
    size_t n_extra = 0;
    tf_err_t r;
    uint64_t u;
    uint32_t has = 0;
    int is_id = 0;
    if (s == NULL || db == NULL || (p == NULL && len != 0)) {
        return TF_ERR_ARG;
    }
    memset(s, 0, sizeof *s);
    if (len == 0) {
        return TF_ERR_END;
    }
    if ((r = begin(p, len, opts, &o, 0, 1, 0x21FFu, &m, db, e)) != TF_OK) {
        return r;
    }
    STEP(tf__ts(&m, TF_ST_TS, &o, &s->ts_ms, e));
    PRESENT(TF_HAS(TF_ST_TS));
    if ((r = tf__bool(&m, TF_ST_ONLINE, "online", 1, &s->online, e)) != TF_OK) {
        return r;
    }
    STEP(tf__uint(&m, TF_ST_BOOT, "boot", 0xFFFFFFFFu, 0, &u, e));
    if (r == TF_OK) {
        s->boot = (uint32_t)u;
        has |= TF_HAS(TF_ST_BOOT);
    }
    if (tf__missing_or_null(&m, TF_ST_MODEL, "model", 0, e) == TF_OK) {
        if ((r = tf__model(&m, TF_ST_MODEL, "model", &o, db, &s->model, &s->model_id, &is_id, e)) != TF_OK) {
            return r;
        }
        has |= TF_HAS(TF_ST_MODEL) | (is_id ? TF_ST_MODEL_ID : 0u);
    }
    STEP(tf__uint(&m, TF_ST_MVER, "mver", 0xFFFFFFFFu, 0, &u, e));
    if (r == TF_OK) {
        s->mver = (uint32_t)u;
        has |= TF_HAS(TF_ST_MVER);
    }
    STEP(tf__textf(&m, TF_ST_FW, "fw", o.limits.max_text_len, 0, db, &s->fw, e));
    PRESENT(TF_HAS(TF_ST_FW));
    STEP(tf__textf(&m, TF_ST_REASON, "reason", o.limits.max_text_len, 0, db, &s->reason, e));
    PRESENT(TF_HAS(TF_ST_REASON));
    if (tf__missing_or_null(&m, TF_ST_CAPS, "caps", 0, e) == TF_OK) {
        if ((r = decode_caps(&m, &o, &s->caps, db, extra, &n_extra, e)) != TF_OK) {
            return r;
        }
        has |= TF_HAS(TF_ST_CAPS);
    }
    STEP(tf__extras(&m, TF_ST_X, o.strict, extra, n_extra, &o, db, &s->x, &s->x_len, e));
    PRESENT(TF_HAS(TF_ST_X));
    s->has = has;
    return TF_OK;
}

tf_err_t tf_ota_status_decode(const uint8_t *p, size_t len, const tf_decode_opts_t *opts, tf_ota_status_t *s,
                              tf_decode_buf_t *db, tf_wire_error_t *e)
{
    tf_decode_opts_t o;
    tf_map_scan_t m;
    tf_err_t r;
    uint64_t u;
    uint32_t has = 0;
    int is_id = 0, k;
    tf_str_t t;
    if (s == NULL || db == NULL || (p == NULL && len != 0)) {
        return TF_ERR_ARG;
    }
    memset(s, 0, sizeof *s);
    if ((r = begin(p, len, opts, &o, 1024u, 2, 0x23FFu, &m, db, e)) != TF_OK) {
        return r;
    }
    STEP(tf__ts(&m, TF_OS_TS, &o, &s->ts_ms, e));
    PRESENT(TF_HAS(TF_OS_TS));
    /* state: one of the names (any text length: an unknown one is out_of_range) */
    if ((r = tf__missing_or_null(&m, TF_OS_STATE, "state", 1, e)) != TF_OK) {
        return r;
    }
    r = tf__textf(&m, TF_OS_STATE, "state", 0xFFFFu, 1, db, &t, e);
    if (r == TF_ERR_WRONG_TYPE) {
        return r;
    }
    for (k = 0; k < TF_OTA__STATE_COUNT; k++) {
        const char *n = NULL;
        (void)tf_ota_state_name((tf_ota_state_t)k, &n);
        if (r == TF_OK && strlen(n) == t.len && memcmp(n, t.ptr, t.len) == 0) {
            break;
        }
    }
    if (k == TF_OTA__STATE_COUNT) {
        return tf__fail(e, TF_ERR_OUT_OF_RANGE, "state", NULL, -1, NULL);
    }
    s->state = (tf_ota_state_t)k;
    if ((r = tf__uint(&m, TF_OS_SEQ, "seq", 0xFFFFFFFFu, 1, &u, e)) != TF_OK) {
        return r;
    }
    s->seq = (uint32_t)u;
    if (tf__missing_or_null(&m, TF_OS_REASON, "reason", 0, e) == TF_OK) {
        r = tf__textf(&m, TF_OS_REASON, "reason", 0xFFFFu, 0, db, &t, e);
        if (r == TF_ERR_WRONG_TYPE) {
            return r;
        }
        for (k = TF_ERR_OTA_MALFORMED; k <= TF_ERR_OTA_BOOT_FAILED; k++) {
            const char *n = tf_err_str((tf_err_t)k);
            if (r == TF_OK && strlen(n) == t.len && memcmp(n, t.ptr, t.len) == 0) {
                break;
            }
        }
        if (k > TF_ERR_OTA_BOOT_FAILED) {
            return tf__fail(e, TF_ERR_OUT_OF_RANGE, "reason", NULL, -1, NULL);
        }
        s->reason = (tf_err_t)k;
        has |= TF_HAS(TF_OS_REASON);
    }
    STEP(tf__textf(&m, TF_OS_MSG, "msg", TF_CFG_MAX_OTA_MSG, 0, db, &s->msg, e));
    PRESENT(TF_HAS(TF_OS_MSG));
    if (tf__missing_or_null(&m, TF_OS_MODEL, "model", 0, e) == TF_OK) {
        if ((r = tf__model(&m, TF_OS_MODEL, "model", &o, db, &s->model, &s->model_id, &is_id, e)) != TF_OK) {
            return r;
        }
        has |= TF_HAS(TF_OS_MODEL) | (is_id ? TF_OS_MODEL_ID : 0u);
    }
    STEP(tf__uint(&m, TF_OS_MVER, "mver", 0xFFFFFFFFu, 0, &u, e));
    if (r == TF_OK) {
        s->mver = (uint32_t)u;
        has |= TF_HAS(TF_OS_MVER);
    }
    STEP(tf__textf(&m, TF_OS_FW, "fw", o.limits.max_text_len, 0, db, &s->fw, e));
    PRESENT(TF_HAS(TF_OS_FW));
    STEP(tf__uint(&m, TF_OS_PROGRESS, "progress", 0xFFFFFFFFu, 0, &u, e));
    if (r == TF_OK) {
        s->progress = (uint32_t)u;
        has |= TF_HAS(TF_OS_PROGRESS);
    }
    if (s->state == TF_OTA_FAILED && !(has & TF_HAS(TF_OS_REASON))) {
        return tf__fail(e, TF_ERR_MISSING_FIELD, "reason", NULL, -1, NULL);
    }
    STEP(tf__extras(&m, TF_OS_X, o.strict, NULL, 0, &o, db, &s->x, &s->x_len, e));
    PRESENT(TF_HAS(TF_OS_X));
    s->has = has | TF_HAS(TF_OS_STATE) | TF_HAS(TF_OS_SEQ);
    return TF_OK;
}
