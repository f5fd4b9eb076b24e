#define _POSIX_C_SOURCE 200809L
/* manifests.json (every case, reason for reason) and the artifacts through the C verifier with the POSIX
 * port's real crypto (libsodium); then the update client end to end: download, resume after a reset,
 * verify-before-activate, anti-rollback, the ota/status reports, revert. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tf_port_posix.h"
#include "tinyfleet/tf_ota.h"
#include "tinyfleet/tf_state.h"
#include "vectors.h"

static tf_port_t port;
static tf_posix_port_t posix;
static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tf-ota-test-XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(tf_posix_port_init(&port, &posix, dir), TF_OK);
    posix.no_clock = 1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static tf_ota_device_t device_of(const tf_vec_manifest_t *c, tf_str_t *custom)
{
    tf_ota_device_t d;
    size_t i;
    memset(&d, 0, sizeof d);
    d.has = (c->has_flash ? TF_DEV_FLASH : 0u) | (c->has_ram ? TF_DEV_RAM : 0u) | (c->has_arena ? TF_DEV_ARENA : 0u) |
            (c->has_ops ? TF_DEV_OPS : 0u) | (c->device_class ? TF_DEV_CLASS : 0u) | (c->device_id ? TF_DEV_ID : 0u);
    d.flash = c->flash;
    d.ram = c->ram;
    d.arena = c->arena;
    d.op_codes = c->op_codes;
    d.n_op_codes = c->n_op_codes;
    for (i = 0; i < c->n_op_names; i++) {
        custom[i] = tf_str(c->op_names[i]);
    }
    d.custom_ops = custom;
    d.n_custom_ops = c->n_op_names;
    d.device_class = tf_str(c->device_class);
    d.device_id = tf_str(c->device_id);
    return d;
}

static int str_is(tf_str_t s, const char *c) { return c != NULL && s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0; }

static void test_manifest_vectors(void **state)
{
    size_t i, k, handled = 0;
    int failures = 0;
    static uint8_t work[TF_CFG_MAX_MANIFEST_BYTES + 64];
    (void)state;
    for (i = 0; i < tf_vec_manifests_count; i++) {
        const tf_vec_manifest_t *c = &tf_vec_manifests[i];
        tf_ota_trust_t trust;
        tf_str_t custom[4];
        tf_ota_device_t dev = device_of(c, custom);
        tf_ota_manifest_t m;
        tf_err_t r;
        const char *got;
        memset(&trust, 0, sizeof trust);
        for (k = 0; k < c->n_keys; k++) {
            assert_int_equal(tf_ota_trust_add(&trust, &port, c->keys + 32 * k), TF_OK);
        }
        r = tf_ota_verify_manifest(&port, c->data, c->len, &trust, c->last_seq, c->has_now, c->now, &dev, work,
                                   sizeof work, &m);
        got = r == TF_OK ? "ok" : tf_err_str(r);
        if (strcmp(got, c->verdict) != 0) {
            print_error("case %s: expected %s, got %s\n", c->name, c->verdict, got);
            failures++;
        }
        if (r == TF_OK) {
            int ok = m.seq == c->seq && m.exp == c->exp && m.size == c->size && memcmp(m.sha256, c->sha256, 32) == 0 &&
                     str_is(m.uri, c->uri) && m.component == c->firmware && m.n_labels == c->n_labels &&
                     (c->id_text ? str_is(m.id, c->id_text) : (m.id_is_num && m.id_num == c->id_num)) &&
                     (c->ver_text ? str_is(m.ver, c->ver_text) : (m.ver_is_num && m.ver_num == c->ver_num)) &&
                     (c->dev ? str_is(m.dev, c->dev) : !m.has_dev);
            if (!ok) {
                print_error("case %s: payload fields differ\n", c->name);
                failures++;
            }
        }
        handled++;
    }
    assert_int_equal(handled, tf_vec_manifests_in_file);
    assert_int_equal(failures, 0);
}

static void test_artifact_vectors_streaming(void **state)
{
    size_t i, off;
    (void)state;
    for (i = 0; i < tf_vec_artifacts_count; i++) {
        const tf_vec_artifact_t *c = &tf_vec_artifacts[i];
        tf_ota_artifact_t a;
        tf_err_t r = TF_OK;
        assert_int_equal(tf_ota_artifact_begin(&a, &port, tf_vec_artifact_size, tf_vec_artifact_sha256), TF_OK);
        for (off = 0; off < c->len && r == TF_OK; off += 100) {
            r = tf_ota_artifact_update(&a, c->data + off, c->len - off < 100 ? c->len - off : 100);
        }
        if (r == TF_OK) {
            r = tf_ota_artifact_finish(&a);
        }
        if (strcmp(r == TF_OK ? "ok" : tf_err_str(r), c->verdict) != 0) {
            fail_msg("artifact %s: expected %s, got %s", c->name, c->verdict, tf_err_str(r));
        }
    }
}

/* --- the update client, with the POSIX port's crypto and storage and an in-memory "server" */

static const uint8_t *served;
static size_t served_len;
static int fetch_budget = -1; /* fetches before the "network" fails; -1 = never */
static size_t fetched_bytes;
static int activations;

static tf_err_t mem_fetch(void *user, const char *uri, uint32_t offset, uint8_t *buf, size_t cap, size_t *got)
{
    (void)user;
    (void)uri;
    if (fetch_budget == 0) {
        return TF_ERR_OTA_DOWNLOAD_FAILED;
    }
    if (fetch_budget > 0) {
        fetch_budget--;
    }
    *got = offset >= served_len ? 0 : (served_len - offset < cap ? served_len - offset : cap);
    memcpy(buf, served + offset, *got);
    fetched_bytes += *got;
    return TF_OK;
}

static tf_err_t (*posix_activate)(void *, int);
static tf_err_t counting_activate(void *user, int component)
{
    activations++;
    return posix_activate(user, component);
}

#define MAX_REPORTS 64
static tf_ota_status_t reports[MAX_REPORTS];
static size_t n_reports;
static tf_decode_buf_t rdb;
static char last_topic[128];

static tf_err_t capture(void *user, const char *topic, const uint8_t *payload, size_t len, int qos, int retain)
{
    (void)user;
    assert_int_equal(qos, 1);
    assert_int_equal(retain, 0);
    snprintf(last_topic, sizeof last_topic, "%s", topic);
    assert_true(n_reports < MAX_REPORTS);
    /* every report must be a valid ota/status payload */
    assert_int_equal(tf_ota_status_decode(payload, len, NULL, &reports[n_reports], &rdb, NULL), TF_OK);
    n_reports++;
    return TF_OK;
}

static const tf_vec_manifest_t *find_case(const char *name)
{
    size_t i;
    for (i = 0; i < tf_vec_manifests_count; i++) {
        if (strcmp(tf_vec_manifests[i].name, name) == 0) {
            return &tf_vec_manifests[i];
        }
    }
    fail_msg("no manifest case %s", name);
    return NULL;
}

static tf_ota_trust_t trust;
static tf_str_t custom[4];

static void client_for(tf_ota_client_t *cl, const tf_vec_manifest_t *c)
{
    tf_ota_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    memset(&trust, 0, sizeof trust);
    assert_int_equal(tf_ota_trust_add(&trust, &port, c->keys), TF_OK);
    cfg.device_id = "press-007";
    cfg.device = device_of(c, custom);
    cfg.trust = &trust;
    cfg.model = tf_str("kws-ref");
    cfg.mver = 11;
    assert_int_equal(tf_ota_init(cl, &port, &cfg), TF_OK);
}

static void fresh_device(uint32_t seq)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -f '%s'/slot.* '%s'/ota_progress", dir, dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(port.store_seq(port.user, seq), TF_OK);
    snprintf(cmd, sizeof cmd, "printf old > '%s'/slot.active", dir); /* the model the device runs now */
    assert_int_equal(system(cmd), 0);
    port.fetch_range = mem_fetch;
    posix_activate = posix_activate != NULL ? posix_activate : port.activate;
    port.activate = counting_activate;
    posix.publish = capture;
    fetch_budget = -1;
    fetched_bytes = 0;
    activations = 0;
    n_reports = 0;
}

static long file_size(const char *name)
{
    char p[400];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static tf_err_t run_to_end(tf_ota_client_t *cl)
{
    tf_err_t r;
    int guard = 0;
    while ((r = tf_ota_step(cl)) == TF_OK && guard++ < 100000) {
    }
    return r;
}

static void test_client_artifact_vectors(void **state)
{
    const tf_vec_manifest_t *c = find_case("valid_typical");
    size_t i;
    static tf_ota_client_t cl;
    (void)state;
    for (i = 0; i < tf_vec_artifacts_count; i++) {
        const tf_vec_artifact_t *a = &tf_vec_artifacts[i];
        uint32_t seq = 0;
        tf_err_t r;
        fresh_device(10);
        served = a->data;
        served_len = a->len;
        client_for(&cl, c);
        assert_int_equal(tf_ota_on_manifest(&cl, c->data, c->len), TF_OK);
        r = run_to_end(&cl);
        assert_int_equal(port.load_seq(port.user, &seq), TF_OK);
        if (strcmp(a->verdict, "ok") == 0) {
            assert_int_equal(r, TF_ERR_END);
            assert_int_equal(activations, 1);
            assert_int_equal(seq, 11);
            assert_int_equal(file_size("slot.active"), (long)a->len);
            assert_int_equal(reports[n_reports - 1].state, TF_OTA_APPLIED);
            assert_int_equal(reports[n_reports - 1].mver, 12);
        } else {
            if (strcmp(tf_err_str(r), a->verdict) != 0) {
                fail_msg("artifact %s: expected %s, got %s", a->name, a->verdict, tf_err_str(r));
            }
            /* never activated, the sequence number not consumed, the failure reported with its reason */
            assert_int_equal(activations, 0);
            assert_int_equal(seq, 10);
            assert_int_equal(file_size("slot.active"), 3); /* still the old one */
            assert_int_equal(reports[n_reports - 1].state, TF_OTA_FAILED);
            assert_int_equal(reports[n_reports - 1].reason, r);
        }
        assert_string_equal(last_topic, "tf/v1/press-007/ota/status");
    }
}

static void test_client_reports_and_replay(void **state)
{
    const tf_vec_manifest_t *c = find_case("valid_typical");
    static tf_ota_client_t cl;
    size_t i;
    (void)state;
    fresh_device(10);
    served = tf_vec_artifacts[0].data;
    served_len = tf_vec_artifacts[0].len;
    client_for(&cl, c);
    assert_int_equal(tf_ota_on_manifest(&cl, c->data, c->len), TF_OK);
    assert_int_equal(run_to_end(&cl), TF_ERR_END);
    /* verified (manifest), downloading (first chunk), downloaded, verified (artifact), applied */
    assert_int_equal(n_reports, 5);
    assert_int_equal(reports[0].state, TF_OTA_VERIFIED);
    assert_int_equal(reports[1].state, TF_OTA_DOWNLOADING);
    assert_int_equal(reports[1].progress, TF_CFG_OTA_CHUNK);
    assert_int_equal(reports[2].state, TF_OTA_DOWNLOADED);
    assert_int_equal(reports[2].progress, 1033);
    assert_int_equal(reports[3].state, TF_OTA_VERIFIED);
    assert_int_equal(reports[4].state, TF_OTA_APPLIED);
    for (i = 0; i < n_reports; i++) {
        assert_int_equal(reports[i].seq, 11);
    }
    /* the retained manifest delivered again after the update: refused quietly */
    n_reports = 0;
    assert_int_equal(tf_ota_on_manifest(&cl, c->data, c->len), TF_ERR_OTA_REPLAYED_SEQUENCE);
    assert_int_equal(n_reports, 0);
    assert_int_equal(tf_ota_step(&cl), TF_ERR_END);
    /* a lower one is reported */
    assert_int_equal(port.store_seq(port.user, 12), TF_OK);
    assert_int_equal(tf_ota_on_manifest(&cl, c->data, c->len), TF_ERR_OTA_REPLAYED_SEQUENCE);
    assert_int_equal(n_reports, 1);
    assert_int_equal(reports[0].state, TF_OTA_FAILED);
    assert_int_equal(reports[0].reason, TF_ERR_OTA_REPLAYED_SEQUENCE);
    /* the new version fails its self-test: back to the previous slot */
    n_reports = 0;
    assert_int_equal(tf_ota_revert(&cl, 11), TF_OK);
    assert_int_equal(reports[0].state, TF_OTA_ROLLED_BACK);
    assert_int_equal(reports[0].reason, TF_ERR_OTA_BOOT_FAILED);
    assert_int_equal(file_size("slot.active"), 3);
    /* an empty retained payload clears: nothing to do */
    assert_int_equal(tf_ota_on_manifest(&cl, NULL, 0), TF_ERR_END);
}

static void test_client_tampered_manifest_never_downloads(void **state)
{
    const tf_vec_manifest_t *c = find_case("tampered_payload");
    static tf_ota_client_t cl;
    (void)state;
    fresh_device(10);
    served = tf_vec_artifacts[0].data;
    served_len = tf_vec_artifacts[0].len;
    client_for(&cl, find_case("valid_typical"));
    assert_int_equal(tf_ota_on_manifest(&cl, c->data, c->len), TF_ERR_OTA_BAD_SIGNATURE);
    assert_int_equal(tf_ota_step(&cl), TF_ERR_OTA_BAD_SIGNATURE);
    assert_int_equal(fetched_bytes, 0);
    assert_int_equal(activations, 0);
    assert_int_equal(reports[0].state, TF_OTA_FAILED);
    assert_int_equal(reports[0].reason, TF_ERR_OTA_BAD_SIGNATURE);
}

static void test_client_resumes_after_reset(void **state)
{
    const tf_vec_manifest_t *c = find_case("valid_typical");
    static tf_ota_client_t cl;
    size_t before;
    (void)state;
    fresh_device(10);
    served = tf_vec_artifacts[0].data;
    served_len = tf_vec_artifacts[0].len;
    client_for(&cl, c);
    fetch_budget = 1; /* one chunk, then the network drops */
    assert_int_equal(tf_ota_on_manifest(&cl, c->data, c->len), TF_OK);
    assert_int_equal(run_to_end(&cl), TF_ERR_OTA_DOWNLOAD_FAILED);
    before = fetched_bytes;
    assert_int_equal(before, TF_CFG_OTA_CHUNK);
    /* "reset": a new client; the retained manifest arrives again */
    fetch_budget = -1;
    client_for(&cl, c);
    assert_int_equal(tf_ota_on_manifest(&cl, c->data, c->len), TF_OK);
    assert_int_equal(cl.offset, TF_CFG_OTA_CHUNK); /* re-hashed from storage, not downloaded again */
    assert_int_equal(run_to_end(&cl), TF_ERR_END);
    assert_int_equal(fetched_bytes, 1033);
    assert_int_equal(activations, 1);
    assert_int_equal(file_size("slot.active"), 1033);
}

static int flaky_calls;
static tf_err_t flaky_fetch(void *user, const char *uri, uint32_t offset, uint8_t *buf, size_t cap, size_t *got)
{
    /* every other request fails: fewer than TF_CFG_OTA_RETRIES in a row */
    if (flaky_calls++ % 2 == 0) {
        return TF_ERR_OTA_DOWNLOAD_FAILED;
    }
    return mem_fetch(user, uri, offset, buf, cap, got);
}

static void test_client_rides_out_transient_download_errors(void **state)
{
    const tf_vec_manifest_t *c = find_case("valid_typical");
    static tf_ota_client_t cl;
    size_t i;
    (void)state;
    fresh_device(10);
    served = tf_vec_artifacts[0].data;
    served_len = tf_vec_artifacts[0].len;
    port.fetch_range = flaky_fetch;
    client_for(&cl, c);
    assert_int_equal(tf_ota_on_manifest(&cl, c->data, c->len), TF_OK);
    assert_int_equal(run_to_end(&cl), TF_ERR_END);
    assert_int_equal(activations, 1);
    assert_true(flaky_calls > 6);
    for (i = 0; i < n_reports; i++) {
        assert_true(reports[i].state != TF_OTA_FAILED); /* nothing reported for a retried fetch */
    }
    /* a fetch that keeps failing exhausts the retries: one failed report, download_failed */
    fresh_device(10);
    fetch_budget = 0;
    client_for(&cl, c);
    assert_int_equal(tf_ota_on_manifest(&cl, c->data, c->len), TF_OK);
    for (i = 0; i < TF_CFG_OTA_RETRIES; i++) {
        assert_int_equal(tf_ota_step(&cl), TF_OK);
    }
    assert_int_equal(tf_ota_step(&cl), TF_ERR_OTA_DOWNLOAD_FAILED);
    assert_int_equal(reports[n_reports - 1].reason, TF_ERR_OTA_DOWNLOAD_FAILED);
    assert_int_equal(activations, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_vectors),
        cmocka_unit_test(test_artifact_vectors_streaming),
        cmocka_unit_test(test_client_artifact_vectors),
        cmocka_unit_test(test_client_reports_and_replay),
        cmocka_unit_test(test_client_tampered_manifest_never_downloads),
        cmocka_unit_test(test_client_resumes_after_reset),
        cmocka_unit_test(test_client_rides_out_transient_download_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
