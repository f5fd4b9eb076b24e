/*
 * loadgen: a C-speed MQTT publisher for bench/ingest.py (libmosquitto).
 *
 * Publishes COUNT messages at QoS 1 over DEVICES device topics ({prefix}/dev-NNNNN/evt), each message one
 * v1 inference event (or a batch of BATCH events) encoded in CBOR exactly as docs/protocol.md describes,
 * as fast as the broker acknowledges (at most INFLIGHT unacknowledged) or at RATE messages/s. With --stamp
 * every event carries its publish time in microseconds in extras (x: {"p": us}) so the bench can measure
 * publish→commit latency. Prints one JSON line when every message was acknowledged by the broker.
 *
 * With --payloads FILE it publishes the messages of FILE instead (made by bench/rules.py), in order, paced by
 * --rate: records of [u8 flags][u16 topic length][topic, NUL-terminated][u16 payload length][u16 stamp
 * offset][payload], little-endian; flag 1 = write the publish time (µs, big-endian uint64) into the payload at
 * the stamp offset just before sending. --ready prints READY once connected and waits for a line on stdin
 * before the first message; the closing line is then "RESULT {json}" with sent, acked, first, last (epoch s),
 * stamped and cpu (s of this process).
 */
#define _POSIX_C_SOURCE 200809L
#include <mosquitto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile long acked = 0;

static void on_publish(struct mosquitto *m, void *obj, int mid) {
    (void)m; (void)obj; (void)mid;
    __atomic_add_fetch(&acked, 1, __ATOMIC_RELAXED);
}

struct record {
    uint8_t flags;
    const char *topic;
    uint8_t *payload;
    uint16_t len, stamp_off;
};

static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/* Reads FILE (see the header) into memory; returns the number of records, or -1. */
static long load_payloads(const char *path, struct record **out) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return -1; }
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return -1; }
    long size = ftell(f);
    rewind(f);
    uint8_t *buf = malloc((size_t)size + 1);
    if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size) { fclose(f); return -1; }
    fclose(f);
    long n = 0, cap = 1024;
    struct record *recs = malloc((size_t)cap * sizeof *recs);
    for (long i = 0; recs && i < size;) {
        if (i + 7 > size) return -1;
        struct record r;
        r.flags = buf[i];
        uint16_t tlen = get_u16(buf + i + 1);
        r.topic = (const char *)(buf + i + 3);
        i += 3 + tlen;
        if (i + 4 > size || tlen == 0 || r.topic[tlen - 1] != 0) return -1;
        r.len = get_u16(buf + i);
        r.stamp_off = get_u16(buf + i + 2);
        r.payload = buf + i + 4;
        i += 4 + r.len;
        if (i > size || ((r.flags & 1) && (size_t)r.stamp_off + 8 > r.len)) return -1;
        if (n == cap) { cap *= 2; recs = realloc(recs, (size_t)cap * sizeof *recs); if (!recs) return -1; }
        recs[n++] = r;
    }
    *out = recs;
    return recs ? n : -1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t put_uint(uint8_t *p, uint8_t major, uint64_t v) {
    major <<= 5;
    if (v < 24) { p[0] = major | (uint8_t)v; return 1; }
    if (v <= 0xff) { p[0] = major | 24; p[1] = (uint8_t)v; return 2; }
    if (v <= 0xffff) { p[0] = major | 25; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)v; return 3; }
    if (v <= 0xffffffffULL) {
        p[0] = major | 26;
        for (int i = 0; i < 4; i++) p[1 + i] = (uint8_t)(v >> (24 - 8 * i));
        return 5;
    }
    p[0] = major | 27;
    for (int i = 0; i < 8; i++) p[1 + i] = (uint8_t)(v >> (56 - 8 * i));
    return 9;
}

static size_t put_f32(uint8_t *p, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    p[0] = 0xfa;
    for (int i = 0; i < 4; i++) p[1 + i] = (uint8_t)(u >> (24 - 8 * i));
    return 5;
}

static size_t encode_event(uint8_t *p, uint64_t ts_ms, uint32_t seq, uint32_t boot, uint32_t label, float score,
                           int stamp) {
    static const char model[] = "vib-cls";
    size_t n = 0;
    n += put_uint(p + n, 5, stamp ? 10 : 9); /* map */
    n += put_uint(p + n, 0, 0); n += put_uint(p + n, 0, 1);        /* v */
    n += put_uint(p + n, 0, 1); n += put_uint(p + n, 0, ts_ms);    /* ts */
    n += put_uint(p + n, 0, 2); n += put_uint(p + n, 0, seq);      /* seq */
    n += put_uint(p + n, 0, 3); n += put_uint(p + n, 0, boot);     /* boot */
    n += put_uint(p + n, 0, 4); n += put_uint(p + n, 3, sizeof model - 1);
    memcpy(p + n, model, sizeof model - 1); n += sizeof model - 1;  /* model */
    n += put_uint(p + n, 0, 5); n += put_uint(p + n, 0, 4);        /* mver */
    n += put_uint(p + n, 0, 6); n += put_uint(p + n, 0, 0);        /* kind */
    n += put_uint(p + n, 0, 7); n += put_uint(p + n, 0, label);    /* label */
    n += put_uint(p + n, 0, 8); n += put_f32(p + n, score);        /* score */
    if (stamp) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        uint64_t us = (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
        n += put_uint(p + n, 0, 13); n += put_uint(p + n, 5, 1);   /* x: {"p": us} */
        n += put_uint(p + n, 3, 1); p[n++] = 'p';
        n += put_uint(p + n, 0, us);
    }
    return n;
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pace(double t0, long i, double rate, long inflight) {
    if (rate > 0) {
        double due = t0 + (double)i / rate, wait = due - now_s();
        if (wait > 0) {
            struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
            nanosleep(&ts, NULL);
        }
    }
    /* bound what libmosquitto queues beyond its in-flight window */
    while (i - __atomic_load_n(&acked, __ATOMIC_RELAXED) > inflight * 4) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
}

static void wait_acked(long count) {
    while (__atomic_load_n(&acked, __ATOMIC_RELAXED) < count) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static int publish_file(struct mosquitto *m, const char *path, double rate, int inflight, int ready) {
    struct record *recs = NULL;
    long n = load_payloads(path, &recs);
    if (n < 0) { fprintf(stderr, "loadgen: cannot read payloads from %s\n", path); return 1; }
    if (ready) {
        char line[64];
        printf("READY\n");
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin)) return 1;
    }
    double cpu0 = cpu_s(), t0 = now_s();
    long stamped = 0;
    for (long i = 0; i < n; i++) {
        pace(t0, i, rate, inflight);
        struct record *r = &recs[i];
        if (r->flags & 1) {
            struct timespec t;
            clock_gettime(CLOCK_REALTIME, &t);
            uint64_t us = (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
            for (int k = 0; k < 8; k++) r->payload[r->stamp_off + k] = (uint8_t)(us >> (56 - 8 * k));
            stamped++;
        }
        int rc = mosquitto_publish(m, NULL, r->topic, r->len, r->payload, 1, false);
        if (rc != MOSQ_ERR_SUCCESS) { fprintf(stderr, "loadgen: publish: %s\n", mosquitto_strerror(rc)); return 1; }
    }
    double last = now_s();
    wait_acked(n);
    double cpu = cpu_s() - cpu0;
    mosquitto_disconnect(m);
    mosquitto_loop_stop(m, false);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    printf("RESULT {\"sent\": %ld, \"acked\": %ld, \"first\": %.6f, \"last\": %.6f, \"stamped\": %ld, "
           "\"cpu\": %.6f}\n", n, __atomic_load_n(&acked, __ATOMIC_RELAXED), t0, last, stamped, cpu);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *prefix = "tf/v1", *client_id = "tinyfleet-loadgen";
    int port = 1883, devices = 1000, batch = 1, inflight = 1000, stamp = 0, protocol = 4;
    long count = 10000;
    double rate = 0;
    uint32_t boot = (uint32_t)time(NULL);
    const char *payloads = NULL;
    int ready = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--host")) { host = v; i++; }
        else if (!strcmp(a, "--port")) { port = atoi(v); i++; }
        else if (!strcmp(a, "--count")) { count = atol(v); i++; }
        else if (!strcmp(a, "--devices")) { devices = atoi(v); i++; }
        else if (!strcmp(a, "--batch")) { batch = atoi(v); i++; }
        else if (!strcmp(a, "--inflight")) { inflight = atoi(v); i++; }
        else if (!strcmp(a, "--rate")) { rate = atof(v); i++; }
        else if (!strcmp(a, "--boot")) { boot = (uint32_t)strtoul(v, NULL, 10); i++; }
        else if (!strcmp(a, "--prefix")) { prefix = v; i++; }
        else if (!strcmp(a, "--client-id")) { client_id = v; i++; }
        else if (!strcmp(a, "--mqtt5")) { protocol = 5; }
        else if (!strcmp(a, "--stamp")) { stamp = 1; }
        else if (!strcmp(a, "--payloads")) { payloads = v; i++; }
        else if (!strcmp(a, "--ready")) { ready = 1; }
        else { fprintf(stderr, "loadgen: unknown option %s\n", a); return 2; }
    }
    if (devices < 1 || batch < 1 || batch > 256 || count < 1) { fprintf(stderr, "loadgen: bad arguments\n"); return 2; }

    mosquitto_lib_init();
    struct mosquitto *m = mosquitto_new(client_id, true, NULL);
    if (!m) { perror("mosquitto_new"); return 1; }
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, protocol == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
    mosquitto_max_inflight_messages_set(m, (unsigned)inflight);
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_publish_callback_set(m, on_publish);
    int rc = mosquitto_connect(m, host, port, 60);
    if (rc != MOSQ_ERR_SUCCESS) { fprintf(stderr, "loadgen: connect: %s\n", mosquitto_strerror(rc)); return 1; }
    mosquitto_loop_start(m);
    if (payloads) return publish_file(m, payloads, rate, inflight, ready);

    uint32_t *seqs = calloc((size_t)devices, sizeof *seqs);
    char (*topics)[128] = calloc((size_t)devices, sizeof *topics);
    uint8_t *buf = malloc((size_t)batch * 64 + 8);
    if (!seqs || !topics || !buf) { perror("alloc"); return 1; }
    for (int d = 0; d < devices; d++) snprintf(topics[d], sizeof topics[d], "%s/dev-%05d/evt", prefix, d);

    double t0 = now_s();
    long events = 0;
    for (long i = 0; i < count; i++) {
        if (rate > 0) {
            double due = t0 + (double)i / rate, wait = due - now_s();
            if (wait > 0) {
                struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
                nanosleep(&ts, NULL);
            }
        }
        /* bound what libmosquitto queues beyond its in-flight window */
        while (i - __atomic_load_n(&acked, __ATOMIC_RELAXED) > (long)inflight * 4) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
        int d = (int)(i % devices);
        size_t n = 0;
        uint64_t ts_ms = (uint64_t)(now_s() * 1000.0);
        if (batch > 1) n += put_uint(buf, 4, (uint64_t)batch);
        for (int b = 0; b < batch; b++) {
            uint32_t seq = seqs[d]++;
            n += encode_event(buf + n, ts_ms, seq, boot, seq % 4, 0.5f + (float)(seq % 50) / 100.0f, stamp);
            events++;
        }
        rc = mosquitto_publish(m, NULL, topics[d], (int)n, buf, 1, false);
        if (rc != MOSQ_ERR_SUCCESS) { fprintf(stderr, "loadgen: publish: %s\n", mosquitto_strerror(rc)); return 1; }
    }
    double t_sent = now_s();
    while (__atomic_load_n(&acked, __ATOMIC_RELAXED) < count) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    double t1 = now_s();
    mosquitto_disconnect(m);
    mosquitto_loop_stop(m, false);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    printf("{\"messages\": %ld, \"events\": %ld, \"boot\": %u, \"seconds\": %.6f, \"queued_seconds\": %.6f, "
           "\"msgs_per_s\": %.1f}\n", count, events, boot, t1 - t0, t_sent - t0, (double)count / (t1 - t0));
    free(seqs); free(topics); free(buf);
    return 0;
}
