/* Flash-backed store-and-forward ring (tf_fring.h): round-robin erase sectors with sequence-numbered
 * headers, records with a CRC-32 over length and data, consumption marked by programming a flags unit. */
#include "tinyfleet/tf_fring.h"

#include <string.h>

#define MAGIC 0x31524654u /* "TFR1" */
#define SECTOR_HDR 12u    /* magic, seq, crc32 */
#define RECORD_HDR 6u     /* len u16, crc32 */

static uint32_t up(const tf_flash_t *f, uint32_t n) { return (n + f->prog_size - 1u) & ~(f->prog_size - 1u); }

static uint32_t rec_size(const tf_flash_t *f, uint32_t n) { return f->prog_size + up(f, RECORD_HDR) + up(f, n); }

/* CRC-32 (IEEE 802.3, reflected 0xEDB88320), bitwise: no table */
static uint32_t crc32_update(uint32_t c, const uint8_t *p, size_t n)
{
    int k;
    while (n-- > 0) {
        c ^= *p++;
        for (k = 0; k < 8; k++) {
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
        }
    }
    return c;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static tf_err_t rd(const tf_fring_t *r, uint32_t sec, uint32_t off, uint8_t *buf, size_t n)
{
    const tf_flash_t *f = r->flash;
    return f->read(f->user, sec * f->sector_size + off, buf, n) == TF_OK ? TF_OK : TF_ERR_PORT;
}

static tf_err_t prog(const tf_fring_t *r, uint32_t sec, uint32_t off, const uint8_t *buf, size_t n)
{
    const tf_flash_t *f = r->flash;
    return f->program(f->user, sec * f->sector_size + off, buf, n) == TF_OK ? TF_OK : TF_ERR_PORT;
}

/* 1 and its sequence number when the sector starts with a valid header */
static int sector_ok(const tf_fring_t *r, uint32_t sec, uint32_t *seq)
{
    uint8_t h[SECTOR_HDR];
    if (rd(r, sec, 0, h, sizeof h) != TF_OK || get32(h) != MAGIC || get32(h + 8) != ~crc32_update(~0u, h, 8)) {
        return 0;
    }
    *seq = get32(h + 4);
    return 1;
}

/* The record at (sec, off): 1 valid (*len, *live), 0 erased space (the end), -1 damaged — a write that a
 * reset cut short; the sector takes nothing more after it. */
static int record_at(const tf_fring_t *r, uint32_t sec, uint32_t off, uint32_t *len, int *live)
{
    const tf_flash_t *f = r->flash;
    uint8_t b[TF_CFG_FLASH_MAX_PROG + RECORD_HDR], chunk[32];
    uint32_t p = f->prog_size, n, done, crc, i;
    if (off + p + up(f, RECORD_HDR) > f->sector_size) {
        return 0; /* no room for another record */
    }
    if (rd(r, sec, off, b, p + RECORD_HDR) != TF_OK) {
        return -1;
    }
    n = (uint32_t)b[p] | (uint32_t)b[p + 1] << 8;
    if (n == 0xFFFFu) {
        for (i = 0; i < p + RECORD_HDR; i++) {
            if (b[i] != 0xFFu) {
                return -1; /* a header cut short */
            }
        }
        return 0;
    }
    if (n == 0 || off + rec_size(f, n) > f->sector_size) {
        return -1;
    }
    crc = crc32_update(~0u, b + p, 2);
    for (done = 0; done < n; done += (uint32_t)sizeof chunk) {
        size_t k = n - done < sizeof chunk ? n - done : sizeof chunk;
        if (rd(r, sec, off + p + up(f, RECORD_HDR) + done, chunk, k) != TF_OK) {
            return -1;
        }
        crc = crc32_update(crc, chunk, k);
    }
    if (~crc != get32(b + p + 2)) {
        return -1;
    }
    *live = 1;
    for (i = 0; i < p; i++) {
        *live &= b[i] == 0xFFu;
    }
    *len = n;
    return 1;
}

/* Point the reader at the first live record at or after (sec, off), up to the write position. */
static void seek_live(tf_fring_t *r, uint32_t sec, uint32_t off)
{
    const tf_flash_t *f = r->flash;
    uint32_t steps, n, seq;
    int live;
    for (steps = 0; steps <= f->sectors && r->count > 0; steps++) {
        if (sector_ok(r, sec, &seq)) {
            while (record_at(r, sec, off, &n, &live) == 1) {
                if (live) {
                    r->rsec = sec;
                    r->roff = off;
                    return;
                }
                off += rec_size(f, n);
            }
        }
        if (sec == r->wsec) {
            break;
        }
        sec = (sec + 1u) % f->sectors;
        off = up(f, SECTOR_HDR);
    }
    r->count = 0; /* nothing live (the count is what flash says) */
    r->rsec = r->wsec;
    r->roff = r->woff;
}

/* live records of a sector */
static uint32_t live_in(const tf_fring_t *r, uint32_t sec)
{
    uint32_t off = up(r->flash, SECTOR_HDR), n, seq, count = 0;
    int live;
    if (!sector_ok(r, sec, &seq)) {
        return 0;
    }
    while (record_at(r, sec, off, &n, &live) == 1) {
        count += (uint32_t)live;
        off += rec_size(r->flash, n);
    }
    return count;
}

tf_err_t tf_fring_mount(tf_fring_t *r, const tf_flash_t *f)
{
    uint32_t s, seq, off, n, i;
    int found = 0, k, live;
    if (r == NULL || f == NULL || f->erase == NULL || f->program == NULL || f->read == NULL || f->sectors < 2 ||
        f->prog_size == 0 || f->prog_size > TF_CFG_FLASH_MAX_PROG || (f->prog_size & (f->prog_size - 1u)) != 0 ||
        f->sector_size % f->prog_size != 0 || f->sector_size > UINT32_MAX / f->sectors ||
        f->sector_size < up(f, SECTOR_HDR) + rec_size(f, 1)) {
        return TF_ERR_ARG;
    }
    memset(r, 0, sizeof *r);
    r->flash = f;
    for (s = 0; s < f->sectors; s++) {
        if (sector_ok(r, s, &seq) && (!found || seq > r->seq)) {
            r->seq = seq;
            r->wsec = s;
            found = 1;
        }
    }
    if (!found) {
        /* an empty ring: the first push starts sector 0 */
        r->wsec = f->sectors - 1u;
        r->wfull = 1;
        r->rsec = r->wsec;
        r->roff = r->woff = f->sector_size;
        return TF_OK;
    }
    /* the write position: after the last valid record of the newest sector */
    off = up(f, SECTOR_HDR);
    while ((k = record_at(r, r->wsec, off, &n, &live)) == 1) {
        off += rec_size(f, n);
    }
    r->woff = off;
    r->wfull = (uint8_t)(k < 0);
    /* live records, oldest sector first: the one after the newest, round to the newest */
    for (i = 1; i <= f->sectors; i++) {
        s = (r->wsec + i) % f->sectors;
        r->count += live_in(r, s);
    }
    r->rsec = r->wsec;
    r->roff = r->woff;
    if (r->count > 0) {
        uint32_t c = r->count;
        seek_live(r, (r->wsec + 1u) % f->sectors, up(f, SECTOR_HDR));
        r->count = r->count > 0 ? c : 0;
    }
    return TF_OK;
}

size_t tf_fring_max_record(const tf_fring_t *r)
{
    size_t n;
    if (r == NULL || r->flash == NULL) {
        return 0;
    }
    n = r->flash->sector_size - up(r->flash, SECTOR_HDR) - r->flash->prog_size - up(r->flash, RECORD_HDR);
    return n < 0xFFFEu ? n : 0xFFFEu;
}

/* Move to the next sector: erase it (dropping its live records) and write its header. */
static tf_err_t new_sector(tf_fring_t *r)
{
    const tf_flash_t *f = r->flash;
    uint8_t h[TF_CFG_FLASH_MAX_PROG > SECTOR_HDR ? TF_CFG_FLASH_MAX_PROG : SECTOR_HDR];
    uint32_t next = (r->wsec + 1u) % f->sectors, lost = live_in(r, next);
    r->wfull = 1; /* until the new sector is ready */
    if (f->erase(f->user, next) != TF_OK) {
        return TF_ERR_PORT;
    }
    memset(h, 0xFF, sizeof h);
    put32(h, MAGIC);
    put32(h + 4, r->seq + 1u);
    put32(h + 8, ~crc32_update(~0u, h, 8));
    r->dropped += lost;
    r->count -= lost < r->count ? lost : r->count;
    if (r->count > 0 && r->rsec == next) {
        seek_live(r, (next + 1u) % f->sectors, up(f, SECTOR_HDR)); /* the oldest left, in the newer sectors */
    }
    if (prog(r, next, 0, h, up(f, SECTOR_HDR)) != TF_OK) {
        return TF_ERR_PORT; /* erased without a header: the next push erases it again */
    }
    r->seq++;
    r->wsec = next;
    r->woff = up(f, SECTOR_HDR);
    r->wfull = 0;
    if (r->count == 0) {
        r->rsec = r->wsec;
        r->roff = r->woff;
    }
    return TF_OK;
}

tf_err_t tf_fring_push(tf_fring_t *r, const uint8_t *data, size_t len)
{
    const tf_flash_t *f;
    uint8_t h[TF_CFG_FLASH_MAX_PROG > RECORD_HDR ? TF_CFG_FLASH_MAX_PROG : RECORD_HDR];
    uint32_t off, full, hdr;
    tf_err_t e;
    if (r == NULL || r->flash == NULL || data == NULL || len == 0) {
        return TF_ERR_ARG;
    }
    f = r->flash;
    if (len > tf_fring_max_record(r)) {
        return TF_ERR_NO_SPACE;
    }
    if ((r->wfull || r->woff + rec_size(f, (uint32_t)len) > f->sector_size) && (e = new_sector(r)) != TF_OK) {
        return e;
    }
    off = r->woff;
    hdr = up(f, RECORD_HDR);
    memset(h, 0xFF, sizeof h);
    h[0] = (uint8_t)len;
    h[1] = (uint8_t)(len >> 8);
    put32(h + 2, ~crc32_update(crc32_update(~0u, h, 2), data, len));
    /* header first: a reset before the data is complete leaves a record whose CRC fails */
    r->wfull = 1;
    if (prog(r, r->wsec, off + f->prog_size, h, hdr) != TF_OK) {
        return TF_ERR_PORT;
    }
    full = (uint32_t)len & ~(f->prog_size - 1u);
    if (full > 0 && prog(r, r->wsec, off + f->prog_size + hdr, data, full) != TF_OK) {
        return TF_ERR_PORT;
    }
    if (full < len) {
        memset(h, 0xFF, sizeof h);
        memcpy(h, data + full, len - full);
        if (prog(r, r->wsec, off + f->prog_size + hdr + full, h, f->prog_size) != TF_OK) {
            return TF_ERR_PORT;
        }
    }
    r->wfull = 0;
    r->woff = off + rec_size(f, (uint32_t)len);
    if (r->count == 0) {
        r->rsec = r->wsec;
        r->roff = off;
    }
    r->count++;
    return TF_OK;
}

tf_err_t tf_fring_peek(const tf_fring_t *r, uint8_t *buf, size_t cap, size_t *len)
{
    uint32_t n;
    int live;
    if (r == NULL || r->flash == NULL || buf == NULL || len == NULL) {
        return TF_ERR_ARG;
    }
    if (r->count == 0) {
        return TF_ERR_END;
    }
    if (record_at(r, r->rsec, r->roff, &n, &live) != 1) {
        return TF_ERR_PORT;
    }
    *len = n;
    if (cap < n) {
        return TF_ERR_NO_SPACE;
    }
    return rd(r, r->rsec, r->roff + r->flash->prog_size + up(r->flash, RECORD_HDR), buf, n);
}

tf_err_t tf_fring_pop(tf_fring_t *r)
{
    uint8_t zero[TF_CFG_FLASH_MAX_PROG];
    uint32_t n;
    int live;
    if (r == NULL || r->flash == NULL) {
        return TF_ERR_ARG;
    }
    if (r->count == 0) {
        return TF_ERR_END;
    }
    if (record_at(r, r->rsec, r->roff, &n, &live) != 1) {
        return TF_ERR_PORT;
    }
    memset(zero, 0, sizeof zero);
    if (prog(r, r->rsec, r->roff, zero, r->flash->prog_size) != TF_OK) {
        return TF_ERR_PORT;
    }
    r->count--;
    seek_live(r, r->rsec, r->roff + rec_size(r->flash, n));
    return TF_OK;
}
