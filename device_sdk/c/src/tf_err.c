#include "tinyfleet/tf_err.h"

static const char *const names[TF_ERR__COUNT] = {
    "ok", "invalid_argument", "no_space", "end", "unsupported_format", "bad_state", "port_failed", "too_deep",
    "empty_payload", "message_too_large", "malformed_cbor", "trailing_bytes", "not_an_event", "empty_batch",
    "batch_too_large", "event_too_large", "unsupported_version", "unknown_key", "duplicate_key", "missing_field",
    "wrong_type", "out_of_range", "non_finite", "ts_in_future", "ts_before_epoch_floor", "kind_field_missing",
    "extras_too_large", "bad_device_id", "bad_topic",
    "malformed", "unsupported_version", "unsupported_algorithm", "unknown_key", "bad_signature", "wrong_device",
    "replayed_sequence", "expired", "incompatible", "size_mismatch", "hash_mismatch", "download_failed",
    "storage_failed", "apply_failed", "boot_failed",
};

const char *tf_err_str(tf_err_t err)
{
    if ((unsigned)err >= (unsigned)TF_ERR__COUNT) {
        return "unknown_error";
    }
    return names[err];
}

int tf_err_is_ota_reason(tf_err_t err) { return err >= TF_ERR_OTA_MALFORMED && err <= TF_ERR_OTA_BOOT_FAILED; }
