#include "tinyfleet/tf_err.h"

/* the OTA reason names are also the ota/status `reason` texts: kept apart so the OTA client links only them */
const char *const tf__ota_reason_names[TF_ERR_OTA_BOOT_FAILED - TF_ERR_OTA_MALFORMED + 1] = {
    "malformed", "unsupported_version", "unsupported_algorithm", "unknown_key", "bad_signature", "wrong_device",
    "replayed_sequence", "expired", "incompatible", "size_mismatch", "hash_mismatch", "download_failed",
    "storage_failed", "apply_failed", "boot_failed",
};

static const char *const names[TF_ERR_OTA_MALFORMED] = {
    "ok", "invalid_argument", "no_space", "end", "unsupported_format", "bad_state", "port_failed", "too_deep",
    "empty_payload", "message_too_large", "malformed_cbor", "trailing_bytes", "not_an_event", "empty_batch",
    "batch_too_large", "event_too_large", "unsupported_version", "unknown_key", "duplicate_key", "missing_field",
    "wrong_type", "out_of_range", "non_finite", "ts_in_future", "ts_before_epoch_floor", "kind_field_missing",
    "extras_too_large", "bad_device_id", "bad_topic",
};

const char *tf_err_str(tf_err_t err)
{
    if ((unsigned)err >= (unsigned)TF_ERR__COUNT) {
        return "unknown_error";
    }
    return err >= TF_ERR_OTA_MALFORMED ? tf__ota_reason_names[err - TF_ERR_OTA_MALFORMED] : names[err];
}

int tf_err_is_ota_reason(tf_err_t err) { return err >= TF_ERR_OTA_MALFORMED && err <= TF_ERR_OTA_BOOT_FAILED; }
