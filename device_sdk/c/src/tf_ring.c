#include "tinyfleet/tf_ring.h"

#include <string.h>

#define WRAP_MARK 0xFFFFu

tf_err_t tf_ring_init(tf_ring_t *r, uint8_t *mem, size_t cap)
{
    if (r == NULL || mem == NULL || cap < 3) {
        return TF_ERR_ARG;
    }
    r->mem = mem;
    r->cap = cap;
    r->head = 0;
    r->tail = 0;
    r->count = 0;
    r->dropped = 0;
    return TF_OK;
}

/* the offset of the record at @p at, following a wrap mark or a too short end */
static size_t record_at(const tf_ring_t *r, size_t at)
{
    if (r->cap - at < 2 || (((size_t)r->mem[at] << 8) | r->mem[at + 1]) == WRAP_MARK) {
        return 0;
    }
    return at;
}

static size_t record_len(const tf_ring_t *r, size_t at) { return ((size_t)r->mem[at] << 8) | r->mem[at + 1]; }

tf_err_t tf_ring_peek(const tf_ring_t *r, const uint8_t **data, size_t *len)
{
    size_t at;
    if (r == NULL || data == NULL || len == NULL) {
        return TF_ERR_ARG;
    }
    if (r->count == 0) {
        return TF_ERR_END;
    }
    at = record_at(r, r->head);
    *len = record_len(r, at);
    *data = r->mem + at + 2;
    return TF_OK;
}

tf_err_t tf_ring_pop(tf_ring_t *r)
{
    size_t at;
    if (r == NULL) {
        return TF_ERR_ARG;
    }
    if (r->count == 0) {
        return TF_ERR_END;
    }
    at = record_at(r, r->head);
    r->head = at + 2 + record_len(r, at);
    if (--r->count == 0) {
        r->head = 0;
        r->tail = 0;
    }
    return TF_OK;
}

/* where a record of @p n bytes (header included) can go, or cap when it does not fit now */
static size_t place(const tf_ring_t *r, size_t n)
{
    int wrapped = r->tail < r->head || (r->tail == r->head && r->count > 0);
    if (r->count == 0) {
        return n <= r->cap ? 0 : r->cap;
    }
    if (wrapped) {
        return n <= r->head - r->tail ? r->tail : r->cap;
    }
    if (n <= r->cap - r->tail) {
        return r->tail;
    }
    return n <= r->head ? 0 : r->cap;
}

tf_err_t tf_ring_push(tf_ring_t *r, const uint8_t *data, size_t len)
{
    size_t n = len + 2, at;
    if (r == NULL || data == NULL || len == 0 || len >= WRAP_MARK) {
        return TF_ERR_ARG;
    }
    if (n > r->cap) {
        return TF_ERR_NO_SPACE;
    }
    while ((at = place(r, n)) == r->cap) {
        (void)tf_ring_pop(r);
        r->dropped++;
    }
    if (at == 0 && r->count > 0 && r->tail != 0 && r->cap - r->tail >= 2) {
        r->mem[r->tail] = (uint8_t)(WRAP_MARK >> 8);
        r->mem[r->tail + 1] = (uint8_t)WRAP_MARK;
    }
    r->mem[at] = (uint8_t)(len >> 8);
    r->mem[at + 1] = (uint8_t)len;
    memcpy(r->mem + at + 2, data, len);
    r->tail = at + n;
    r->count++;
    return TF_OK;
}
