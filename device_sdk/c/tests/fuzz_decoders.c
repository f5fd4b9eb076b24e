/* libFuzzer target: every decoder of the wire contract over arbitrary bytes (clang -fsanitize=fuzzer). A
 * decoded event must re-encode, and its re-encoding must decode again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tinyfleet/tf_event.h"
#include "tinyfleet/tf_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tf_decode_buf_t db, db2;
static uint8_t out[4096];

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
    return 0;
}
