/* The map scan and the field checks of the decoders (see tf_wire_internal.h). */
#include <string.h>

#include "tf_wire_internal.h"

#define SELF_DESCRIBED_TAG 55799u

tf_str_t tf_str(const char *s)
{
    tf_str_t t;
    t.ptr = s;
    t.len = s != NULL ? strlen(s) : 0;
    return t;
}

tf_err_t tf_limits_default(tf_limits_t *l)
{
    if (l == NULL) {
        return TF_ERR_ARG;
    }
    l->max_event_bytes = TF_CFG_MAX_EVENT_BYTES;
    l->max_batch_events = TF_CFG_MAX_BATCH_EVENTS;
    l->max_message_bytes = 262144u;
    l->max_future_ms = 86400000ull;
    l->max_extras_keys = TF_CFG_MAX_EXTRAS;
    l->max_extras_bytes = TF_CFG_MAX_EXTRAS_BYTES;
    l->max_top_k = TF_CFG_MAX_TOP_K;
    l->max_val_len = TF_CFG_MAX_VAL;
    l->max_text_len = TF_CFG_MAX_TEXT;
    l->max_telemetry_bytes = 1024u;
    l->max_state_bytes = 8192u;
    l->max_ops = TF_CFG_MAX_OPS;
    return TF_OK;
}

tf_err_t tf_decode_opts_default(tf_decode_opts_t *o)
{
    if (o == NULL) {
        return TF_ERR_ARG;
    }
    o->strict = 1;
    o->has_now = 0;
    o->now_ms = 0;
    return tf_limits_default(&o->limits);
}

int tf__is_finite(tf_real_t d) { return d == d && d - d == 0; }

size_t tf__utf8_chars(const char *s, size_t n)
{
    size_t i, c = 0;
    for (i = 0; i < n; i++) {
        if (((uint8_t)s[i] & 0xC0u) != 0x80u) {
            c++;
        }
    }
    return c;
}

int tf__has_nul(const char *s, size_t n) { return n > 0 && memchr(s, 0, n) != NULL; }

tf_err_t tf__item_at(const uint8_t *buf, size_t len, size_t pos, tf_cbor_item_t *it, size_t *after)
{
    tf_cbor_reader_t r;
    tf_err_t e;
    r.buf = buf;
    r.len = len;
    r.pos = pos;
    for (;;) {
        e = tf_cbor_read(&r, it);
        if (e != TF_OK) {
            return TF_ERR_MALFORMED_CBOR;
        }
        if (it->type != TF_CBOR_TAG || it->val != SELF_DESCRIBED_TAG) {
            break;
        }
    }
    if (after != NULL) {
        *after = r.pos;
    }
    return TF_OK;
}

/* ---------------------------------------------------------------------------------------- field paths */

static size_t append(char *dst, size_t at, size_t cap, const char *s, size_t n)
{
    while (n-- > 0 && at + 1 < cap) {
        dst[at++] = *s++;
    }
    dst[at] = '\0';
    return at;
}

static size_t append_dec(char *dst, size_t at, size_t cap, int neg, uint64_t v)
{
    char tmp[21];
    size_t n = 0;
    do {
        tmp[sizeof tmp - 1 - n] = (char)('0' + (int)(v % 10u));
        v /= 10u;
        n++;
    } while (v != 0 && n < sizeof tmp - 1);
    if (neg) {
        tmp[sizeof tmp - 1 - n] = '-';
        n++;
    }
    return append(dst, at, cap, tmp + sizeof tmp - n, n);
}

static void set_path(tf_wire_error_t *e, const char *a, const char *b, size_t blen, long idx, const char *c)
{
    size_t at = 0;
    if (e == NULL) {
        return;
    }
    e->field[0] = '\0';
    if (a != NULL) {
        at = append(e->field, at, sizeof e->field, a, strlen(a));
    }
    if (b != NULL) {
        at = append(e->field, at, sizeof e->field, b, blen);
    }
    if (idx >= 0) {
        at = append(e->field, at, sizeof e->field, "[", 1);
        at = append_dec(e->field, at, sizeof e->field, 0, (uint64_t)idx);
        at = append(e->field, at, sizeof e->field, "]", 1);
    }
    if (c != NULL) {
        (void)append(e->field, at, sizeof e->field, c, strlen(c));
    }
}

void tf__set_field(tf_wire_error_t *e, const char *a, const char *b, long idx, const char *c)
{
    set_path(e, a, b, b != NULL ? strlen(b) : 0, idx, c);
}

tf_err_t tf__fail(tf_wire_error_t *e, tf_err_t code, const char *a, const char *b, long idx, const char *c)
{
    tf__set_field(e, a, b, idx, c);
    if (e != NULL) {
        e->code = code;
    }
    return code;
}

static tf_err_t fail_named(tf_wire_error_t *e, tf_err_t code, const char *a, tf_str_t name)
{
    set_path(e, a, name.ptr, name.len, -1, NULL);
    if (e != NULL) {
        e->code = code;
    }
    return code;
}

/* ------------------------------------------------------------------------------------------- texts */

static char *text_alloc(tf_decode_buf_t *db, size_t n)
{
    char *p;
    if (db == NULL || n > sizeof db->text - db->text_used) {
        return NULL;
    }
    p = db->text + db->text_used;
    db->text_used += n;
    return p;
}

tf_err_t tf__get_text(const tf_cbor_item_t *it, const uint8_t *buf, size_t len, tf_decode_buf_t *db, tf_str_t *out)
{
    tf_cbor_reader_t r;
    tf_cbor_item_t c;
    size_t total = 0;
    char *dst;
    if (!it->indefinite) {
        out->ptr = (const char *)it->data;
        out->len = (size_t)it->val;
        return TF_OK;
    }
    /* an indefinite text: concatenate its (already checked) chunks into the decode buffer */
    r.buf = buf;
    r.len = len;
    r.pos = it->offset + 1;
    while (tf_cbor_read(&r, &c) == TF_OK && c.type != TF_CBOR_BREAK) {
        total += (size_t)c.val;
    }
    dst = text_alloc(db, total);
    if (dst == NULL) {
        return TF_ERR_NO_SPACE;
    }
    r.pos = it->offset + 1;
    total = 0;
    while (tf_cbor_read(&r, &c) == TF_OK && c.type != TF_CBOR_BREAK) {
        memcpy(dst + total, c.data, (size_t)c.val);
        total += (size_t)c.val;
    }
    out->ptr = dst;
    out->len = total;
    return TF_OK;
}

/* --------------------------------------------------------------------------------------------- scan */

tf_err_t tf__scan_map(tf_cbor_reader_t *r, uint32_t known, tf_map_scan_t *m)
{
    tf_cbor_item_t it, key;
    uint64_t n, i;
    size_t after;
    tf_err_t e;
    memset(m, 0, sizeof *m);
    m->buf = r->buf;
    m->len = r->len;
    e = tf__item_at(r->buf, r->len, r->pos, &it, &after);
    if (e != TF_OK || it.type != TF_CBOR_MAP) {
        return TF_ERR_NOT_AN_EVENT;
    }
    r->pos = after;
    n = it.indefinite ? UINT64_MAX : it.val;
    for (i = 0; i < n; i++) {
        size_t kpos = r->pos, vpos;
        if (it.indefinite && r->pos < r->len && r->buf[r->pos] == 0xFFu) {
            r->pos++;
            break;
        }
        if (tf__item_at(r->buf, r->len, kpos, &key, NULL) != TF_OK || tf_cbor_skip(r) != TF_OK) {
            return TF_ERR_MALFORMED_CBOR;
        }
        vpos = r->pos;
        if (tf_cbor_skip(r) != TF_OK) {
            return TF_ERR_MALFORMED_CBOR;
        }
        if (key.type == TF_CBOR_UINT && key.val < TF_NKEYS && ((known >> key.val) & 1u)) {
            tf_cbor_item_t v;
            uint32_t bit = 1u << key.val;
            m->pos[key.val] = vpos;
            m->found |= bit;
            (void)tf__item_at(r->buf, r->len, vpos, &v, NULL);
            if (v.type == TF_CBOR_NULL) {
                m->nulls |= bit;
            } else {
                m->nulls &= ~bit;
            }
        } else {
            if (m->n_unk < (uint32_t)(sizeof m->unk / sizeof m->unk[0])) {
                m->unk[m->n_unk].key = kpos;
                m->unk[m->n_unk].val = vpos;
            }
            m->n_unk++;
        }
    }
    return TF_OK;
}

tf_err_t tf__unknown_name(const tf_map_scan_t *m, size_t i, const char *prefix, tf_decode_buf_t *db, tf_str_t *out)
{
    tf_cbor_item_t k;
    size_t plen = prefix != NULL ? strlen(prefix) : 0;
    char tmp[24];
    size_t n = 0;
    (void)tf__item_at(m->buf, m->len, m->unk[i].key, &k, NULL);
    if (k.type == TF_CBOR_TEXT) {
        tf_str_t t;
        char *dst;
        if (tf__get_text(&k, m->buf, m->len, db, &t) != TF_OK) {
            return TF_ERR_NO_SPACE;
        }
        if (plen == 0) {
            *out = t;
            return TF_OK;
        }
        dst = text_alloc(db, plen + t.len);
        if (dst == NULL) {
            return TF_ERR_NO_SPACE;
        }
        memcpy(dst, prefix, plen);
        memcpy(dst + plen, t.ptr, t.len);
        out->ptr = dst;
        out->len = plen + t.len;
        return TF_OK;
    }
    if (k.type == TF_CBOR_UINT || k.type == TF_CBOR_NINT) {
        char *dst;
        n = append(tmp, 0, sizeof tmp, prefix != NULL ? prefix : "", 0);
        n = append_dec(tmp, n, sizeof tmp, k.type == TF_CBOR_NINT,
                       k.type == TF_CBOR_NINT ? k.val + 1u : k.val); /* -1 - val */
        dst = text_alloc(db, plen + n);
        if (dst == NULL) {
            return TF_ERR_NO_SPACE;
        }
        if (plen > 0) {
            memcpy(dst, prefix, plen);
        }
        memcpy(dst + plen, tmp, n);
        out->ptr = dst;
        out->len = plen + n;
        return TF_OK;
    }
    return TF_ERR_UNKNOWN_KEY;
}

tf_err_t tf__unknown(const tf_map_scan_t *m, int strict, const char *prefix, tf_wire_error_t *e)
{
    size_t i, n = m->n_unk < TF_CFG_MAX_EXTRAS + 1u ? m->n_unk : TF_CFG_MAX_EXTRAS + 1u;
    for (i = 0; i < n; i++) {
        tf_cbor_item_t k;
        (void)tf__item_at(m->buf, m->len, m->unk[i].key, &k, NULL);
        if (k.type != TF_CBOR_TEXT && k.type != TF_CBOR_UINT && k.type != TF_CBOR_NINT) {
            /* a byte string, float, array ... key cannot be named: unknown in both modes */
            return tf__fail(e, TF_ERR_UNKNOWN_KEY, prefix != NULL ? prefix : "", NULL, -1, NULL);
        }
        if (strict) {
            char name[TF_CFG_FIELD_PATH];
            size_t at = 0;
            if (prefix != NULL) {
                at = append(name, at, sizeof name, prefix, strlen(prefix));
                at = append(name, at, sizeof name, ".", 1);
            }
            if (k.type == TF_CBOR_TEXT) {
                tf_decode_buf_t *none = NULL;
                tf_str_t t;
                if (!k.indefinite && tf__get_text(&k, m->buf, m->len, none, &t) == TF_OK) {
                    (void)append(name, at, sizeof name, t.ptr, t.len);
                }
            } else {
                (void)append_dec(name, at, sizeof name, k.type == TF_CBOR_NINT,
                                 k.type == TF_CBOR_NINT ? k.val + 1u : k.val);
            }
            return tf__fail(e, TF_ERR_UNKNOWN_KEY, name, NULL, -1, NULL);
        }
    }
    return TF_OK;
}

/* ------------------------------------------------------------------------------------------- checks */

static int lookup(const tf_map_scan_t *m, int key, tf_cbor_item_t *it)
{
    if (!((m->found >> key) & 1u)) {
        return 0;
    }
    (void)tf__item_at(m->buf, m->len, m->pos[key], it, NULL);
    return 1;
}

tf_err_t tf__missing_or_null(const tf_map_scan_t *m, int key, const char *name, int required, tf_wire_error_t *e)
{
    if (!((m->found >> key) & 1u)) {
        return required ? tf__fail(e, TF_ERR_MISSING_FIELD, name, NULL, -1, NULL) : TF_ABSENT;
    }
    if ((m->nulls >> key) & 1u) {
        return required ? tf__fail(e, TF_ERR_WRONG_TYPE, name, NULL, -1, NULL) : TF_ABSENT;
    }
    return TF_OK;
}

tf_err_t tf__version(const tf_map_scan_t *m, tf_wire_error_t *e)
{
    tf_cbor_item_t it;
    if (!lookup(m, 0, &it)) {
        return tf__fail(e, TF_ERR_MISSING_FIELD, "v", NULL, -1, NULL);
    }
    if (it.type == TF_CBOR_UINT && it.val == 1u) {
        return TF_OK;
    }
    if (it.type == TF_CBOR_UINT || it.type == TF_CBOR_NINT) {
        return tf__fail(e, TF_ERR_UNSUPPORTED_VERSION, "v", NULL, -1, NULL);
    }
    return tf__fail(e, TF_ERR_WRONG_TYPE, "v", NULL, -1, NULL);
}

tf_err_t tf__uint(const tf_map_scan_t *m, int key, const char *name, uint64_t max, int required, uint64_t *out,
                  tf_wire_error_t *e)
{
    tf_cbor_item_t it;
    tf_err_t r = tf__missing_or_null(m, key, name, required, e);
    if (r != TF_OK) {
        return r;
    }
    (void)lookup(m, key, &it);
    if (it.type == TF_CBOR_UINT && it.val <= max) {
        *out = it.val;
        return TF_OK;
    }
    return tf__fail(e, it.type == TF_CBOR_UINT || it.type == TF_CBOR_NINT ? TF_ERR_OUT_OF_RANGE : TF_ERR_WRONG_TYPE,
                    name, NULL, -1, NULL);
}

tf_err_t tf__int_range(const tf_map_scan_t *m, int key, const char *name, int64_t lo, int64_t hi, int64_t *out,
                       tf_wire_error_t *e)
{
    tf_cbor_item_t it;
    tf_err_t r = tf__missing_or_null(m, key, name, 0, e);
    if (r != TF_OK) {
        return r;
    }
    (void)lookup(m, key, &it);
    if (it.type == TF_CBOR_UINT) {
        if (it.val <= (uint64_t)hi) {
            *out = (int64_t)it.val;
            return TF_OK;
        }
        return tf__fail(e, TF_ERR_OUT_OF_RANGE, name, NULL, -1, NULL);
    }
    if (it.type == TF_CBOR_NINT) {
        if (it.val <= (uint64_t)(-(lo + 1))) {
            *out = -1 - (int64_t)it.val;
            return TF_OK;
        }
        return tf__fail(e, TF_ERR_OUT_OF_RANGE, name, NULL, -1, NULL);
    }
    return tf__fail(e, TF_ERR_WRONG_TYPE, name, NULL, -1, NULL);
}

tf_err_t tf__ts(const tf_map_scan_t *m, int key, const tf_decode_opts_t *o, uint64_t *out, tf_wire_error_t *e)
{
    tf_cbor_item_t it;
    tf_err_t r = tf__missing_or_null(m, key, "ts", 0, e);
    if (r != TF_OK) {
        return r;
    }
    (void)lookup(m, key, &it);
    if (it.type == TF_CBOR_NINT) {
        return tf__fail(e, TF_ERR_OUT_OF_RANGE, "ts", NULL, -1, NULL);
    }
    if (it.type != TF_CBOR_UINT) {
        return tf__fail(e, TF_ERR_WRONG_TYPE, "ts", NULL, -1, NULL);
    }
    if (it.val < TF_TS_FLOOR_MS) {
        return tf__fail(e, TF_ERR_TS_BEFORE_EPOCH_FLOOR, "ts", NULL, -1, NULL);
    }
    if (it.val > TF_TS_MAX_MS) {
        return tf__fail(e, TF_ERR_OUT_OF_RANGE, "ts", NULL, -1, NULL);
    }
    if (o->has_now && it.val > o->now_ms && it.val - o->now_ms > o->limits.max_future_ms) {
        return tf__fail(e, TF_ERR_TS_IN_FUTURE, "ts", NULL, -1, NULL);
    }
    *out = it.val;
    return TF_OK;
}

static tf_err_t text_item(const tf_map_scan_t *m, const tf_cbor_item_t *it, const char *name, uint32_t max,
                          tf_decode_buf_t *db, tf_str_t *out, tf_wire_error_t *e)
{
    tf_err_t r;
    if (it->type != TF_CBOR_TEXT) {
        return tf__fail(e, TF_ERR_WRONG_TYPE, name, NULL, -1, NULL);
    }
    r = tf__get_text(it, m->buf, m->len, db, out);
    if (r != TF_OK) {
        return tf__fail(e, r, name, NULL, -1, NULL);
    }
    if (out->len == 0 || tf__utf8_chars(out->ptr, out->len) > max || tf__has_nul(out->ptr, out->len)) {
        return tf__fail(e, TF_ERR_OUT_OF_RANGE, name, NULL, -1, NULL);
    }
    return TF_OK;
}

tf_err_t tf__textf(const tf_map_scan_t *m, int key, const char *name, uint32_t max, int required,
                   tf_decode_buf_t *db, tf_str_t *out, tf_wire_error_t *e)
{
    tf_cbor_item_t it;
    tf_err_t r = tf__missing_or_null(m, key, name, required, e);
    if (r != TF_OK) {
        return r;
    }
    (void)lookup(m, key, &it);
    return text_item(m, &it, name, max, db, out, e);
}

tf_err_t tf__model(const tf_map_scan_t *m, int key, const char *name, const tf_decode_opts_t *o, tf_decode_buf_t *db,
                   tf_str_t *text, uint32_t *id, int *is_id, tf_wire_error_t *e)
{
    tf_cbor_item_t it;
    (void)lookup(m, key, &it);
    if (it.type == TF_CBOR_UINT || it.type == TF_CBOR_NINT) {
        if (it.type == TF_CBOR_UINT && it.val <= 0xFFFFFFFFu) {
            *id = (uint32_t)it.val;
            *is_id = 1;
            return TF_OK;
        }
        return tf__fail(e, TF_ERR_OUT_OF_RANGE, name, NULL, -1, NULL);
    }
    *is_id = 0;
    return text_item(m, &it, name, o->limits.max_text_len, db, text, e);
}

tf_err_t tf__bool(const tf_map_scan_t *m, int key, const char *name, int required, int *out, tf_wire_error_t *e)
{
    tf_cbor_item_t it;
    tf_err_t r = tf__missing_or_null(m, key, name, required, e);
    if (r != TF_OK) {
        return r;
    }
    (void)lookup(m, key, &it);
    if (it.type == TF_CBOR_TRUE || it.type == TF_CBOR_FALSE) {
        *out = it.type == TF_CBOR_TRUE;
        return TF_OK;
    }
    return tf__fail(e, TF_ERR_WRONG_TYPE, name, NULL, -1, NULL);
}

/* --------------------------------------------------------------------------------------------- extras */

static int str_eq(tf_str_t a, tf_str_t b) { return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0); }

tf_err_t tf__extras(const tf_map_scan_t *m, int xkey, int strict, const tf_named_pos_t *extra, size_t n_extra,
                    const tf_decode_opts_t *o, tf_decode_buf_t *db, const tf_extra_t **out, size_t *out_len,
                    tf_wire_error_t *e)
{
    size_t n = 0, total = 0, i, j, size = 0;
    size_t vals[TF_CFG_MAX_EXTRAS];
    int has_x = ((m->found >> xkey) & 1u) && !((m->nulls >> xkey) & 1u);
    size_t n_unk = strict ? 0 : (m->n_unk < TF_CFG_MAX_EXTRAS + 1u ? m->n_unk : TF_CFG_MAX_EXTRAS + 1u);
    if (!has_x && n_unk == 0 && n_extra == 0) {
        return TF_ABSENT;
    }
    if (has_x) {
        tf_cbor_item_t it, k;
        tf_cbor_reader_t r;
        uint64_t cnt, c;
        size_t after;
        (void)tf__item_at(m->buf, m->len, m->pos[xkey], &it, &after);
        if (it.type != TF_CBOR_MAP) {
            return tf__fail(e, TF_ERR_WRONG_TYPE, "x", NULL, -1, NULL);
        }
        r.buf = m->buf;
        r.len = m->len;
        r.pos = after;
        cnt = it.indefinite ? UINT64_MAX : it.val;
        for (c = 0; c < cnt; c++) {
            size_t vpos;
            if (it.indefinite && r.buf[r.pos] == 0xFFu) {
                break;
            }
            (void)tf__item_at(m->buf, m->len, r.pos, &k, NULL);
            if (k.type != TF_CBOR_TEXT) {
                return tf__fail(e, TF_ERR_WRONG_TYPE, "x", NULL, -1, NULL);
            }
            (void)tf_cbor_skip(&r);
            vpos = r.pos;
            (void)tf_cbor_skip(&r);
            if (n < TF_CFG_MAX_EXTRAS) {
                if (tf__get_text(&k, m->buf, m->len, db, &db->x[n].key) != TF_OK) {
                    return tf__fail(e, TF_ERR_NO_SPACE, "x", NULL, -1, NULL);
                }
                vals[n++] = vpos;
            }
            total++;
        }
    }
    /* lenient: unknown top-level keys join x under their names */
    for (i = 0; i < n_unk + n_extra; i++) {
        tf_str_t name;
        size_t vpos;
        if (i < n_unk) {
            if (tf__unknown_name(m, i, NULL, db, &name) != TF_OK) {
                return tf__fail(e, TF_ERR_NO_SPACE, "x", NULL, -1, NULL);
            }
            vpos = m->unk[i].val;
        } else {
            name = extra[i - n_unk].name;
            vpos = extra[i - n_unk].val;
        }
        for (j = 0; j < n; j++) {
            if (str_eq(db->x[j].key, name)) {
                return fail_named(e, TF_ERR_DUPLICATE_KEY, "x.", name);
            }
        }
        if (n < TF_CFG_MAX_EXTRAS) {
            db->x[n].key = name;
            vals[n++] = vpos;
        }
        total++;
    }
    if (total > o->limits.max_extras_keys || total > TF_CFG_MAX_EXTRAS) {
        return tf__fail(e, TF_ERR_EXTRAS_TOO_LARGE, "x", NULL, -1, NULL);
    }
    for (i = 0; i < n; i++) {
        tf_extra_t *x = &db->x[i];
        tf_cbor_item_t v;
        double f;
        if (x->key.len == 0 || tf__utf8_chars(x->key.ptr, x->key.len) > o->limits.max_text_len ||
            tf__has_nul(x->key.ptr, x->key.len)) {
            return tf__fail(e, TF_ERR_OUT_OF_RANGE, "x", NULL, -1, NULL);
        }
        size += x->key.len;
        (void)tf__item_at(m->buf, m->len, vals[i], &v, NULL);
        switch (v.type) {
        case TF_CBOR_TEXT:
            x->type = TF_X_TEXT;
            if (tf__get_text(&v, m->buf, m->len, db, &x->u.text) != TF_OK) {
                return tf__fail(e, TF_ERR_NO_SPACE, "x", NULL, -1, NULL);
            }
            if (tf__utf8_chars(x->u.text.ptr, x->u.text.len) > o->limits.max_text_len ||
                tf__has_nul(x->u.text.ptr, x->u.text.len)) {
                return fail_named(e, TF_ERR_OUT_OF_RANGE, "x.", x->key);
            }
            size += x->u.text.len;
            break;
        case TF_CBOR_UINT:
        case TF_CBOR_NINT:
            if (v.val > (uint64_t)INT64_MAX) {
                return fail_named(e, TF_ERR_OUT_OF_RANGE, "x.", x->key);
            }
            x->type = TF_X_INT;
            x->u.i = v.type == TF_CBOR_UINT ? (int64_t)v.val : -1 - (int64_t)v.val;
            size += 8;
            break;
        case TF_CBOR_FLOAT:
            f = tf_cbor_float(&v);
            if (f != f || f - f != 0.0) {
                return fail_named(e, TF_ERR_NON_FINITE, "x.", x->key);
            }
            x->type = TF_X_FLOAT;
            x->u.f = (tf_real_t)f;
            size += 8;
            break;
        case TF_CBOR_TRUE:
        case TF_CBOR_FALSE:
            x->type = TF_X_BOOL;
            x->u.b = v.type == TF_CBOR_TRUE;
            size += 1;
            break;
        case TF_CBOR_NULL:
            x->type = TF_X_NULL;
            size += 1;
            break;
        default:
            return fail_named(e, TF_ERR_WRONG_TYPE, "x.", x->key);
        }
    }
    if (size > o->limits.max_extras_bytes) {
        return tf__fail(e, TF_ERR_EXTRAS_TOO_LARGE, "x", NULL, -1, NULL);
    }
    *out = db->x;
    *out_len = n;
    return TF_OK;
}

/* ---------------------------------------------------------------------------------- message level */

static int is_blank_byte(uint8_t b) { return b == ' ' || b == '\t' || b == '\r' || b == '\n'; }

/* 1 = JSON, 2 = blank, 0 = CBOR (docs/protocol.md "Encodings") */
static int classify(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len && is_blank_byte(p[i])) {
        i++;
    }
    if (i == len) {
        return 2;
    }
    return p[i] == '{' || p[i] == '[' ? 1 : 0;
}

tf_err_t tf__message_begin(const uint8_t *p, size_t len, uint32_t max_bytes, int blank_after_size,
                           tf_wire_error_t *e);
tf_err_t tf__message_begin(const uint8_t *p, size_t len, uint32_t max_bytes, int blank_after_size,
                           tf_wire_error_t *e)
{
    int kind;
    tf_err_t r;
    if (e != NULL) {
        e->code = TF_OK;
        e->index = -1;
        e->field[0] = '\0';
    }
    if (len == 0) {
        return tf__fail(e, TF_ERR_EMPTY_PAYLOAD, NULL, NULL, -1, NULL);
    }
    kind = classify(p, len);
    if (!blank_after_size && kind == 2) {
        return tf__fail(e, TF_ERR_EMPTY_PAYLOAD, NULL, NULL, -1, NULL);
    }
    if (len > max_bytes) {
        return tf__fail(e, TF_ERR_MESSAGE_TOO_LARGE, NULL, NULL, -1, NULL);
    }
    if (kind == 1) {
        return tf__fail(e, TF_ERR_UNSUPPORTED_FORMAT, NULL, NULL, -1, NULL);
    }
    if (kind == 2) {
        return tf__fail(e, TF_ERR_EMPTY_PAYLOAD, NULL, NULL, -1, NULL);
    }
    r = tf_cbor_check(p, len);
    if (r != TF_OK) {
        return tf__fail(e, r, NULL, NULL, -1, NULL);
    }
    return TF_OK;
}

tf_err_t tf__record_begin(const uint8_t *p, size_t len, uint32_t max_bytes, tf_cbor_reader_t *r, tf_wire_error_t *e)
{
    tf_cbor_item_t it;
    tf_err_t rc = tf__message_begin(p, len, max_bytes, 0, e);
    if (rc != TF_OK) {
        return rc;
    }
    (void)tf__item_at(p, len, 0, &it, NULL);
    if (it.type != TF_CBOR_MAP) {
        return tf__fail(e, TF_ERR_NOT_AN_EVENT, NULL, NULL, -1, NULL);
    }
    r->buf = p;
    r->len = len;
    r->pos = 0;
    return TF_OK;
}

/* ----------------------------------------------------------------------------------------- encoding */

tf_err_t tf__check_text(tf_str_t s, uint32_t max_chars)
{
    if (s.ptr == NULL || s.len == 0 || tf__utf8_chars(s.ptr, s.len) > max_chars || tf__has_nul(s.ptr, s.len)) {
        return TF_ERR_OUT_OF_RANGE;
    }
    return TF_OK;
}

/* canonical order of x keys: shorter first, then bytewise */
static int key_less(tf_str_t a, tf_str_t b)
{
    int c;
    if (a.len != b.len) {
        return a.len < b.len;
    }
    c = memcmp(a.ptr, b.ptr, a.len);
    return c < 0;
}

tf_err_t tf__write_extras(tf_cbor_writer_t *w, const tf_extra_t *x, size_t n)
{
    size_t i, k, size = 0;
    const tf_extra_t *prev = NULL;
    if (n > TF_CFG_MAX_EXTRAS) {
        return TF_ERR_EXTRAS_TOO_LARGE;
    }
    for (i = 0; i < n; i++) {
        if (tf__check_text(x[i].key, TF_CFG_MAX_TEXT) != TF_OK) {
            return TF_ERR_OUT_OF_RANGE;
        }
        size += x[i].key.len;
        switch (x[i].type) {
        case TF_X_TEXT:
            if ((x[i].u.text.len > 0 && x[i].u.text.ptr == NULL) ||
                tf__utf8_chars(x[i].u.text.ptr, x[i].u.text.len) > TF_CFG_MAX_TEXT ||
                tf__has_nul(x[i].u.text.ptr, x[i].u.text.len)) {
                return TF_ERR_OUT_OF_RANGE;
            }
            size += x[i].u.text.len;
            break;
        case TF_X_FLOAT:
            if (!tf__is_finite(x[i].u.f)) {
                return TF_ERR_NON_FINITE;
            }
            size += 8;
            break;
        case TF_X_INT: size += 8; break;
        default: size += 1; break;
        }
        for (k = 0; k < i; k++) {
            if (str_eq(x[k].key, x[i].key)) {
                return TF_ERR_DUPLICATE_KEY;
            }
        }
    }
    if (size > TF_CFG_MAX_EXTRAS_BYTES) {
        return TF_ERR_EXTRAS_TOO_LARGE;
    }
    tf_cbor_put_map(w, n);
    /* selection in canonical order: n <= 16, so O(n^2) without a scratch array */
    for (i = 0; i < n; i++) {
        const tf_extra_t *best = NULL;
        for (k = 0; k < n; k++) {
            if ((prev == NULL || key_less(prev->key, x[k].key)) && (best == NULL || key_less(x[k].key, best->key))) {
                best = &x[k];
            }
        }
        prev = best;
        tf_cbor_put_text(w, best->key.ptr, best->key.len);
        switch (best->type) {
        case TF_X_NULL: tf_cbor_put_null(w); break;
        case TF_X_BOOL: tf_cbor_put_bool(w, best->u.b); break;
        case TF_X_INT: tf_cbor_put_int(w, best->u.i); break;
        case TF_X_FLOAT: tf_cbor_put_real(w, best->u.f); break;
        default: tf_cbor_put_text(w, best->u.text.ptr, best->u.text.len); break;
        }
    }
    return w->err;
}
