/* libFuzzer target: every decoder of the wire contract, and the JSON reader, over arbitrary bytes (clang
 * -fsanitize=fuzzer). A decoded event must re-encode, and its re-encoding must decode again; what the JSON
 * reader accepts must be well-formed CBOR. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tinyfleet/tf_event.h"
#include "tinyfleet/tf_json.h"
#include "tinyfleet/tf_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tf_decode_buf_t db, db2;
static uint8_t out[4096];
static uint8_t json_cbor[3 * 4096 + 16];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tf_event_decoder_t d;
    tf_event_t ev;
    tf_telemetry_t tel;
    tf_state_t st;
    tf_ota_status_t os;
    tf_decode_opts_t lenient;
    (void)tf_decode_opts_default(&lenient);
    lenient.strict = size > 0 && (data[0] & 1u);
    if (tf_events_begin(&d, data, size, &lenient, NULL) == TF_OK) {
        tf_err_t r;
        while ((r = tf_events_next(&d, &ev, &db, NULL)) != TF_ERR_END) {
            size_t n = 0;
            if (r == TF_OK && tf_event_encode(&ev, 0, out, sizeof out, &n) == TF_OK) {
                tf_event_decoder_t d2;
                tf_event_t ev2;
                if (tf_events_begin(&d2, out, n, NULL, NULL) != TF_OK || tf_events_next(&d2, &ev2, &db2, NULL) != TF_OK) {
                    abort(); /* what the encoder writes, the decoder reads */
                }
            }
        }
    }
    (void)tf_telemetry_decode(data, size, &lenient, &tel, &db, NULL);
    (void)tf_state_decode(data, size, &lenient, &st, &db, NULL);
    (void)tf_ota_status_decode(data, size, &lenient, &os, &db, NULL);
    (void)tf_cbor_check(data, size);
    if (size <= 4096) {
        /* the JSON reader: whatever it accepts is one well-formed CBOR item the decoders then read */
        size_t n = 0;
        if (tf_json_to_cbor(TF_JSON_STATE, data, size, json_cbor, sizeof json_cbor, &n, NULL) == TF_OK) {
            if (tf_cbor_check(json_cbor, n) != TF_OK) {
                abort();
            }
            (void)tf_state_decode(json_cbor, n, &lenient, &st, &db, NULL);
        }
        if (tf_json_events_begin(&d, data, size, &lenient, json_cbor, sizeof json_cbor, NULL) == TF_OK) {
            while (tf_events_next(&d, &ev, &db, NULL) != TF_ERR_END) {
            }
        }
    }
    return 0;
}
