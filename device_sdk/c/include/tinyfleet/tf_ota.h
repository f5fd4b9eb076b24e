/**
 * @file tf_ota.h
 * @brief Signed OTA manifests (COSE_Sign1 + Ed25519, docs/ota.md) and the update client: verify the manifest
 *        in the documented order, download the artifact in chunks (HTTP Range, resumable), hash it as it
 *        streams, verify before activating, report every step on `ota/status`. Crypto, storage, download
 *        and persistence are port hooks (port/tf_port.h).
 */
#ifndef TINYFLEET_TF_OTA_H
#define TINYFLEET_TF_OTA_H

#include <stddef.h>
#include <stdint.h>

#include "tf_port.h"
#include "tf_state.h"
#include "tf_wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Bytes of a chunk the client downloads at once (its buffer is inside tf_ota_client_t). */
#ifndef TF_CFG_OTA_CHUNK
#define TF_CFG_OTA_CHUNK 512
#endif
/** Failed fetches of one chunk in a row before the update fails with `download_failed` (each failed
 *  tf_ota_step() returns TF_OK; call it again after a back-off). */
#ifndef TF_CFG_OTA_RETRIES
#define TF_CFG_OTA_RETRIES 3
#endif
/** A `downloading` report every this many bytes. */
#ifndef TF_CFG_OTA_REPORT_BYTES
#define TF_CFG_OTA_REPORT_BYTES 16384
#endif

typedef struct {
    uint8_t public_key[32];
    uint8_t kid[8]; /**< first 8 bytes of SHA-256(public_key), filled in by tf_ota_trust_add() */
} tf_ota_key_t;

/** The public keys the device trusts (two during a key rotation). */
typedef struct {
    tf_ota_key_t keys[TF_CFG_MAX_TRUSTED_KEYS];
    size_t count;
} tf_ota_trust_t;

/**
 * @brief Trust one more Ed25519 public key (raw 32 bytes, `tinyfleet keys show-public --format c`).
 * @retval TF_OK
 * @retval TF_ERR_ARG NULL pointers or a port without sha256 hooks
 * @retval TF_ERR_NO_SPACE TF_CFG_MAX_TRUSTED_KEYS keys already
 */
tf_err_t tf_ota_trust_add(tf_ota_trust_t *t, const tf_port_t *port, const uint8_t public_key[32]);

/** What the verifying device is; a capability whose bit is not set is not checked. */
#define TF_DEV_FLASH (1u << 0)
#define TF_DEV_RAM (1u << 1)
#define TF_DEV_ARENA (1u << 2)
#define TF_DEV_OPS (1u << 3)
#define TF_DEV_CLASS (1u << 4)
#define TF_DEV_ID (1u << 5)
typedef struct {
    uint32_t has;
    uint32_t flash;
    uint32_t ram;
    uint32_t arena;
    const uint16_t *op_codes; /**< TFLite BuiltinOperator codes the firmware registers */
    size_t n_op_codes;
    const tf_str_t *custom_ops; /**< names of custom ops */
    size_t n_custom_ops;
    tf_str_t device_class;
    tf_str_t device_id;
} tf_ota_device_t;

/** A verified manifest payload; texts and the hash point into the manifest bytes. */
typedef struct {
    uint32_t seq;
    uint32_t iat;
    uint32_t exp;
    int component; /**< 0 model, 1 firmware */
    int id_is_num;
    tf_str_t id;
    uint32_t id_num;
    int ver_is_num;
    tf_str_t ver;
    uint32_t ver_num;
    uint32_t size;
    const uint8_t *sha256;
    tf_str_t uri;
    uint32_t compat_has; /**< TF_DEV_FLASH | TF_DEV_RAM | TF_DEV_ARENA | TF_DEV_OPS | TF_DEV_CLASS */
    uint32_t need_flash;
    uint32_t need_ram;
    uint32_t need_arena;
    uint32_t n_ops;
    tf_str_t need_class;
    uint32_t n_labels;
    int has_rollout;
    int has_dev;
    tf_str_t dev;
} tf_ota_manifest_t;

/**
 * @brief Verify a manifest as docs/ota.md "Verification on the device" says, in that order.
 * @param work a buffer of at least @p len + 32 bytes for the Sig_structure
 * @param has_now 0 for a device without a clock (expiry not checked)
 * @retval TF_OK @p out holds the payload
 * @retval TF_ERR_OTA_MALFORMED, TF_ERR_OTA_UNSUPPORTED_ALGORITHM, TF_ERR_OTA_UNKNOWN_KEY,
 *         TF_ERR_OTA_BAD_SIGNATURE, TF_ERR_OTA_UNSUPPORTED_VERSION, TF_ERR_OTA_WRONG_DEVICE,
 *         TF_ERR_OTA_REPLAYED_SEQUENCE, TF_ERR_OTA_EXPIRED, TF_ERR_OTA_INCOMPATIBLE the first check that fails
 * @retval TF_ERR_ARG NULL pointers; TF_ERR_NO_SPACE @p work too small
 */
tf_err_t tf_ota_verify_manifest(const tf_port_t *port, const uint8_t *data, size_t len, const tf_ota_trust_t *trust,
                                uint32_t last_seq, int has_now, uint32_t now, const tf_ota_device_t *dev,
                                uint8_t *work, size_t work_cap, tf_ota_manifest_t *out);

/** Streaming check of an artifact against (size, sha256): docs/ota.md's ArtifactVerifier. */
typedef struct {
    const tf_port_t *port;
    tf_sha256_ctx_t sha;
    uint32_t size;
    uint32_t received;
    uint8_t expected[32];
} tf_ota_artifact_t;

/** @brief Start. @retval TF_OK @retval TF_ERR_ARG @retval TF_ERR_PORT */
tf_err_t tf_ota_artifact_begin(tf_ota_artifact_t *a, const tf_port_t *port, uint32_t size, const uint8_t sha256[32]);
/** @brief Hash a chunk. @retval TF_OK @retval TF_ERR_OTA_SIZE_MISMATCH more bytes than announced @retval TF_ERR_PORT */
tf_err_t tf_ota_artifact_update(tf_ota_artifact_t *a, const uint8_t *data, size_t len);
/** @brief Finish. @retval TF_OK @retval TF_ERR_OTA_SIZE_MISMATCH too few bytes @retval TF_ERR_OTA_HASH_MISMATCH */
tf_err_t tf_ota_artifact_finish(tf_ota_artifact_t *a);

typedef enum {
    TF_OTA_IDLE,        /**< no manifest, or the last one is finished */
    TF_OTA_READY,       /**< a verified manifest: call tf_ota_step() to download */
    TF_OTA_RUNNING,     /**< downloading */
    TF_OTA_DONE,        /**< applied */
    TF_OTA_ERROR        /**< failed (reason in last_error); a manifest with the same seq may retry */
} tf_ota_phase_t;

typedef struct {
    const char *topic_prefix;     /**< NULL for tf/v1 */
    const char *device_id;        /**< for the ota/status topic (and the `dev` check) */
    tf_ota_device_t device;
    const tf_ota_trust_t *trust;
    /* what the device runs now, reported in ota/status */
    tf_str_t model;
    uint32_t mver;
} tf_ota_config_t;

/** The OTA client; the caller owns it (about 2.9 KB with the defaults; nothing is static). */
typedef struct {
    const tf_port_t *port;
    tf_ota_config_t cfg;
    tf_ota_phase_t phase;
    tf_err_t last_error;
    tf_ota_manifest_t m;
    size_t manifest_len;
    char uri[TF_CFG_MAX_URI + 1];
    tf_ota_artifact_t art;
    uint32_t offset;
    uint32_t last_report;
    uint32_t retries; /**< failed fetches in a row */
    uint8_t manifest[TF_CFG_MAX_MANIFEST_BYTES];
    uint8_t work[TF_CFG_MAX_MANIFEST_BYTES + 32];
    uint8_t chunk[TF_CFG_OTA_CHUNK];
    uint8_t status[256];
} tf_ota_client_t;

/**
 * @brief Set up the client.
 * @retval TF_OK
 * @retval TF_ERR_ARG NULL pointers, missing required hooks, a bad device id
 */
tf_err_t tf_ota_init(tf_ota_client_t *c, const tf_port_t *port, const tf_ota_config_t *cfg);

/**
 * @brief A message on `{prefix}/{device}/ota`: verify it (reports `verified` or `failed` + reason). An empty
 *        payload (a cleared retained manifest) is ignored. A download interrupted by a reset resumes where
 *        the saved progress says, after re-hashing what is already in storage.
 * @retval TF_OK verified: call tf_ota_step() until it returns TF_ERR_END
 * @retval TF_ERR_END empty payload, nothing to do
 * @retval (an OTA reason code) refused; reported
 */
tf_err_t tf_ota_on_manifest(tf_ota_client_t *c, const uint8_t *payload, size_t len);

/**
 * @brief Do one step of the update: fetch and store one chunk; at the end verify size and hash, activate,
 *        persist the seq, report `applied`.
 * @retval TF_OK more to do (also after a failed fetch that will be retried: back off before the next call)
 * @retval TF_ERR_END the update is applied (or there is nothing to do)
 * @retval TF_ERR_OTA_DOWNLOAD_FAILED, TF_ERR_OTA_STORAGE_FAILED, TF_ERR_OTA_SIZE_MISMATCH,
 *         TF_ERR_OTA_HASH_MISMATCH, TF_ERR_OTA_APPLY_FAILED the update failed (reported; nothing activated)
 */
tf_err_t tf_ota_step(tf_ota_client_t *c);

/**
 * @brief The new version failed its self-test: go back to the previous one and report `rolled_back`
 *        with `boot_failed`.
 * @retval TF_OK
 * @retval TF_ERR_PORT the revert hook failed
 */
tf_err_t tf_ota_revert(tf_ota_client_t *c, uint32_t seq);

#ifdef __cplusplus
}
#endif
#endif
