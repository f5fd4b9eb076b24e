/**
 * @file tf_config.h
 * @brief Compile-time limits. Override any of them with -D or with a `tf_user_config.h` on the include
 *        path (define TF_USER_CONFIG). The defaults are the v1 protocol limits (docs/protocol.md).
 */
#ifndef TINYFLEET_TF_CONFIG_H
#define TINYFLEET_TF_CONFIG_H

#ifdef TF_USER_CONFIG
#include "tf_user_config.h"
#endif

/** Nesting the CBOR reader follows; no valid payload nests deeper than 4 (the service allows 400, and a
 *  deeper payload is invalid for it anyway, with another code). */
#ifndef TF_CFG_CBOR_MAX_DEPTH
#define TF_CFG_CBOR_MAX_DEPTH 8
#endif
/** Characters of texts (model id, x keys and values, fw, reason, op names). */
#ifndef TF_CFG_MAX_TEXT
#define TF_CFG_MAX_TEXT 64
#endif
/** Entries of `x`. */
#ifndef TF_CFG_MAX_EXTRAS
#define TF_CFG_MAX_EXTRAS 16
#endif
/** Size of `x` as docs/protocol.md defines it. */
#ifndef TF_CFG_MAX_EXTRAS_BYTES
#define TF_CFG_MAX_EXTRAS_BYTES 256
#endif
/** Pairs of `top`. */
#ifndef TF_CFG_MAX_TOP_K
#define TF_CFG_MAX_TOP_K 16
#endif
/** Values of an array `val`. */
#ifndef TF_CFG_MAX_VAL
#define TF_CFG_MAX_VAL 64
#endif
/** Entries of `caps.ops`. */
#ifndef TF_CFG_MAX_OPS
#define TF_CFG_MAX_OPS 128
#endif
/** A single encoded event. */
#ifndef TF_CFG_MAX_EVENT_BYTES
#define TF_CFG_MAX_EVENT_BYTES 1024
#endif
/** Events of a batch. */
#ifndef TF_CFG_MAX_BATCH_EVENTS
#define TF_CFG_MAX_BATCH_EVENTS 256
#endif
/** Characters of `msg` in ota/status. */
#ifndef TF_CFG_MAX_OTA_MSG
#define TF_CFG_MAX_OTA_MSG 160
#endif
/** Bytes of a dotted field path in a ::tf_wire_error_t ("top[15].score", "x.<64 chars>"). */
#ifndef TF_CFG_FIELD_PATH
#define TF_CFG_FIELD_PATH 80
#endif
/** Text bytes a ::tf_decode_buf_t holds for flattened indefinite-length texts and lenient key names. */
#ifndef TF_CFG_DECODE_TEXT_BYTES
#define TF_CFG_DECODE_TEXT_BYTES 1024
#endif
/** 1: the floats of events (anom, val, x) are `float`, written as float32 — what a Cortex-M4 with a
 *  single-precision FPU wants (no soft-double library). 0 (default): `double`, written as float32 when exact,
 *  else float64, as the reference encoder does (needed to decode float64 payloads exactly). */
#ifndef TF_CFG_REAL_FLOAT
#define TF_CFG_REAL_FLOAT 0
#endif
/** Topic prefix when the caller passes NULL. */
#ifndef TF_CFG_DEFAULT_PREFIX
#define TF_CFG_DEFAULT_PREFIX "tf/v1"
#endif
/** A manifest larger than this is refused before it is parsed (docs/ota.md). */
#ifndef TF_CFG_MAX_MANIFEST_BYTES
#define TF_CFG_MAX_MANIFEST_BYTES 1024
#endif
/** Trusted OTA keys a device can hold (key rotation needs 2). */
#ifndef TF_CFG_MAX_TRUSTED_KEYS
#define TF_CFG_MAX_TRUSTED_KEYS 4
#endif
/** Bytes of the manifest URI kept by the OTA client (the format allows 256). */
#ifndef TF_CFG_MAX_URI
#define TF_CFG_MAX_URI 256
#endif

#endif
