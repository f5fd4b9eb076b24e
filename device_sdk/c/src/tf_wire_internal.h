/* Internal: the map scan and field checks shared by the event, telemetry, state and ota/status decoders.
 * Like the reference decoder, a map is read whole first (the last of duplicate keys wins), then its
 * fields are checked in the documented order: v, unknown keys, the fields in key order, x. */
#ifndef TINYFLEET_TF_WIRE_INTERNAL_H
#define TINYFLEET_TF_WIRE_INTERNAL_H

#include "tinyfleet/tf_wire.h"

#define TF_NKEYS 14
#define TF_TS_FLOOR_MS 946684800000ull
#define TF_TS_MAX_MS 253402300799999ull
/* an internal "field absent" result of the checks (never returned by the public API) */
#define TF_ABSENT TF_ERR_END

typedef struct {
    size_t key;
    size_t val;
} tf_pair_pos_t;

typedef struct {
    const uint8_t *buf;
    size_t len;
    size_t pos[TF_NKEYS];  /* value offset of each known key */
    uint32_t found;        /* keys present */
    uint32_t nulls;        /* keys whose (last) value is null */
    tf_pair_pos_t unk[TF_CFG_MAX_EXTRAS + 1]; /* unknown entries, payload order */
    uint32_t n_unk;        /* all unknown entries (may exceed the stored ones) */
} tf_map_scan_t;

/* Items are read at an offset; tag 55799 (self-described CBOR) is skipped wherever it appears. */
tf_err_t tf__item_at(const uint8_t *buf, size_t len, size_t pos, tf_cbor_item_t *it, size_t *after);

/* Read a map (reader at its head, tags 55799 skipped); known = bitmask of the integer keys of the table. */
tf_err_t tf__scan_map(tf_cbor_reader_t *r, uint32_t known, tf_map_scan_t *m);

void tf__set_field(tf_wire_error_t *e, const char *a, const char *b, long idx, const char *c);
tf_err_t tf__fail(tf_wire_error_t *e, tf_err_t code, const char *a, const char *b, long idx, const char *c);

/* Text of 1..max characters without NUL (flattened into buf->text when indefinite). */
tf_err_t tf__text(const tf_map_scan_t *m, size_t pos, tf_decode_buf_t *buf, uint32_t max_chars, tf_str_t *out,
                  int *is_text);
tf_err_t tf__get_text(const tf_cbor_item_t *it, const uint8_t *buf, size_t len, tf_decode_buf_t *db, tf_str_t *out);
size_t tf__utf8_chars(const char *s, size_t n);
int tf__utf8_valid(const uint8_t *s, size_t n);
int tf__has_nul(const char *s, size_t n);

/* Field checks: TF_OK, TF_ABSENT (optional and absent / null), or an error with e->field set. */
tf_err_t tf__version(const tf_map_scan_t *m, tf_wire_error_t *e);
tf_err_t tf__unknown(const tf_map_scan_t *m, int strict, const char *prefix, tf_wire_error_t *e);
tf_err_t tf__uint(const tf_map_scan_t *m, int key, const char *name, uint64_t max, int required, uint64_t *out,
                  tf_wire_error_t *e);
tf_err_t tf__int_range(const tf_map_scan_t *m, int key, const char *name, int64_t lo, int64_t hi, int64_t *out,
                       tf_wire_error_t *e);
tf_err_t tf__ts(const tf_map_scan_t *m, int key, const tf_decode_opts_t *o, uint64_t *out, tf_wire_error_t *e);
tf_err_t tf__textf(const tf_map_scan_t *m, int key, const char *name, uint32_t max, int required,
                   tf_decode_buf_t *db, tf_str_t *out, tf_wire_error_t *e);
tf_err_t tf__model(const tf_map_scan_t *m, int key, const char *name, const tf_decode_opts_t *o, tf_decode_buf_t *db,
                   tf_str_t *text, uint32_t *id, int *is_id, tf_wire_error_t *e);
tf_err_t tf__bool(const tf_map_scan_t *m, int key, const char *name, int required, int *out, tf_wire_error_t *e);
tf_err_t tf__missing_or_null(const tf_map_scan_t *m, int key, const char *name, int required, tf_wire_error_t *e);

/* x (key 13) merged with the unknown entries of lenient mode; `extra` holds additional named unknown
 * entries (state: caps.<name>). Stores the entries in db->x. */
typedef struct {
    tf_str_t name;
    size_t val;
} tf_named_pos_t;
tf_err_t tf__extras(const tf_map_scan_t *m, int xkey, int strict, const tf_named_pos_t *extra, size_t n_extra,
                    const tf_decode_opts_t *o, tf_decode_buf_t *db, const tf_extra_t **out, size_t *out_len,
                    tf_wire_error_t *e);
/* Names of the unknown entries of a scan (lenient mode): text keys, integer keys as decimal text. */
tf_err_t tf__unknown_name(const tf_map_scan_t *m, size_t i, const char *prefix, tf_decode_buf_t *db, tf_str_t *out);

/* Message-level checks of a single-map payload (telemetry, state, ota/status). */
tf_err_t tf__record_begin(const uint8_t *p, size_t len, uint32_t max_bytes, tf_cbor_reader_t *r,
                          tf_wire_error_t *e);

/* the i-th of NUL-separated names; the ota/status `reason` text of an OTA reason code */
const char *tf__nth_name(const char *packed, unsigned i);
const char *tf__ota_reason_name(tf_err_t err);

/* Encoding helpers */
/* a head of major type @p major; an integer key and an unsigned value */
tf_err_t tf__put_head(tf_cbor_writer_t *w, uint8_t major, uint64_t v);
tf_err_t tf__put_kv(tf_cbor_writer_t *w, unsigned key, uint64_t v);
tf_err_t tf__check_text(tf_str_t s, uint32_t max_chars);
tf_err_t tf__write_extras(tf_cbor_writer_t *w, const tf_extra_t *x, size_t n);
int tf__is_finite(tf_real_t d);

#endif
