/* Host encode (and decode) cost per event, for bench/sdk_size.sh's callgrind figure: N encodes of the
 * protocol's design example (42 bytes) and N validating decodes of it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyfleet/tf_event.h"

#define N 1000

static uint8_t buf[128];
static tf_decode_buf_t db;

__attribute__((noinline)) static size_t encode_all(void)
{
    tf_event_t ev;
    size_t n = 0, total = 0;
    int i;
    memset(&ev, 0, sizeof ev);
    ev.has = TF_EVT_TS | TF_EVT_MVER | TF_EVT_LABEL | TF_EVT_SCORE | TF_EVT_LAT;
    ev.ts_ms = 1764072000000ull;
    ev.boot = 3;
    ev.model = tf_str("vib-cls");
    ev.mver = 4;
    ev.kind = TF_KIND_CLASSIFICATION;
    ev.label = 3;
    ev.score = 0.93f;
    ev.lat_us = 2500;
    for (i = 0; i < N; i++) {
        ev.seq = (uint32_t)i;
        if (tf_event_encode(&ev, 0, buf, sizeof buf, &n) != TF_OK) {
            abort();
        }
        total += n;
    }
    return total > 0 ? n : 0; /* the length of the last one, which stays in buf */
}

__attribute__((noinline)) static size_t decode_all(size_t len)
{
    size_t ok = 0;
    int i;
    for (i = 0; i < N; i++) {
        tf_event_decoder_t d;
        tf_event_t ev;
        if (tf_events_begin(&d, buf, len, NULL, NULL) != TF_OK || tf_events_next(&d, &ev, &db, NULL) != TF_OK) {
            abort();
        }
        ok++;
    }
    return ok;
}

int main(void)
{
    size_t last = encode_all();
    printf("encoded %d events (the last %zu bytes); decoded %zu\n", N, last, decode_all(last));
    return 0;
}
