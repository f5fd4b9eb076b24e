/* Flash-backed ring (tf_fring.h): oldest first across remounts, drops counted, NOR rules kept at every program
 * granularity, wear spread over the sectors, and a power cut at every single flash write losing at most the
 * record being written. On the host the flash is the POSIX port's file (port/posix/tf_flash_file.c); under
 * QEMU (TF_TEST_RAM_FLASH) a RAM array with the same NOR rules. */
#ifndef TF_TEST_RAM_FLASH
#define _POSIX_C_SOURCE 200809L
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tinyfleet/tf_event.h"
#include "tinyfleet/tf_fring.h"

#define SECTOR 256u
#define SECTORS 4u
#define MAX_OPS 512u
#define MAX_LIVE 128u

/* ------------------------------------------------------------------------------------ the flash */

#ifdef TF_TEST_RAM_FLASH
static uint8_t ram[SECTOR * SECTORS];
static tf_flash_t ram_flash;

static tf_err_t ram_erase(void *user, uint32_t sector)
{
    (void)user;
    memset(ram + sector * SECTOR, 0xFF, SECTOR);
    return TF_OK;
}

static tf_err_t ram_program(void *user, uint32_t addr, const uint8_t *data, size_t len)
{
    size_t i;
    (void)user;
    if (addr % ram_flash.prog_size != 0 || len % ram_flash.prog_size != 0 || addr + len > sizeof ram) {
        return TF_ERR_ARG;
    }
    for (i = 0; i < len; i++) {
        if (ram[addr + i] != 0xFFu) {
            return TF_ERR_ARG; /* NOR: only erased bytes */
        }
    }
    memcpy(ram + addr, data, len);
    return TF_OK;
}

static tf_err_t ram_read(void *user, uint32_t addr, uint8_t *buf, size_t len)
{
    (void)user;
    memcpy(buf, ram + addr, len);
    return TF_OK;
}

/* a fresh, erased flash */
static const tf_flash_t *backend_new(uint32_t prog)
{
    memset(ram, 0xFF, sizeof ram);
    ram_flash.sector_size = SECTOR;
    ram_flash.sectors = SECTORS;
    ram_flash.prog_size = prog;
    ram_flash.erase = ram_erase;
    ram_flash.program = ram_program;
    ram_flash.read = ram_read;
    return &ram_flash;
}

/* bytes as a cut-short write leaves them, bypassing the NOR check */
static void backend_raw(uint32_t addr, const uint8_t *data, size_t len) { memcpy(ram + addr, data, len); }
#else
#include <unistd.h>

#include "tf_flash_file.h"

static tf_flash_file_t file_flash;

static const tf_flash_t *backend_new(uint32_t prog)
{
    static const char path[] = "test_fring.flash";
    if (file_flash.fd > 0) {
        (void)tf_flash_file_close(&file_flash);
    }
    (void)unlink(path);
    assert_int_equal(tf_flash_file_open(&file_flash, path, SECTOR, SECTORS, prog), TF_OK);
    return &file_flash.flash;
}

static void backend_raw(uint32_t addr, const uint8_t *data, size_t len)
{
    assert_int_equal(pwrite(file_flash.fd, data, len, (off_t)addr), (ssize_t)len);
}
#endif

/* A flash whose power goes after `budget` more writes (erases and programs): that write is cut short —
 * half a program's bytes, the first half of an erase — and every later one fails. */
typedef struct {
    const tf_flash_t *real;
    tf_flash_t flash;
    long budget; /* < 0: never */
    int dead;
    uint32_t writes;
    uint32_t erases[SECTORS];
} cut_t;

static tf_err_t cut_erase(void *user, uint32_t sector)
{
    cut_t *c = user;
    if (c->dead) {
        return TF_ERR_PORT;
    }
    c->writes++;
    if (c->budget-- == 0) {
        uint8_t ones[SECTOR / 2];
        memset(ones, 0xFF, sizeof ones);
        backend_raw(sector * SECTOR, ones, sizeof ones);
        c->dead = 1;
        return TF_ERR_PORT;
    }
    c->erases[sector]++;
    return c->real->erase(c->real->user, sector);
}

static tf_err_t cut_program(void *user, uint32_t addr, const uint8_t *data, size_t len)
{
    cut_t *c = user;
    if (c->dead) {
        return TF_ERR_PORT;
    }
    c->writes++;
    if (c->budget-- == 0) {
        backend_raw(addr, data, len / 2);
        c->dead = 1;
        return TF_ERR_PORT;
    }
    return c->real->program(c->real->user, addr, data, len);
}

static tf_err_t cut_read(void *user, uint32_t addr, uint8_t *buf, size_t len)
{
    cut_t *c = user;
    return c->real->read(c->real->user, addr, buf, len);
}

static const tf_flash_t *cut_init(cut_t *c, const tf_flash_t *real, long budget)
{
    memset(c, 0, sizeof *c);
    c->real = real;
    c->flash = *real;
    c->flash.user = c;
    c->flash.erase = cut_erase;
    c->flash.program = cut_program;
    c->flash.read = cut_read;
    c->budget = budget;
    return &c->flash;
}

/* ---------------------------------------------------------------------------------- records */

static size_t record(uint32_t seq, uint8_t *buf)
{
    size_t n = 5u + (seq * 7u) % 50u, i;
    buf[0] = (uint8_t)seq;
    buf[1] = (uint8_t)(seq >> 8);
    for (i = 2; i < n; i++) {
        buf[i] = (uint8_t)(seq + i);
    }
    return n;
}

/* the seq of an intact record */
static uint32_t check_record(const uint8_t *p, size_t n)
{
    uint8_t want[64];
    uint32_t seq;
    assert_true(n >= 2);
    seq = (uint32_t)p[0] | (uint32_t)p[1] << 8;
    assert_int_equal(record(seq, want), n);
    assert_true(memcmp(want, p, n) == 0);
    return seq;
}

/* everything live, oldest first, popped */
static size_t drain(tf_fring_t *r, uint32_t *out, size_t max)
{
    uint8_t buf[256];
    size_t n, k = 0;
    while (tf_fring_peek(r, buf, sizeof buf, &n) == TF_OK) {
        assert_true(k < max);
        out[k++] = check_record(buf, n);
        assert_int_equal(tf_fring_pop(r), TF_OK);
    }
    assert_int_equal(r->count, 0);
    return k;
}

/* ------------------------------------------------------------------------------------ workload */

typedef struct {
    int pop;      /* else push */
    uint32_t seq; /* of a push */
} op_t;

static size_t workload(op_t *ops)
{
    size_t n = 0;
    uint32_t i;
    for (i = 0; i < 60; i++) {
        ops[n].pop = 0;
        ops[n++].seq = i;
        if (i % 3 == 2) {
            ops[n++].pop = 1;
        }
    }
    return n;
}

typedef struct {
    uint32_t live[MAX_LIVE];
    size_t n;
} model_t;

static void model_drop_oldest(model_t *m, size_t k)
{
    assert_true(k <= m->n);
    memmove(m->live, m->live + k, (m->n - k) * sizeof m->live[0]);
    m->n -= k;
}

/* Run ops on r until one fails; the model follows each op that succeeded (drops by the ring's count).
 * Returns the index of the failed op, or n. */
static size_t run(tf_fring_t *r, const op_t *ops, size_t n, model_t *m, uint32_t *dropped_by)
{
    uint8_t buf[64];
    size_t i;
    for (i = 0; i < n; i++) {
        uint32_t before = r->dropped;
        if (ops[i].pop) {
            tf_err_t e = tf_fring_pop(r);
            if (e == TF_ERR_END) {
                assert_int_equal(m->n, 0);
                continue;
            }
            if (e != TF_OK) {
                return i;
            }
            model_drop_oldest(m, 1);
        } else {
            size_t len = record(ops[i].seq, buf);
            if (tf_fring_push(r, buf, len) != TF_OK) {
                return i;
            }
            model_drop_oldest(m, r->dropped - before);
            m->live[m->n++] = ops[i].seq;
        }
        if (dropped_by != NULL) {
            dropped_by[i] = r->dropped - before;
        }
        assert_int_equal(r->count, m->n);
    }
    return n;
}

/* ---------------------------------------------------------------------------------------- tests */

static void test_replays_oldest_first_after_a_remount(void **state)
{
    tf_fring_t r;
    uint8_t buf[64];
    uint32_t out[MAX_LIVE], i;
    size_t k;
    const tf_flash_t *f = backend_new(8);
    (void)state;
    assert_int_equal(tf_fring_mount(&r, f), TF_OK);
    assert_int_equal(tf_fring_peek(&r, buf, sizeof buf, &k), TF_ERR_END);
    assert_int_equal(tf_fring_pop(&r), TF_ERR_END);
    for (i = 0; i < 8; i++) {
        assert_int_equal(tf_fring_push(&r, buf, record(i, buf)), TF_OK);
    }
    assert_int_equal(tf_fring_pop(&r), TF_OK); /* 0 acknowledged */
    /* a reset: only the flash is left */
    assert_int_equal(tf_fring_mount(&r, f), TF_OK);
    assert_int_equal(r.count, 7);
    k = drain(&r, out, MAX_LIVE);
    assert_int_equal(k, 7);
    for (i = 0; i < 7; i++) {
        assert_int_equal(out[i], i + 1);
    }
    assert_int_equal(tf_fring_mount(&r, f), TF_OK);
    assert_int_equal(r.count, 0);
}

static void test_keeps_encoded_events_with_their_boot_and_seq(void **state)
{
    tf_fring_t r;
    tf_event_t ev;
    uint8_t buf[64], back[64];
    size_t n, m;
    uint32_t i;
    (void)state;
    assert_int_equal(tf_fring_mount(&r, backend_new(4)), TF_OK);
    for (i = 0; i < 3; i++) {
        memset(&ev, 0, sizeof ev);
        ev.boot = 9;
        ev.seq = i;
        ev.model = tf_str("vib-cls");
        ev.kind = TF_KIND_CLASSIFICATION;
        ev.label = 2;
        ev.has = TF_EVT_LABEL;
        assert_int_equal(tf_event_encode(&ev, 0, buf, sizeof buf, &n), TF_OK);
        assert_int_equal(tf_fring_push(&r, buf, n), TF_OK);
    }
    assert_int_equal(tf_fring_mount(&r, r.flash), TF_OK);
    for (i = 0; i < 3; i++) {
        memset(&ev, 0, sizeof ev);
        ev.boot = 9;
        ev.seq = i;
        ev.model = tf_str("vib-cls");
        ev.kind = TF_KIND_CLASSIFICATION;
        ev.label = 2;
        ev.has = TF_EVT_LABEL;
        assert_int_equal(tf_event_encode(&ev, 0, buf, sizeof buf, &n), TF_OK);
        assert_int_equal(tf_fring_peek(&r, back, sizeof back, &m), TF_OK);
        assert_int_equal(m, n);
        assert_true(memcmp(back, buf, n) == 0); /* the same bytes: the same (boot, seq) */
        assert_int_equal(tf_fring_pop(&r), TF_OK);
    }
}

static void test_counts_the_oldest_events_it_drops_when_full(void **state)
{
    tf_fring_t r;
    uint8_t buf[64];
    uint32_t out[MAX_LIVE], i;
    size_t k;
    (void)state;
    assert_int_equal(tf_fring_mount(&r, backend_new(8)), TF_OK);
    for (i = 0; i < 100; i++) {
        assert_int_equal(tf_fring_push(&r, buf, record(i, buf)), TF_OK);
    }
    assert_true(r.dropped > 0);
    assert_int_equal(r.dropped + r.count, 100);
    k = drain(&r, out, MAX_LIVE);
    for (i = 0; i < k; i++) {
        assert_int_equal(out[i], 100 - k + i); /* the newest kept, in order */
    }
}

static void test_refuses_a_record_larger_than_a_sector_and_a_geometry_it_cannot_use(void **state)
{
    tf_fring_t r;
    tf_flash_t f;
    static uint8_t big[SECTOR];
    (void)state;
    assert_int_equal(tf_fring_mount(&r, backend_new(8)), TF_OK);
    assert_int_equal(tf_fring_max_record(&r), SECTOR - 16 - 8 - 8);
    assert_int_equal(tf_fring_push(&r, big, tf_fring_max_record(&r) + 1), TF_ERR_NO_SPACE);
    assert_int_equal(tf_fring_push(&r, big, tf_fring_max_record(&r)), TF_OK);
    assert_int_equal(tf_fring_push(&r, big, 0), TF_ERR_ARG);
    f = *r.flash;
    f.prog_size = 3;
    assert_int_equal(tf_fring_mount(&r, &f), TF_ERR_ARG);
    f.prog_size = 64;
    assert_int_equal(tf_fring_mount(&r, &f), TF_ERR_ARG);
    f.prog_size = 8;
    f.sectors = 1;
    assert_int_equal(tf_fring_mount(&r, &f), TF_ERR_ARG);
    f.sectors = SECTORS;
    f.sector_size = 32;
    assert_int_equal(tf_fring_mount(&r, &f), TF_ERR_ARG);
    f.sector_size = SECTOR;
    f.program = NULL;
    assert_int_equal(tf_fring_mount(&r, &f), TF_ERR_ARG);
}

static void test_keeps_nor_rules_at_every_program_granularity(void **state)
{
    static const uint32_t grains[] = {1, 2, 4, 8, 16, 32};
    static op_t ops[MAX_OPS];
    size_t n = workload(ops), g, k;
    (void)state;
    for (g = 0; g < sizeof grains / sizeof grains[0]; g++) {
        tf_fring_t r;
        model_t m;
        uint32_t out[MAX_LIVE];
        size_t i;
        memset(&m, 0, sizeof m);
        assert_int_equal(tf_fring_mount(&r, backend_new(grains[g])), TF_OK);
        /* the flash refuses a misaligned program or one over programmed bytes: every op must succeed */
        assert_int_equal(run(&r, ops, n, &m, NULL), n);
        assert_true(r.dropped > 0); /* it wrapped */
        assert_int_equal(tf_fring_mount(&r, r.flash), TF_OK);
        k = drain(&r, out, MAX_LIVE);
        assert_int_equal(k, m.n);
        for (i = 0; i < k; i++) {
            assert_int_equal(out[i], m.live[i]);
        }
    }
}

static void test_spreads_erases_evenly_over_the_sectors(void **state)
{
    tf_fring_t r;
    cut_t c;
    uint8_t buf[64];
    uint32_t i, lo = UINT32_MAX, hi = 0;
    (void)state;
    assert_int_equal(tf_fring_mount(&r, cut_init(&c, backend_new(8), -1)), TF_OK);
    for (i = 0; i < 400; i++) {
        assert_int_equal(tf_fring_push(&r, buf, record(i, buf)), TF_OK);
        assert_int_equal(tf_fring_pop(&r), TF_OK); /* online: every event acknowledged */
    }
    for (i = 0; i < SECTORS; i++) {
        lo = c.erases[i] < lo ? c.erases[i] : lo;
        hi = c.erases[i] > hi ? c.erases[i] : hi;
    }
    assert_true(lo >= 10);
    assert_true(hi - lo <= 1);
    assert_int_equal(r.dropped, 0);
}

static void test_loses_at_most_the_record_being_written_at_a_power_cut_at_every_write(void **state)
{
    static op_t ops[MAX_OPS];
    static uint32_t dropped_by[MAX_OPS];
    uint32_t writes;
    size_t n = workload(ops), cuts = 0;
    long k;
    tf_fring_t r;
    model_t m;
    cut_t c;
    (void)state;
    /* the uncut run: how many flash writes, and what each op drops */
    memset(&m, 0, sizeof m);
    assert_int_equal(tf_fring_mount(&r, cut_init(&c, backend_new(8), -1)), TF_OK);
    assert_int_equal(run(&r, ops, n, &m, dropped_by), n);
    writes = c.writes;
    assert_true(writes > 100);
    for (k = 0; k < (long)writes; k++) {
        uint32_t out[MAX_LIVE], extra[3] = {1000, 1001, 1002};
        uint8_t buf[64];
        size_t at, got, i, skip;
        memset(&m, 0, sizeof m);
        assert_int_equal(tf_fring_mount(&r, cut_init(&c, backend_new(8), k)), TF_OK);
        at = run(&r, ops, n, &m, NULL);
        assert_true(at < n); /* the power went during op `at` */
        cuts++;
        /* the reset: mount what is on the flash, and go on */
        assert_int_equal(tf_fring_mount(&r, c.real), TF_OK);
        for (i = 0; i < 3; i++) {
            assert_int_equal(tf_fring_push(&r, buf, record(extra[i], buf)), TF_OK);
        }
        got = drain(&r, out, MAX_LIVE);
        assert_true(got >= 3);
        for (i = 0; i < 3; i++) {
            assert_int_equal(out[got - 3 + i], extra[i]);
        }
        got -= 3;
        if (r.dropped > 0) {
            /* the three new ones evicted some: what is left is still in order */
            for (i = 1; i < got; i++) {
                assert_true(out[i] > out[i - 1]);
            }
            continue;
        }
        /* what was live before the cut, in order, less what the op in flight removed (the acknowledged
         * record of a pop; the evicted oldest sector of a push), then perhaps the record being pushed */
        for (skip = 0; skip <= m.n; skip++) {
            size_t rest = m.n - skip;
            if ((got == rest || (got == rest + 1 && !ops[at].pop && out[rest] == ops[at].seq)) &&
                memcmp(out, m.live + skip, rest * sizeof out[0]) == 0) {
                break;
            }
        }
        assert_true(skip <= m.n);
        if (ops[at].pop) {
            assert_true(skip <= 1);
        } else {
            assert_true(skip == 0 || skip == dropped_by[at]);
            assert_true(got == m.n - skip || skip == dropped_by[at]); /* its record only after the eviction */
        }
    }
    assert_int_equal(cuts, writes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replays_oldest_first_after_a_remount),
        cmocka_unit_test(test_keeps_encoded_events_with_their_boot_and_seq),
        cmocka_unit_test(test_counts_the_oldest_events_it_drops_when_full),
        cmocka_unit_test(test_refuses_a_record_larger_than_a_sector_and_a_geometry_it_cannot_use),
        cmocka_unit_test(test_keeps_nor_rules_at_every_program_granularity),
        cmocka_unit_test(test_spreads_erases_evenly_over_the_sectors),
        cmocka_unit_test(test_loses_at_most_the_record_being_written_at_a_power_cut_at_every_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
