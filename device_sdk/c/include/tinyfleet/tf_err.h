/**
 * @file tf_err.h
 * @brief The one status type of the SDK: every public function returns a ::tf_err_t.
 *
 * The wire and OTA codes carry the names of docs/protocol.md and docs/ota.md (tf_err_str() returns them),
 * so a device can report them on `ota/status` and the tests compare them with the shared vectors.
 */
#ifndef TINYFLEET_TF_ERR_H
#define TINYFLEET_TF_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TF_OK = 0,
    /* --- use of the API */
    TF_ERR_ARG,            /**< a NULL pointer or an argument out of its domain */
    TF_ERR_NO_SPACE,       /**< the caller's buffer is too small */
    TF_ERR_END,            /**< no more items (iterators); the ring buffer is empty */
    TF_ERR_UNSUPPORTED_FORMAT, /**< a JSON payload given to a CBOR decoder (transcode it with tf_json.h) */
    TF_ERR_STATE,          /**< the call does not fit the object's current state */
    TF_ERR_PORT,           /**< a port hook failed */
    TF_ERR_TOO_DEEP,       /**< internal limit TF_CFG_CBOR_MAX_DEPTH reached */
    /* --- wire contract (docs/protocol.md, "Error codes") */
    TF_ERR_EMPTY_PAYLOAD,
    TF_ERR_MESSAGE_TOO_LARGE,
    TF_ERR_MALFORMED_CBOR,
    TF_ERR_MALFORMED_JSON, /**< a JSON payload that is not JSON (tf_json.h) */
    TF_ERR_TRAILING_BYTES,
    TF_ERR_NOT_AN_EVENT,
    TF_ERR_EMPTY_BATCH,
    TF_ERR_BATCH_TOO_LARGE,
    TF_ERR_EVENT_TOO_LARGE,
    TF_ERR_UNSUPPORTED_VERSION,
    TF_ERR_UNKNOWN_KEY,
    TF_ERR_DUPLICATE_KEY,
    TF_ERR_MISSING_FIELD,
    TF_ERR_WRONG_TYPE,
    TF_ERR_OUT_OF_RANGE,
    TF_ERR_NON_FINITE,
    TF_ERR_TS_IN_FUTURE,
    TF_ERR_TS_BEFORE_EPOCH_FLOOR,
    TF_ERR_KIND_FIELD_MISSING,
    TF_ERR_EXTRAS_TOO_LARGE,
    TF_ERR_BAD_DEVICE_ID,
    TF_ERR_BAD_TOPIC,
    /* --- OTA reason codes (docs/ota.md, "Reason codes"); reported on ota/status */
    TF_ERR_OTA_MALFORMED,
    TF_ERR_OTA_UNSUPPORTED_VERSION,
    TF_ERR_OTA_UNSUPPORTED_ALGORITHM,
    TF_ERR_OTA_UNKNOWN_KEY,
    TF_ERR_OTA_BAD_SIGNATURE,
    TF_ERR_OTA_WRONG_DEVICE,
    TF_ERR_OTA_REPLAYED_SEQUENCE,
    TF_ERR_OTA_EXPIRED,
    TF_ERR_OTA_INCOMPATIBLE,
    TF_ERR_OTA_SIZE_MISMATCH,
    TF_ERR_OTA_HASH_MISMATCH,
    TF_ERR_OTA_DOWNLOAD_FAILED,
    TF_ERR_OTA_STORAGE_FAILED,
    TF_ERR_OTA_APPLY_FAILED,
    TF_ERR_OTA_BOOT_FAILED,
    TF_ERR__COUNT
} tf_err_t;

/**
 * @brief The stable name of a status: the wire / OTA code (`"malformed_cbor"`, `"bad_signature"`, ...) or
 *        an SDK name (`"ok"`, `"no_space"`, ...).
 * @param err any value; unknown values give `"unknown_error"`
 * @return a static NUL-terminated string (never NULL)
 */
const char *tf_err_str(tf_err_t err);

/**
 * @brief True when @p err is an OTA reason code (TF_ERR_OTA_MALFORMED .. TF_ERR_OTA_BOOT_FAILED).
 * @return 1 or 0
 */
int tf_err_is_ota_reason(tf_err_t err);

#ifdef __cplusplus
}
#endif
#endif
