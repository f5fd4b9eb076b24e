/**
 * @file tf_wire.h
 * @brief Types shared by the payloads of the wire contract v1 (docs/protocol.md): texts, extras (`x`),
 *        decoder options and the error report of a decode.
 */
#ifndef TINYFLEET_TF_WIRE_H
#define TINYFLEET_TF_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "tf_cbor.h"
#include "tf_config.h"
#include "tf_err.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A UTF-8 text that is not NUL-terminated (decoded texts point into the payload). */
typedef struct {
    const char *ptr;
    size_t len; /**< bytes */
} tf_str_t;

/** A tf_str_t from a NUL-terminated C string (NULL gives an empty text). */
tf_str_t tf_str(const char *s);

typedef enum {
    TF_X_NULL,
    TF_X_BOOL,
    TF_X_INT,
    TF_X_FLOAT,
    TF_X_TEXT
} tf_extra_type_t;

/** One entry of `x`: a text key and a scalar. */
typedef struct {
    tf_str_t key;
    tf_extra_type_t type;
    union {
        int b;
        int64_t i;
        tf_real_t f;
        tf_str_t text;
    } u;
} tf_extra_t;

/** Decoder limits (inclusive); tf_limits_default() gives the published v1 values. */
typedef struct {
    uint32_t max_event_bytes;
    uint32_t max_batch_events;
    uint32_t max_message_bytes;
    uint64_t max_future_ms;
    uint32_t max_extras_keys;
    uint32_t max_extras_bytes;
    uint32_t max_top_k;
    uint32_t max_val_len;
    uint32_t max_text_len;
    uint32_t max_telemetry_bytes;
    uint32_t max_state_bytes;
    uint32_t max_ops;
} tf_limits_t;

/**
 * @brief The default v1 limits (docs/protocol.md "Limits"), capped by the tf_config.h sizes.
 * @retval TF_OK
 * @retval TF_ERR_ARG @p out is NULL
 */
tf_err_t tf_limits_default(tf_limits_t *out);

/** How to decode. */
typedef struct {
    int strict;          /**< unknown keys are errors (1, the default) or kept in x (0) */
    int has_now;         /**< check `ts_in_future` against @ref now_ms */
    uint64_t now_ms;
    tf_limits_t limits;
} tf_decode_opts_t;

/**
 * @brief Default options: strict, no clock, default limits.
 * @retval TF_OK
 * @retval TF_ERR_ARG @p out is NULL
 */
tf_err_t tf_decode_opts_default(tf_decode_opts_t *out);

/** Where a decode failed: the code, the dotted field path ("top[2].score", "x.temp"), the batch index. */
typedef struct {
    tf_err_t code;
    int32_t index; /**< position in a batch, -1 for a message-level error or a single event */
    char field[TF_CFG_FIELD_PATH]; /**< "" when the error names no field */
} tf_wire_error_t;

/** Caller storage the decoders put arrays and flattened texts in (decoded structs point into it and into
 *  the payload; both must outlive them). About 3.5 KB with the default limits: decoding is for tests and
 *  downlinks, a device that only encodes never needs one. */
typedef struct {
    tf_real_t val[TF_CFG_MAX_VAL];
    struct tf_top_s {
        uint16_t label;
        float score;
    } top[TF_CFG_MAX_TOP_K];
    tf_extra_t x[TF_CFG_MAX_EXTRAS];
    tf_str_t ops[TF_CFG_MAX_OPS];
    char text[TF_CFG_DECODE_TEXT_BYTES];
    size_t text_used;
} tf_decode_buf_t;

typedef struct tf_top_s tf_top_t;

#ifdef __cplusplus
}
#endif
#endif
