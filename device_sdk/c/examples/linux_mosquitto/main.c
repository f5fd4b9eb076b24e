/* A Linux device on libmosquitto: birth state and last will, real encoded events through the store-and-forward
 * ring (published oldest first, popped on PUBACK, so nothing is lost while the broker is down), telemetry with
 * the drop count, and signed OTA manifests applied through the POSIX port.
 *
 *   tf_linux_device --host 127.0.0.1 --port 1883 --device dev-1 --dir /var/lib/dev-1 --events 100
 *                   [--password PW] [--interval-ms 20] [--trust HEX32]... [--class BOARD] [--ota-wait-s 30]
 *
 * The boot counter lives in DIR/boot (incremented at every start), the OTA state and slots in DIR too.
 * Prints one JSON line when done: {"boot", "events", "acked", "dropped", "ota"}. */
#define _POSIX_C_SOURCE 200809L
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tf_port_posix.h"
#include "tinyfleet/tf_event.h"
#include "tinyfleet/tf_ota.h"
#include "tinyfleet/tf_ring.h"
#include "tinyfleet/tf_state.h"
#include "tinyfleet/tf_tflm.h"
#include "tinyfleet/tf_topic.h"

typedef struct {
    struct mosquitto *mosq;
    const char *device;
    int connected;
    int inflight_mid; /* the ring's oldest record is in flight under this mid; -1 none */
    uint32_t acked;
    tf_ring_t ring;
    tf_ota_client_t ota;
    int ota_seen;
    char topic_evt[TF_TOPIC_MAX], topic_state[TF_TOPIC_MAX], topic_ota[TF_TOPIC_MAX], topic_tel[TF_TOPIC_MAX];
    uint32_t boot;
} device_t;

static uint8_t ring_mem[16384];    /* caller storage of the ring: ~500 events of 30 bytes */
static device_t dev;
static tf_ota_client_t *ota = &dev.ota;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint32_t next_boot(const char *dir)
{
    char path[600];
    unsigned long b = 0;
    FILE *f;
    snprintf(path, sizeof path, "%s/boot", dir);
    if ((f = fopen(path, "r")) != NULL) {
        if (fscanf(f, "%lu", &b) != 1) {
            b = 0;
        }
        fclose(f);
    }
    b++;
    if ((f = fopen(path, "w")) == NULL) {
        perror(path);
        exit(2);
    }
    fprintf(f, "%lu\n", b);
    fclose(f);
    return (uint32_t)b;
}

static tf_err_t mqtt_publish(void *user, const char *topic, const uint8_t *payload, size_t len, int qos, int retain)
{
    device_t *d = user;
    return mosquitto_publish(d->mosq, NULL, topic, (int)len, payload, qos, retain != 0) == MOSQ_ERR_SUCCESS
               ? TF_OK
               : TF_ERR_PORT;
}

static void publish_birth(device_t *d)
{
    static const tf_str_t ops[] = {{"CONV_2D", 7}, {"FULLY_CONNECTED", 15}, {"SOFTMAX", 7}};
    tf_state_t s;
    uint8_t buf[256];
    size_t n;
    memset(&s, 0, sizeof s);
    s.online = 1;
    s.has = TF_HAS(TF_ST_TS) | TF_HAS(TF_ST_BOOT) | TF_HAS(TF_ST_MODEL) | TF_HAS(TF_ST_MVER) | TF_HAS(TF_ST_FW) |
            TF_HAS(TF_ST_CAPS);
    s.ts_ms = now_ms();
    s.boot = d->boot;
    s.model = ota->cfg.model;
    s.mver = ota->cfg.mver;
    s.fw = tf_str("linux-example-1.0");
    s.caps.has = TF_HAS(TF_CAPS_FLASH) | TF_HAS(TF_CAPS_RAM) | TF_HAS(TF_CAPS_ARENA) | TF_HAS(TF_CAPS_OPS);
    s.caps.flash = 1u << 20;
    s.caps.ram = 256u << 10;
    s.caps.arena = 64000;
    s.caps.ops = ops;
    s.caps.ops_len = 3;
    if (tf_state_encode(&s, buf, sizeof buf, &n) == TF_OK) {
        mosquitto_publish(d->mosq, NULL, d->topic_state, (int)n, buf, 1, true);
    }
}

static void on_connect(struct mosquitto *m, void *user, int rc)
{
    device_t *d = user;
    (void)m;
    if (rc != 0) {
        return;
    }
    d->connected = 1;
    d->inflight_mid = -1; /* anything in flight before is published again from the ring */
    publish_birth(d);
    mosquitto_subscribe(d->mosq, NULL, d->topic_ota, 1);
}

static void on_disconnect(struct mosquitto *m, void *user, int rc)
{
    device_t *d = user;
    (void)m;
    (void)rc;
    d->connected = 0;
    d->inflight_mid = -1;
}

static void on_publish(struct mosquitto *m, void *user, int mid)
{
    device_t *d = user;
    (void)m;
    if (mid == d->inflight_mid) {
        (void)tf_ring_pop(&d->ring); /* the broker has it: PUBACK */
        d->inflight_mid = -1;
        d->acked++;
    }
}

static void on_message(struct mosquitto *m, void *user, const struct mosquitto_message *msg)
{
    device_t *d = user;
    (void)m;
    if (strcmp(msg->topic, d->topic_ota) == 0) {
        tf_err_t e = tf_ota_on_manifest(ota, msg->payload, (size_t)msg->payloadlen);
        if (e != TF_ERR_END) {
            d->ota_seen = 1;
        }
        fprintf(stderr, "ota: manifest (%d bytes): %s\n", msg->payloadlen, e == TF_OK ? "verified" : tf_err_str(e));
    }
}

/* a fake inference: an int8 softmax output as TFLM would leave it */
static void make_event(device_t *d, uint32_t seq, tf_event_t *ev)
{
    int8_t out[4] = {-128, -100, -90, -128};
    out[seq % 4u] = 100;
    memset(ev, 0, sizeof *ev);
    ev->boot = d->boot;
    ev->seq = seq;
    ev->model = ota->cfg.model;
    ev->mver = ota->cfg.mver;
    ev->ts_ms = now_ms();
    ev->lat_us = 1800u + seq % 100u;
    (void)tf_tflm_classification(out, 4, 1.0f / 256, -128, 1, NULL, ev);
    ev->has |= TF_EVT_TS | TF_EVT_MVER | TF_EVT_LAT;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *password = NULL, *dir = NULL, *device_class = NULL;
    int port_no = 1883, i, ota_wait_s = 0;
    long interval_ms = 20;
    uint32_t n_events = 10, produced = 0;
    uint64_t next_event = 0, ota_deadline = 0;
    static tf_ota_trust_t trust;
    static tf_posix_port_t posix;
    static tf_port_t port;
    tf_ota_config_t cfg;
    uint8_t buf[TF_CFG_MAX_EVENT_BYTES];
    const char *ota_result = "none";

    memset(&cfg, 0, sizeof cfg);
    for (i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--host") == 0) {
            host = v;
        } else if (strcmp(k, "--port") == 0) {
            port_no = atoi(v);
        } else if (strcmp(k, "--device") == 0) {
            dev.device = v;
        } else if (strcmp(k, "--password") == 0) {
            password = v;
        } else if (strcmp(k, "--dir") == 0) {
            dir = v;
        } else if (strcmp(k, "--events") == 0) {
            n_events = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(k, "--interval-ms") == 0) {
            interval_ms = atol(v);
        } else if (strcmp(k, "--class") == 0) {
            device_class = v;
        } else if (strcmp(k, "--ota-wait-s") == 0) {
            ota_wait_s = atoi(v);
        } else if (strcmp(k, "--trust") == 0 && strlen(v) == 64) {
            uint8_t key[32];
            int b;
            for (b = 0; b < 32; b++) {
                unsigned x;
                sscanf(v + 2 * b, "%2x", &x);
                key[b] = (uint8_t)x;
            }
            if (tf_posix_port_init(&port, &posix, dir != NULL ? dir : ".") != TF_OK ||
                tf_ota_trust_add(&trust, &port, key) != TF_OK) {
                fprintf(stderr, "cannot add the trusted key\n");
                return 2;
            }
        } else {
            fprintf(stderr, "unknown option %s\n", k);
            return 2;
        }
    }
    if (dev.device == NULL || dir == NULL || tf_device_id_check(dev.device, strlen(dev.device)) != TF_OK) {
        fprintf(stderr, "usage: %s --device ID --dir DIR [--host H] [--port P] [--events N] ...\n", argv[0]);
        return 2;
    }
    dev.boot = next_boot(dir);
    dev.inflight_mid = -1;
    tf_ring_init(&dev.ring, ring_mem, sizeof ring_mem);
    tf_topic_build(NULL, dev.device, TF_CH_EVT, dev.topic_evt, sizeof dev.topic_evt, NULL);
    tf_topic_build(NULL, dev.device, TF_CH_STATE, dev.topic_state, sizeof dev.topic_state, NULL);
    tf_topic_build(NULL, dev.device, TF_CH_OTA, dev.topic_ota, sizeof dev.topic_ota, NULL);
    tf_topic_build(NULL, dev.device, TF_CH_TEL, dev.topic_tel, sizeof dev.topic_tel, NULL);

    /* OTA through the POSIX port, reports published with our MQTT client */
    if (tf_posix_port_init(&port, &posix, dir) != TF_OK) {
        return 2;
    }
    posix.publish = mqtt_publish;
    posix.publish_user = &dev;
    cfg.device_id = dev.device;
    cfg.trust = &trust;
    cfg.model = tf_str("vib-cls");
    cfg.mver = 1;
    cfg.device.has = TF_DEV_ID | TF_DEV_FLASH | TF_DEV_RAM | TF_DEV_ARENA;
    cfg.device.device_id = tf_str(dev.device);
    cfg.device.flash = 1u << 20;
    cfg.device.ram = 256u << 10;
    cfg.device.arena = 64000;
    if (device_class != NULL) {
        cfg.device.has |= TF_DEV_CLASS;
        cfg.device.device_class = tf_str(device_class);
    }
    if (tf_ota_init(ota, &port, &cfg) != TF_OK) {
        fprintf(stderr, "OTA client: bad configuration\n");
        return 2;
    }

    mosquitto_lib_init();
    dev.mosq = mosquitto_new(dev.device, true, &dev);
    mosquitto_username_pw_set(dev.mosq, dev.device, password);
    {
        uint8_t lwt[16];
        size_t n;
        tf_state_lwt(lwt, sizeof lwt, &n);
        mosquitto_will_set(dev.mosq, dev.topic_state, (int)n, lwt, 1, true);
    }
    mosquitto_connect_callback_set(dev.mosq, on_connect);
    mosquitto_disconnect_callback_set(dev.mosq, on_disconnect);
    mosquitto_publish_callback_set(dev.mosq, on_publish);
    mosquitto_message_callback_set(dev.mosq, on_message);
    if (mosquitto_connect(dev.mosq, host, port_no, 30) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "broker not reachable yet: buffering\n");
    }
    if (ota_wait_s > 0) {
        ota_deadline = now_ms() + (uint64_t)ota_wait_s * 1000u;
    }
    for (;;) {
        int rc;
        uint64_t t = now_ms();
        if (produced < n_events && t >= next_event) {
            tf_event_t ev;
            size_t n;
            make_event(&dev, produced, &ev);
            if (tf_event_encode(&ev, 0, buf, sizeof buf, &n) == TF_OK && tf_ring_push(&dev.ring, buf, n) == TF_OK) {
                produced++;
            }
            next_event = t + (uint64_t)interval_ms;
        }
        if (dev.connected && dev.inflight_mid < 0) {
            const uint8_t *p;
            size_t n;
            int mid;
            if (tf_ring_peek(&dev.ring, &p, &n) == TF_OK &&
                mosquitto_publish(dev.mosq, &mid, dev.topic_evt, (int)n, p, 1, false) == MOSQ_ERR_SUCCESS) {
                dev.inflight_mid = mid;
            }
        }
        if (ota->phase == TF_OTA_READY || ota->phase == TF_OTA_RUNNING) {
            (void)tf_ota_step(ota);
            if (ota->retries > 0) {
                sleep_ms(200L * (long)ota->retries); /* a failed fetch: back off before the retry */
            }
        }
        rc = mosquitto_loop(dev.mosq, 5, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            dev.connected = 0;
            sleep_ms(100);
            mosquitto_reconnect(dev.mosq);
        }
        if (produced == n_events && dev.ring.count == 0 && dev.inflight_mid < 0 &&
            (ota_wait_s == 0 || ota->phase == TF_OTA_DONE || ota->phase == TF_OTA_ERROR || t > ota_deadline)) {
            break;
        }
    }
    ota_result = ota->phase == TF_OTA_DONE ? "applied" : ota->phase == TF_OTA_ERROR ? tf_err_str(ota->last_error)
                                                                                    : "none";
    {
        /* telemetry with what had to be dropped, then a clean offline state */
        tf_telemetry_t tel;
        tf_state_t off;
        uint8_t tb[64];
        size_t n;
        int mid;
        memset(&tel, 0, sizeof tel);
        tel.has = TF_HAS(TF_TEL_BOOT) | TF_HAS(TF_TEL_DROPPED) | TF_HAS(TF_TEL_INFER_COUNT);
        tel.boot = dev.boot;
        tel.dropped = dev.ring.dropped;
        tel.infer_count = produced;
        if (tf_telemetry_encode(&tel, tb, sizeof tb, &n) == TF_OK) {
            mosquitto_publish(dev.mosq, &mid, dev.topic_tel, (int)n, tb, 1, false);
        }
        memset(&off, 0, sizeof off);
        off.has = TF_HAS(TF_ST_REASON) | TF_HAS(TF_ST_BOOT);
        off.boot = dev.boot;
        off.reason = tf_str("shutdown");
        if (tf_state_encode(&off, tb, sizeof tb, &n) == TF_OK) {
            mosquitto_publish(dev.mosq, &mid, dev.topic_state, (int)n, tb, 1, true);
        }
        for (i = 0; i < 20; i++) {
            mosquitto_loop(dev.mosq, 10, 1);
        }
    }
    mosquitto_disconnect(dev.mosq);
    mosquitto_destroy(dev.mosq);
    mosquitto_lib_cleanup();
    printf("{\"boot\": %lu, \"events\": %lu, \"acked\": %lu, \"dropped\": %lu, \"ota\": \"%s\", \"mver\": %lu}\n",
           (unsigned long)dev.boot, (unsigned long)produced, (unsigned long)dev.acked,
           (unsigned long)dev.ring.dropped, ota_result, (unsigned long)ota->cfg.mver);
    return 0;
}
