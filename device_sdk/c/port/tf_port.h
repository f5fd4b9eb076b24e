/**
 * @file tf_port.h
 * @brief The platform contract: every hook the SDK calls, as a table of function pointers the application
 *        fills in (port/posix/ is the host implementation: libsodium, files, sockets). The OTA client uses
 *        tf_port_t, the flash-backed ring tf_flash_t; the codec, topics and the RAM ring need none.
 *
 * Every hook returns TF_OK or an error; `user` is the application's context, passed back unchanged.
 */
#ifndef TINYFLEET_TF_PORT_H
#define TINYFLEET_TF_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "tinyfleet/tf_err.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Room for the port's SHA-256 state (libsodium needs 104 bytes, mbedTLS 108, a hardware engine less). */
#ifndef TF_CFG_SHA256_CTX_BYTES
#define TF_CFG_SHA256_CTX_BYTES 128
#endif

typedef union {
    uint8_t bytes[TF_CFG_SHA256_CTX_BYTES];
    uint64_t align_; /* the port may store 64-bit counters */
} tf_sha256_ctx_t;

/** What the OTA client persists to resume a download after a reset (store it where it survives one). */
typedef struct {
    uint32_t seq;       /**< the manifest being downloaded */
    uint8_t sha256[32]; /**< its artifact's hash (identifies the artifact) */
    uint32_t offset;    /**< bytes written to storage so far */
} tf_ota_progress_t;

/** Largest program granularity the flash ring supports (bytes; STM32 L4/G4 program 8, H7 32). */
#ifndef TF_CFG_FLASH_MAX_PROG
#define TF_CFG_FLASH_MAX_PROG 32
#endif

/**
 * NOR flash (or any erase-then-program storage) for the flash-backed ring (tf_fring.h): @p sectors erase
 * sectors of @p sector_size bytes at addresses 0 .. sectors * sector_size - 1 of the region the port gives
 * the ring. Erased bytes read 0xFF; a byte is programmed at most once between erases; every program is at an
 * address and of a length that are multiples of @p prog_size (a power of two, 1 .. TF_CFG_FLASH_MAX_PROG).
 * port/posix/tf_flash_file.c is the host implementation (a file).
 */
typedef struct tf_flash_s {
    void *user;
    uint32_t sector_size; /**< bytes per erase sector, a multiple of prog_size */
    uint32_t sectors;     /**< at least 2 */
    uint32_t prog_size;   /**< program granularity */
    /** Erase sector @p sector (every byte 0xFF). */
    tf_err_t (*erase)(void *user, uint32_t sector);
    /** Program @p len bytes at @p addr (aligned to prog_size, len a multiple of it, the bytes erased). */
    tf_err_t (*program)(void *user, uint32_t addr, const uint8_t *data, size_t len);
    /** Read @p len bytes at @p addr (any alignment). */
    tf_err_t (*read)(void *user, uint32_t addr, uint8_t *buf, size_t len);
} tf_flash_t;

typedef struct tf_port_s {
    void *user;
    /* --- crypto (required by the OTA client) */
    /** Start a SHA-256. */
    tf_err_t (*sha256_init)(void *user, tf_sha256_ctx_t *ctx);
    /** Hash more bytes. */
    tf_err_t (*sha256_update)(void *user, tf_sha256_ctx_t *ctx, const uint8_t *data, size_t len);
    /** Write the digest to @p out. */
    tf_err_t (*sha256_final)(void *user, tf_sha256_ctx_t *ctx, uint8_t out[32]);
    /** TF_OK when @p sig is a valid Ed25519 signature of @p msg by @p public_key, else TF_ERR_OTA_BAD_SIGNATURE. */
    tf_err_t (*ed25519_verify)(void *user, const uint8_t public_key[32], const uint8_t *msg, size_t len,
                               const uint8_t sig[64]);
    /* --- persistent state */
    /** The seq of the last applied manifest (0 before the first): anti-rollback. */
    tf_err_t (*load_seq)(void *user, uint32_t *seq);
    /** Persist the seq of the manifest just applied (before the new artifact is used). */
    tf_err_t (*store_seq)(void *user, uint32_t seq);
    /** Load the progress of an interrupted download; TF_ERR_END when there is none. */
    tf_err_t (*load_progress)(void *user, tf_ota_progress_t *p);
    /** Save download progress (called after each chunk; NULL @p p clears it). */
    tf_err_t (*save_progress)(void *user, const tf_ota_progress_t *p);
    /** Seconds since the Unix epoch; TF_ERR_END when the device has no trustworthy clock (expiry unchecked). */
    tf_err_t (*time_s)(void *user, uint32_t *now);
    /* --- download and storage */
    /** HTTP(S) GET of bytes @p offset .. @p offset + @p cap - 1 of @p uri (a Range request): @p got = bytes
     *  received, 0 at the end of the artifact. Any transport error: TF_ERR_OTA_DOWNLOAD_FAILED. */
    tf_err_t (*fetch_range)(void *user, const char *uri, uint32_t offset, uint8_t *buf, size_t cap, size_t *got);
    /** Prepare the inactive slot for an artifact of @p size bytes (erase). TF_ERR_OTA_STORAGE_FAILED if no room. */
    tf_err_t (*storage_begin)(void *user, uint32_t size);
    /** Write to the inactive slot at @p offset. */
    tf_err_t (*storage_write)(void *user, uint32_t offset, const uint8_t *data, size_t len);
    /** Read back from the inactive slot (used to re-hash after a reset). */
    tf_err_t (*storage_read)(void *user, uint32_t offset, uint8_t *buf, size_t len);
    /** Swap the verified inactive slot in (load the model, mark the image bootable). TF_ERR_OTA_APPLY_FAILED. */
    tf_err_t (*activate)(void *user, int component);
    /** Go back to the previous slot. */
    tf_err_t (*revert)(void *user, int component);
    /* --- transport */
    /** Publish @p payload on @p topic with @p qos / @p retain through the application's MQTT client. */
    tf_err_t (*publish)(void *user, const char *topic, const uint8_t *payload, size_t len, int qos, int retain);
} tf_port_t;

#ifdef __cplusplus
}
#endif
#endif
