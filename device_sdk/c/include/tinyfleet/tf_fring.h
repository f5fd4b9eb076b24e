/**
 * @file tf_fring.h
 * @brief Store-and-forward on flash: the ring of encoded events (tf_ring.h) kept in erase sectors through the
 *        port's tf_flash_t hooks, so buffered events survive a reset. Same use as the RAM ring: push every
 *        encoded event, publish the oldest (peek copies it out), pop it on its PUBACK; events keep their
 *        (boot, seq), so a replay is deduplicated by the service; when full, the oldest sector's events are
 *        dropped and counted.
 *
 * Layout (all little-endian, each part padded to the program granularity P):
 *
 *     sector:  [magic "TFR1" | seq u32 | crc32]  record  record  ...  (erased 0xFF to the end)
 *     record:  [flags: P bytes, 0xFF = live]  [len u16 | crc32(len, data)]  [data]
 *
 * Sectors are used round-robin (wear is spread evenly; a sector is erased only when the ring moves into it),
 * each new one with the next sequence number, so tf_fring_mount() finds the order again. A record is
 * written header first, then its data; popping programs its flags unit to 0x00. A reset in the middle of
 * any write loses at most the record being written (its CRC fails; the ring goes on in the next sector) —
 * and, when the ring was full, the oldest events that write was evicting anyway; a pop cut short may leave
 * that (already acknowledged) record live, which the service deduplicates.
 *
 * The state in RAM is the caller's tf_fring_t (no static data). Not thread-safe.
 */
#ifndef TINYFLEET_TF_FRING_H
#define TINYFLEET_TF_FRING_H

#include <stddef.h>
#include <stdint.h>

#include "tf_err.h"
#include "tf_port.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const tf_flash_t *flash;
    uint32_t seq;      /**< sequence number of the newest sector */
    uint32_t wsec;     /**< sector being written */
    uint32_t woff;     /**< where its next record goes */
    uint32_t rsec;     /**< sector of the oldest live record */
    uint32_t roff;     /**< its offset (== wsec/woff when empty) */
    uint32_t count;    /**< live records */
    uint32_t dropped;  /**< records dropped because the ring was full (since mount) */
    uint8_t wfull;     /**< the next push starts a new sector */
} tf_fring_t;

/**
 * @brief Find the ring in flash (an erased or foreign region is an empty ring; nothing is erased here).
 * @retval TF_OK
 * @retval TF_ERR_ARG NULL pointers, missing hooks, or a geometry the ring cannot use (fewer than 2 sectors,
 *         prog_size not a power of two up to TF_CFG_FLASH_MAX_PROG, sector_size not a multiple of it or
 *         too small for one record)
 * @retval TF_ERR_PORT a read failed
 */
tf_err_t tf_fring_mount(tf_fring_t *r, const tf_flash_t *flash);

/**
 * @brief The largest record a push accepts with this geometry.
 */
size_t tf_fring_max_record(const tf_fring_t *r);

/**
 * @brief Append @p data; when the ring is full, the oldest sector is erased and its live records counted
 *        in @p r->dropped.
 * @retval TF_OK
 * @retval TF_ERR_ARG NULL pointers, @p len 0
 * @retval TF_ERR_NO_SPACE the record is larger than tf_fring_max_record()
 * @retval TF_ERR_PORT a flash hook failed (the record is not stored; the next push starts a new sector)
 */
tf_err_t tf_fring_push(tf_fring_t *r, const uint8_t *data, size_t len);

/**
 * @brief Copy the oldest live record into @p buf.
 * @retval TF_OK
 * @retval TF_ERR_END the ring is empty
 * @retval TF_ERR_NO_SPACE @p cap is smaller than the record (*len says how large it is)
 * @retval TF_ERR_PORT a read failed or the record no longer matches its CRC
 */
tf_err_t tf_fring_peek(const tf_fring_t *r, uint8_t *buf, size_t cap, size_t *len);

/**
 * @brief Mark the oldest live record consumed (after its publish was acknowledged).
 * @retval TF_OK
 * @retval TF_ERR_END the ring is empty
 * @retval TF_ERR_PORT a flash hook failed
 */
tf_err_t tf_fring_pop(tf_fring_t *r);

#ifdef __cplusplus
}
#endif
#endif
