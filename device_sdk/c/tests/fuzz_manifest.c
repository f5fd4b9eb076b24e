/* libFuzzer target: the OTA manifest verifier over arbitrary bytes. The port accepts every signature (and
 * hashes with a toy function), so the fuzzer reaches the payload parser behind the signature check. */
#include <stdint.h>
#include <string.h>

#include "tinyfleet/tf_ota.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tf_err_t toy_init(void *u, tf_sha256_ctx_t *c)
{
    (void)u;
    memset(c, 0, sizeof *c);
    return TF_OK;
}
static tf_err_t toy_update(void *u, tf_sha256_ctx_t *c, const uint8_t *d, size_t n)
{
    size_t i;
    (void)u;
    for (i = 0; i < n; i++) {
        c->bytes[i % 32] = (uint8_t)(c->bytes[i % 32] * 31u + d[i]);
    }
    return TF_OK;
}
static tf_err_t toy_final(void *u, tf_sha256_ctx_t *c, uint8_t out[32])
{
    (void)u;
    memcpy(out, c->bytes, 32);
    return TF_OK;
}
static tf_err_t accept_all(void *u, const uint8_t pk[32], const uint8_t *m, size_t n, const uint8_t sig[64])
{
    (void)u;
    (void)pk;
    (void)m;
    (void)n;
    (void)sig;
    return TF_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tf_port_t port;
    static tf_ota_trust_t trust;
    static uint8_t work[TF_CFG_MAX_MANIFEST_BYTES + 32];
    static const uint16_t codes[] = {3, 4, 25};
    tf_ota_device_t dev;
    tf_ota_manifest_t m;
    if (port.ed25519_verify == NULL) {
        static const uint8_t key[32] = {1};
        port.sha256_init = toy_init;
        port.sha256_update = toy_update;
        port.sha256_final = toy_final;
        port.ed25519_verify = accept_all;
        (void)tf_ota_trust_add(&trust, &port, key);
    }
    memset(&dev, 0, sizeof dev);
    dev.has = TF_DEV_OPS | TF_DEV_ID;
    dev.op_codes = codes;
    dev.n_op_codes = 3;
    dev.device_id = tf_str("press-007");
    /* trust the kid the input names (`04 48` + 8 bytes in the protected header), to get past the key lookup */
    {
        size_t i;
        for (i = 0; i + 10 <= size; i++) {
            if (data[i] == 0x04u && data[i + 1] == 0x48u) {
                memcpy(trust.keys[0].kid, data + i + 2, 8);
                break;
            }
        }
    }
    (void)tf_ota_verify_manifest(&port, data, size, &trust, 0, 1, 1790000000u, &dev, work, sizeof work, &m);
    return 0;
}
