/**
 * @file tf_cbor.h
 * @brief A small CBOR (RFC 8949) writer and reader over caller buffers: definite lengths when writing,
 *        shortest integer heads, float32/float64; the reader takes every well-formed item (indefinite
 *        lengths, float16, tags) and checks well-formedness without recursion.
 */
#ifndef TINYFLEET_TF_CBOR_H
#define TINYFLEET_TF_CBOR_H

#include <stddef.h>
#include <stdint.h>

#include "tf_config.h"
#include "tf_err.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A writer over `buf[0..cap)`. Errors are sticky: after the first, nothing more is written, but `len`
 *  keeps counting the bytes a large enough buffer would need. */
typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;
    tf_err_t err;
} tf_cbor_writer_t;

/**
 * @brief Start writing into @p buf.
 * @retval TF_OK
 * @retval TF_ERR_ARG @p w is NULL, or @p buf is NULL with a non-zero @p cap
 */
tf_err_t tf_cbor_writer_init(tf_cbor_writer_t *w, uint8_t *buf, size_t cap);

/** @brief Unsigned integer, shortest head. @retval TF_OK @retval TF_ERR_NO_SPACE (sticky) */
tf_err_t tf_cbor_put_uint(tf_cbor_writer_t *w, uint64_t v);
/** @brief Signed integer, shortest head. @retval TF_OK @retval TF_ERR_NO_SPACE (sticky) */
tf_err_t tf_cbor_put_int(tf_cbor_writer_t *w, int64_t v);
/** @brief Text string of @p len bytes (UTF-8, not checked). @retval TF_OK @retval TF_ERR_NO_SPACE */
tf_err_t tf_cbor_put_text(tf_cbor_writer_t *w, const char *s, size_t len);
/** @brief Byte string. @retval TF_OK @retval TF_ERR_NO_SPACE */
tf_err_t tf_cbor_put_bytes(tf_cbor_writer_t *w, const uint8_t *b, size_t len);
/** @brief Array head of @p n items. @retval TF_OK @retval TF_ERR_NO_SPACE */
tf_err_t tf_cbor_put_array(tf_cbor_writer_t *w, size_t n);
/** @brief Map head of @p n pairs. @retval TF_OK @retval TF_ERR_NO_SPACE */
tf_err_t tf_cbor_put_map(tf_cbor_writer_t *w, size_t n);
/** @brief `true` / `false`. @retval TF_OK @retval TF_ERR_NO_SPACE */
tf_err_t tf_cbor_put_bool(tf_cbor_writer_t *w, int v);
/** @brief `null`. @retval TF_OK @retval TF_ERR_NO_SPACE */
tf_err_t tf_cbor_put_null(tf_cbor_writer_t *w);
/** @brief float32 (`fa`). @retval TF_OK @retval TF_ERR_NO_SPACE */
tf_err_t tf_cbor_put_f32(tf_cbor_writer_t *w, float v);
/** @brief float64 (`fb`). @retval TF_OK @retval TF_ERR_NO_SPACE */
tf_err_t tf_cbor_put_f64(tf_cbor_writer_t *w, double v);
/** @brief float32 when it holds @p v exactly, else float64 (the protocol's rule for non-score floats).
 *  @retval TF_OK @retval TF_ERR_NO_SPACE */
tf_err_t tf_cbor_put_float(tf_cbor_writer_t *w, double v);
/** @brief A tf_real_t: float32 with TF_CFG_REAL_FLOAT, else as tf_cbor_put_float().
 *  @retval TF_OK @retval TF_ERR_NO_SPACE */
#if TF_CFG_REAL_FLOAT
typedef float tf_real_t;
#else
typedef double tf_real_t;
#endif
tf_err_t tf_cbor_put_real(tf_cbor_writer_t *w, tf_real_t v);
/** @brief Raw bytes (an already encoded item). @retval TF_OK @retval TF_ERR_NO_SPACE */
tf_err_t tf_cbor_put_raw(tf_cbor_writer_t *w, const uint8_t *b, size_t len);

typedef enum {
    TF_CBOR_UINT,
    TF_CBOR_NINT,   /**< negative integer: the value is -1 - `val` */
    TF_CBOR_BYTES,
    TF_CBOR_TEXT,
    TF_CBOR_ARRAY,
    TF_CBOR_MAP,
    TF_CBOR_TAG,
    TF_CBOR_FALSE,
    TF_CBOR_TRUE,
    TF_CBOR_NULL,
    TF_CBOR_UNDEFINED,
    TF_CBOR_SIMPLE,
    TF_CBOR_FLOAT,
    TF_CBOR_BREAK
} tf_cbor_type_t;

/** One item head as the reader saw it. */
typedef struct {
    tf_cbor_type_t type;
    uint8_t indefinite;   /**< strings, arrays, maps of indefinite length */
    uint8_t float_bits;   /**< 16, 32 or 64 for TF_CBOR_FLOAT */
    uint8_t shortest;     /**< the head uses the shortest form (deterministic encoding) */
    uint64_t val;         /**< uint / -1-nint / length / item count / tag number / simple value / float bits */
    const uint8_t *data;  /**< content of a definite string */
    size_t offset;        /**< where the head starts */
} tf_cbor_item_t;

typedef struct {
    const uint8_t *buf;
    size_t len;
    size_t pos;
} tf_cbor_reader_t;

/**
 * @brief Start reading `buf[0..len)`.
 * @retval TF_OK
 * @retval TF_ERR_ARG @p r is NULL, or @p buf is NULL with a non-zero @p len
 */
tf_err_t tf_cbor_reader_init(tf_cbor_reader_t *r, const uint8_t *buf, size_t len);

/**
 * @brief Read one head (and, for a definite string, step over its content).
 * @retval TF_OK
 * @retval TF_ERR_END at the end of the buffer
 * @retval TF_ERR_MALFORMED_CBOR truncated, or a reserved additional-information value
 */
tf_err_t tf_cbor_read(tf_cbor_reader_t *r, tf_cbor_item_t *item);

/**
 * @brief The value of a TF_CBOR_FLOAT item (float16 and float32 widened exactly); 0 for other items.
 *        (A function, so code that never reads floats does not link the soft-double helpers.)
 * @return the value
 */
double tf_cbor_float(const tf_cbor_item_t *item);

/**
 * @brief Check that one whole well-formed item starts at the reader's position, and step over it:
 *        lengths within the buffer, valid UTF-8 in texts, chunks of indefinite strings of their
 *        string's type, breaks only where they close something, nesting ≤ TF_CFG_CBOR_MAX_DEPTH.
 * @retval TF_OK the reader is after the item
 * @retval TF_ERR_MALFORMED_CBOR not well-formed (also for nesting deeper than the limit)
 */
tf_err_t tf_cbor_skip(tf_cbor_reader_t *r);

/**
 * @brief Whether `buf[0..len)` is exactly one well-formed item.
 * @retval TF_OK
 * @retval TF_ERR_MALFORMED_CBOR not well-formed (or empty)
 * @retval TF_ERR_TRAILING_BYTES bytes after the item
 */
tf_err_t tf_cbor_check(const uint8_t *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
