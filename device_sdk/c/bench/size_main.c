/* Entry points for bench/sdk_size.sh: each references the API a firmware of that profile uses, so the linker
 * (--gc-sections) keeps exactly that code. Never run. Profiles (the definitions):
 *   (default)       event encoder + topic builder/parser + ring buffer
 *   TF_SIZE_TFLM    + the TFLM output helpers (label / score / top-k)
 *   TF_SIZE_STATE   + birth/LWT state and telemetry encoders
 *   TF_SIZE_OTA     + trusted keys, manifest verifier, OTA state machine (crypto is the port's)
 *   TF_SIZE_FRING   + the flash-backed ring (flash hooks are the port's) */
#include "tinyfleet/tf_event.h"
#include "tinyfleet/tf_ring.h"
#include "tinyfleet/tf_state.h"
#include "tinyfleet/tf_tflm.h"
#include "tinyfleet/tf_topic.h"
#ifdef TF_SIZE_OTA
#include "tinyfleet/tf_ota.h"
#endif
#ifdef TF_SIZE_FRING
#include "tinyfleet/tf_fring.h"
#endif

void bench_entry(void);

volatile uintptr_t tf_bench_sink;

void bench_entry(void)
{
#ifndef TF_SIZE_BASELINE
    static uint8_t buf[256], mem[1024];
    static char topic[TF_TOPIC_MAX];
    static tf_ring_t ring;
    static tf_event_t ev;
#ifdef TF_SIZE_STATE
    static tf_state_t st;
    static tf_telemetry_t tel;
#endif
#ifdef TF_SIZE_TFLM
    static tf_top_t top[3];
    static const int8_t out[4] = {1, 2, 3, 4};
#endif
    size_t n = 0;
    tf_str_t dev;
    tf_channel_t ch;
#ifdef TF_SIZE_TFLM
    tf_bench_sink += (uintptr_t)tf_tflm_classification(out, 4, 0.1f, 0, 3, top, &ev);
#endif
    tf_bench_sink += (uintptr_t)tf_event_encode(&ev, 0, buf, sizeof buf, &n);
    tf_bench_sink += (uintptr_t)tf_topic_build(NULL, "dev", TF_CH_EVT, topic, sizeof topic, &n);
    tf_bench_sink += (uintptr_t)tf_topic_parse(NULL, topic, n, &dev, &ch);
    tf_bench_sink += (uintptr_t)tf_ring_init(&ring, mem, sizeof mem);
    tf_bench_sink += (uintptr_t)tf_ring_push(&ring, buf, n);
    tf_bench_sink += (uintptr_t)tf_ring_peek(&ring, (const uint8_t **)&tf_bench_sink, &n);
    tf_bench_sink += (uintptr_t)tf_ring_pop(&ring);
#ifdef TF_SIZE_STATE
    tf_bench_sink += (uintptr_t)tf_state_encode(&st, buf, sizeof buf, &n);
    tf_bench_sink += (uintptr_t)tf_state_lwt(buf, sizeof buf, &n);
    tf_bench_sink += (uintptr_t)tf_telemetry_encode(&tel, buf, sizeof buf, &n);
#endif
#ifdef TF_SIZE_FRING
    {
        static tf_fring_t fr;
        static tf_flash_t flash;
        tf_bench_sink += (uintptr_t)tf_fring_mount(&fr, &flash);
        tf_bench_sink += (uintptr_t)tf_fring_push(&fr, buf, n);
        tf_bench_sink += (uintptr_t)tf_fring_peek(&fr, buf, sizeof buf, &n);
        tf_bench_sink += (uintptr_t)tf_fring_pop(&fr);
    }
#endif
#ifdef TF_SIZE_OTA
    {
        static tf_ota_client_t client;
        static tf_port_t port;
        static tf_ota_config_t cfg;
        static tf_ota_trust_t trust;
        static const uint8_t key[32];
        tf_bench_sink += (uintptr_t)tf_ota_trust_add(&trust, &port, key);
        tf_bench_sink += (uintptr_t)tf_ota_init(&client, &port, &cfg);
        tf_bench_sink += (uintptr_t)tf_ota_on_manifest(&client, buf, n);
        tf_bench_sink += (uintptr_t)tf_ota_step(&client);
        tf_bench_sink += (uintptr_t)tf_ota_revert(&client, 1);
    }
#endif
#endif
}
