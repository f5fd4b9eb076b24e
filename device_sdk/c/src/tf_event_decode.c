/* The validating event decoder: the checks and their order are those of the reference decoder
 * (docs/protocol.md "Order of checks"), so every invalid vector gets its code and field. */
#include <string.h>

#include "tinyfleet/tf_event.h"
#include "tf_wire_internal.h"

tf_err_t tf__message_begin(const uint8_t *p, size_t len, uint32_t max_bytes, int blank_after_size,
                           tf_wire_error_t *e);

enum { K_V, K_TS, K_SEQ, K_BOOT, K_MODEL, K_MVER, K_KIND, K_LABEL, K_SCORE, K_ANOM, K_VAL, K_TOP, K_LAT, K_X };

tf_err_t tf_events_begin(tf_event_decoder_t *d, const uint8_t *payload, size_t len, const tf_decode_opts_t *opts,
                         tf_wire_error_t *err)
{
    tf_cbor_item_t it;
    size_t after;
    tf_err_t r;
    if (d == NULL || (payload == NULL && len != 0)) {
        return TF_ERR_ARG;
    }
    memset(d, 0, sizeof *d);
    if (opts != NULL) {
        d->opts = *opts;
    } else {
        (void)tf_decode_opts_default(&d->opts);
    }
    r = tf__message_begin(payload, len, d->opts.limits.max_message_bytes, 1, err);
    if (r != TF_OK) {
        return r;
    }
    (void)tf__item_at(payload, len, 0, &it, &after);
    d->r.buf = payload;
    d->r.len = len;
    if (it.type == TF_CBOR_MAP) {
        if (len > d->opts.limits.max_event_bytes) {
            return tf__fail(err, TF_ERR_EVENT_TOO_LARGE, NULL, NULL, -1, NULL);
        }
        d->r.pos = 0;
        d->count = 1;
        return TF_OK;
    }
    if (it.type != TF_CBOR_ARRAY) {
        return tf__fail(err, TF_ERR_NOT_AN_EVENT, NULL, NULL, -1, NULL);
    }
    d->is_batch = 1;
    d->r.pos = after;
    if (it.indefinite) {
        /* count the elements (the payload is known to be well-formed) */
        tf_cbor_reader_t c = d->r;
        uint64_t n = 0;
        while (c.pos < c.len && c.buf[c.pos] != 0xFFu) {
            (void)tf_cbor_skip(&c);
            n++;
        }
        it.val = n;
        d->indefinite = 1;
    }
    if (it.val == 0) {
        return tf__fail(err, TF_ERR_EMPTY_BATCH, NULL, NULL, -1, NULL);
    }
    if (it.val > d->opts.limits.max_batch_events) {
        return tf__fail(err, TF_ERR_BATCH_TOO_LARGE, NULL, NULL, -1, NULL);
    }
    d->count = (uint32_t)it.val;
    return TF_OK;
}

static tf_err_t score_item(const tf_cbor_item_t *it, const char *a, long idx, const char *c, float *out,
                           tf_wire_error_t *e)
{
    if (it->type == TF_CBOR_FLOAT) {
        double f = tf_cbor_float(it);
        if (f != f || f - f != 0.0) {
            return tf__fail(e, TF_ERR_NON_FINITE, a, NULL, idx, c);
        }
        if (f < 0.0 || f > 1.0) {
            return tf__fail(e, TF_ERR_OUT_OF_RANGE, a, NULL, idx, c);
        }
        *out = (float)f;
        return TF_OK;
    }
    if (it->type == TF_CBOR_UINT && it->val <= 255u) {
        *out = (float)((double)it->val / 255.0);
        return TF_OK;
    }
    if (it->type == TF_CBOR_UINT || it->type == TF_CBOR_NINT) {
        return tf__fail(e, TF_ERR_OUT_OF_RANGE, a, NULL, idx, c);
    }
    return tf__fail(e, TF_ERR_WRONG_TYPE, a, NULL, idx, c);
}

static tf_err_t number_item(const tf_cbor_item_t *it, const char *a, long idx, tf_real_t *out, tf_wire_error_t *e)
{
    if (it->type == TF_CBOR_FLOAT) {
        double f = tf_cbor_float(it);
        if (f != f || f - f != 0.0) {
            return tf__fail(e, TF_ERR_NON_FINITE, a, NULL, idx, NULL);
        }
        *out = (tf_real_t)f;
        return TF_OK;
    }
    if (it->type == TF_CBOR_UINT || it->type == TF_CBOR_NINT) {
        if (it->val > (uint64_t)INT64_MAX) {
            return tf__fail(e, TF_ERR_OUT_OF_RANGE, a, NULL, idx, NULL);
        }
        *out = (tf_real_t)(it->type == TF_CBOR_UINT ? (double)it->val : -1.0 - (double)it->val);
        return TF_OK;
    }
    return tf__fail(e, TF_ERR_WRONG_TYPE, a, NULL, idx, NULL);
}

/* the elements of an array value, one at a time */
typedef struct {
    tf_cbor_reader_t r;
    uint64_t left;
    int indefinite;
} arr_iter_t;

static int arr_next(arr_iter_t *a, tf_cbor_item_t *it)
{
    size_t after;
    if (a->indefinite ? (a->r.pos >= a->r.len || a->r.buf[a->r.pos] == 0xFFu) : a->left == 0) {
        return 0;
    }
    a->left--;
    (void)tf__item_at(a->r.buf, a->r.len, a->r.pos, it, &after);
    (void)tf_cbor_skip(&a->r);
    return 1;
}

static uint64_t arr_open(const uint8_t *buf, size_t len, const tf_cbor_item_t *head, size_t after, arr_iter_t *a)
{
    uint64_t n = 0;
    a->r.buf = buf;
    a->r.len = len;
    a->r.pos = after;
    a->indefinite = head->indefinite;
    a->left = head->val;
    if (head->indefinite) {
        tf_cbor_reader_t c = a->r;
        while (c.pos < c.len && c.buf[c.pos] != 0xFFu) {
            (void)tf_cbor_skip(&c);
            n++;
        }
        a->left = n;
        return n;
    }
    return head->val;
}

static tf_err_t decode_one(const tf_map_scan_t *m, const tf_decode_opts_t *o, tf_event_t *ev, tf_decode_buf_t *db,
                           tf_wire_error_t *e)
{
    tf_err_t r;
    uint64_t u;
    tf_cbor_item_t it;
    size_t after;
    int is_id = 0;
    memset(ev, 0, sizeof *ev);
    if ((r = tf__version(m, e)) != TF_OK) {
        return r;
    }
    if ((r = tf__unknown(m, o->strict, NULL, e)) != TF_OK) {
        return r;
    }
    r = tf__ts(m, K_TS, o, &ev->ts_ms, e);
    if (r == TF_OK) {
        ev->has |= TF_EVT_TS;
    } else if (r != TF_ABSENT) {
        return r;
    }
    if ((r = tf__uint(m, K_SEQ, "seq", 0xFFFFFFFFu, 1, &u, e)) != TF_OK) {
        return r;
    }
    ev->seq = (uint32_t)u;
    if ((r = tf__uint(m, K_BOOT, "boot", 0xFFFFFFFFu, 1, &u, e)) != TF_OK) {
        return r;
    }
    ev->boot = (uint32_t)u;
    if (!((m->found >> K_MODEL) & 1u)) {
        return tf__fail(e, TF_ERR_MISSING_FIELD, "model", NULL, -1, NULL);
    }
    if ((r = tf__model(m, K_MODEL, "model", o, db, &ev->model, &ev->model_id, &is_id, e)) != TF_OK) {
        return r;
    }
    if (is_id) {
        ev->has |= TF_EVT_MODEL_ID;
    }
    r = tf__uint(m, K_MVER, "mver", 0xFFFFFFFFu, 0, &u, e);
    if (r == TF_OK) {
        ev->mver = (uint32_t)u;
        ev->has |= TF_EVT_MVER;
    } else if (r != TF_ABSENT) {
        return r;
    }
    if ((r = tf__uint(m, K_KIND, "kind", 3, 1, &u, e)) != TF_OK) {
        return r;
    }
    ev->kind = (tf_kind_t)u;
    r = tf__uint(m, K_LABEL, "label", 0xFFFFu, 0, &u, e);
    if (r == TF_OK) {
        ev->label = (uint16_t)u;
        ev->has |= TF_EVT_LABEL;
    } else if (r != TF_ABSENT) {
        return r;
    }
    if (tf__missing_or_null(m, K_SCORE, "score", 0, e) == TF_OK) {
        (void)tf__item_at(m->buf, m->len, m->pos[K_SCORE], &it, NULL);
        if ((r = score_item(&it, "score", -1, NULL, &ev->score, e)) != TF_OK) {
            return r;
        }
        ev->has |= TF_EVT_SCORE;
    }
    if (tf__missing_or_null(m, K_ANOM, "anom", 0, e) == TF_OK) {
        (void)tf__item_at(m->buf, m->len, m->pos[K_ANOM], &it, NULL);
        if ((r = number_item(&it, "anom", -1, &ev->anom, e)) != TF_OK) {
            return r;
        }
        ev->has |= TF_EVT_ANOM;
    }
    if (tf__missing_or_null(m, K_VAL, "val", 0, e) == TF_OK) {
        (void)tf__item_at(m->buf, m->len, m->pos[K_VAL], &it, &after);
        if (it.type == TF_CBOR_ARRAY) {
            arr_iter_t a;
            tf_cbor_item_t el;
            uint64_t n = arr_open(m->buf, m->len, &it, after, &a);
            long i = 0;
            if (n == 0 || n > o->limits.max_val_len || n > TF_CFG_MAX_VAL) {
                return tf__fail(e, TF_ERR_OUT_OF_RANGE, "val", NULL, -1, NULL);
            }
            while (arr_next(&a, &el)) {
                if ((r = number_item(&el, "val", i, &db->val[i], e)) != TF_OK) {
                    return r;
                }
                i++;
            }
            ev->val_len = (size_t)n;
            ev->has |= TF_EVT_VAL_ARRAY;
        } else {
            if ((r = number_item(&it, "val", -1, &db->val[0], e)) != TF_OK) {
                return r;
            }
            ev->val_len = 1;
            ev->has |= TF_EVT_VAL;
        }
        ev->val = db->val;
    }
    if (tf__missing_or_null(m, K_TOP, "top", 0, e) == TF_OK) {
        arr_iter_t a;
        tf_cbor_item_t pair;
        uint64_t n;
        long i = 0;
        (void)tf__item_at(m->buf, m->len, m->pos[K_TOP], &it, &after);
        if (it.type != TF_CBOR_ARRAY) {
            return tf__fail(e, TF_ERR_WRONG_TYPE, "top", NULL, -1, NULL);
        }
        n = arr_open(m->buf, m->len, &it, after, &a);
        if (n == 0 || n > o->limits.max_top_k || n > TF_CFG_MAX_TOP_K) {
            return tf__fail(e, TF_ERR_OUT_OF_RANGE, "top", NULL, -1, NULL);
        }
        while (arr_next(&a, &pair)) {
            arr_iter_t p;
            tf_cbor_item_t lab, sc;
            size_t pafter = a.r.pos; /* recomputed below */
            (void)tf__item_at(m->buf, m->len, pair.offset, &pair, &pafter);
            if (pair.type != TF_CBOR_ARRAY || arr_open(m->buf, m->len, &pair, pafter, &p) != 2) {
                return tf__fail(e, TF_ERR_WRONG_TYPE, "top", NULL, i, NULL);
            }
            (void)arr_next(&p, &lab);
            (void)arr_next(&p, &sc);
            if (lab.type != TF_CBOR_UINT || lab.val > 0xFFFFu) {
                return tf__fail(e, lab.type == TF_CBOR_UINT || lab.type == TF_CBOR_NINT ? TF_ERR_OUT_OF_RANGE
                                                                                         : TF_ERR_WRONG_TYPE,
                                "top", NULL, i, ".label");
            }
            db->top[i].label = (uint16_t)lab.val;
            if ((r = score_item(&sc, "top", i, ".score", &db->top[i].score, e)) != TF_OK) {
                return r;
            }
            i++;
        }
        ev->top = db->top;
        ev->top_len = (size_t)n;
        ev->has |= TF_EVT_TOP;
    }
    r = tf__uint(m, K_LAT, "lat", 0xFFFFFFFFu, 0, &u, e);
    if (r == TF_OK) {
        ev->lat_us = (uint32_t)u;
        ev->has |= TF_EVT_LAT;
    } else if (r != TF_ABSENT) {
        return r;
    }
    r = tf__extras(m, K_X, o->strict, NULL, 0, o, db, &ev->x, &ev->x_len, e);
    if (r == TF_OK) {
        ev->has |= TF_EVT_X;
    } else if (r != TF_ABSENT) {
        return r;
    }
    switch (ev->kind) {
    case TF_KIND_CLASSIFICATION:
        if (!(ev->has & TF_EVT_LABEL)) {
            return tf__fail(e, TF_ERR_KIND_FIELD_MISSING, "label", NULL, -1, NULL);
        }
        break;
    case TF_KIND_ANOMALY:
        if (!(ev->has & TF_EVT_ANOM)) {
            return tf__fail(e, TF_ERR_KIND_FIELD_MISSING, "anom", NULL, -1, NULL);
        }
        break;
    case TF_KIND_REGRESSION:
        if (!(ev->has & (TF_EVT_VAL | TF_EVT_VAL_ARRAY))) {
            return tf__fail(e, TF_ERR_KIND_FIELD_MISSING, "val", NULL, -1, NULL);
        }
        break;
    default:
        if (!(ev->has & (TF_EVT_TOP | TF_EVT_LABEL))) {
            return tf__fail(e, TF_ERR_KIND_FIELD_MISSING, "top", NULL, -1, NULL);
        }
        break;
    }
    return TF_OK;
}

tf_err_t tf_events_next(tf_event_decoder_t *d, tf_event_t *ev, tf_decode_buf_t *db, tf_wire_error_t *err)
{
    tf_map_scan_t m;
    tf_cbor_item_t it;
    tf_err_t r;
    uint32_t i;
    if (d == NULL || ev == NULL || db == NULL) {
        return TF_ERR_ARG;
    }
    if (d->index >= d->count) {
        return TF_ERR_END;
    }
    i = d->index++;
    db->text_used = 0;
    if (err != NULL) {
        err->code = TF_OK;
        err->field[0] = '\0';
        err->index = d->is_batch ? (int32_t)i : -1;
    }
    (void)tf__item_at(d->r.buf, d->r.len, d->r.pos, &it, NULL);
    if (it.type != TF_CBOR_MAP) {
        (void)tf_cbor_skip(&d->r);
        return tf__fail(err, TF_ERR_NOT_AN_EVENT, NULL, NULL, -1, NULL);
    }
    r = tf__scan_map(&d->r, 0x3FFFu, &m);
    if (r != TF_OK) {
        return tf__fail(err, r, NULL, NULL, -1, NULL);
    }
    return decode_one(&m, &d->opts, ev, db, err);
}
