/**
 * @file tf_topic.h
 * @brief The topic tree `{prefix}/{device}/{channel}` (docs/protocol.md "Topic tree") and device ids.
 */
#ifndef TINYFLEET_TF_TOPIC_H
#define TINYFLEET_TF_TOPIC_H

#include <stddef.h>

#include "tf_err.h"
#include "tf_wire.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TF_CH_EVT,        /**< device -> service, QoS 1 */
    TF_CH_TEL,        /**< device -> service, QoS 0 or 1 */
    TF_CH_STATE,      /**< device -> service, QoS 1, retained (birth, LWT) */
    TF_CH_OTA,        /**< service -> device, QoS 1, retained (signed manifest) */
    TF_CH_OTA_STATUS, /**< device -> service, QoS 1 */
    TF_CH_CMD,        /**< service -> device, QoS 1 */
    TF_CH_CMD_ACK,    /**< device -> service, QoS 1 */
    TF_CH__COUNT
} tf_channel_t;

/** Longest topic with the default prefix: "tf/v1/" + 64 + "/ota/status" + NUL. */
#define TF_TOPIC_MAX (sizeof(TF_CFG_DEFAULT_PREFIX) + 1 + 64 + 11 + 1)

/**
 * @brief Check a device id: `[A-Za-z0-9][A-Za-z0-9._:-]{0,63}`.
 * @retval TF_OK
 * @retval TF_ERR_BAD_DEVICE_ID
 */
tf_err_t tf_device_id_check(const char *id, size_t len);

/**
 * @brief Check a topic prefix: non-empty, no `+`, `#`, NUL, leading `$`, empty level, leading/trailing `/`.
 * @retval TF_OK
 * @retval TF_ERR_BAD_TOPIC
 */
tf_err_t tf_prefix_check(const char *prefix);

/**
 * @brief The name of a channel ("evt", "ota/status", ...).
 * @retval TF_OK
 * @retval TF_ERR_ARG unknown channel or NULL @p out
 */
tf_err_t tf_channel_name(tf_channel_t ch, const char **out);

/**
 * @brief QoS and retain flag of what the device publishes on @p ch (the table of docs/protocol.md).
 * @retval TF_OK
 * @retval TF_ERR_ARG unknown channel or NULL outputs
 */
tf_err_t tf_channel_qos(tf_channel_t ch, int *qos, int *retain);

/**
 * @brief Build `{prefix}/{device}/{channel}` as a NUL-terminated string.
 * @param prefix NULL for TF_CFG_DEFAULT_PREFIX
 * @param[out] out_len length without the NUL (may be NULL)
 * @retval TF_OK
 * @retval TF_ERR_BAD_TOPIC bad prefix
 * @retval TF_ERR_BAD_DEVICE_ID bad device id
 * @retval TF_ERR_ARG bad channel or NULL pointers
 * @retval TF_ERR_NO_SPACE @p cap too small (TF_TOPIC_MAX is always enough with the default prefix)
 */
tf_err_t tf_topic_build(const char *prefix, const char *device_id, tf_channel_t ch, char *buf, size_t cap,
                        size_t *out_len);

/**
 * @brief Split a topic of the tree into its device id (pointing into @p topic) and channel.
 * @param prefix NULL for TF_CFG_DEFAULT_PREFIX
 * @retval TF_OK
 * @retval TF_ERR_BAD_TOPIC not `{prefix}/{device}/{channel}` with a known channel
 * @retval TF_ERR_BAD_DEVICE_ID the device level is not a valid id
 */
tf_err_t tf_topic_parse(const char *prefix, const char *topic, size_t len, tf_str_t *device_id, tf_channel_t *ch);

#ifdef __cplusplus
}
#endif
#endif
