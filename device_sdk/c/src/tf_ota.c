/* OTA: COSE_Sign1 manifest verification (docs/ota.md, same order and reasons as the Python verifier) and the
 * download / verify / activate state machine. Deterministic CBOR is checked by walking the bytes: shortest
 * heads, definite lengths, map keys strictly ascending (which also refuses duplicates). */
#include "tinyfleet/tf_ota.h"

#include <stddef.h>
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
    uint8_t is_map;
    uint8_t at_key;
} det_frame_t;

#define NO_POS ((size_t)-1)

/* buf[0..len) is exactly one well-formed item with definite lengths and valid UTF-8 texts, nesting at most
 * TF_CFG_CBOR_MAX_DEPTH: TF_OK, else TF_ERR_OTA_MALFORMED. *nondet is set when it is not in deterministic
 * encoding (a longer head than needed; map keys not strictly ascending in canonical order, which also
 * catches duplicates). Every later read of these bytes walks a structure this has checked. */
static tf_err_t det_walk(const uint8_t *buf, size_t len, int *nondet)
{
    det_frame_t st[TF_CFG_CBOR_MAX_DEPTH];
    int depth = 0;
    tf_cbor_reader_t r;
    tf_cbor_item_t it;
    *nondet = 0;
    r.buf = buf;
    r.len = len;
    r.pos = 0;
    for (;;) {
        det_frame_t *f = depth > 0 ? &st[depth - 1] : NULL;
        size_t start = r.pos;
        if (tf_cbor_read(&r, &it) != TF_OK || it.indefinite || it.type == TF_CBOR_BREAK ||
            (it.type == TF_CBOR_TEXT && !tf__utf8_valid(it.data, (size_t)it.val))) {
            return TF_ERR_OTA_MALFORMED;
        }
        *nondet |= !it.shortest;
        if (f != NULL && f->child_start == NO_POS) {
            f->child_start = start;
        }
        if ((it.type == TF_CBOR_ARRAY || it.type == TF_CBOR_MAP) && it.val > 0) {
            if (depth >= TF_CFG_CBOR_MAX_DEPTH || it.val > len) {
                return TF_ERR_OTA_MALFORMED;
            }
            f = &st[depth++];
            f->remaining = it.type == TF_CBOR_MAP ? 2u * it.val : it.val;
            f->is_map = it.type == TF_CBOR_MAP;
            f->at_key = f->is_map;
            f->child_start = NO_POS;
            f->prev_key_start = NO_POS;
            continue;
        }
        if (it.type == TF_CBOR_TAG) {
            continue; /* the tagged item follows */
        }
        /* an item is complete: close the containers it completes */
        for (;;) {
            size_t la, lb;
            if (depth == 0) {
                return r.pos == len ? TF_OK : TF_ERR_OTA_MALFORMED; /* trailing bytes */
            }
            f = &st[depth - 1];
            if (f->at_key) {
                /* canonical order (RFC 7049 §3.9, as cbor2 applies it): shorter encoding first, then bytewise */
                la = f->prev_key_end - f->prev_key_start;
                lb = r.pos - f->child_start;
                if (f->prev_key_start != NO_POS &&
                    (la > lb || (la == lb && memcmp(buf + f->prev_key_start, buf + f->child_start, la) >= 0))) {
                    *nondet = 1;
                }
                f->prev_key_start = f->child_start;
                f->prev_key_end = r.pos;
            }
            f->at_key = (uint8_t)(f->is_map && !f->at_key);
            f->child_start = NO_POS;
            if (--f->remaining > 0) {
                break;
            }
            depth--;
        }
    }
}

/* ---------------------------------------------------------------------- reading checked bytes */

/* The head of the next item. Only used on bytes det_walk() accepted, where it cannot fail; should it
 * still, the item is a BREAK, which every type check refuses. */
static void rd(tf_cbor_reader_t *r, tf_cbor_item_t *it)
{
    if (tf_cbor_read(r, it) != TF_OK) {
        it->type = TF_CBOR_BREAK;
        it->val = 0;
        it->data = NULL;
    }
}

/* Step over one whole (definite) item; its head in *first. */
static void next(tf_cbor_reader_t *r, tf_cbor_item_t *first)
{
    uint64_t n = 1;
    tf_cbor_item_t it;
    rd(r, first);
    it = *first;
    for (;;) {
        if (it.type == TF_CBOR_BREAK) {
            return;
        }
        n += it.type == TF_CBOR_ARRAY ? it.val : it.type == TF_CBOR_MAP ? 2u * it.val : it.type == TF_CBOR_TAG;
        if (--n == 0) {
            return;
        }
        rd(r, &it);
    }
}

static void reader_at(tf_cbor_reader_t *r, const uint8_t *buf, size_t len, size_t pos)
{
    r->buf = buf;
    r->len = len;
    r->pos = pos;
}

/* ------------------------------------------------------------------------------------ field checks */

enum { T_U32, T_COMPONENT, T_SIZE, T_SHA256, T_URI, T_TEXT, T_TEXT_OR_U32, T_OP, T_LABELS, T_OPS, T_COMPAT };

/* the payload's keys 0..13 (docs/ota.md; v, key 0, is judged first and apart) and compat's keys 0..4 */
static const uint8_t payload_type[14] = {T_U32,  T_U32,    T_U32, T_U32,    T_COMPONENT,  T_TEXT_OR_U32, T_TEXT_OR_U32,
                                         T_SIZE, T_SHA256, T_URI, T_COMPAT, T_LABELS, T_TEXT_OR_U32, T_TEXT};
static const uint8_t compat_type[5] = {T_U32, T_U32, T_U32, T_OPS, T_TEXT};

/* a scalar of type @p t: 1 if it is one */
static int check(const tf_cbor_item_t *it, int t)
{
    size_t i, max = t == T_URI ? TF_CFG_MAX_URI : MAX_OTA_TEXT;
    int num = it->type == TF_CBOR_UINT || it->type == TF_CBOR_NINT;
    if (t == T_SHA256) {
        return it->type == TF_CBOR_BYTES && it->val == 32u;
    }
    if (t <= T_SIZE || (num && t >= T_TEXT_OR_U32)) {
        uint64_t hi = t == T_COMPONENT ? 1u : t == T_OP ? 0xFFFFu : 0xFFFFFFFFu;
        return it->type == TF_CBOR_UINT && it->val <= hi && (t != T_SIZE || it->val > 0);
    }
    /* a text of 1..max characters without control characters */
    if (it->type != TF_CBOR_TEXT || it->val == 0 || tf__utf8_chars((const char *)it->data, (size_t)it->val) > max) {
        return 0;
    }
    for (i = 0; i < (size_t)it->val; i++) {
        if (it->data[i] < 0x20u || it->data[i] == 0x7Fu) {
            return 0;
        }
    }
    return 1;
}

static int str_eq(tf_str_t a, const uint8_t *b, size_t blen)
{
    return a.len == blen && (blen == 0 || memcmp(a.ptr, b, blen) == 0);
}

/* A map (reader at its head): the value offset of each key below @p nkeys into pos[], those keys into
 * *found, *unknown set for any other key. 0 when it is no map or a key repeats (refused when the CBOR is
 * loaded, before the version is judged). */
static int scan(tf_cbor_reader_t *r, uint64_t nkeys, size_t *pos, uint32_t *found, int *unknown)
{
    tf_cbor_item_t m, k, v;
    uint64_t i;
    rd(r, &m);
    *found = 0;
    *unknown = 0;
    if (m.type != TF_CBOR_MAP) {
        return 0;
    }
    for (i = 0; i < m.val; i++) {
        next(r, &k);
        if (k.type == TF_CBOR_UINT && k.val < nkeys) {
            if (*found & (1u << k.val)) {
                return 0;
            }
            *found |= 1u << k.val;
            pos[k.val] = r->pos;
        } else {
            *unknown = 1;
        }
        next(r, &v);
    }
    return 1;
}

#define NONE 0xFFu
#define AT(field) ((uint8_t)offsetof(tf_ota_manifest_t, field))
/* where each value goes in the tf_ota_manifest_t: a number (or an array's length), a text */
static const uint8_t payload_num[14] = {NONE, AT(seq), AT(iat), AT(exp), AT(component), AT(id_num), AT(ver_num),
                                        AT(size), NONE, NONE, NONE, AT(n_labels), NONE, NONE};
static const uint8_t payload_txt[14] = {NONE, NONE, NONE, NONE, NONE, AT(id), AT(ver), NONE, NONE, AT(uri), NONE,
                                        NONE, NONE, AT(dev)};
static const uint8_t compat_num[5] = {AT(need_flash), AT(need_ram), AT(need_arena), AT(n_ops), NONE};
static const uint8_t compat_txt[5] = {NONE, NONE, NONE, NONE, AT(need_class)};

/* The values of the @p found keys, each of its types[] type, stored in *m where num[] / txt[] say (an
 * array's length as its number). @p dev (NULL: not checked) gets *missing set when an op of an ops array
 * is not among its own (builtin codes by code, custom ops by name). 0 when a value is wrong. */
static int check_fields(const uint8_t *buf, size_t len, const uint8_t *types, const uint8_t *num, const uint8_t *txt,
                        uint32_t found, const size_t *pos, tf_ota_manifest_t *m, const tf_ota_device_t *dev,
                        int *missing)
{
    tf_cbor_reader_t r;
    tf_cbor_item_t v, o;
    unsigned k;
    for (k = 0; (found >> k) != 0; k++) {
        int t = types[k];
        uint32_t u;
        if (!(found & (1u << k)) || t == T_COMPAT) {
            continue;
        }
        reader_at(&r, buf, len, pos[k]);
        rd(&r, &v);
        if (t >= T_LABELS) {
            uint64_t i;
            if (v.type != TF_CBOR_ARRAY || v.val > (t == T_LABELS ? MAX_LABELS : MAX_COMPAT_OPS)) {
                return 0;
            }
            for (i = 0; i < v.val; i++) {
                size_t d;
                int have = 0;
                rd(&r, &o);
                if (!check(&o, t == T_LABELS ? T_TEXT : T_OP)) {
                    return 0;
                }
                for (d = 0; t == T_OPS && dev != NULL && d < dev->n_op_codes && o.type == TF_CBOR_UINT; d++) {
                    have |= dev->op_codes[d] == o.val;
                }
                for (d = 0; t == T_OPS && dev != NULL && d < dev->n_custom_ops && o.type == TF_CBOR_TEXT; d++) {
                    have |= str_eq(dev->custom_ops[d], o.data, (size_t)o.val);
                }
                *missing |= t == T_OPS && dev != NULL && !have;
            }
        } else if (!check(&v, t)) {
            return 0;
        }
        u = (uint32_t)v.val;
        if (v.data == NULL && num[k] != NONE) {
            memcpy((uint8_t *)m + num[k], &u, sizeof u);
        } else if (v.data != NULL && txt[k] != NONE) {
            tf_str_t s;
            s.ptr = (const char *)v.data;
            s.len = (size_t)v.val;
            memcpy((uint8_t *)m + txt[k], &s, sizeof s);
        }
    }
    return 1;
}

static tf_err_t decode_payload(const uint8_t *p, size_t n, const tf_ota_device_t *dev, tf_ota_manifest_t *m,
                               int *ops_missing)
{
    tf_cbor_reader_t r;
    tf_cbor_item_t v;
    size_t pos[14], cpos[5];
    uint32_t found, cfound;
    int nondet, unknown;
    if (det_walk(p, n, &nondet) != TF_OK) {
        return TF_ERR_OTA_MALFORMED;
    }
    reader_at(&r, p, n, 0);
    if (!scan(&r, 14, pos, &found, &unknown) || !(found & 1u)) {
        return TF_ERR_OTA_MALFORMED;
    }
    /* the version decides what the rest means: judged before anything else */
    reader_at(&r, p, n, pos[0]);
    rd(&r, &v);
    if (v.type != TF_CBOR_UINT && v.type != TF_CBOR_NINT) {
        return TF_ERR_OTA_MALFORMED;
    }
    if (v.type != TF_CBOR_UINT || v.val != 1u) {
        return TF_ERR_OTA_UNSUPPORTED_VERSION;
    }
    if (unknown || (found & 0x3FFu) != 0x3FFu ||
        !check_fields(p, n, payload_type, payload_num, payload_txt, found, pos, m, NULL, ops_missing) ||
        m->exp <= m->iat) {
        return TF_ERR_OTA_MALFORMED;
    }
    if (found & (1u << 10)) {
        reader_at(&r, p, n, pos[10]);
        if (!scan(&r, 5, cpos, &cfound, &unknown) || unknown ||
            !check_fields(p, n, compat_type, compat_num, compat_txt, cfound, cpos, m,
                          (dev->has & TF_DEV_OPS) ? dev : NULL, ops_missing)) {
            return TF_ERR_OTA_MALFORMED;
        }
        /* compat's keys 0..4 are the TF_DEV_* bits 0..4; an empty ops list asks for nothing */
        m->compat_has = cfound & ~(m->n_ops == 0 ? TF_DEV_OPS : 0u);
    }
    reader_at(&r, p, n, pos[8]);
    rd(&r, &v);
    m->sha256 = v.data;
    m->id_is_num = m->id.ptr == NULL;
    m->ver_is_num = m->ver.ptr == NULL;
    m->has_rollout = (found >> 12) & 1u;
    m->has_dev = (found >> 13) & 1u;
    /* last, so that a wrong field is named as such rather than as an encoding problem */
    return nondet ? TF_ERR_OTA_MALFORMED : TF_OK;
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
    tf_cbor_reader_t r;
    tf_cbor_item_t prot, payload, sig, v;
    uint64_t i;
    size_t hpos[5];
    uint32_t found;
    uint8_t unprot;
    int nondet = 0, unknown, key_known = 0, verified = 0, ops_missing = 0;
    const uint8_t *kid = NULL;
    size_t kid_len = 0;
    tf_cbor_writer_t w;
    tf_err_t e;
    if (port == NULL || trust == NULL || dev == NULL || out == NULL || work == NULL || port->ed25519_verify == NULL ||
        (data == NULL && len != 0)) {
        return TF_ERR_ARG;
    }
    memset(out, 0, sizeof *out);
    /* 1. size, well-formed, one item, definite lengths; 2. COSE_Sign1 structure, deterministic */
    if (len == 0 || len > TF_CFG_MAX_MANIFEST_BYTES || det_walk(data, len, &nondet) != TF_OK) {
        return TF_ERR_OTA_MALFORMED;
    }
    /* deterministic: tag 18 and the array of 4 have one-byte heads, the unprotected header is the empty map */
    reader_at(&r, data, len, 2);
    rd(&r, &prot);
    unprot = r.pos < len ? data[r.pos++] : 0; /* alg or kid outside the signature could be swapped by anyone */
    rd(&r, &payload); /* a byte string: detached payloads are not supported */
    rd(&r, &sig);
    if (nondet || data[0] != 0xC0u + COSE_SIGN1_TAG || len < 2 || data[1] != 0x84u || prot.type != TF_CBOR_BYTES ||
        unprot != 0xA0u || payload.type != TF_CBOR_BYTES || sig.type != TF_CBOR_BYTES || sig.val != 64u) {
        return TF_ERR_OTA_MALFORMED;
    }
    /* 3. protected header: {1: -8, 4: kid} and nothing else */
    reader_at(&r, prot.data, (size_t)prot.val, 0);
    if (det_walk(prot.data, (size_t)prot.val, &nondet) != TF_OK || nondet || !scan(&r, 5, hpos, &found, &unknown) ||
        unknown || (found & ~0x12u) != 0 || !(found & 2u)) {
        return TF_ERR_OTA_MALFORMED;
    }
    reader_at(&r, prot.data, (size_t)prot.val, hpos[1]);
    rd(&r, &v);
    if (v.type != TF_CBOR_UINT && v.type != TF_CBOR_NINT && v.type != TF_CBOR_TEXT) {
        return TF_ERR_OTA_MALFORMED;
    }
    if (v.type != TF_CBOR_NINT || v.val != 7u) { /* -8 = EdDSA */
        return TF_ERR_OTA_UNSUPPORTED_ALGORITHM;
    }
    if (found & 0x10u) {
        reader_at(&r, prot.data, (size_t)prot.val, hpos[4]);
        rd(&r, &v);
        kid = v.data;
        kid_len = v.type == TF_CBOR_BYTES ? (size_t)v.val : 0;
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
    for (i = 0; i < trust->count && !verified; i++) {
        if (kid_len != 8 || memcmp(trust->keys[i].kid, kid, 8) != 0) {
            continue;
        }
        key_known = 1;
        if (w.err != TF_OK) {
            return TF_ERR_NO_SPACE;
        }
        verified = port->ed25519_verify(port->user, trust->keys[i].public_key, work, w.len, sig.data) == TF_OK;
    }
    if (!key_known) {
        return TF_ERR_OTA_UNKNOWN_KEY;
    }
    if (!verified) {
        return TF_ERR_OTA_BAD_SIGNATURE;
    }
    /* 6. only now is the payload believed */
    if ((e = decode_payload(payload.data, (size_t)payload.val, dev, out, &ops_missing)) != TF_OK) {
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
    i = out->compat_has & dev->has;
    if (((i & TF_DEV_FLASH) && dev->flash < out->need_flash) || ((i & TF_DEV_RAM) && dev->ram < out->need_ram) ||
        ((i & TF_DEV_ARENA) && dev->arena < out->need_arena) || ((i & TF_DEV_OPS) && ops_missing) ||
        ((i & TF_DEV_CLASS) &&
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

/* One ota/status report, {v, ts?, state, seq, reason?, model?, mver?, progress?} in canonical CBOR (keys
 * ascending): written here rather than by tf_ota_status_encode(), whose generality (msg, fw, x) the client
 * never uses. A number where txt[k].ptr is NULL, else a text. */
static void report(tf_ota_client_t *c, tf_ota_state_t state, tf_err_t reason, int with_progress)
{
    tf_cbor_writer_t w;
    char topic[TF_TOPIC_MAX + 64];
    uint64_t num[TF_OS_PROGRESS + 1];
    tf_str_t txt[TF_OS_PROGRESS + 1];
    uint32_t now, keys = TF_HAS(0) | TF_HAS(TF_OS_STATE) | TF_HAS(TF_OS_SEQ);
    unsigned k, n = 0;
    if (c->port->publish == NULL) {
        return;
    }
    memset(txt, 0, sizeof txt);
    num[0] = 1;
    if (c->port->time_s != NULL && c->port->time_s(c->port->user, &now) == TF_OK &&
        (uint64_t)now * 1000u >= TF_TS_FLOOR_MS) {
        num[TF_OS_TS] = (uint64_t)now * 1000u;
        keys |= TF_HAS(TF_OS_TS);
    }
    (void)tf_ota_state_name(state, &txt[TF_OS_STATE].ptr);
    num[TF_OS_SEQ] = c->m.seq;
    if (reason != TF_OK) {
        txt[TF_OS_REASON].ptr = tf__ota_reason_name(reason);
        keys |= TF_HAS(TF_OS_REASON);
    }
    if (c->cfg.model.len > 0) {
        txt[TF_OS_MODEL] = c->cfg.model;
        num[TF_OS_MVER] = c->cfg.mver;
        keys |= TF_HAS(TF_OS_MODEL) | TF_HAS(TF_OS_MVER);
    }
    num[TF_OS_PROGRESS] = c->offset;
    keys |= with_progress ? TF_HAS(TF_OS_PROGRESS) : 0u;
    for (k = 0; k <= TF_OS_PROGRESS; k++) {
        n += (keys >> k) & 1u;
    }
    (void)tf_cbor_writer_init(&w, c->status, sizeof c->status);
    tf_cbor_put_map(&w, n);
    for (k = 0; k <= TF_OS_PROGRESS; k++) {
        if (!(keys & TF_HAS(k))) {
            continue;
        }
        tf_cbor_put_uint(&w, k);
        if (txt[k].ptr == NULL) {
            tf_cbor_put_uint(&w, num[k]);
        } else {
            tf_cbor_put_text(&w, txt[k].ptr, txt[k].len > 0 ? txt[k].len : strlen(txt[k].ptr));
        }
    }
    if (w.err == TF_OK &&
        tf_topic_build(c->cfg.topic_prefix, c->cfg.device_id, TF_CH_OTA_STATUS, topic, sizeof topic, NULL) == TF_OK) {
        (void)c->port->publish(c->port->user, topic, c->status, w.len, 1, 0);
    }
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
        port->activate == NULL || tf_device_id_check(cfg->device_id, strlen(cfg->device_id)) != TF_OK ||
        (cfg->model.len > 0 && tf__check_text(cfg->model, MAX_OTA_TEXT) != TF_OK)) {
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
        return TF_ERR_OTA_STORAGE_FAILED;
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
    if (len > sizeof c->manifest) {
        memset(&c->m, 0, sizeof c->m);
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
        return fail(c, e);
    }
    c->phase = TF_OTA_READY;
    c->retries = 0;
    c->last_report = c->offset;
    return TF_OK;
}

tf_err_t tf_ota_step(tf_ota_client_t *c)
{
    const tf_port_t *port;
    size_t got = 0, want;
    int tail, first;
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
    /* one chunk; once all announced bytes are in, one more byte would mean the artifact is longer than declared */
    tail = c->offset >= c->m.size;
    want = tail ? 1u : c->m.size - c->offset < sizeof c->chunk ? c->m.size - c->offset : sizeof c->chunk;
    first = c->phase == TF_OTA_READY;
    c->phase = TF_OTA_RUNNING;
    if (port->fetch_range(port->user, c->uri, c->offset, c->chunk, want, &got) != TF_OK || got > want) {
        return ++c->retries <= TF_CFG_OTA_RETRIES ? TF_OK : fail(c, TF_ERR_OTA_DOWNLOAD_FAILED);
    }
    c->retries = 0;
    if (tail ? got > 0 : got == 0) {
        return fail(c, TF_ERR_OTA_SIZE_MISMATCH); /* longer than declared, or it ended before `size` */
    }
    if (!tail) {
        tf_ota_progress_t p;
        if (tf_ota_artifact_update(&c->art, c->chunk, got) != TF_OK ||
            port->storage_write(port->user, c->offset, c->chunk, got) != TF_OK) {
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
