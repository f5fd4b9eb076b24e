/**
 * @file tf_tflm.h
 * @brief From a TFLite Micro int8 output tensor to the fields of an event: label and score, top-k, and an
 *        anomaly score (mean squared error between an autoencoder's input and output). Pass the tensor's
 *        `data.int8`, its element count and `params.scale` / `params.zero_point`.
 */
#ifndef TINYFLEET_TF_TFLM_H
#define TINYFLEET_TF_TFLM_H

#include <stddef.h>
#include <stdint.h>

#include "tf_event.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief The best class: the index of the largest value and its dequantized score, clamped to [0, 1].
 * @retval TF_OK
 * @retval TF_ERR_ARG NULL pointers, @p len 0 or above 65536, a scale that is not positive and finite
 */
tf_err_t tf_tflm_top1(const int8_t *data, size_t len, float scale, int32_t zero_point, uint16_t *label,
                      float *score);

/**
 * @brief The @p k best classes, best first (ties: lower index first); @p k is capped at @p len and
 *        TF_CFG_MAX_TOP_K.
 * @param[out] out_n pairs written
 * @retval TF_OK
 * @retval TF_ERR_ARG as tf_tflm_top1(), or @p k 0
 */
tf_err_t tf_tflm_topk(const int8_t *data, size_t len, float scale, int32_t zero_point, size_t k, tf_top_t *out,
                      size_t *out_n);

/**
 * @brief Mean squared error between the dequantized input and output of an autoencoder (both @p len values).
 * @retval TF_OK
 * @retval TF_ERR_ARG NULL pointers, @p len 0, bad scales
 */
tf_err_t tf_tflm_anomaly_mse(const int8_t *input, float in_scale, int32_t in_zero_point, const int8_t *output,
                             float out_scale, int32_t out_zero_point, size_t len, tf_real_t *mse);

/**
 * @brief Fill a classification event from an int8 output tensor (top-1 label and score; with @p top_k > 1
 *        also `top` in @p top_buf). `seq`, `boot`, `model` are the caller's.
 * @retval TF_OK
 * @retval TF_ERR_ARG as tf_tflm_topk()
 */
tf_err_t tf_tflm_classification(const int8_t *data, size_t len, float scale, int32_t zero_point, size_t top_k,
                                tf_top_t *top_buf, tf_event_t *ev);

#ifdef __cplusplus
}
#endif
#endif
