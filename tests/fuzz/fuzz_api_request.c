/*
 * Fuzz target: the client->server API request decoder (proto/api.proto
 * ClientFrame, decoded with the protobuf-c code sottod uses, target
 * sotto_api_proto) -- the first thing sottod does with every WebSocket
 * message from an unauthenticated peer.
 * Input: one WebSocket message payload as a client would send it.
 * Invariants (abort on violation):
 *  - decoding never crashes or reads out of bounds (ASan);
 *  - a decoded frame is self-consistent: op_case names a non-NULL member,
 *    every repeated field has its pointers, every bytes field is readable
 *    for its whole length, every string is NUL-terminated;
 *  - get_packed_size() equals what pack() writes, and a frame without
 *    unknown fields re-encodes stably: pack(unpack(pack(f))) == pack(f).
 *    (Unknown fields are exempt: protobuf-c 1.4.1 accepts a field number 0
 *    written as a non-canonical two-byte tag, keeps it as an unknown field,
 *    and re-packs it as a one-byte tag it then refuses. sottod ignores
 *    unknown fields, so this is harmless there; found by this target.)
 * With SOTTO_FUZZ_WRITE_SEEDS=dir the target writes one real request of
 * every operation (the seed corpus in tests/fuzz/corpus/api_request/).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef Sotto__Api__ClientFrame CF;

static volatile uint8_t g_sink;

static void touch(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t x = 0;

    if (n > 0 && p == NULL)
        abort();
    for (size_t i = 0; i < n; i++)
        x ^= b[i];
    g_sink ^= x;
}

static void touch_bytes(ProtobufCBinaryData d)
{
    touch(d.data, d.len);
}

static void touch_str(const char *s)
{
    if (s == NULL)
        abort();
    touch(s, strlen(s) + 1);
}

static void check_frame(const CF *f)
{
    switch (f->op_case) {
    case SOTTO__API__CLIENT_FRAME__OP__NOT_SET:
        break;
    case SOTTO__API__CLIENT_FRAME__OP_CHALLENGE:
        if (f->challenge == NULL)
            abort();
        break;
    case SOTTO__API__CLIENT_FRAME__OP_REGISTER:
        if (f->register_ == NULL)
            abort();
        touch_str(f->register_->username);
        touch_str(f->register_->invite);
        touch_bytes(f->register_->auth_key);
        touch_bytes(f->register_->signature);
        touch_bytes(f->register_->identity_key);
        touch_bytes(f->register_->account_key);
        touch_bytes(f->register_->device_list);
        break;
    case SOTTO__API__CLIENT_FRAME__OP_LOGIN:
        if (f->login == NULL)
            abort();
        touch_str(f->login->username);
        touch_bytes(f->login->signature);
        break;
    case SOTTO__API__CLIENT_FRAME__OP_ADD_DEVICE:
        if (f->add_device == NULL)
            abort();
        touch_bytes(f->add_device->auth_key);
        touch_bytes(f->add_device->signature);
        touch_bytes(f->add_device->identity_key);
        touch_bytes(f->add_device->device_list);
        break;
    case SOTTO__API__CLIENT_FRAME__OP_LIST_DEVICES:
        if (f->list_devices == NULL)
            abort();
        break;
    case SOTTO__API__CLIENT_FRAME__OP_REMOVE_DEVICE:
        if (f->remove_device == NULL)
            abort();
        touch_bytes(f->remove_device->device_list);
        break;
    case SOTTO__API__CLIENT_FRAME__OP_SET_KEYS:
        if (f->set_keys == NULL || (f->set_keys->n_prekeys > 0 && f->set_keys->prekeys == NULL))
            abort();
        if (f->set_keys->signed_prekey != NULL) {
            touch_bytes(f->set_keys->signed_prekey->public_key);
            touch_bytes(f->set_keys->signed_prekey->signature);
        }
        for (size_t i = 0; i < f->set_keys->n_prekeys; i++) {
            if (f->set_keys->prekeys[i] == NULL)
                abort();
            touch_bytes(f->set_keys->prekeys[i]->public_key);
        }
        break;
    case SOTTO__API__CLIENT_FRAME__OP_GET_BUNDLE:
        if (f->get_bundle == NULL)
            abort();
        touch_str(f->get_bundle->username);
        break;
    case SOTTO__API__CLIENT_FRAME__OP_SEND:
        if (f->send == NULL || (f->send->n_messages > 0 && f->send->messages == NULL))
            abort();
        touch_str(f->send->destination);
        touch_bytes(f->send->delivery_token); /* v5: sealed send */
        for (size_t i = 0; i < f->send->n_messages; i++) {
            if (f->send->messages[i] == NULL)
                abort();
            touch_bytes(f->send->messages[i]->body);
        }
        break;
    case SOTTO__API__CLIENT_FRAME__OP_ACK:
        if (f->ack == NULL)
            abort();
        break;
    case SOTTO__API__CLIENT_FRAME__OP_PING:
        if (f->ping == NULL)
            abort();
        break;
    case SOTTO__API__CLIENT_FRAME__OP_ATTACHMENT_SLOT:
        if (f->attachment_slot == NULL)
            abort();
        break;
    case SOTTO__API__CLIENT_FRAME__OP_PREKEY_STATUS:
        if (f->prekey_status == NULL)
            abort();
        break;
    case SOTTO__API__CLIENT_FRAME__OP_SET_DEVICE_LIST:
        if (f->set_device_list == NULL)
            abort();
        touch_bytes(f->set_device_list->device_list);
        touch_bytes(f->set_device_list->account_key);
        break;
    case SOTTO__API__CLIENT_FRAME__OP_GET_DEVICE_LIST:
        if (f->get_device_list == NULL)
            abort();
        touch_str(f->get_device_list->username);
        break;
    case SOTTO__API__CLIENT_FRAME__OP_KT_CONFIG:
        if (f->kt_config == NULL)
            abort();
        break;
    case SOTTO__API__CLIENT_FRAME__OP_KT_SEARCH:
        if (f->kt_search == NULL)
            abort();
        touch_str(f->kt_search->username);
        break;
    case SOTTO__API__CLIENT_FRAME__OP_KT_HEAD:
        if (f->kt_head == NULL)
            abort();
        break;
    case SOTTO__API__CLIENT_FRAME__OP_KT_CONSISTENCY:
        if (f->kt_consistency == NULL)
            abort();
        break;
    case SOTTO__API__CLIENT_FRAME__OP_KT_AUDIT:
        if (f->kt_audit == NULL)
            abort();
        break;
    case SOTTO__API__CLIENT_FRAME__OP_KT_COSIGN:
        if (f->kt_cosign == NULL)
            abort();
        touch_bytes(f->kt_cosign->head);
        touch_bytes(f->kt_cosign->auditor_key);
        touch_bytes(f->kt_cosign->signature);
        break;
    case SOTTO__API__CLIENT_FRAME__OP_SET_PROFILE:
        if (f->set_profile == NULL)
            abort();
        touch_bytes(f->set_profile->ciphertext);
        break;
    case SOTTO__API__CLIENT_FRAME__OP_GET_PROFILE:
        if (f->get_profile == NULL)
            abort();
        touch_str(f->get_profile->username);
        break;
    case SOTTO__API__CLIENT_FRAME__OP_SENDER_CERTIFICATE: /* v5 */
        if (f->sender_certificate == NULL)
            abort();
        break;
    case SOTTO__API__CLIENT_FRAME__OP_SET_DELIVERY_TOKEN: /* v5 */
        if (f->set_delivery_token == NULL)
            abort();
        touch_bytes(f->set_delivery_token->token);
        break;
    default:
        abort(); /* an op_case the schema does not have */
    }
}

/* Packs f into a malloc'd buffer; checks the size contract. */
static uint8_t *pack(const CF *f, size_t *len)
{
    size_t n = sotto__api__client_frame__get_packed_size(f);
    uint8_t *b = malloc(n + 1);

    if (b == NULL)
        abort();
    if (sotto__api__client_frame__pack(f, b) != n)
        abort();
    *len = n;
    return b;
}

static void write_seeds(const char *dir);

/* True if m or any message inside it kept unknown fields. */
static int has_unknown(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d;

    if (m == NULL)
        return 0;
    if (m->n_unknown_fields > 0)
        return 1;
    d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        const char *base = (const char *)m;

        if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + fd->quantifier_offset);
            ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)(base + fd->offset);

            for (size_t k = 0; k < n; k++)
                if (has_unknown(arr[k]))
                    return 1;
        } else {
            if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                *(const uint32_t *)(base + fd->quantifier_offset) != fd->id)
                continue;
            if (has_unknown(*(ProtobufCMessage *const *)(base + fd->offset)))
                return 1;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int seeded;
    CF *f, *g;
    uint8_t *p1, *p2;
    size_t l1, l2;

    if (!seeded) {
        seeded = 1;
        if (getenv("SOTTO_FUZZ_WRITE_SEEDS") != NULL)
            write_seeds(getenv("SOTTO_FUZZ_WRITE_SEEDS"));
    }
    f = sotto__api__client_frame__unpack(NULL, size, data);
    if (f == NULL)
        return 0;
    check_frame(f);
    p1 = pack(f, &l1);
    if (has_unknown(&f->base)) {
        free(p1);
        sotto__api__client_frame__free_unpacked(f, NULL);
        return 0;
    }
    g = sotto__api__client_frame__unpack(NULL, l1, p1);
    if (g == NULL)
        abort(); /* what we wrote must decode */
    check_frame(g);
    if (g->op_case != f->op_case || g->id != f->id)
        abort();
    p2 = pack(g, &l2);
    if (l1 != l2 || memcmp(p1, p2, l1) != 0)
        abort();
    free(p1);
    free(p2);
    sotto__api__client_frame__free_unpacked(g, NULL);
    sotto__api__client_frame__free_unpacked(f, NULL);
    return 0;
}

/* ---- seeds: one realistic request per operation --------------------------- */

static void put(const char *dir, const char *name, const CF *f)
{
    char path[512];
    size_t n;
    uint8_t *b = pack(f, &n);
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "wb");
    if (fp == NULL || fwrite(b, 1, n, fp) != n)
        abort();
    fclose(fp);
    free(b);
}

static void write_seeds(const char *dir)
{
    uint8_t k32[32], k33[33], sig[64], body[200];
    ProtobufCBinaryData b32 = {32, k32}, b33 = {33, k33}, b64 = {64, sig};
    CF f;

    for (size_t i = 0; i < sizeof(k32); i++)
        k32[i] = (uint8_t)(0x30 + i);
    k33[0] = 0x05;
    for (size_t i = 1; i < sizeof(k33); i++)
        k33[i] = (uint8_t)(0x60 + i);
    for (size_t i = 0; i < sizeof(sig); i++)
        sig[i] = (uint8_t)(0xA0 ^ i);
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (uint8_t)(i * 7);

    {
        Sotto__Api__ChallengeRequest rq = SOTTO__API__CHALLENGE_REQUEST__INIT;
        sotto__api__client_frame__init(&f);
        f.id = 1;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_CHALLENGE;
        f.challenge = &rq;
        put(dir, "challenge", &f);
    }
    {
        Sotto__Api__RegisterRequest rq = SOTTO__API__REGISTER_REQUEST__INIT;
        rq.username = (char *)"alice";
        rq.auth_key = b32;
        rq.signature = b64;
        rq.invite = (char *)"0123456789abcdef0123456789abcdef";
        rq.identity_key = b33;
        rq.registration_id = 1234;
        sotto__api__client_frame__init(&f);
        f.id = 2;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_REGISTER;
        f.register_ = &rq;
        put(dir, "register", &f);
    }
    {
        Sotto__Api__LoginRequest rq = SOTTO__API__LOGIN_REQUEST__INIT;
        rq.username = (char *)"alice";
        rq.device_id = 1;
        rq.signature = b64;
        sotto__api__client_frame__init(&f);
        f.id = 3;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_LOGIN;
        f.login = &rq;
        put(dir, "login", &f);
    }
    {
        Sotto__Api__AddDeviceRequest rq = SOTTO__API__ADD_DEVICE_REQUEST__INIT;
        rq.auth_key = b32;
        rq.signature = b64;
        rq.identity_key = b33;
        rq.registration_id = 99;
        sotto__api__client_frame__init(&f);
        f.id = 4;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_ADD_DEVICE;
        f.add_device = &rq;
        put(dir, "add_device", &f);
    }
    {
        Sotto__Api__ListDevicesRequest rq = SOTTO__API__LIST_DEVICES_REQUEST__INIT;
        sotto__api__client_frame__init(&f);
        f.id = 5;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_LIST_DEVICES;
        f.list_devices = &rq;
        put(dir, "list_devices", &f);
    }
    {
        Sotto__Api__RemoveDeviceRequest rq = SOTTO__API__REMOVE_DEVICE_REQUEST__INIT;
        rq.device_id = 2;
        sotto__api__client_frame__init(&f);
        f.id = 6;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_REMOVE_DEVICE;
        f.remove_device = &rq;
        put(dir, "remove_device", &f);
    }
    {
        /* v2: the bytes stand in for a signed device list (the decoder
         * does not look inside; fuzz_device_list covers the list). */
        Sotto__Api__SetDeviceListRequest rq = SOTTO__API__SET_DEVICE_LIST_REQUEST__INIT;
        ProtobufCBinaryData lst = {sizeof(body), body};
        rq.device_list = lst;
        rq.account_key = b33;
        sotto__api__client_frame__init(&f);
        f.id = 23;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_SET_DEVICE_LIST;
        f.set_device_list = &rq;
        put(dir, "set_device_list", &f);
    }
    {
        Sotto__Api__GetDeviceListRequest rq = SOTTO__API__GET_DEVICE_LIST_REQUEST__INIT;
        rq.username = (char *)"bob";
        sotto__api__client_frame__init(&f);
        f.id = 24;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_GET_DEVICE_LIST;
        f.get_device_list = &rq;
        put(dir, "get_device_list", &f);
    }
    {
        Sotto__Api__KtConfigRequest rq = SOTTO__API__KT_CONFIG_REQUEST__INIT;
        sotto__api__client_frame__init(&f);
        f.id = 25;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_KT_CONFIG;
        f.kt_config = &rq;
        put(dir, "kt_config", &f);
    }
    {
        Sotto__Api__KtSearchRequest rq = SOTTO__API__KT_SEARCH_REQUEST__INIT;
        rq.username = (char *)"bob";
        rq.known_size = 17;
        sotto__api__client_frame__init(&f);
        f.id = 26;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_KT_SEARCH;
        f.kt_search = &rq;
        put(dir, "kt_search", &f);
    }
    {
        Sotto__Api__KtHeadRequest rq = SOTTO__API__KT_HEAD_REQUEST__INIT;
        rq.known_size = 3;
        sotto__api__client_frame__init(&f);
        f.id = 27;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_KT_HEAD;
        f.kt_head = &rq;
        put(dir, "kt_head", &f);
    }
    {
        Sotto__Api__KtConsistencyRequest rq = SOTTO__API__KT_CONSISTENCY_REQUEST__INIT;
        rq.size1 = 5;
        rq.size2 = 9;
        sotto__api__client_frame__init(&f);
        f.id = 28;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_KT_CONSISTENCY;
        f.kt_consistency = &rq;
        put(dir, "kt_consistency", &f);
    }
    {
        Sotto__Api__KtAuditRequest rq = SOTTO__API__KT_AUDIT_REQUEST__INIT;
        rq.from = 1000;
        rq.max = 1000;
        sotto__api__client_frame__init(&f);
        f.id = 29;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_KT_AUDIT;
        f.kt_audit = &rq;
        put(dir, "kt_audit", &f);
    }
    {
        static uint8_t head[112], key[32], csig[64];
        Sotto__Api__KtCosignRequest rq = SOTTO__API__KT_COSIGN_REQUEST__INIT;
        memset(head, 0x11, sizeof head);
        memset(key, 0x22, sizeof key);
        memset(csig, 0x33, sizeof csig);
        rq.head.data = head;
        rq.head.len = sizeof head;
        rq.auditor_key.data = key;
        rq.auditor_key.len = sizeof key;
        rq.signature.data = csig;
        rq.signature.len = sizeof csig;
        sotto__api__client_frame__init(&f);
        f.id = 30;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_KT_COSIGN;
        f.kt_cosign = &rq;
        put(dir, "kt_cosign", &f);
    }
    {
        Sotto__Api__SetKeysRequest rq = SOTTO__API__SET_KEYS_REQUEST__INIT;
        Sotto__Api__SignedPreKey spk = SOTTO__API__SIGNED_PRE_KEY__INIT;
        Sotto__Api__PreKey pk[3], *pkp[3];
        spk.id = 7;
        spk.public_key = b33;
        spk.signature = b64;
        spk.timestamp_ms = 1767225600000ull;
        for (int i = 0; i < 3; i++) {
            sotto__api__pre_key__init(&pk[i]);
            pk[i].id = (uint32_t)(100 + i);
            pk[i].public_key = b33;
            pkp[i] = &pk[i];
        }
        rq.signed_prekey = &spk;
        rq.n_prekeys = 3;
        rq.prekeys = pkp;
        sotto__api__client_frame__init(&f);
        f.id = 7;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_SET_KEYS;
        f.set_keys = &rq;
        put(dir, "set_keys", &f);
    }
    {
        Sotto__Api__GetBundleRequest rq = SOTTO__API__GET_BUNDLE_REQUEST__INIT;
        rq.username = (char *)"bob";
        rq.device_id = 0;
        sotto__api__client_frame__init(&f);
        f.id = 8;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_GET_BUNDLE;
        f.get_bundle = &rq;
        put(dir, "get_bundle", &f);
    }
    {
        Sotto__Api__SendRequest rq = SOTTO__API__SEND_REQUEST__INIT;
        Sotto__Api__OutgoingMessage om[2], *omp[2];
        for (int i = 0; i < 2; i++) {
            sotto__api__outgoing_message__init(&om[i]);
            om[i].device_id = (uint32_t)(i + 1);
            om[i].registration_id = (uint32_t)(4000 + i);
            om[i].type = i == 0 ? 3 : 2;
            om[i].body.data = body;
            om[i].body.len = sizeof(body);
            omp[i] = &om[i];
        }
        rq.destination = (char *)"bob";
        rq.n_messages = 2;
        rq.messages = omp;
        sotto__api__client_frame__init(&f);
        f.id = 9;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_SEND;
        f.send = &rq;
        put(dir, "send", &f);
    }
    {
        Sotto__Api__Ack rq = SOTTO__API__ACK__INIT;
        sotto__api__client_frame__init(&f);
        f.id = 300;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_ACK;
        f.ack = &rq;
        put(dir, "ack", &f);
    }
    {
        Sotto__Api__PingRequest rq = SOTTO__API__PING_REQUEST__INIT;
        sotto__api__client_frame__init(&f);
        f.id = 10;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_PING;
        f.ping = &rq;
        put(dir, "ping", &f);
    }
    {
        Sotto__Api__AttachmentSlotRequest rq = SOTTO__API__ATTACHMENT_SLOT_REQUEST__INIT;
        rq.size = 123456;
        sotto__api__client_frame__init(&f);
        f.id = 11;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_ATTACHMENT_SLOT;
        f.attachment_slot = &rq;
        put(dir, "attachment_slot", &f);
    }
    {
        Sotto__Api__PrekeyStatusRequest rq = SOTTO__API__PREKEY_STATUS_REQUEST__INIT;
        sotto__api__client_frame__init(&f);
        f.id = 12;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_PREKEY_STATUS;
        f.prekey_status = &rq;
        put(dir, "prekey_status", &f);
    }
    {
        Sotto__Api__SenderCertificateRequest rq = SOTTO__API__SENDER_CERTIFICATE_REQUEST__INIT;
        sotto__api__client_frame__init(&f);
        f.id = 33;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_SENDER_CERTIFICATE;
        f.sender_certificate = &rq;
        put(dir, "sender_certificate", &f);
    }
    {
        Sotto__Api__SetDeliveryTokenRequest rq = SOTTO__API__SET_DELIVERY_TOKEN_REQUEST__INIT;
        ProtobufCBinaryData tok = {16, k32};
        rq.token = tok;
        sotto__api__client_frame__init(&f);
        f.id = 34;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_SET_DELIVERY_TOKEN;
        f.set_delivery_token = &rq;
        put(dir, "set_delivery_token", &f);
    }
    {
        /* v5: a sealed send (delivery token, type 6) */
        Sotto__Api__SendRequest rq = SOTTO__API__SEND_REQUEST__INIT;
        Sotto__Api__OutgoingMessage om, *omp = &om;
        ProtobufCBinaryData tok = {16, k32};
        sotto__api__outgoing_message__init(&om);
        om.device_id = 1;
        om.registration_id = 4000;
        om.type = 6;
        om.body.data = body;
        om.body.len = sizeof(body);
        rq.destination = (char *)"bob";
        rq.n_messages = 1;
        rq.messages = &omp;
        rq.delivery_token = tok;
        sotto__api__client_frame__init(&f);
        f.id = 35;
        f.op_case = SOTTO__API__CLIENT_FRAME__OP_SEND;
        f.send = &rq;
        put(dir, "send_sealed", &f);
    }
}
