/* POSIX host port (see tf_port_posix.h). */
#define _POSIX_C_SOURCE 200809L
#include "tf_port_posix.h"

#include <errno.h>
#include <netdb.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

typedef char tf_sha256_ctx_fits_libsodium[sizeof(crypto_hash_sha256_state) <= sizeof(tf_sha256_ctx_t) ? 1 : -1];

static tf_err_t sha_init(void *user, tf_sha256_ctx_t *ctx)
{
    (void)user;
    return crypto_hash_sha256_init((crypto_hash_sha256_state *)(void *)ctx->bytes) == 0 ? TF_OK : TF_ERR_PORT;
}

static tf_err_t sha_update(void *user, tf_sha256_ctx_t *ctx, const uint8_t *data, size_t len)
{
    (void)user;
    return crypto_hash_sha256_update((crypto_hash_sha256_state *)(void *)ctx->bytes, data, len) == 0 ? TF_OK
                                                                                                       : TF_ERR_PORT;
}

static tf_err_t sha_final(void *user, tf_sha256_ctx_t *ctx, uint8_t out[32])
{
    (void)user;
    return crypto_hash_sha256_final((crypto_hash_sha256_state *)(void *)ctx->bytes, out) == 0 ? TF_OK : TF_ERR_PORT;
}

static tf_err_t ed_verify(void *user, const uint8_t pk[32], const uint8_t *msg, size_t len, const uint8_t sig[64])
{
    (void)user;
    return crypto_sign_ed25519_verify_detached(sig, msg, len, pk) == 0 ? TF_OK : TF_ERR_OTA_BAD_SIGNATURE;
}

static int path_of(const tf_posix_port_t *c, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", c->dir, name);
    return n > 0 && (size_t)n < cap;
}

static tf_err_t load_seq(void *user, uint32_t *seq)
{
    char p[600];
    FILE *f;
    unsigned long v = 0;
    if (!path_of(user, "ota_seq", p, sizeof p)) {
        return TF_ERR_PORT;
    }
    f = fopen(p, "r");
    *seq = 0;
    if (f == NULL) {
        return errno == ENOENT ? TF_OK : TF_ERR_PORT;
    }
    if (fscanf(f, "%lu", &v) == 1) {
        *seq = (uint32_t)v;
    }
    fclose(f);
    return TF_OK;
}

static tf_err_t write_file_atomic(const tf_posix_port_t *c, const char *name, const void *data, size_t len)
{
    char p[600], tmp[620];
    FILE *f;
    if (!path_of(c, name, p, sizeof p)) {
        return TF_ERR_PORT;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    f = fopen(tmp, "wb");
    if (f == NULL) {
        return TF_ERR_PORT;
    }
    if (fwrite(data, 1, len, f) != len || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        return TF_ERR_PORT;
    }
    fclose(f);
    return rename(tmp, p) == 0 ? TF_OK : TF_ERR_PORT;
}

static tf_err_t store_seq(void *user, uint32_t seq)
{
    char text[16];
    int n = snprintf(text, sizeof text, "%lu\n", (unsigned long)seq);
    return write_file_atomic(user, "ota_seq", text, (size_t)n);
}

static tf_err_t load_progress(void *user, tf_ota_progress_t *prog)
{
    char p[600];
    FILE *f;
    size_t n;
    if (!path_of(user, "ota_progress", p, sizeof p) || (f = fopen(p, "rb")) == NULL) {
        return TF_ERR_END;
    }
    n = fread(prog, 1, sizeof *prog, f);
    fclose(f);
    return n == sizeof *prog ? TF_OK : TF_ERR_END;
}

static tf_err_t save_progress(void *user, const tf_ota_progress_t *prog)
{
    char p[600];
    if (prog == NULL) {
        if (path_of(user, "ota_progress", p, sizeof p)) {
            (void)remove(p);
        }
        return TF_OK;
    }
    return write_file_atomic(user, "ota_progress", prog, sizeof *prog);
}

static tf_err_t time_s(void *user, uint32_t *now)
{
    const tf_posix_port_t *c = user;
    time_t t = time(NULL);
    if (c->no_clock || t < 946684800) {
        return TF_ERR_END;
    }
    *now = (uint32_t)t;
    return TF_OK;
}

/* --- downloads: file:///path or http://host[:port]/path (plain HTTP/1.1, one Range GET per chunk) */

static tf_err_t fetch_file(const char *path, uint32_t offset, uint8_t *buf, size_t cap, size_t *got)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return TF_ERR_OTA_DOWNLOAD_FAILED;
    }
    if (fseek(f, (long)offset, SEEK_SET) != 0) {
        fclose(f);
        return TF_ERR_OTA_DOWNLOAD_FAILED;
    }
    *got = fread(buf, 1, cap, f);
    fclose(f);
    return TF_OK;
}

static tf_err_t fetch_http(const char *uri, uint32_t offset, uint8_t *buf, size_t cap, size_t *got)
{
    char host[256], port[8] = "80", req[1024], head[4096];
    const char *h = uri + 7, *path = strchr(h, '/'), *colon;
    struct addrinfo hints, *res = NULL;
    size_t hl, have = 0, skip = 0;
    int fd, status = 0;
    char *body;
    if (path == NULL) {
        path = "/";
        hl = strlen(h);
    } else {
        hl = (size_t)(path - h);
    }
    if (hl == 0 || hl >= sizeof host) {
        return TF_ERR_OTA_DOWNLOAD_FAILED;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    colon = strchr(host, ':');
    if (colon != NULL) {
        snprintf(port, sizeof port, "%s", colon + 1);
        host[colon - host] = '\0';
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        return TF_ERR_OTA_DOWNLOAD_FAILED;
    }
    fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
    if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        freeaddrinfo(res);
        return TF_ERR_OTA_DOWNLOAD_FAILED;
    }
    freeaddrinfo(res);
    snprintf(req, sizeof req,
             "GET %s HTTP/1.1\r\nHost: %s\r\nRange: bytes=%lu-%lu\r\nConnection: close\r\n\r\n", path, host,
             (unsigned long)offset, (unsigned long)(offset + cap - 1));
    if (send(fd, req, strlen(req), 0) < 0) {
        close(fd);
        return TF_ERR_OTA_DOWNLOAD_FAILED;
    }
    /* read the head */
    for (;;) {
        ssize_t n = recv(fd, head + have, sizeof head - 1 - have, 0);
        if (n <= 0) {
            close(fd);
            return TF_ERR_OTA_DOWNLOAD_FAILED;
        }
        have += (size_t)n;
        head[have] = '\0';
        if ((body = strstr(head, "\r\n\r\n")) != NULL) {
            body += 4;
            break;
        }
        if (have == sizeof head - 1) {
            close(fd);
            return TF_ERR_OTA_DOWNLOAD_FAILED;
        }
    }
    if (sscanf(head, "HTTP/1.%*d %d", &status) != 1) {
        close(fd);
        return TF_ERR_OTA_DOWNLOAD_FAILED;
    }
    *got = 0;
    if (status == 416) {
        close(fd);
        return TF_OK; /* nothing at or after `offset`: the end */
    }
    if (status != 206 && status != 200) {
        close(fd);
        return TF_ERR_OTA_DOWNLOAD_FAILED;
    }
    skip = status == 200 ? offset : 0; /* a server without Range support sends it all */
    {
        size_t inbody = have - (size_t)(body - head);
        const uint8_t *b = (const uint8_t *)body;
        for (;;) {
            size_t take;
            if (skip >= inbody) {
                skip -= inbody;
            } else {
                take = inbody - skip;
                if (take > cap - *got) {
                    take = cap - *got;
                }
                memcpy(buf + *got, b + skip, take);
                *got += take;
                skip = 0;
            }
            if (*got == cap) {
                break;
            }
            {
                ssize_t n = recv(fd, head, sizeof head, 0);
                if (n < 0) {
                    close(fd);
                    return TF_ERR_OTA_DOWNLOAD_FAILED;
                }
                if (n == 0) {
                    break;
                }
                inbody = (size_t)n;
                b = (const uint8_t *)head;
            }
        }
    }
    close(fd);
    return TF_OK;
}

static tf_err_t fetch_range(void *user, const char *uri, uint32_t offset, uint8_t *buf, size_t cap, size_t *got)
{
    (void)user;
    *got = 0;
    if (strncmp(uri, "file://", 7) == 0) {
        return fetch_file(uri + 7, offset, buf, cap, got);
    }
    if (strncmp(uri, "http://", 7) == 0) {
        return fetch_http(uri, offset, buf, cap, got);
    }
    return TF_ERR_OTA_DOWNLOAD_FAILED; /* https needs a TLS stack: the firmware's HTTP client */
}

static tf_err_t storage_begin(void *user, uint32_t size)
{
    char p[600];
    FILE *f;
    (void)size;
    if (!path_of(user, "slot.new", p, sizeof p) || (f = fopen(p, "wb")) == NULL) {
        return TF_ERR_OTA_STORAGE_FAILED;
    }
    fclose(f);
    return TF_OK;
}

static tf_err_t storage_write(void *user, uint32_t offset, const uint8_t *data, size_t len)
{
    char p[600];
    FILE *f;
    size_t n;
    if (!path_of(user, "slot.new", p, sizeof p) || (f = fopen(p, "r+b")) == NULL) {
        return TF_ERR_OTA_STORAGE_FAILED;
    }
    n = fseek(f, (long)offset, SEEK_SET) == 0 ? fwrite(data, 1, len, f) : 0;
    if (fclose(f) != 0 || n != len) {
        return TF_ERR_OTA_STORAGE_FAILED;
    }
    return TF_OK;
}

static tf_err_t storage_read(void *user, uint32_t offset, uint8_t *buf, size_t len)
{
    char p[600];
    FILE *f;
    size_t n;
    if (!path_of(user, "slot.new", p, sizeof p) || (f = fopen(p, "rb")) == NULL) {
        return TF_ERR_OTA_STORAGE_FAILED;
    }
    n = fseek(f, (long)offset, SEEK_SET) == 0 ? fread(buf, 1, len, f) : 0;
    fclose(f);
    return n == len ? TF_OK : TF_ERR_OTA_STORAGE_FAILED;
}

static tf_err_t activate(void *user, int component)
{
    char n[600], a[600], prev[600];
    (void)component;
    if (!path_of(user, "slot.new", n, sizeof n) || !path_of(user, "slot.active", a, sizeof a) ||
        !path_of(user, "slot.previous", prev, sizeof prev)) {
        return TF_ERR_OTA_APPLY_FAILED;
    }
    (void)rename(a, prev); /* there is no active slot before the first update */
    return rename(n, a) == 0 ? TF_OK : TF_ERR_OTA_APPLY_FAILED;
}

static tf_err_t revert(void *user, int component)
{
    char a[600], prev[600];
    (void)component;
    if (!path_of(user, "slot.active", a, sizeof a) || !path_of(user, "slot.previous", prev, sizeof prev)) {
        return TF_ERR_PORT;
    }
    return rename(prev, a) == 0 ? TF_OK : TF_ERR_PORT;
}

static tf_err_t publish(void *user, const char *topic, const uint8_t *payload, size_t len, int qos, int retain)
{
    const tf_posix_port_t *c = user;
    if (c->publish == NULL) {
        return TF_OK;
    }
    return c->publish(c->publish_user, topic, payload, len, qos, retain);
}

tf_err_t tf_posix_port_init(tf_port_t *port, tf_posix_port_t *ctx, const char *dir)
{
    if (port == NULL || ctx == NULL || dir == NULL || strlen(dir) >= sizeof ctx->dir || sodium_init() < 0) {
        return TF_ERR_ARG;
    }
    memset(port, 0, sizeof *port);
    memset(ctx, 0, sizeof *ctx);
    strcpy(ctx->dir, dir);
    port->user = ctx;
    port->sha256_init = sha_init;
    port->sha256_update = sha_update;
    port->sha256_final = sha_final;
    port->ed25519_verify = ed_verify;
    port->load_seq = load_seq;
    port->store_seq = store_seq;
    port->load_progress = load_progress;
    port->save_progress = save_progress;
    port->time_s = time_s;
    port->fetch_range = fetch_range;
    port->storage_begin = storage_begin;
    port->storage_write = storage_write;
    port->storage_read = storage_read;
    port->activate = activate;
    port->revert = revert;
    port->publish = publish;
    return TF_OK;
}
