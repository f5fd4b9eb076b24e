/* CBOR writer and reader (RFC 8949). No recursion: tf_cbor_skip keeps its own bounded stack. */
#include "tinyfleet/tf_cbor.h"

#include <float.h>
#include <string.h>

#include "tinyfleet/tf_config.h"
#include "tf_wire_internal.h"

/* ------------------------------------------------------------------------------------------- writer */

tf_err_t tf_cbor_writer_init(tf_cbor_writer_t *w, uint8_t *buf, size_t cap)
{
    if (w == NULL || (buf == NULL && cap != 0)) {
        return TF_ERR_ARG;
    }
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->err = TF_OK;
    return TF_OK;
}

static tf_err_t put(tf_cbor_writer_t *w, const uint8_t *b, size_t n)
{
    if (w->err == TF_OK && n > w->cap - w->len) {
        w->err = TF_ERR_NO_SPACE;
    }
    if (w->err == TF_OK && n > 0) {
        memcpy(w->buf + w->len, b, n);
    }
    w->len += n;
    return w->err;
}

static tf_err_t put_head(tf_cbor_writer_t *w, uint8_t major, uint64_t v)
{
    /* shortest head: the value in the initial byte below 24, else 1, 2, 4 or 8 big-endian bytes */
    uint8_t h[9];
    uint8_t ai = v < 24u ? (uint8_t)v : v <= 0xFFu ? 24u : v <= 0xFFFFu ? 25u : v <= 0xFFFFFFFFu ? 26u : 27u;
    size_t n = ai < 24u ? 0u : (size_t)1 << (ai - 24u), i;
    h[0] = (uint8_t)((major << 5) | ai);
    for (i = n; i > 0; i--) {
        h[i] = (uint8_t)v;
        v >>= 8;
    }
    return put(w, h, n + 1);
}

tf_err_t tf_cbor_put_uint(tf_cbor_writer_t *w, uint64_t v) { return put_head(w, 0, v); }

tf_err_t tf__put_head(tf_cbor_writer_t *w, uint8_t major, uint64_t v) { return put_head(w, major, v); }

tf_err_t tf__put_kv(tf_cbor_writer_t *w, unsigned key, uint64_t v)
{
    put_head(w, 0, key);
    return put_head(w, 0, v);
}

tf_err_t tf_cbor_put_int(tf_cbor_writer_t *w, int64_t v)
{
    if (v >= 0) {
        return put_head(w, 0, (uint64_t)v);
    }
    return put_head(w, 1, (uint64_t)(-(v + 1)));
}

tf_err_t tf_cbor_put_text(tf_cbor_writer_t *w, const char *s, size_t len)
{
    put_head(w, 3, len);
    return put(w, (const uint8_t *)s, len);
}

tf_err_t tf_cbor_put_bytes(tf_cbor_writer_t *w, const uint8_t *b, size_t len)
{
    put_head(w, 2, len);
    return put(w, b, len);
}

tf_err_t tf_cbor_put_array(tf_cbor_writer_t *w, size_t n) { return put_head(w, 4, n); }
tf_err_t tf_cbor_put_map(tf_cbor_writer_t *w, size_t n) { return put_head(w, 5, n); }

tf_err_t tf_cbor_put_bool(tf_cbor_writer_t *w, int v)
{
    uint8_t b = v ? 0xF5u : 0xF4u;
    return put(w, &b, 1);
}

tf_err_t tf_cbor_put_null(tf_cbor_writer_t *w)
{
    uint8_t b = 0xF6u;
    return put(w, &b, 1);
}

tf_err_t tf_cbor_put_f32(tf_cbor_writer_t *w, float v)
{
    uint32_t bits;
    uint8_t h[5];
    memcpy(&bits, &v, sizeof bits);
    h[0] = 0xFAu;
    h[1] = (uint8_t)(bits >> 24);
    h[2] = (uint8_t)(bits >> 16);
    h[3] = (uint8_t)(bits >> 8);
    h[4] = (uint8_t)bits;
    return put(w, h, sizeof h);
}

tf_err_t tf_cbor_put_f64(tf_cbor_writer_t *w, double v)
{
    uint64_t bits;
    uint8_t h[9];
    int i;
    memcpy(&bits, &v, sizeof bits);
    h[0] = 0xFBu;
    for (i = 0; i < 8; i++) {
        h[1 + i] = (uint8_t)(bits >> (56 - 8 * i));
    }
    return put(w, h, sizeof h);
}

tf_err_t tf_cbor_put_float(tf_cbor_writer_t *w, double v)
{
    /* (float)v is undefined for values outside float's range, hence the bounds first */
    if (v == v && v <= (double)FLT_MAX && v >= -(double)FLT_MAX && (double)(float)v == v) {
        return tf_cbor_put_f32(w, (float)v);
    }
    return tf_cbor_put_f64(w, v);
}

tf_err_t tf_cbor_put_real(tf_cbor_writer_t *w, tf_real_t v)
{
#if TF_CFG_REAL_FLOAT
    return tf_cbor_put_f32(w, v);
#else
    return tf_cbor_put_float(w, v);
#endif
}

tf_err_t tf_cbor_put_raw(tf_cbor_writer_t *w, const uint8_t *b, size_t len) { return put(w, b, len); }

/* ------------------------------------------------------------------------------------------- reader */

tf_err_t tf_cbor_reader_init(tf_cbor_reader_t *r, const uint8_t *buf, size_t len)
{
    if (r == NULL || (buf == NULL && len != 0)) {
        return TF_ERR_ARG;
    }
    r->buf = buf;
    r->len = len;
    r->pos = 0;
    return TF_OK;
}

static double half_to_double(uint16_t h)
{
    /* IEEE 754 binary16 -> binary64, exactly (RFC 8949 Appendix D, without libm) */
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t mant = h & 0x3FFu;
    uint64_t bits;
    double d;
    uint64_t sign = (uint64_t)(h >> 15) << 63;
    if (exp == 0) {
        /* subnormal: mant * 2^-24 */
        d = (double)mant / 16777216.0;
        return (h >> 15) ? -d : d;
    }
    if (exp == 31) {
        bits = sign | 0x7FF0000000000000ull | ((uint64_t)mant << 42);
    } else {
        bits = sign | ((uint64_t)(exp - 15 + 1023) << 52) | ((uint64_t)mant << 42);
    }
    memcpy(&d, &bits, sizeof d);
    return d;
}

tf_err_t tf_cbor_read(tf_cbor_reader_t *r, tf_cbor_item_t *it)
{
    uint8_t ib, major, ai;
    uint64_t v = 0;
    size_t n = 0, i;
    if (r->pos >= r->len) {
        return TF_ERR_END;
    }
    it->offset = r->pos;
    ib = r->buf[r->pos++];
    major = (uint8_t)(ib >> 5);
    ai = (uint8_t)(ib & 0x1Fu);
    it->indefinite = 0;
    it->float_bits = 0;
    it->shortest = 1;
    it->data = NULL;
    it->type = (tf_cbor_type_t)major; /* majors 0..6 are the first seven types */
    if (ai < 24u) {
        v = ai;
    } else if (ai <= 27u) {
        n = (size_t)1 << (ai - 24u);
        if (r->len - r->pos < n) {
            return TF_ERR_MALFORMED_CBOR;
        }
        for (i = 0; i < n; i++) {
            v = (v << 8) | r->buf[r->pos + i];
        }
        r->pos += n;
        /* shortest: the value needs this head (1 byte: >= 24; 2, 4, 8 bytes: more than half of them) */
        it->shortest = (uint8_t)(major == 7u || (n == 1 ? v >= 24u : (v >> (4u * n)) != 0));
    } else if (ai == 31u && major >= 2u && major != 6u) {
        if (major == 7u) {
            it->type = TF_CBOR_BREAK;
            return TF_OK;
        }
        it->indefinite = 1;
    } else {
        return TF_ERR_MALFORMED_CBOR; /* 28..30 are reserved; no indefinite integers or tags */
    }
    it->val = v;
    if (major == 2u || major == 3u) {
        if (!it->indefinite) {
            if (v > (uint64_t)(r->len - r->pos)) {
                return TF_ERR_MALFORMED_CBOR;
            }
            it->data = r->buf + r->pos;
            r->pos += (size_t)v;
        }
    } else if (major == 7u) {
        if (n > 1u) {
            it->type = TF_CBOR_FLOAT;
            it->float_bits = (uint8_t)(8u * n);
        } else if (n == 1u && v < 32u) {
            return TF_ERR_MALFORMED_CBOR; /* a one-byte simple value below 32 is not well-formed */
        } else {
            it->type = v >= 20u && v <= 23u ? (tf_cbor_type_t)(TF_CBOR_FALSE + (v - 20u)) : TF_CBOR_SIMPLE;
        }
    }
    return TF_OK;
}

double tf_cbor_float(const tf_cbor_item_t *it)
{
    double d = 0.0;
    if (it->type != TF_CBOR_FLOAT) {
        return 0.0;
    }
    if (it->float_bits == 16) {
        return half_to_double((uint16_t)it->val);
    }
    if (it->float_bits == 32) {
        uint32_t b32 = (uint32_t)it->val;
        float f32;
        memcpy(&f32, &b32, sizeof f32);
        return (double)f32;
    }
    memcpy(&d, &it->val, sizeof d);
    return d;
}

int tf__utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k, need;
        uint32_t cp;
        if (c < 0x80u) {
            i++;
            continue;
        }
        if (c >= 0xC2u && c <= 0xDFu) {
            need = 1;
            cp = c & 0x1Fu;
        } else if (c >= 0xE0u && c <= 0xEFu) {
            need = 2;
            cp = c & 0x0Fu;
        } else if (c >= 0xF0u && c <= 0xF4u) {
            need = 3;
            cp = c & 0x07u;
        } else {
            return 0;
        }
        if (n - i <= need) {
            return 0;
        }
        for (k = 1; k <= need; k++) {
            if ((s[i + k] & 0xC0u) != 0x80u) {
                return 0;
            }
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        if ((need == 2 && (cp < 0x800u || (cp >= 0xD800u && cp <= 0xDFFFu))) ||
            (need == 3 && (cp < 0x10000u || cp > 0x10FFFFu))) {
            return 0;
        }
        i += need + 1;
    }
    return 1;
}

#define FRAME_INDEF UINT64_MAX

tf_err_t tf_cbor_skip(tf_cbor_reader_t *r)
{
    /* remaining items per open container (FRAME_INDEF: until a break); string frames hold chunk type */
    uint64_t remaining[TF_CFG_CBOR_MAX_DEPTH];
    int8_t chunk_type[TF_CFG_CBOR_MAX_DEPTH]; /* -1 container, else the tf_cbor_type_t of the chunks */
    int depth = 0;
    tf_cbor_item_t it;
    for (;;) {
        int complete = 0;
        tf_err_t e = tf_cbor_read(r, &it);
        if (e != TF_OK) {
            return TF_ERR_MALFORMED_CBOR;
        }
        if (depth > 0 && chunk_type[depth - 1] >= 0) {
            /* inside an indefinite string: definite chunks of the same type, then a break */
            if (it.type == TF_CBOR_BREAK) {
                depth--;
                complete = 1;
            } else if ((int)it.type != chunk_type[depth - 1] || it.indefinite) {
                return TF_ERR_MALFORMED_CBOR;
            } else if (it.type == TF_CBOR_TEXT && !tf__utf8_valid(it.data, (size_t)it.val)) {
                return TF_ERR_MALFORMED_CBOR;
            }
        } else {
            switch (it.type) {
            case TF_CBOR_BREAK:
                if (depth == 0 || remaining[depth - 1] != FRAME_INDEF) {
                    return TF_ERR_MALFORMED_CBOR;
                }
                depth--;
                complete = 1;
                break;
            case TF_CBOR_TEXT:
            case TF_CBOR_BYTES:
                if (it.indefinite) {
                    if (depth >= TF_CFG_CBOR_MAX_DEPTH) {
                        return TF_ERR_MALFORMED_CBOR;
                    }
                    chunk_type[depth] = (int8_t)it.type;
                    remaining[depth] = FRAME_INDEF;
                    depth++;
                } else if (it.type == TF_CBOR_TEXT && !tf__utf8_valid(it.data, (size_t)it.val)) {
                    return TF_ERR_MALFORMED_CBOR;
                } else {
                    complete = 1;
                }
                break;
            case TF_CBOR_ARRAY:
            case TF_CBOR_MAP: {
                uint64_t n = it.val;
                if (!it.indefinite) {
                    /* every item takes at least one byte: a longer count cannot be satisfied */
                    if (n > (uint64_t)(r->len - r->pos) ||
                        (it.type == TF_CBOR_MAP && n > (uint64_t)(r->len - r->pos) / 2u)) {
                        return TF_ERR_MALFORMED_CBOR;
                    }
                    n = it.type == TF_CBOR_MAP ? 2u * n : n;
                    if (n == 0) {
                        complete = 1;
                        break;
                    }
                } else {
                    n = FRAME_INDEF;
                }
                if (depth >= TF_CFG_CBOR_MAX_DEPTH) {
                    return TF_ERR_MALFORMED_CBOR;
                }
                chunk_type[depth] = -1;
                remaining[depth] = n;
                depth++;
                break;
            }
            case TF_CBOR_TAG:
                break; /* the tagged item follows */
            default:
                complete = 1;
                break;
            }
        }
        while (complete) {
            if (depth == 0) {
                return TF_OK;
            }
            if (remaining[depth - 1] == FRAME_INDEF) {
                break;
            }
            if (--remaining[depth - 1] == 0) {
                depth--;
            } else {
                break;
            }
        }
    }
}

tf_err_t tf_cbor_check(const uint8_t *buf, size_t len)
{
    tf_cbor_reader_t r;
    tf_err_t e;
    if (tf_cbor_reader_init(&r, buf, len) != TF_OK || len == 0) {
        return TF_ERR_MALFORMED_CBOR;
    }
    e = tf_cbor_skip(&r);
    if (e != TF_OK) {
        return e;
    }
    return r.pos == len ? TF_OK : TF_ERR_TRAILING_BYTES;
}
