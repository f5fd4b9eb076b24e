/* The smallest firmware: from a TFLM int8 output tensor to the bytes and topic of an event, and a birth
 * message, on the Cortex-M4 (printed through semihosting under QEMU). */
#include <stdio.h>
#include <string.h>

#include "tinyfleet/tf_event.h"
#include "tinyfleet/tf_state.h"
#include "tinyfleet/tf_tflm.h"
#include "tinyfleet/tf_topic.h"

static const int8_t output[4] = {-128, -90, 100, -50}; /* interpreter.output(0)->data.int8 */

int main(void)
{
    tf_event_t ev;
    uint8_t payload[64];
    char topic[TF_TOPIC_MAX];
    size_t n = 0, i;
    memset(&ev, 0, sizeof ev);
    ev.boot = 3;
    ev.seq = 5;
    ev.model = tf_str("vib-cls");
    if (tf_tflm_classification(output, 4, 1.0f / 256, -128, 1, NULL, &ev) != TF_OK ||
        tf_event_encode(&ev, 0, payload, sizeof payload, &n) != TF_OK ||
        tf_topic_build(NULL, "press-007", TF_CH_EVT, topic, sizeof topic, NULL) != TF_OK) {
        return 1;
    }
    printf("%s (%u bytes): ", topic, (unsigned)n);
    for (i = 0; i < n; i++) {
        printf("%02x", payload[i]);
    }
    printf("\n");
    /* a7: {v:1, seq:5, boot:3, model:"vib-cls", kind:0, label:2, score:0.890625}, 26 bytes */
    return n == 26 && payload[0] == 0xa7 ? 0 : 2;
}
