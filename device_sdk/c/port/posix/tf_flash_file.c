/* tf_flash_t over a file (POSIX): NOR rules enforced, so host tests see what real flash would refuse. */
#define _POSIX_C_SOURCE 200809L
#include "tf_flash_file.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static tf_err_t io_all(int fd, uint8_t *buf, size_t len, off_t at, int write_it)
{
    while (len > 0) {
        ssize_t n = write_it ? pwrite(fd, buf, len, at) : pread(fd, buf, len, at);
        if (n <= 0) {
            return TF_ERR_PORT;
        }
        buf += n;
        len -= (size_t)n;
        at += n;
    }
    return TF_OK;
}

static int in_range(const tf_flash_t *f, uint32_t addr, size_t len)
{
    uint64_t end = (uint64_t)addr + len;
    return end <= (uint64_t)f->sector_size * f->sectors;
}

static tf_err_t ff_erase(void *user, uint32_t sector)
{
    tf_flash_file_t *ff = user;
    uint8_t ones[256];
    uint32_t done;
    if (sector >= ff->flash.sectors) {
        return TF_ERR_ARG;
    }
    memset(ones, 0xFF, sizeof ones);
    for (done = 0; done < ff->flash.sector_size; done += (uint32_t)sizeof ones) {
        size_t n = ff->flash.sector_size - done < sizeof ones ? ff->flash.sector_size - done : sizeof ones;
        if (io_all(ff->fd, ones, n, (off_t)sector * ff->flash.sector_size + done, 1) != TF_OK) {
            return TF_ERR_PORT;
        }
    }
    return TF_OK;
}

static tf_err_t ff_program(void *user, uint32_t addr, const uint8_t *data, size_t len)
{
    tf_flash_file_t *ff = user;
    uint8_t cur[64];
    size_t done;
    if (data == NULL || addr % ff->flash.prog_size != 0 || len % ff->flash.prog_size != 0 ||
        !in_range(&ff->flash, addr, len)) {
        return TF_ERR_ARG;
    }
    /* NOR: only erased bytes may be programmed */
    for (done = 0; done < len; done += sizeof cur) {
        size_t n = len - done < sizeof cur ? len - done : sizeof cur, i;
        if (io_all(ff->fd, cur, n, (off_t)addr + (off_t)done, 0) != TF_OK) {
            return TF_ERR_PORT;
        }
        for (i = 0; i < n; i++) {
            if (cur[i] != 0xFFu) {
                return TF_ERR_ARG;
            }
        }
    }
    return io_all(ff->fd, (uint8_t *)(uintptr_t)data, len, (off_t)addr, 1);
}

static tf_err_t ff_read(void *user, uint32_t addr, uint8_t *buf, size_t len)
{
    tf_flash_file_t *ff = user;
    if (buf == NULL || !in_range(&ff->flash, addr, len)) {
        return TF_ERR_ARG;
    }
    return io_all(ff->fd, buf, len, (off_t)addr, 0);
}

tf_err_t tf_flash_file_open(tf_flash_file_t *ff, const char *path, uint32_t sector_size, uint32_t sectors,
                            uint32_t prog_size)
{
    struct stat st;
    uint32_t s;
    if (ff == NULL || path == NULL || sector_size == 0 || sectors == 0 || prog_size == 0) {
        return TF_ERR_ARG;
    }
    memset(ff, 0, sizeof *ff);
    ff->fd = open(path, O_RDWR | O_CREAT, 0600);
    if (ff->fd < 0) {
        return TF_ERR_PORT;
    }
    ff->flash.user = ff;
    ff->flash.sector_size = sector_size;
    ff->flash.sectors = sectors;
    ff->flash.prog_size = prog_size;
    ff->flash.erase = ff_erase;
    ff->flash.program = ff_program;
    ff->flash.read = ff_read;
    if (fstat(ff->fd, &st) != 0) {
        (void)close(ff->fd);
        return TF_ERR_PORT;
    }
    if ((uint64_t)st.st_size != (uint64_t)sector_size * sectors) {
        /* a new flash is erased */
        if (ftruncate(ff->fd, (off_t)sector_size * sectors) != 0) {
            (void)close(ff->fd);
            return TF_ERR_PORT;
        }
        for (s = 0; s < sectors; s++) {
            if (ff_erase(ff, s) != TF_OK) {
                (void)close(ff->fd);
                return TF_ERR_PORT;
            }
        }
    }
    return TF_OK;
}

tf_err_t tf_flash_file_close(tf_flash_file_t *ff)
{
    if (ff != NULL && ff->fd >= 0) {
        (void)close(ff->fd);
        ff->fd = -1;
    }
    return TF_OK;
}
