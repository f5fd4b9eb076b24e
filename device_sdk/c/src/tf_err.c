#include "tinyfleet/tf_err.h"

#include "tf_wire_internal.h"

/* Names are packed NUL-separated strings in named arrays (one section each with -fdata-sections), so a
 * firmware that reports OTA reasons links those 190 bytes and not the other names. */
static const char ota_reasons[] = "malformed\0unsupported_version\0unsupported_algorithm\0unknown_key\0"
                                  "bad_signature\0wrong_device\0replayed_sequence\0expired\0incompatible\0"
                                  "size_mismatch\0hash_mismatch\0download_failed\0storage_failed\0apply_failed\0"
                                  "boot_failed";

static const char names[] = "ok\0invalid_argument\0no_space\0end\0unsupported_format\0bad_state\0port_failed\0"
                            "too_deep\0empty_payload\0message_too_large\0malformed_cbor\0malformed_json\0"
                            "trailing_bytes\0not_an_event\0empty_batch\0batch_too_large\0event_too_large\0"
                            "unsupported_version\0unknown_key\0duplicate_key\0missing_field\0wrong_type\0"
                            "out_of_range\0non_finite\0ts_in_future\0ts_before_epoch_floor\0kind_field_missing\0"
                            "extras_too_large\0bad_device_id\0bad_topic";

const char *tf__nth_name(const char *packed, unsigned i)
{
    while (i-- > 0) {
        while (*packed++ != '\0') {
        }
    }
    return packed;
}

const char *tf__ota_reason_name(tf_err_t err) { return tf__nth_name(ota_reasons, (unsigned)(err - TF_ERR_OTA_MALFORMED)); }

const char *tf_err_str(tf_err_t err)
{
    if ((unsigned)err >= (unsigned)TF_ERR__COUNT) {
        return "unknown_error";
    }
    return err >= TF_ERR_OTA_MALFORMED ? tf__ota_reason_name(err) : tf__nth_name(names, (unsigned)err);
}

int tf_err_is_ota_reason(tf_err_t err) { return err >= TF_ERR_OTA_MALFORMED && err <= TF_ERR_OTA_BOOT_FAILED; }
