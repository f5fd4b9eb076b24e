/**
 * @file tf_flash_file.h
 * @brief The host's tf_flash_t: a file of `sectors * sector_size` bytes with NOR semantics — erase sets a
 *        sector to 0xFF, program refuses misaligned writes and writes over bytes that are not erased (so a
 *        test catches a ring that would corrupt real flash). For tests and for Linux devices.
 */
#ifndef TINYFLEET_TF_FLASH_FILE_H
#define TINYFLEET_TF_FLASH_FILE_H

#include "tf_port.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int fd;
    tf_flash_t flash; /**< pass &ff.flash to tf_fring_mount() */
} tf_flash_file_t;

/**
 * @brief Open (or create, erased) @p path as a flash of @p sectors x @p sector_size bytes.
 * @retval TF_OK
 * @retval TF_ERR_ARG NULL pointers or a zero geometry
 * @retval TF_ERR_PORT the file cannot be opened or sized
 */
tf_err_t tf_flash_file_open(tf_flash_file_t *ff, const char *path, uint32_t sector_size, uint32_t sectors,
                            uint32_t prog_size);

/** @brief Close the file. @retval TF_OK */
tf_err_t tf_flash_file_close(tf_flash_file_t *ff);

#ifdef __cplusplus
}
#endif
#endif
