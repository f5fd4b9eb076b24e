/**
 * @file tf_state.h
 * @brief Device state (birth / LWT, topic `state`), health telemetry (`tel`) and OTA status reports
 *        (`ota/status`): canonical encoders and validating decoders. Optional fields are present when
 *        the bit `1u << key` (the CBOR key of docs/protocol.md / docs/ota.md) is set in `has`.
 */
#ifndef TINYFLEET_TF_STATE_H
#define TINYFLEET_TF_STATE_H

#include "tf_wire.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TF_HAS(key) (1u << (key))

/* ------------------------------------------------------------------------------------- telemetry */
enum {
    TF_TEL_TS = 1, TF_TEL_UPTIME_S, TF_TEL_BOOT, TF_TEL_BATTERY_PCT, TF_TEL_BATTERY_MV, TF_TEL_RSSI_DBM,
    TF_TEL_HEAP_FREE, TF_TEL_ARENA_FREE, TF_TEL_INFER_COUNT, TF_TEL_LAT_AVG_US, TF_TEL_LAT_MAX_US, TF_TEL_DROPPED,
    TF_TEL_X
};

typedef struct {
    uint32_t has; /**< TF_HAS(TF_TEL_...) */
    uint64_t ts_ms;
    uint32_t uptime_s;
    uint32_t boot;
    uint8_t battery_pct;
    uint16_t battery_mv;
    int8_t rssi_dbm;
    uint32_t heap_free;
    uint32_t arena_free;
    uint64_t infer_count;
    uint32_t lat_avg_us;
    uint32_t lat_max_us;
    uint32_t dropped; /**< e.g. tf_ring_t.dropped */
    const tf_extra_t *x;
    size_t x_len;
} tf_telemetry_t;

/**
 * @brief Canonical CBOR of a telemetry map.
 * @param[out] out_len bytes written (or needed, with TF_ERR_NO_SPACE)
 * @retval TF_OK
 * @retval TF_ERR_ARG NULL pointers
 * @retval TF_ERR_OUT_OF_RANGE battery_pct above 100, infer_count above 2^63-1, a bad x entry
 * @retval TF_ERR_NO_SPACE
 */
tf_err_t tf_telemetry_encode(const tf_telemetry_t *t, uint8_t *buf, size_t cap, size_t *out_len);

/**
 * @brief Decode and validate a telemetry payload.
 * @param opts NULL for the defaults; @p db holds decoded x entries; @p err may be NULL
 * @retval TF_OK
 * @retval TF_ERR_UNSUPPORTED_FORMAT JSON
 * @retval (a wire error code, with @p err->field)
 */
tf_err_t tf_telemetry_decode(const uint8_t *p, size_t len, const tf_decode_opts_t *opts, tf_telemetry_t *t,
                             tf_decode_buf_t *db, tf_wire_error_t *err);

/* ----------------------------------------------------------------------------------------- state */
enum { TF_CAPS_FLASH = 0, TF_CAPS_RAM, TF_CAPS_ARENA, TF_CAPS_OPS };

/** What the device can run (birth message `caps`). */
typedef struct {
    uint32_t has; /**< TF_HAS(TF_CAPS_...) */
    uint32_t flash;
    uint32_t ram;
    uint32_t arena;
    const tf_str_t *ops; /**< TFLite op names ("CONV_2D", ...) */
    size_t ops_len;
} tf_caps_t;

enum { TF_ST_TS = 1, TF_ST_ONLINE, TF_ST_BOOT, TF_ST_MODEL, TF_ST_MVER, TF_ST_FW, TF_ST_CAPS, TF_ST_REASON,
       TF_ST_X = 13 };
#define TF_ST_MODEL_ID (1u << 20) /**< in `has`: the model is the number model_id */

typedef struct {
    uint32_t has; /**< TF_HAS(TF_ST_...); `online` is always written */
    uint64_t ts_ms;
    int online;
    uint32_t boot;
    tf_str_t model;
    uint32_t model_id;
    uint32_t mver;
    tf_str_t fw;
    tf_caps_t caps;
    tf_str_t reason;
    const tf_extra_t *x;
    size_t x_len;
} tf_state_t;

/**
 * @brief Canonical CBOR of a birth (online) or last-will (offline) state.
 * @retval TF_OK
 * @retval TF_ERR_ARG NULL pointers
 * @retval TF_ERR_OUT_OF_RANGE a text of 0 or more than 64 characters, more than TF_CFG_MAX_OPS ops
 * @retval TF_ERR_NO_SPACE
 */
tf_err_t tf_state_encode(const tf_state_t *s, uint8_t *buf, size_t cap, size_t *out_len);

/**
 * @brief The last will: `{v: 1, online: false, reason: "lwt"}` (10 bytes); register it with the broker
 *        on @ref TF_CH_STATE, QoS 1, retained.
 * @retval TF_OK
 * @retval TF_ERR_ARG NULL pointers
 * @retval TF_ERR_NO_SPACE @p cap below 10
 */
tf_err_t tf_state_lwt(uint8_t *buf, size_t cap, size_t *out_len);

/**
 * @brief Decode a state payload. An empty payload (a cleared retained state) gives TF_ERR_END.
 * @retval TF_OK
 * @retval TF_ERR_END empty payload: the state is cleared
 * @retval TF_ERR_UNSUPPORTED_FORMAT JSON
 * @retval (a wire error code, with @p err->field)
 */
tf_err_t tf_state_decode(const uint8_t *p, size_t len, const tf_decode_opts_t *opts, tf_state_t *s,
                         tf_decode_buf_t *db, tf_wire_error_t *err);

/* ------------------------------------------------------------------------------------ ota/status */
typedef enum {
    TF_OTA_DOWNLOADING,
    TF_OTA_DOWNLOADED,
    TF_OTA_VERIFIED,
    TF_OTA_APPLIED,
    TF_OTA_FAILED,
    TF_OTA_ROLLED_BACK,
    TF_OTA__STATE_COUNT
} tf_ota_state_t;

enum { TF_OS_TS = 1, TF_OS_STATE, TF_OS_SEQ, TF_OS_REASON, TF_OS_MSG, TF_OS_MODEL, TF_OS_MVER, TF_OS_FW,
       TF_OS_PROGRESS, TF_OS_X = 13 };
#define TF_OS_MODEL_ID (1u << 20)

typedef struct {
    uint32_t has; /**< TF_HAS(TF_OS_...); state and seq are always written */
    uint64_t ts_ms;
    tf_ota_state_t state;
    uint32_t seq;
    tf_err_t reason; /**< an OTA reason (tf_err_is_ota_reason()), required when state is FAILED */
    tf_str_t msg;
    tf_str_t model;
    uint32_t model_id;
    uint32_t mver;
    tf_str_t fw;
    uint32_t progress;
    const tf_extra_t *x;
    size_t x_len;
} tf_ota_status_t;

/**
 * @brief The name of an OTA state ("downloading", ...).
 * @retval TF_OK
 * @retval TF_ERR_ARG
 */
tf_err_t tf_ota_state_name(tf_ota_state_t s, const char **out);

/**
 * @brief Canonical CBOR of an ota/status report.
 * @retval TF_OK
 * @retval TF_ERR_ARG NULL pointers, a reason that is not an OTA reason
 * @retval TF_ERR_MISSING_FIELD state FAILED without a reason
 * @retval TF_ERR_OUT_OF_RANGE bad texts
 * @retval TF_ERR_NO_SPACE
 */
tf_err_t tf_ota_status_encode(const tf_ota_status_t *s, uint8_t *buf, size_t cap, size_t *out_len);

/**
 * @brief Decode and validate an ota/status payload.
 * @retval TF_OK
 * @retval TF_ERR_UNSUPPORTED_FORMAT JSON
 * @retval (a wire error code, with @p err->field)
 */
tf_err_t tf_ota_status_decode(const uint8_t *p, size_t len, const tf_decode_opts_t *opts, tf_ota_status_t *s,
                              tf_decode_buf_t *db, tf_wire_error_t *err);

#ifdef __cplusplus
}
#endif
#endif
