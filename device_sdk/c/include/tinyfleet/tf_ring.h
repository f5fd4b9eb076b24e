/**
 * @file tf_ring.h
 * @brief Store-and-forward: a ring of encoded events over caller storage. While the device is offline it
 *        keeps the encoded payloads (with their boot and seq, so the service deduplicates a replay); when
 *        connected the application publishes the oldest first and pops it once the broker acknowledged it
 *        (PUBACK). When full, the oldest events are dropped and counted (report `dropped` in telemetry).
 *
 * Each record costs its payload plus a 2-byte length; a wrap wastes at most one record's worth of bytes at
 * the end of the storage. Not thread-safe: call it from one context (or lock around it).
 */
#ifndef TINYFLEET_TF_RING_H
#define TINYFLEET_TF_RING_H

#include <stddef.h>
#include <stdint.h>

#include "tf_err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint8_t *mem;
    size_t cap;
    size_t head;      /**< offset of the oldest record */
    size_t tail;      /**< where the next record goes */
    uint32_t count;   /**< records held */
    uint32_t dropped; /**< records dropped because the ring was full (since init) */
} tf_ring_t;

/**
 * @brief Use `mem[0..cap)` as an empty ring.
 * @retval TF_OK
 * @retval TF_ERR_ARG NULL pointers or @p cap below 3
 */
tf_err_t tf_ring_init(tf_ring_t *r, uint8_t *mem, size_t cap);

/**
 * @brief Append a copy of @p data; drops (and counts) the oldest records until it fits.
 * @retval TF_OK
 * @retval TF_ERR_ARG NULL pointers, @p len 0 or above 65534
 * @retval TF_ERR_NO_SPACE the record (len + 2) is larger than the whole ring; nothing is dropped
 */
tf_err_t tf_ring_push(tf_ring_t *r, const uint8_t *data, size_t len);

/**
 * @brief The oldest record (pointing into the ring's storage, valid until the next push or pop).
 * @retval TF_OK
 * @retval TF_ERR_END the ring is empty
 * @retval TF_ERR_ARG NULL pointers
 */
tf_err_t tf_ring_peek(const tf_ring_t *r, const uint8_t **data, size_t *len);

/**
 * @brief Remove the oldest record (after its publish was acknowledged).
 * @retval TF_OK
 * @retval TF_ERR_END the ring is empty
 * @retval TF_ERR_ARG NULL @p r
 */
tf_err_t tf_ring_pop(tf_ring_t *r);

#ifdef __cplusplus
}
#endif
#endif
