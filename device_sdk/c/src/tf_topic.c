#include "tinyfleet/tf_topic.h"

#include <string.h>

#include "tf_wire_internal.h"

/* in the order of tf_channel_t */
static const char channel_names[] = "evt\0tel\0state\0ota\0ota/status\0cmd\0cmd/ack";

static int id_char(char c, int first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return 1;
    }
    return !first && (c == '.' || c == '_' || c == ':' || c == '-');
}

tf_err_t tf_device_id_check(const char *id, size_t len)
{
    size_t i;
    if (id == NULL || len == 0 || len > 64) {
        return TF_ERR_BAD_DEVICE_ID;
    }
    for (i = 0; i < len; i++) {
        if (!id_char(id[i], i == 0)) {
            return TF_ERR_BAD_DEVICE_ID;
        }
    }
    return TF_OK;
}

tf_err_t tf_prefix_check(const char *p)
{
    size_t i, n;
    if (p == NULL || (n = strlen(p)) == 0 || p[0] == '$' || p[0] == '/' || p[n - 1] == '/') {
        return TF_ERR_BAD_TOPIC;
    }
    for (i = 0; i < n; i++) {
        if (p[i] == '+' || p[i] == '#' || (p[i] == '/' && p[i + 1] == '/')) {
            return TF_ERR_BAD_TOPIC;
        }
    }
    return TF_OK;
}

tf_err_t tf_channel_name(tf_channel_t ch, const char **out)
{
    if ((unsigned)ch >= (unsigned)TF_CH__COUNT || out == NULL) {
        return TF_ERR_ARG;
    }
    *out = tf__nth_name(channel_names, (unsigned)ch);
    return TF_OK;
}

tf_err_t tf_channel_qos(tf_channel_t ch, int *qos, int *retain)
{
    if ((unsigned)ch >= (unsigned)TF_CH__COUNT || qos == NULL || retain == NULL) {
        return TF_ERR_ARG;
    }
    *qos = ch == TF_CH_TEL ? 0 : 1;
    *retain = ch == TF_CH_STATE || ch == TF_CH_OTA;
    return TF_OK;
}

tf_err_t tf_topic_build(const char *prefix, const char *device_id, tf_channel_t ch, char *buf, size_t cap,
                        size_t *out_len)
{
    size_t np, nd, nc, total;
    const char *name;
    if (prefix == NULL) {
        prefix = TF_CFG_DEFAULT_PREFIX;
    }
    if (buf == NULL || device_id == NULL || (unsigned)ch >= (unsigned)TF_CH__COUNT) {
        return TF_ERR_ARG;
    }
    if (tf_prefix_check(prefix) != TF_OK) {
        return TF_ERR_BAD_TOPIC;
    }
    nd = strlen(device_id);
    if (tf_device_id_check(device_id, nd) != TF_OK) {
        return TF_ERR_BAD_DEVICE_ID;
    }
    np = strlen(prefix);
    name = tf__nth_name(channel_names, (unsigned)ch);
    nc = strlen(name);
    total = np + 1 + nd + 1 + nc;
    if (total + 1 > cap) {
        return TF_ERR_NO_SPACE;
    }
    memcpy(buf, prefix, np);
    buf[np] = '/';
    memcpy(buf + np + 1, device_id, nd);
    buf[np + 1 + nd] = '/';
    memcpy(buf + np + 2 + nd, name, nc + 1);
    if (out_len != NULL) {
        *out_len = total;
    }
    return TF_OK;
}

tf_err_t tf_topic_parse(const char *prefix, const char *topic, size_t len, tf_str_t *device_id, tf_channel_t *ch)
{
    size_t np, i, id_end;
    const char *rest;
    size_t nrest;
    int c;
    if (prefix == NULL) {
        prefix = TF_CFG_DEFAULT_PREFIX;
    }
    if (topic == NULL || device_id == NULL || ch == NULL) {
        return TF_ERR_ARG;
    }
    np = strlen(prefix);
    if (len <= np || memcmp(topic, prefix, np) != 0 || topic[np] != '/') {
        return TF_ERR_BAD_TOPIC;
    }
    id_end = np + 1;
    while (id_end < len && topic[id_end] != '/') {
        id_end++;
    }
    if (id_end >= len) {
        return TF_ERR_BAD_TOPIC; /* no channel level */
    }
    rest = topic + id_end + 1;
    nrest = len - id_end - 1;
    c = -1;
    for (i = 0; i < (size_t)TF_CH__COUNT; i++) {
        const char *name = tf__nth_name(channel_names, (unsigned)i);
        if (strlen(name) == nrest && memcmp(name, rest, nrest) == 0) {
            c = (int)i;
        }
    }
    if (c < 0) {
        return TF_ERR_BAD_TOPIC;
    }
    if (tf_device_id_check(topic + np + 1, id_end - np - 1) != TF_OK) {
        return TF_ERR_BAD_DEVICE_ID;
    }
    device_id->ptr = topic + np + 1;
    device_id->len = id_end - np - 1;
    *ch = (tf_channel_t)c;
    return TF_OK;
}
