/**
 * @file tf_port_posix.h
 * @brief The POSIX host port: SHA-256 and Ed25519 from libsodium, persistent state and the artifact slots as
 *        files in a directory, downloads from `file://` paths or plain `http://` with a Range request.
 *        The reference for a firmware port: each hook of tf_port.h in a few lines.
 */
#ifndef TINYFLEET_TF_PORT_POSIX_H
#define TINYFLEET_TF_PORT_POSIX_H

#include "tf_port.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef tf_err_t (*tf_posix_publish_fn)(void *user, const char *topic, const uint8_t *payload, size_t len, int qos,
                                        int retain);

typedef struct {
    char dir[512];                /**< where ota_seq, ota_progress and the slot files live */
    tf_posix_publish_fn publish;  /**< the application's MQTT publish (NULL: reports are dropped) */
    void *publish_user;
    int no_clock;                 /**< 1: time_s reports no clock */
} tf_posix_port_t;

/**
 * @brief Fill @p port with the POSIX hooks over @p ctx (the directory must exist).
 * @retval TF_OK
 * @retval TF_ERR_ARG NULL pointers, a directory name that does not fit, or libsodium failed to start
 */
tf_err_t tf_posix_port_init(tf_port_t *port, tf_posix_port_t *ctx, const char *dir);

#ifdef __cplusplus
}
#endif
#endif
