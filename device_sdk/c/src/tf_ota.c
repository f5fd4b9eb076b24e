/* OTA: COSE_Sign1 manifest verification (docs/ota.md, same order and reasons as the Python verifier) and the
 * download / verify / activate state machine. Deterministic CBOR is checked by walking the bytes: shortest
 * heads, definite lengths, map keys strictly ascending (which also refuses duplicates). */
#include "tinyfleet/tf_ota.h"

#include <string.h>

#include "tinyfleet/tf_topic.h"
#include "tf_wire_internal.h"

#define COSE_SIGN1_TAG 18u
#define MAX_OTA_TEXT 64u
#define MAX_LABELS 256u
#define MAX_COMPAT_OPS 128u

/* ------------------------------------------------------------------------------ deterministic walk */

typedef struct {
    uint64_t remaining;
    size_t child_start;
    size_t prev_key_start;
    size_t prev_key_end;
    uint64_t index;
    uint8_t is_map;
} det_frame_t;

#define NO_POS ((size_t)-1)

static int key_after(const uint8_t *buf, size_t a0, size_t a1, size_t b0, size_t b1)
{
    /* canonical order (RFC 7049 §3.9 as cbor2 applies it): shorter encoding first, then bytewise */
    size_t la = a1 - a0, lb = b1 - b0;
    if (la != lb) {
        return lb > la;
    }
    return memcmp(buf + b0, buf + a0, la) > 0;
}

/* One whole item at buf[0..len): TF_OK, or TF_ERR_OTA_MALFORMED (not well-formed, indefinite length,
 * trailing bytes). *nondet is set when it is not in deterministic encoding. */
static tf_err_t det_walk(const uint8_t *buf, size_t len, int *nondet)
{
    det_frame_t st[TF_CFG_CBOR_MAX_DEPTH];
    int depth = 0;
    tf_cbor_reader_t r;
    tf_cbor_item_t it;
    *nondet = 0;
    if (buf == NULL || len == 0) {
        return TF_ERR_OTA_MALFORMED;
    }
    if (tf_cbor_check(buf, len) != TF_OK) {
        return TF_ERR_OTA_MALFORMED; /* also trailing bytes */
    }
    r.buf = buf;
    r.len = len;
    r.pos = 0;
    for (;;) {
        int complete = 0;
        if (depth > 0 && st[depth - 1].child_start == NO_POS) {
            st[depth - 1].child_start = r.pos;
        }
        if (tf_cbor_read(&r, &it) != TF_OK || it.indefinite || it.type == TF_CBOR_BREAK) {
            return TF_ERR_OTA_MALFORMED;
        }
        if (!it.shortest) {
            *nondet = 1;
        }
        if ((it.type == TF_CBOR_ARRAY || it.type == TF_CBOR_MAP) && it.val > 0) {
            if (depth >= TF_CFG_CBOR_MAX_DEPTH) {
                return TF_ERR_OTA_MALFORMED;
            }
            st[depth].remaining = it.type == TF_CBOR_MAP ? 2u * it.val : it.val;
            st[depth].is_map = it.type == TF_CBOR_MAP;
            st[depth].child_start = NO_POS;
            st[depth].prev_key_start = NO_POS;
            st[depth].prev_key_end = NO_POS;
            st[depth].index = 0;
            depth++;
        } else if (it.type != TF_CBOR_TAG) {
            complete = 1;
        }
        while (complete) {
            det_frame_t *f;
            if (depth == 0) {
                return TF_OK;
            }
            f = &st[depth - 1];
            if (f->is_map && (f->index % 2u) == 0) {
                if (f->prev_key_start != NO_POS &&
                    !key_after(buf, f->prev_key_start, f->prev_key_end, f->child_start, r.pos)) {
                    *nondet = 1; /* unsorted or duplicate keys */
                }
                f->prev_key_start = f->child_start;
                f->prev_key_end = r.pos;
            }
            f->index++;
            f->child_start = NO_POS;
            if (--f->remaining == 0) {
                depth--;
            } else {
                complete = 0;
            }
        }
    }
}

/* ------------------------------------------------------------------------------------ field checks */

static int ota_text_ok(const tf_cbor_item_t *it, size_t max_chars)
{
    size_t i, n = (size_t)it->val;
    if (it->type != TF_CBOR_TEXT || n == 0 || tf__utf8_chars((const char *)it->data, n) > max_chars) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (it->data[i] < 0x20u || it->data[i] == 0x7Fu) {
            return 0;
        }
    }
    return 1;
}

static tf_str_t item_str(const tf_cbor_item_t *it)
{
    tf_str_t s;
    s.ptr = (const char *)it->data;
    s.len = (size_t)it->val;
    return s;
}

static int get_u32(const tf_cbor_item_t *it, uint32_t *out)
{
    if (it->type != TF_CBOR_UINT || it->val > 0xFFFFFFFFu) {
        return 0;
    }
    *out = (uint32_t)it->val;
    return 1;
}

static int text_or_u32(const tf_cbor_item_t *it, tf_str_t *s, uint32_t *num, int *is_num)
{
    if (it->type == TF_CBOR_UINT || it->type == TF_CBOR_NINT) {
        *is_num = 1;
        return get_u32(it, num);
    }
    *is_num = 0;
    if (!ota_text_ok(it, MAX_OTA_TEXT)) {
        return 0;
    }
    *s = item_str(it);
    return 1;
}

static int skip_from(const uint8_t *buf, size_t len, size_t *pos)
{
    tf_cbor_reader_t r;
    r.buf = buf;
    r.len = len;
    r.pos = *pos;
    if (tf_cbor_skip(&r) != TF_OK) {
        return 0;
    }
    *pos = r.pos;
    return 1;
}

static tf_err_t read_at(const uint8_t *buf, size_t len, size_t pos, tf_cbor_item_t *it, size_t *after)
{
    tf_cbor_reader_t r;
    r.buf = buf;
    r.len = len;
    r.pos = pos;
    if (tf_cbor_read(&r, it) != TF_OK) {
        return TF_ERR_OTA_MALFORMED;
    }
    if (after != NULL) {
        *after = r.pos;
    }
    return TF_OK;
}

static tf_err_t parse_compat(const uint8_t *p, size_t n, size_t pos, tf_ota_manifest_t *m)
{
    tf_cbor_item_t it, k, v;
    uint64_t i, j;
    size_t at;
    if (read_at(p, n, pos, &it, &at) != TF_OK || it.type != TF_CBOR_MAP) {
        return TF_ERR_OTA_MALFORMED;
    }
    for (i = 0; i < it.val; i++) {
        size_t vpos, vafter;
        if (read_at(p, n, at, &k, NULL) != TF_OK || k.type != TF_CBOR_UINT || k.val > 4u || !skip_from(p, n, &at)) {
            return TF_ERR_OTA_MALFORMED;
        }
        vpos = at;
        if (read_at(p, n, vpos, &v, &vafter) != TF_OK || !skip_from(p, n, &at)) {
            return TF_ERR_OTA_MALFORMED;
        }
        switch (k.val) {
        case 0:
            if (!get_u32(&v, &m->need_flash)) {
                return TF_ERR_OTA_MALFORMED;
            }
            m->compat_has |= TF_DEV_FLASH;
            break;
        case 1:
            if (!get_u32(&v, &m->need_ram)) {
                return TF_ERR_OTA_MALFORMED;
            }
            m->compat_has |= TF_DEV_RAM;
            break;
        case 2:
            if (!get_u32(&v, &m->need_arena)) {
                return TF_ERR_OTA_MALFORMED;
            }
            m->compat_has |= TF_DEV_ARENA;
            break;
        case 3: {
            size_t op = vafter;
            if (v.type != TF_CBOR_ARRAY || v.val > MAX_COMPAT_OPS) {
                return TF_ERR_OTA_MALFORMED;
            }
            for (j = 0; j < v.val; j++) {
                tf_cbor_item_t o;
                if (read_at(p, n, op, &o, NULL) != TF_OK || !skip_from(p, n, &op)) {
                    return TF_ERR_OTA_MALFORMED;
                }
                if ((o.type == TF_CBOR_UINT || o.type == TF_CBOR_NINT)
                        ? (o.type != TF_CBOR_UINT || o.val > 0xFFFFu)
                        : !ota_text_ok(&o, MAX_OTA_TEXT)) {
                    return TF_ERR_OTA_MALFORMED;
                }
            }
            m->n_ops = (size_t)v.val;
            if (v.val > 0) {
                m->compat_has |= TF_DEV_OPS;
            }
            break;
        }
        default:
            if (!ota_text_ok(&v, MAX_OTA_TEXT)) {
                return TF_ERR_OTA_MALFORMED;
            }
            m->need_class = item_str(&v);
            m->compat_has |= TF_DEV_CLASS;
            break;
        }
    }
    return TF_OK;
}

static tf_err_t decode_payload(const uint8_t *p, size_t n, tf_ota_manifest_t *m, size_t *ops_pos)
{
    tf_cbor_item_t it, k, v;
    size_t pos[14];
    uint32_t found = 0;
    int nondet = 0, unknown = 0, is_num;
    uint64_t i;
    size_t at;
    tf_err_t e = det_walk(p, n, &nondet);
    memset(m, 0, sizeof *m);
    *ops_pos = NO_POS;
    if (e != TF_OK) {
        return e;
    }
    if (read_at(p, n, 0, &it, &at) != TF_OK || it.type != TF_CBOR_MAP) {
        return TF_ERR_OTA_MALFORMED;
    }
    for (i = 0; i < it.val; i++) {
        if (read_at(p, n, at, &k, NULL) != TF_OK || !skip_from(p, n, &at)) {
            return TF_ERR_OTA_MALFORMED;
        }
        if (k.type == TF_CBOR_UINT && k.val < 14u) {
            if (found & (1u << k.val)) {
                return TF_ERR_OTA_MALFORMED; /* duplicate key: refused when the CBOR is loaded */
            }
            found |= 1u << k.val;
            pos[k.val] = at;
        } else {
            unknown = 1;
        }
        if (!skip_from(p, n, &at)) {
            return TF_ERR_OTA_MALFORMED;
        }
    }
    /* the version decides what the rest means: judged before anything else */
    if (!(found & 1u) || read_at(p, n, pos[0], &v, NULL) != TF_OK) {
        return TF_ERR_OTA_MALFORMED;
    }
    if (v.type != TF_CBOR_UINT && v.type != TF_CBOR_NINT) {
        return TF_ERR_OTA_MALFORMED;
    }
    if (v.type != TF_CBOR_UINT || v.val != 1u) {
        return TF_ERR_OTA_UNSUPPORTED_VERSION;
    }
    if (unknown || (found & 0x3FFu) != 0x3FFu) {
        return TF_ERR_OTA_MALFORMED;
    }
#define FIELD(key) (read_at(p, n, pos[key], &v, &at) == TF_OK)
    if (!FIELD(4) || v.type != TF_CBOR_UINT || v.val > 1u) {
        return TF_ERR_OTA_MALFORMED;
    }
    m->component = (int)v.val;
    if (!FIELD(8) || v.type != TF_CBOR_BYTES || v.val != 32u) {
        return TF_ERR_OTA_MALFORMED;
    }
    m->sha256 = v.data;
    if (!FIELD(2) || !get_u32(&v, &m->iat) || !FIELD(3) || !get_u32(&v, &m->exp) || m->exp <= m->iat) {
        return TF_ERR_OTA_MALFORMED;
    }
    if (found & (1u << 11)) {
        size_t lp;
        if (!FIELD(11) || v.type != TF_CBOR_ARRAY || v.val > MAX_LABELS) {
            return TF_ERR_OTA_MALFORMED;
        }
        lp = at;
        for (i = 0; i < v.val; i++) {
            tf_cbor_item_t l;
            if (read_at(p, n, lp, &l, &lp) != TF_OK || !ota_text_ok(&l, MAX_OTA_TEXT)) {
                return TF_ERR_OTA_MALFORMED;
            }
        }
        m->n_labels = (size_t)v.val;
    }
    if (!FIELD(1) || !get_u32(&v, &m->seq)) {
        return TF_ERR_OTA_MALFORMED;
    }
    if (!FIELD(5) || !text_or_u32(&v, &m->id, &m->id_num, &m->id_is_num)) {
        return TF_ERR_OTA_MALFORMED;
    }
    if (!FIELD(6) || !text_or_u32(&v, &m->ver, &m->ver_num, &m->ver_is_num)) {
        return TF_ERR_OTA_MALFORMED;
    }
    if (!FIELD(7) || !get_u32(&v, &m->size) || m->size == 0) {
        return TF_ERR_OTA_MALFORMED;
    }
    if (!FIELD(9) || !ota_text_ok(&v, TF_CFG_MAX_URI)) {
        return TF_ERR_OTA_MALFORMED;
    }
    m->uri = item_str(&v);
    if (found & (1u << 10)) {
        if (parse_compat(p, n, pos[10], m) != TF_OK) {
            return TF_ERR_OTA_MALFORMED;
        }
        *ops_pos = pos[10];
    }
    if (found & (1u << 12)) {
        tf_str_t s;
        uint32_t num;
        if (!FIELD(12) || !text_or_u32(&v, &s, &num, &is_num)) {
            return TF_ERR_OTA_MALFORMED;
        }
        m->has_rollout = 1;
    }
    if (found & (1u << 13)) {
        if (!FIELD(13) || !ota_text_ok(&v, MAX_OTA_TEXT)) {
            return TF_ERR_OTA_MALFORMED;
        }
        m->dev = item_str(&v);
        m->has_dev = 1;
    }
#undef FIELD
    /* last, so that a wrong field is named as such rather than as an encoding problem */
    return nondet ? TF_ERR_OTA_MALFORMED : TF_OK;
}

static int str_eq(tf_str_t a, const uint8_t *b, size_t blen)
{
    return a.len == blen && (blen == 0 || memcmp(a.ptr, b, blen) == 0);
}

/* every op of compat.ops among the device's (builtin codes with codes, custom names with names) */
static int ops_supported(const uint8_t *p, size_t n, size_t compat_pos, const tf_ota_device_t *dev)
{
    tf_cbor_item_t it, k, v;
    size_t at;
    uint64_t i, j;
    (void)read_at(p, n, compat_pos, &it, &at);
    for (i = 0; i < it.val; i++) {
        size_t op;
        (void)read_at(p, n, at, &k, NULL);
        (void)skip_from(p, n, &at);
        (void)read_at(p, n, at, &v, &op);
        (void)skip_from(p, n, &at);
        if (k.val != 3u) {
            continue;
        }
        for (j = 0; j < v.val; j++) {
            tf_cbor_item_t o;
            size_t d;
            int have = 0;
            (void)read_at(p, n, op, &o, &op);
            if (o.type == TF_CBOR_UINT) {
                for (d = 0; d < dev->n_op_codes && !have; d++) {
                    have = dev->op_codes[d] == o.val;
                }
            } else {
                for (d = 0; d < dev->n_custom_ops && !have; d++) {
                    have = str_eq(dev->custom_ops[d], o.data, (size_t)o.val);
                }
            }
            if (!have) {
                return 0;
            }
        }
    }
    return 1;
}

tf_err_t tf_ota_trust_add(tf_ota_trust_t *t, const tf_port_t *port, const uint8_t public_key[32])
{
    tf_sha256_ctx_t ctx;
    uint8_t digest[32];
    if (t == NULL || port == NULL || public_key == NULL || port->sha256_init == NULL) {
        return TF_ERR_ARG;
    }
    if (t->count >= TF_CFG_MAX_TRUSTED_KEYS) {
        return TF_ERR_NO_SPACE;
    }
    if (port->sha256_init(port->user, &ctx) != TF_OK || port->sha256_update(port->user, &ctx, public_key, 32) != TF_OK ||
        port->sha256_final(port->user, &ctx, digest) != TF_OK) {
        return TF_ERR_PORT;
    }
    memcpy(t->keys[t->count].public_key, public_key, 32);
    memcpy(t->keys[t->count].kid, digest, 8);
    t->count++;
    return TF_OK;
}

tf_err_t tf_ota_verify_manifest(const tf_port_t *port, const uint8_t *data, size_t len, const tf_ota_trust_t *trust,
                                uint32_t last_seq, int has_now, uint32_t now, const tf_ota_device_t *dev,
                                uint8_t *work, size_t work_cap, tf_ota_manifest_t *out)
{
    tf_cbor_item_t it, prot, unprot, payload, sig, k, v;
    size_t at, hat, i;
    int nondet = 0, have_alg = 0, key_known = 0, verified = 0;
    const uint8_t *kid = NULL;
    size_t kid_len = 0, ops_pos;
    tf_cbor_writer_t w;
    tf_err_t e;
    if (port == NULL || trust == NULL || dev == NULL || out == NULL || work == NULL || port->ed25519_verify == NULL ||
        (data == NULL && len != 0)) {
        return TF_ERR_ARG;
    }
    memset(out, 0, sizeof *out);
    /* 1. size, well-formed, one item, definite lengths */
    if (len == 0 || len > TF_CFG_MAX_MANIFEST_BYTES) {
        return TF_ERR_OTA_MALFORMED;
    }
    if ((e = det_walk(data, len, &nondet)) != TF_OK) {
        return e;
    }
    /* 2. COSE_Sign1 structure */
    if (read_at(data, len, 0, &it, &at) != TF_OK || it.type != TF_CBOR_TAG || it.val != COSE_SIGN1_TAG) {
        return TF_ERR_OTA_MALFORMED;
    }
    if (read_at(data, len, at, &it, &at) != TF_OK || it.type != TF_CBOR_ARRAY || it.val != 4u) {
        return TF_ERR_OTA_MALFORMED;
    }
    if (read_at(data, len, at, &prot, &at) != TF_OK || prot.type != TF_CBOR_BYTES) {
        return TF_ERR_OTA_MALFORMED;
    }
    if (read_at(data, len, at, &unprot, &at) != TF_OK || unprot.type != TF_CBOR_MAP || unprot.val != 0u) {
        return TF_ERR_OTA_MALFORMED; /* alg or kid outside the signature could be swapped by anyone */
    }
    if (read_at(data, len, at, &payload, &at) != TF_OK || payload.type != TF_CBOR_BYTES) {
        return TF_ERR_OTA_MALFORMED; /* detached payloads are not supported */
    }
    if (read_at(data, len, at, &sig, &at) != TF_OK || sig.type != TF_CBOR_BYTES || sig.val != 64u) {
        return TF_ERR_OTA_MALFORMED;
    }
    if (nondet) {
        return TF_ERR_OTA_MALFORMED;
    }
    /* 3. protected header: {1: -8, 4: kid} and nothing else */
    if (det_walk(prot.data, (size_t)prot.val, &nondet) != TF_OK ||
        read_at(prot.data, (size_t)prot.val, 0, &it, &hat) != TF_OK || it.type != TF_CBOR_MAP || nondet) {
        return TF_ERR_OTA_MALFORMED;
    }
    for (i = 0; i < it.val; i++) {
        if (read_at(prot.data, (size_t)prot.val, hat, &k, &hat) != TF_OK || k.type != TF_CBOR_UINT ||
            (k.val != 1u && k.val != 4u)) {
            return TF_ERR_OTA_MALFORMED;
        }
        if (read_at(prot.data, (size_t)prot.val, hat, &v, NULL) != TF_OK || !skip_from(prot.data, (size_t)prot.val, &hat)) {
            return TF_ERR_OTA_MALFORMED;
        }
        if (k.val == 1u) {
            if (v.type != TF_CBOR_UINT && v.type != TF_CBOR_NINT && v.type != TF_CBOR_TEXT) {
                return TF_ERR_OTA_MALFORMED;
            }
            have_alg = (v.type == TF_CBOR_NINT && v.val == 7u) ? 1 : 2; /* -8 = EdDSA */
        } else {
            kid = v.type == TF_CBOR_BYTES ? v.data : NULL;
            kid_len = v.type == TF_CBOR_BYTES ? (size_t)v.val : 0;
            if (kid == NULL) {
                kid_len = 99; /* not a byte string */
            }
        }
    }
    if (have_alg == 0) {
        return TF_ERR_OTA_MALFORMED;
    }
    if (have_alg == 2) {
        return TF_ERR_OTA_UNSUPPORTED_ALGORITHM;
    }
    if (kid_len < 1 || kid_len > 32) {
        return TF_ERR_OTA_MALFORMED;
    }
    /* 4. key id; 5. signature over ["Signature1", protected, h'', payload] */
    (void)tf_cbor_writer_init(&w, work, work_cap);
    tf_cbor_put_array(&w, 4);
    tf_cbor_put_text(&w, "Signature1", 10);
    tf_cbor_put_bytes(&w, prot.data, (size_t)prot.val);
    tf_cbor_put_bytes(&w, NULL, 0);
    tf_cbor_put_bytes(&w, payload.data, (size_t)payload.val);
    for (i = 0; i < trust->count; i++) {
        if (kid_len != 8 || memcmp(trust->keys[i].kid, kid, 8) != 0) {
            continue;
        }
        key_known = 1;
        if (w.err != TF_OK) {
            return TF_ERR_NO_SPACE;
        }
        if (port->ed25519_verify(port->user, trust->keys[i].public_key, work, w.len, sig.data) == TF_OK) {
            verified = 1;
            break;
        }
    }
    if (!key_known) {
        return TF_ERR_OTA_UNKNOWN_KEY;
    }
    if (!verified) {
        return TF_ERR_OTA_BAD_SIGNATURE;
    }
    /* 6. only now is the payload believed */
    if ((e = decode_payload(payload.data, (size_t)payload.val, out, &ops_pos)) != TF_OK) {
        return e;
    }
    /* 7..10 */
    if (out->has_dev && (dev->has & TF_DEV_ID) &&
        !str_eq(out->dev, (const uint8_t *)dev->device_id.ptr, dev->device_id.len)) {
        return TF_ERR_OTA_WRONG_DEVICE;
    }
    if (out->seq <= last_seq) {
        return TF_ERR_OTA_REPLAYED_SEQUENCE;
    }
    if (has_now && now > out->exp) {
        return TF_ERR_OTA_EXPIRED;
    }
    if (((out->compat_has & TF_DEV_FLASH) && (dev->has & TF_DEV_FLASH) && dev->flash < out->need_flash) ||
        ((out->compat_has & TF_DEV_RAM) && (dev->has & TF_DEV_RAM) && dev->ram < out->need_ram) ||
        ((out->compat_has & TF_DEV_ARENA) && (dev->has & TF_DEV_ARENA) && dev->arena < out->need_arena) ||
        ((out->compat_has & TF_DEV_OPS) && (dev->has & TF_DEV_OPS) &&
         !ops_supported(payload.data, (size_t)payload.val, ops_pos, dev)) ||
        ((out->compat_has & TF_DEV_CLASS) && (dev->has & TF_DEV_CLASS) &&
         !str_eq(out->need_class, (const uint8_t *)dev->device_class.ptr, dev->device_class.len))) {
        return TF_ERR_OTA_INCOMPATIBLE;
    }
    return TF_OK;
}

/* -------------------------------------------------------------------------------------- artifact */

tf_err_t tf_ota_artifact_begin(tf_ota_artifact_t *a, const tf_port_t *port, uint32_t size, const uint8_t sha256[32])
{
    if (a == NULL || port == NULL || sha256 == NULL || port->sha256_init == NULL) {
        return TF_ERR_ARG;
    }
    a->port = port;
    a->size = size;
    a->received = 0;
    memcpy(a->expected, sha256, 32);
    return port->sha256_init(port->user, &a->sha) == TF_OK ? TF_OK : TF_ERR_PORT;
}

tf_err_t tf_ota_artifact_update(tf_ota_artifact_t *a, const uint8_t *data, size_t len)
{
    if (a == NULL || (data == NULL && len != 0)) {
        return TF_ERR_ARG;
    }
    if (len > (size_t)(a->size - a->received)) {
        a->received = a->size; /* more than announced: stop here */
        return TF_ERR_OTA_SIZE_MISMATCH;
    }
    a->received += (uint32_t)len;
    return a->port->sha256_update(a->port->user, &a->sha, data, len) == TF_OK ? TF_OK : TF_ERR_PORT;
}

tf_err_t tf_ota_artifact_finish(tf_ota_artifact_t *a)
{
    uint8_t digest[32];
    if (a == NULL) {
        return TF_ERR_ARG;
    }
    if (a->received != a->size) {
        return TF_ERR_OTA_SIZE_MISMATCH;
    }
    if (a->port->sha256_final(a->port->user, &a->sha, digest) != TF_OK) {
        return TF_ERR_PORT;
    }
    return memcmp(digest, a->expected, 32) == 0 ? TF_OK : TF_ERR_OTA_HASH_MISMATCH;
}

/* ---------------------------------------------------------------------------------------- client */

static void report(tf_ota_client_t *c, tf_ota_state_t state, tf_err_t reason, int with_progress)
{
    tf_ota_status_t s;
    char topic[TF_TOPIC_MAX + 64];
    size_t n = 0;
    uint32_t now;
    if (c->port->publish == NULL) {
        return;
    }
    memset(&s, 0, sizeof s);
    s.state = state;
    s.seq = c->m.seq;
    if (reason != TF_OK) {
        s.reason = reason;
        s.has |= TF_HAS(TF_OS_REASON);
    }
    if (with_progress) {
        s.progress = c->offset;
        s.has |= TF_HAS(TF_OS_PROGRESS);
    }
    if (c->cfg.model.len > 0) {
        s.model = c->cfg.model;
        s.mver = c->cfg.mver;
        s.has |= TF_HAS(TF_OS_MODEL) | TF_HAS(TF_OS_MVER);
    }
    if (c->port->time_s != NULL && c->port->time_s(c->port->user, &now) == TF_OK &&
        (uint64_t)now * 1000u >= TF_TS_FLOOR_MS) {
        s.ts_ms = (uint64_t)now * 1000u;
        s.has |= TF_HAS(TF_OS_TS);
    }
    if (tf_ota_status_encode(&s, c->status, sizeof c->status, &n) != TF_OK ||
        tf_topic_build(c->cfg.topic_prefix, c->cfg.device_id, TF_CH_OTA_STATUS, topic, sizeof topic, NULL) != TF_OK) {
        return;
    }
    (void)c->port->publish(c->port->user, topic, c->status, n, 1, 0);
}

static tf_err_t fail(tf_ota_client_t *c, tf_err_t reason)
{
    c->phase = TF_OTA_ERROR;
    c->last_error = reason;
    if (reason != TF_ERR_OTA_DOWNLOAD_FAILED && c->port->save_progress != NULL) {
        (void)c->port->save_progress(c->port->user, NULL); /* a retry starts over; a download error resumes */
    }
    report(c, TF_OTA_FAILED, reason, reason == TF_ERR_OTA_DOWNLOAD_FAILED);
    return reason;
}

tf_err_t tf_ota_init(tf_ota_client_t *c, const tf_port_t *port, const tf_ota_config_t *cfg)
{
    if (c == NULL || port == NULL || cfg == NULL || cfg->trust == NULL || cfg->device_id == NULL ||
        port->sha256_init == NULL || port->sha256_update == NULL || port->sha256_final == NULL ||
        port->ed25519_verify == NULL || port->load_seq == NULL || port->store_seq == NULL ||
        port->fetch_range == NULL || port->storage_begin == NULL || port->storage_write == NULL ||
        port->activate == NULL || tf_device_id_check(cfg->device_id, strlen(cfg->device_id)) != TF_OK) {
        return TF_ERR_ARG;
    }
    memset(c, 0, sizeof *c);
    c->port = port;
    c->cfg = *cfg;
    c->phase = TF_OTA_IDLE;
    return TF_OK;
}

static tf_err_t resume_or_begin(tf_ota_client_t *c)
{
    tf_ota_progress_t p;
    const tf_port_t *port = c->port;
    if (tf_ota_artifact_begin(&c->art, port, c->m.size, c->m.sha256) != TF_OK) {
        return TF_ERR_PORT;
    }
    c->offset = 0;
    if (port->load_progress != NULL && port->storage_read != NULL && port->load_progress(port->user, &p) == TF_OK &&
        p.seq == c->m.seq && memcmp(p.sha256, c->m.sha256, 32) == 0 && p.offset <= c->m.size) {
        /* re-hash what the previous boot already stored, then continue from there */
        while (c->offset < p.offset) {
            size_t n = p.offset - c->offset < sizeof c->chunk ? p.offset - c->offset : sizeof c->chunk;
            if (port->storage_read(port->user, c->offset, c->chunk, n) != TF_OK ||
                tf_ota_artifact_update(&c->art, c->chunk, n) != TF_OK) {
                return TF_ERR_OTA_STORAGE_FAILED;
            }
            c->offset += (uint32_t)n;
        }
        return TF_OK;
    }
    return port->storage_begin(port->user, c->m.size) == TF_OK ? TF_OK : TF_ERR_OTA_STORAGE_FAILED;
}

tf_err_t tf_ota_on_manifest(tf_ota_client_t *c, const uint8_t *payload, size_t len)
{
    uint32_t last_seq = 0, now = 0;
    int has_now;
    tf_err_t e;
    if (c == NULL || (payload == NULL && len != 0)) {
        return TF_ERR_ARG;
    }
    if (len == 0) {
        return TF_ERR_END; /* the retained manifest was cleared */
    }
    memset(&c->m, 0, sizeof c->m);
    if (len > sizeof c->manifest) {
        return fail(c, TF_ERR_OTA_MALFORMED);
    }
    memcpy(c->manifest, payload, len); /* the verified fields point into this copy */
    c->manifest_len = len;
    if (c->port->load_seq(c->port->user, &last_seq) != TF_OK) {
        return fail(c, TF_ERR_OTA_STORAGE_FAILED);
    }
    has_now = c->port->time_s != NULL && c->port->time_s(c->port->user, &now) == TF_OK;
    e = tf_ota_verify_manifest(c->port, c->manifest, len, c->cfg.trust, last_seq, has_now, now, &c->cfg.device,
                               c->work, sizeof c->work, &c->m);
    if (e == TF_ERR_OTA_REPLAYED_SEQUENCE && c->m.seq == last_seq) {
        /* the retained manifest this device already applied, delivered again on reconnect: nothing to say */
        c->phase = TF_OTA_IDLE;
        return e;
    }
    if (e != TF_OK) {
        return fail(c, tf_err_is_ota_reason(e) ? e : TF_ERR_OTA_MALFORMED);
    }
    memcpy(c->uri, c->m.uri.ptr, c->m.uri.len);
    c->uri[c->m.uri.len] = '\0';
    report(c, TF_OTA_VERIFIED, TF_OK, 0);
    if ((e = resume_or_begin(c)) != TF_OK) {
        return fail(c, e == TF_ERR_PORT ? TF_ERR_OTA_STORAGE_FAILED : e);
    }
    c->phase = TF_OTA_READY;
    c->retries = 0;
    c->last_report = c->offset;
    return TF_OK;
}

tf_err_t tf_ota_step(tf_ota_client_t *c)
{
    const tf_port_t *port;
    size_t got = 0;
    tf_err_t e;
    if (c == NULL) {
        return TF_ERR_ARG;
    }
    port = c->port;
    if (c->phase == TF_OTA_ERROR) {
        return c->last_error;
    }
    if (c->phase != TF_OTA_READY && c->phase != TF_OTA_RUNNING) {
        return TF_ERR_END;
    }
    if (c->offset < c->m.size) {
        size_t want = c->m.size - c->offset < sizeof c->chunk ? c->m.size - c->offset : sizeof c->chunk;
        int first = c->phase == TF_OTA_READY;
        tf_ota_progress_t p;
        c->phase = TF_OTA_RUNNING;
        if (port->fetch_range(port->user, c->uri, c->offset, c->chunk, want, &got) != TF_OK || got > want) {
            return ++c->retries <= TF_CFG_OTA_RETRIES ? TF_OK : fail(c, TF_ERR_OTA_DOWNLOAD_FAILED);
        }
        c->retries = 0;
        if (got == 0) {
            return fail(c, TF_ERR_OTA_SIZE_MISMATCH); /* the artifact ended before `size` */
        }
        if ((e = tf_ota_artifact_update(&c->art, c->chunk, got)) != TF_OK) {
            return fail(c, e == TF_ERR_PORT ? TF_ERR_OTA_STORAGE_FAILED : e);
        }
        if (port->storage_write(port->user, c->offset, c->chunk, got) != TF_OK) {
            return fail(c, TF_ERR_OTA_STORAGE_FAILED);
        }
        c->offset += (uint32_t)got;
        if (port->save_progress != NULL) {
            p.seq = c->m.seq;
            memcpy(p.sha256, c->m.sha256, 32);
            p.offset = c->offset;
            (void)port->save_progress(port->user, &p);
        }
        if (first || c->offset - c->last_report >= TF_CFG_OTA_REPORT_BYTES) {
            c->last_report = c->offset;
            report(c, TF_OTA_DOWNLOADING, TF_OK, 1);
        }
        return TF_OK;
    }
    /* all announced bytes are in: one more byte would mean the artifact is longer than declared */
    if (port->fetch_range(port->user, c->uri, c->m.size, c->chunk, 1, &got) != TF_OK) {
        return ++c->retries <= TF_CFG_OTA_RETRIES ? TF_OK : fail(c, TF_ERR_OTA_DOWNLOAD_FAILED);
    }
    if (got > 0) {
        return fail(c, TF_ERR_OTA_SIZE_MISMATCH);
    }
    if ((e = tf_ota_artifact_finish(&c->art)) != TF_OK) {
        return fail(c, e == TF_ERR_PORT ? TF_ERR_OTA_STORAGE_FAILED : e);
    }
    report(c, TF_OTA_DOWNLOADED, TF_OK, 1);
    report(c, TF_OTA_VERIFIED, TF_OK, 0);
    if (port->activate(port->user, c->m.component) != TF_OK) {
        return fail(c, TF_ERR_OTA_APPLY_FAILED);
    }
    if (port->store_seq(port->user, c->m.seq) != TF_OK) {
        return fail(c, TF_ERR_OTA_STORAGE_FAILED);
    }
    if (port->save_progress != NULL) {
        (void)port->save_progress(port->user, NULL);
    }
    if (c->m.component == 0) {
        /* what the device runs now */
        c->cfg.model = c->m.id_is_num ? c->cfg.model : c->m.id;
        c->cfg.mver = c->m.ver_is_num ? c->m.ver_num : c->cfg.mver;
    }
    c->phase = TF_OTA_DONE;
    report(c, TF_OTA_APPLIED, TF_OK, 0);
    return TF_ERR_END;
}

tf_err_t tf_ota_revert(tf_ota_client_t *c, uint32_t seq)
{
    if (c == NULL || c->port->revert == NULL) {
        return TF_ERR_ARG;
    }
    if (c->port->revert(c->port->user, c->m.component) != TF_OK) {
        return TF_ERR_PORT;
    }
    c->m.seq = seq;
    report(c, TF_OTA_ROLLED_BACK, TF_ERR_OTA_BOOT_FAILED, 0);
    return TF_OK;
}
