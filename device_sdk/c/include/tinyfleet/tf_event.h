/**
 * @file tf_event.h
 * @brief Inference events (topic `evt`): the canonical CBOR encoder, batches, and a validating decoder
 *        that gives the codes of docs/protocol.md.
 */
#ifndef TINYFLEET_TF_EVENT_H
#define TINYFLEET_TF_EVENT_H

#include "tf_wire.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TF_KIND_CLASSIFICATION = 0,
    TF_KIND_ANOMALY = 1,
    TF_KIND_REGRESSION = 2,
    TF_KIND_DETECTION = 3
} tf_kind_t;

/* bits of tf_event_t.has: which optional fields are present */
#define TF_EVT_TS (1u << 0)
#define TF_EVT_MVER (1u << 1)
#define TF_EVT_LABEL (1u << 2)
#define TF_EVT_SCORE (1u << 3)
#define TF_EVT_ANOM (1u << 4)
#define TF_EVT_VAL (1u << 5)       /**< a scalar val (val[0], val_len 1) */
#define TF_EVT_VAL_ARRAY (1u << 6) /**< val is an array of val_len values */
#define TF_EVT_TOP (1u << 7)
#define TF_EVT_LAT (1u << 8)
#define TF_EVT_X (1u << 9)
#define TF_EVT_MODEL_ID (1u << 10) /**< the model is the number model_id, not the text model */

/** One event. `seq`, `boot`, `model` and `kind` are required; the rest is present when its bit is set. */
typedef struct {
    uint32_t has;
    uint64_t ts_ms;
    uint32_t seq;
    uint32_t boot;
    tf_str_t model;
    uint32_t model_id;
    uint32_t mver;
    tf_kind_t kind;
    uint16_t label;
    float score;
    tf_real_t anom;
    const tf_real_t *val;
    size_t val_len;
    const tf_top_t *top;
    size_t top_len;
    uint32_t lat_us;
    const tf_extra_t *x;
    size_t x_len;
} tf_event_t;

/** tf_event_write() flags */
#define TF_ENC_SCORE_UINT8 1u /**< scores as uint8 round(score * 255) instead of float32 */

/**
 * @brief Append one event in canonical CBOR (docs/protocol.md "Canonical encoding": keys ascending,
 *        shortest integers, float32 scores, other floats float32 when exact else float64, `x` keys sorted).
 *        Checks the event first, so what it writes decodes.
 * @retval TF_OK
 * @retval TF_ERR_ARG NULL pointers
 * @retval TF_ERR_KIND_FIELD_MISSING the kind's field (label, anom, val, top or label) is absent
 * @retval TF_ERR_OUT_OF_RANGE a text of 0 or more than TF_CFG_MAX_TEXT bytes or with NUL, a score outside
 *         [0, 1], an empty or too long val/top, too many x entries
 * @retval TF_ERR_NON_FINITE NaN or infinity
 * @retval TF_ERR_DUPLICATE_KEY two x entries with the same key
 * @retval TF_ERR_EXTRAS_TOO_LARGE x over TF_CFG_MAX_EXTRAS entries or TF_CFG_MAX_EXTRAS_BYTES
 * @retval TF_ERR_NO_SPACE the writer's buffer is full
 */
tf_err_t tf_event_write(tf_cbor_writer_t *w, const tf_event_t *ev, unsigned flags);

/**
 * @brief Encode one event into @p buf (the payload of one `evt` message).
 * @param[out] out_len bytes written
 * @retval TF_OK
 * @retval TF_ERR_EVENT_TOO_LARGE more than TF_CFG_MAX_EVENT_BYTES
 * @retval (any code of tf_event_write())
 */
tf_err_t tf_event_encode(const tf_event_t *ev, unsigned flags, uint8_t *buf, size_t cap, size_t *out_len);

/**
 * @brief Start a batch of @p n events in @p w (then call tf_event_write() @p n times).
 * @retval TF_OK
 * @retval TF_ERR_ARG @p n is 0 or above TF_CFG_MAX_BATCH_EVENTS
 * @retval TF_ERR_NO_SPACE
 */
tf_err_t tf_batch_begin(tf_cbor_writer_t *w, size_t n);

/** A decode in progress: one event or the elements of a batch. */
typedef struct {
    tf_cbor_reader_t r;
    tf_decode_opts_t opts;
    uint32_t count;  /**< events in the payload (1 for a single event) */
    uint32_t index;  /**< next element */
    int is_batch;
    int indefinite;
} tf_event_decoder_t;

/**
 * @brief Check an `evt` payload at the message level (size, JSON, well-formedness, shape) and prepare
 *        to read its events.
 * @param opts NULL for tf_decode_opts_default()
 * @param[out] err the code and field of a failure (may be NULL)
 * @retval TF_OK
 * @retval TF_ERR_UNSUPPORTED_FORMAT a JSON payload (the SDK speaks CBOR)
 * @retval TF_ERR_EMPTY_PAYLOAD, TF_ERR_MESSAGE_TOO_LARGE, TF_ERR_MALFORMED_CBOR, TF_ERR_TRAILING_BYTES,
 *         TF_ERR_NOT_AN_EVENT, TF_ERR_EMPTY_BATCH, TF_ERR_BATCH_TOO_LARGE, TF_ERR_EVENT_TOO_LARGE
 *         message-level errors (event-level ones come from tf_events_next())
 */
tf_err_t tf_events_begin(tf_event_decoder_t *d, const uint8_t *payload, size_t len,
                         const tf_decode_opts_t *opts, tf_wire_error_t *err);

/**
 * @brief Decode and validate the next event.
 * @param buf storage for arrays and flattened texts (reset for every event)
 * @param[out] err code, field and batch index of a rejected event
 * @retval TF_OK @p ev holds the event
 * @retval TF_ERR_END no more events
 * @retval (an event-level code) the event is rejected; the next call reads the next element
 */
tf_err_t tf_events_next(tf_event_decoder_t *d, tf_event_t *ev, tf_decode_buf_t *buf, tf_wire_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
