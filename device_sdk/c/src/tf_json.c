/* JSON -> CBOR transcoder for the wire's JSON form (tf_json.h): a one-pass tokenizer with an explicit stack. */
#include "tinyfleet/tf_json.h"

#include <string.h>

#include "tf_wire_internal.h"

/* names in CBOR key order (NULL: no field with that key) */
static const char *const event_names[TF_NKEYS] = {"v",    "ts",  "seq", "boot", "model", "mver", "kind",
                                                  "label", "score", "anom", "val", "top", "lat", "x"};
static const char *const telemetry_names[TF_NKEYS] = {
    "v", "ts", "uptime_s", "boot", "battery_pct", "battery_mv", "rssi_dbm", "heap_free", "arena_free",
    "infer_count", "lat_avg_us", "lat_max_us", "dropped", "x"};
static const char *const state_names[TF_NKEYS] = {"v",    "ts",     "online", "boot", "model", "mver", "fw",
                                                  "caps", "reason", NULL,     NULL,   NULL,    NULL,   "x"};
static const char *const caps_names[TF_NKEYS] = {"flash", "ram", "arena", "ops"};
static const char *const ota_status_names[TF_NKEYS] = {"v",   "ts",   "state", "seq",      "reason", "msg", "model",
                                                       "mver", "fw", "progress", NULL, NULL, NULL, "x"};
#define CAPS_KEY 7u

enum { T_NONE, T_RECORD, T_CAPS };
enum { S_FIRST, S_NEXT, S_COLON, S_VALUE, S_AFTER }; /* S_FIRST: right after { or [ */

typedef struct {
    uint8_t is_obj;
    uint8_t table;    /* names of this object's keys */
    uint8_t state;
    uint8_t last_key; /* the key just read, as an integer key of the table (0xFF: a text key) */
} frame_t;

static int blank(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static int hex4(const uint8_t *p, uint32_t *out)
{
    int i;
    *out = 0;
    for (i = 0; i < 4; i++) {
        uint8_t c = p[i];
        uint32_t d = 16u;
        if (c >= '0' && c <= '9') {
            d = (uint32_t)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = (uint32_t)(c - 'a') + 10u;
        } else if (c >= 'A' && c <= 'F') {
            d = (uint32_t)(c - 'A') + 10u;
        }
        if (d > 15u) {
            return 0;
        }
        *out = (*out << 4) | d;
    }
    return 1;
}

/* The string whose opening quote is at in[*pos]: decoded (escapes resolved) into w when w is not NULL, its
 * decoded length in *n either way; *pos after the closing quote. 0 when it is not a valid JSON string. */
static int string(const uint8_t *in, size_t len, size_t *pos, tf_cbor_writer_t *w, size_t *n)
{
    size_t i = *pos + 1, run = i;
    *n = 0;
    for (;;) {
        uint8_t c, u8[4];
        uint32_t cp, lo;
        size_t k;
        if (i >= len) {
            return 0;
        }
        c = in[i];
        if (c == '"' || c == '\\') {
            if (!tf__utf8_valid(in + run, i - run)) {
                return 0;
            }
            if (w != NULL) {
                (void)tf_cbor_put_raw(w, in + run, i - run);
            }
            *n += i - run;
        }
        if (c == '"') {
            *pos = i + 1;
            return 1;
        }
        if (c < 0x20u) {
            return 0; /* control characters must be escaped */
        }
        if (c != '\\') {
            i++;
            continue;
        }
        if (i + 1 >= len) {
            return 0;
        }
        c = in[i + 1];
        i += 2;
        switch (c) {
        case '"': case '\\': case '/': u8[0] = c; k = 1; break;
        case 'b': u8[0] = '\b'; k = 1; break;
        case 'f': u8[0] = '\f'; k = 1; break;
        case 'n': u8[0] = '\n'; k = 1; break;
        case 'r': u8[0] = '\r'; k = 1; break;
        case 't': u8[0] = '\t'; k = 1; break;
        case 'u':
            if (len - i < 4 || !hex4(in + i, &cp)) {
                return 0;
            }
            i += 4;
            if (cp >= 0xD800u && cp <= 0xDBFFu) {
                /* a high surrogate needs its low one */
                if (len - i < 6 || in[i] != '\\' || in[i + 1] != 'u' || !hex4(in + i + 2, &lo) || lo < 0xDC00u ||
                    lo > 0xDFFFu) {
                    return 0;
                }
                i += 6;
                cp = 0x10000u + ((cp - 0xD800u) << 10) + (lo - 0xDC00u);
            } else if (cp >= 0xDC00u && cp <= 0xDFFFu) {
                return 0; /* a lone low surrogate is not text */
            }
            if (cp < 0x80u) {
                u8[0] = (uint8_t)cp;
                k = 1;
            } else if (cp < 0x800u) {
                u8[0] = (uint8_t)(0xC0u | (cp >> 6));
                u8[1] = (uint8_t)(0x80u | (cp & 0x3Fu));
                k = 2;
            } else if (cp < 0x10000u) {
                u8[0] = (uint8_t)(0xE0u | (cp >> 12));
                u8[1] = (uint8_t)(0x80u | ((cp >> 6) & 0x3Fu));
                u8[2] = (uint8_t)(0x80u | (cp & 0x3Fu));
                k = 3;
            } else {
                u8[0] = (uint8_t)(0xF0u | (cp >> 18));
                u8[1] = (uint8_t)(0x80u | ((cp >> 12) & 0x3Fu));
                u8[2] = (uint8_t)(0x80u | ((cp >> 6) & 0x3Fu));
                u8[3] = (uint8_t)(0x80u | (cp & 0x3Fu));
                k = 4;
            }
            break;
        default: return 0;
        }
        if (w != NULL) {
            (void)tf_cbor_put_raw(w, u8, k);
        }
        *n += k;
        run = i;
    }
}

/* A string as a CBOR text; as a map key, a name of @p names becomes its integer key (*key, else 0xFF). */
static tf_err_t put_string(const uint8_t *in, size_t len, size_t *pos, tf_cbor_writer_t *w,
                           const char *const *names, uint8_t *key)
{
    size_t n, start = *pos, head = w->len, body, k;
    if (!string(in, len, pos, NULL, &n)) {
        return TF_ERR_MALFORMED_JSON;
    }
    (void)tf__put_head(w, 3, n);
    body = w->len;
    *pos = start;
    (void)string(in, len, pos, w, &n);
    if (key != NULL) {
        *key = 0xFFu;
    }
    for (k = 0; names != NULL && w->err == TF_OK && k < TF_NKEYS; k++) {
        if (names[k] != NULL && strlen(names[k]) == n && memcmp(names[k], w->buf + body, n) == 0) {
            w->len = head;
            (void)tf_cbor_put_uint(w, k);
            if (key != NULL) {
                *key = (uint8_t)k;
            }
            break;
        }
    }
    return TF_OK;
}

static int digit(uint8_t c) { return c >= '0' && c <= '9'; }

/* 10^0 .. 10^22, all exact doubles */
static const double pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A number at in[*pos]: an integer when it has no fraction and no exponent (as JSON readers decode it),
 * else a float64 that must come out exact. */
static tf_err_t number(const uint8_t *in, size_t len, size_t *pos, tf_cbor_writer_t *w)
{
    size_t i = *pos;
    uint64_t mant = 0;
    long exp10 = 0, e = 0;
    int neg = 0, is_float = 0, lost = 0, eneg = 0;
    if (in[i] == '-') {
        neg = 1;
        i++;
    }
    if (i >= len || !digit(in[i])) {
        return TF_ERR_MALFORMED_JSON;
    }
    if (in[i] == '0') {
        i++;
    } else {
        for (; i < len && digit(in[i]); i++) {
            unsigned d = (unsigned)(in[i] - '0');
            if (mant <= (UINT64_MAX - d) / 10u) {
                mant = mant * 10u + d;
            } else {
                lost |= 1; /* the integer does not fit: out of range, or a digit lost to a float */
                exp10++;
            }
        }
    }
    if (i < len && in[i] == '.') {
        is_float = 1;
        if (++i >= len || !digit(in[i])) {
            return TF_ERR_MALFORMED_JSON;
        }
        for (; i < len && digit(in[i]); i++) {
            unsigned d = (unsigned)(in[i] - '0');
            if (mant <= (UINT64_MAX - d) / 10u) {
                mant = mant * 10u + d;
                exp10--;
            } else {
                lost |= d != 0;
            }
        }
    }
    if (i < len && (in[i] == 'e' || in[i] == 'E')) {
        is_float = 1;
        i++;
        if (i < len && (in[i] == '+' || in[i] == '-')) {
            eneg = in[i] == '-';
            i++;
        }
        if (i >= len || !digit(in[i])) {
            return TF_ERR_MALFORMED_JSON;
        }
        for (; i < len && digit(in[i]); i++) {
            e = e < 100000 ? e * 10 + (long)(in[i] - '0') : e;
        }
    }
    *pos = i;
    if (!is_float) {
        if (lost) {
            return TF_ERR_OUT_OF_RANGE;
        }
        return neg && mant > 0 ? tf__put_head(w, 1, mant - 1u) : tf_cbor_put_uint(w, mant);
    }
    exp10 += eneg ? -e : e;
    if (mant == 0) {
        return tf_cbor_put_f64(w, neg ? -0.0 : 0.0);
    }
    {
        /* the decimal exponent of the leading digit: beyond a double's range is not a number JSON readers
         * accept (as the reference: malformed_json); far below it is a zero */
        long lead = exp10 - 1;
        uint64_t m;
        for (m = mant; m > 0; m /= 10u) {
            lead++;
        }
        if (lead > 308) {
            return TF_ERR_MALFORMED_JSON;
        }
        if (lead < -325) {
            return tf_cbor_put_f64(w, neg ? -0.0 : 0.0);
        }
    }
    /* exact: the digits fit a double's 53 bits and one multiplication or division by an exact power of ten
     * rounds once, correctly (IEEE 754) */
    if (lost || mant > (1ull << 53) || exp10 > 22 || exp10 < -22) {
        return TF_ERR_UNSUPPORTED_FORMAT;
    }
    {
        double d = (double)mant;
        d = exp10 >= 0 ? d * pow10[exp10] : d / pow10[-exp10];
        return tf_cbor_put_f64(w, neg ? -d : d);
    }
}

static int literal(const uint8_t *in, size_t len, size_t *pos, const char *word)
{
    size_t n = strlen(word);
    if (len - *pos < n || memcmp(in + *pos, word, n) != 0) {
        return 0;
    }
    *pos += n;
    return 1;
}

tf_err_t tf_json_to_cbor(tf_json_kind_t kind, const uint8_t *json, size_t len, uint8_t *out, size_t cap,
                         size_t *out_len, int *is_object)
{
    static const uint8_t brk = 0xFFu;
    frame_t st[TF_CFG_CBOR_MAX_DEPTH];
    const char *const *record;
    tf_cbor_writer_t w;
    size_t pos = 0;
    int depth = 0, done = 0;
    tf_err_t e;
    if (json == NULL || out_len == NULL || tf_cbor_writer_init(&w, out, cap) != TF_OK) {
        return TF_ERR_ARG;
    }
    record = kind == TF_JSON_EVENTS      ? event_names
             : kind == TF_JSON_TELEMETRY ? telemetry_names
             : kind == TF_JSON_STATE     ? state_names
                                         : ota_status_names;
    if (is_object != NULL) {
        *is_object = 0;
    }
    for (;;) {
        frame_t *f = depth > 0 ? &st[depth - 1] : NULL;
        uint8_t c;
        while (pos < len && blank(json[pos])) {
            pos++;
        }
        if (done) {
            if (pos != len) {
                return TF_ERR_MALFORMED_JSON; /* more after the value */
            }
            break;
        }
        if (pos >= len) {
            return TF_ERR_MALFORMED_JSON;
        }
        c = json[pos];
        if (f != NULL && (f->state == S_AFTER || (f->state == S_FIRST && c == (f->is_obj ? '}' : ']')))) {
            if (f->state == S_AFTER && c == ',') {
                pos++;
                f->state = f->is_obj ? S_NEXT : S_VALUE;
                continue;
            }
            if (c != (f->is_obj ? '}' : ']')) {
                return TF_ERR_MALFORMED_JSON;
            }
            pos++;
            (void)tf_cbor_put_raw(&w, &brk, 1);
            depth--;
            if (depth == 0) {
                done = 1;
            }
            continue;
        }
        if (f != NULL && f->is_obj && f->state != S_VALUE) {
            if (f->state == S_COLON) {
                if (c != ':') {
                    return TF_ERR_MALFORMED_JSON;
                }
                pos++;
                f->state = S_VALUE;
                continue;
            }
            if (c != '"') {
                return TF_ERR_MALFORMED_JSON; /* a key */
            }
            e = put_string(json, len, &pos, &w,
                           f->table == T_RECORD ? record : f->table == T_CAPS ? caps_names : NULL, &f->last_key);
            if (e != TF_OK) {
                return e;
            }
            f->state = S_COLON;
            continue;
        }
        /* a value */
        if (f != NULL) {
            f->state = S_AFTER;
        }
        if (c == '{' || c == '[') {
            frame_t *nf;
            if (depth >= TF_CFG_CBOR_MAX_DEPTH) {
                return TF_ERR_TOO_DEEP;
            }
            nf = &st[depth];
            nf->is_obj = c == '{';
            nf->state = S_FIRST;
            nf->last_key = 0xFFu;
            nf->table = T_NONE;
            if (nf->is_obj && (depth == 0 || (kind == TF_JSON_EVENTS && depth == 1 && !st[0].is_obj))) {
                nf->table = T_RECORD; /* an event, or an event of a batch */
            } else if (nf->is_obj && kind == TF_JSON_STATE && f != NULL && f->table == T_RECORD &&
                       f->last_key == CAPS_KEY) {
                nf->table = T_CAPS;
            }
            if (depth == 0 && is_object != NULL) {
                *is_object = nf->is_obj;
            }
            depth++;
            pos++;
            {
                uint8_t head = nf->is_obj ? 0xBFu : 0x9Fu; /* indefinite-length map / array */
                (void)tf_cbor_put_raw(&w, &head, 1);
            }
            continue;
        }
        if (c == '"') {
            e = put_string(json, len, &pos, &w, NULL, NULL);
        } else if (c == '-' || digit(c)) {
            e = number(json, len, &pos, &w);
        } else if (literal(json, len, &pos, "true")) {
            e = tf_cbor_put_bool(&w, 1);
        } else if (literal(json, len, &pos, "false")) {
            e = tf_cbor_put_bool(&w, 0);
        } else if (literal(json, len, &pos, "null")) {
            e = tf_cbor_put_null(&w);
        } else {
            return TF_ERR_MALFORMED_JSON;
        }
        if (e != TF_OK && e != TF_ERR_NO_SPACE) {
            return e;
        }
        if (f == NULL) {
            done = 1;
        }
    }
    *out_len = w.len;
    return w.err;
}

tf_err_t tf_json_events_begin(tf_event_decoder_t *d, const uint8_t *payload, size_t len, const tf_decode_opts_t *opts,
                              uint8_t *work, size_t work_cap, tf_wire_error_t *err)
{
    tf_decode_opts_t o;
    size_t n = 0;
    int is_object = 0;
    tf_err_t e = tf_events_begin(d, payload, len, opts, err);
    if (e != TF_ERR_UNSUPPORTED_FORMAT) {
        return e; /* CBOR, or empty / too large */
    }
    if (opts != NULL) {
        o = *opts;
    } else {
        (void)tf_decode_opts_default(&o);
    }
    e = tf_json_to_cbor(TF_JSON_EVENTS, payload, len, work, work_cap, &n, &is_object);
    if (e == TF_OK && is_object && len > o.limits.max_event_bytes) {
        e = TF_ERR_EVENT_TOO_LARGE; /* measured on the payload, as for CBOR */
    }
    if (e != TF_OK) {
        return tf__fail(err, e, NULL, NULL, -1, NULL);
    }
    return tf_events_begin(d, work, n, &o, err);
}
