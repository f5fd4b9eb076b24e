/**
 * @file tf_json.h
 * @brief Optional (CMake TF_WITH_JSON): a small JSON reader for the wire's JSON form (docs/protocol.md) —
 *        events and batches, telemetry, state, ota/status. It transcodes the JSON payload into CBOR in a
 *        caller buffer (field names become the integer keys of their table; other names stay text keys,
 *        so an unknown one is reported by name), which the CBOR decoders then validate: the same codes,
 *        fields and batch indexes as the reference decoder. One pass, no recursion (an explicit stack of
 *        TF_CFG_CBOR_MAX_DEPTH levels), no allocation.
 *
 * Use: call the CBOR decoder on the payload first — it reports `empty_payload` / `message_too_large` on the
 * JSON bytes and returns TF_ERR_UNSUPPORTED_FORMAT for JSON — then tf_json_to_cbor() and the decoder again
 * on its output (tf_json_events_begin() does the three steps for events, with `event_too_large` measured on
 * the JSON bytes as the reference does).
 *
 * Limits, by design: nesting deeper than TF_CFG_CBOR_MAX_DEPTH is TF_ERR_TOO_DEEP; an integer outside
 * -2^64 .. 2^64-1 is TF_ERR_OUT_OF_RANGE; a number with a fraction or exponent must be exactly convertible
 * by one IEEE multiplication or division (at most 15 significant digits and a power of ten up to 10^22:
 * every value a device or the service writes), else TF_ERR_UNSUPPORTED_FORMAT — never a rounded value.
 */
#ifndef TINYFLEET_TF_JSON_H
#define TINYFLEET_TF_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "tf_err.h"
#include "tf_event.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TF_JSON_EVENTS,     /**< an event (object) or a batch (array of objects) */
    TF_JSON_TELEMETRY,
    TF_JSON_STATE,      /**< with the names of `caps` inside it */
    TF_JSON_OTA_STATUS
} tf_json_kind_t;

/**
 * @brief Transcode one JSON value (blanks around it allowed) into CBOR: objects and arrays as
 *        indefinite-length maps and arrays, strings as definite texts (escapes resolved, UTF-8 checked),
 *        integers as integers, other numbers as float64, true / false / null as themselves.
 * @param is_object set to 1 when the top-level value is an object (may be NULL)
 * @retval TF_OK `out[0..*out_len)` holds the CBOR
 * @retval TF_ERR_MALFORMED_JSON not one valid JSON value (or not UTF-8)
 * @retval TF_ERR_NO_SPACE @p cap is too small (3 x @p len always suffices: a float64 takes 9 bytes, for
 *         as few as the 3 of `1e1`)
 * @retval TF_ERR_TOO_DEEP, TF_ERR_OUT_OF_RANGE, TF_ERR_UNSUPPORTED_FORMAT the limits above
 * @retval TF_ERR_ARG NULL pointers
 */
tf_err_t tf_json_to_cbor(tf_json_kind_t kind, const uint8_t *json, size_t len, uint8_t *out, size_t cap,
                         size_t *out_len, int *is_object);

/**
 * @brief tf_events_begin() for a payload in either encoding: a JSON one is transcoded into @p work first
 *        (the decoder's events then point into @p work).
 * @retval as tf_events_begin(), plus TF_ERR_MALFORMED_JSON and the limits of tf_json_to_cbor() (also in
 *         @p err)
 */
tf_err_t tf_json_events_begin(tf_event_decoder_t *d, const uint8_t *payload, size_t len, const tf_decode_opts_t *opts,
                              uint8_t *work, size_t work_cap, tf_wire_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
