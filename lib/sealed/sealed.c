/*
 * lib/sealed/sealed.c -- sealed sender v1, server/sender certificates and
 * delivery tokens (sotto/sealed.h; docs/protocol.md "Sealed sender").
 *
 * Formats are libsignal's proto/sealed_sender.proto (ServerCertificate,
 * SenderCertificate, UnidentifiedSenderMessage v1), the derivations those
 * of rust/protocol/src/sealed_sender.rs (EphemeralKeys, StaticKeys) and
 * crypto.rs (aes256_ctr_hmacsha256_*). All parsing goes through
 * common/pb.h on a bounded reader; every field is refused when repeated.
 */
#include "sotto/sealed.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "common/buf.h"
#include "common/pb.h"
#include "crypto/crypto.h"
#include "sealed/sealed_internal.h"

/* Field numbers (libsignal proto/sealed_sender.proto). */
enum { CERT_CERTIFICATE = 1, CERT_SIGNATURE = 2 }; /* both certificates' outer */
enum { SRV_ID = 1, SRV_KEY = 2 };                  /* ServerCertificate.Certificate */
enum {                                             /* SenderCertificate.Certificate */
       SND_E164 = 1,
       SND_DEVICE = 2,
       SND_EXPIRES = 3,
       SND_IDENTITY_KEY = 4,
       SND_SIGNER = 5,
       SND_UUID_STRING = 6
};
enum { USM_EPHEMERAL = 1, USM_STATIC = 2, USM_MESSAGE = 3 };    /* UnidentifiedSenderMessage */
enum { USMC_TYPE = 1, USMC_SENDER_CERT = 2, USMC_CONTENT = 3 }; /* ...Message (content) */

#define SALT_PREFIX "UnidentifiedDelivery"
#define SALT_PREFIX_LEN (sizeof SALT_PREFIX - 1)
#define DELIVERY_TOKEN_LABEL "Sotto delivery token v1"
#define DEVICE_ID_MAX 0x7FFFFFFFu
#define STATIC_CT_BYTES (SOTTO_PUBLIC_KEY_BYTES + SOTTO_SEALED_MAC_BYTES)

/* ---------------------------------------------------------------------- */
/* Certificates                                                             */

/* Splits an outer {certificate = 1, signature = 2} message. */
static int split_signed(const uint8_t *data, size_t len, const uint8_t **cert, size_t *cert_len,
                        const uint8_t **sig)
{
    sotto_rbuf r;
    sotto_pb_field f;
    const uint8_t *p;
    size_t n;
    bool have_cert = false, have_sig = false;
    int rc;

    if (data == NULL || len == 0 || len > SOTTO_CERT_MAX_BYTES)
        return SOTTO_ERR_CERT_MALFORMED;
    sotto_rbuf_init(&r, data, len);
    while ((rc = sotto_pb_next(&r, &f)) == 1) {
        switch (f.num) {
        case CERT_CERTIFICATE:
            if (have_cert || sotto_pb_get_bytes(&f, cert, cert_len) != SOTTO_OK)
                return SOTTO_ERR_CERT_MALFORMED;
            have_cert = true;
            break;
        case CERT_SIGNATURE:
            if (have_sig || sotto_pb_get_bytes(&f, &p, &n) != SOTTO_OK ||
                n != SOTTO_SIGNATURE_BYTES)
                return SOTTO_ERR_CERT_MALFORMED;
            *sig = p;
            have_sig = true;
            break;
        default:
            break; /* unknown fields are skipped, as protobuf does */
        }
    }
    if (rc != 0 || !have_cert || !have_sig)
        return SOTTO_ERR_CERT_MALFORMED;
    return SOTTO_OK;
}

static int decode_key_field(sotto_public_key *out, const sotto_pb_field *f)
{
    const uint8_t *p;
    size_t n;
    if (sotto_pb_get_bytes(f, &p, &n) != SOTTO_OK || sotto_public_key_decode(out, p, n) != SOTTO_OK)
        return SOTTO_ERR_CERT_MALFORMED;
    return SOTTO_OK;
}

/* Parses the outer ServerCertificate and its inner Certificate; hands out
 * the signed bytes and the signature for the caller to check. */
static int server_cert_parse(sotto_server_certificate *out, const uint8_t *data, size_t len,
                             const uint8_t **signed_part, size_t *signed_len, const uint8_t **sig)
{
    sotto_rbuf r;
    sotto_pb_field f;
    bool have_id = false, have_key = false;
    int rc;

    rc = split_signed(data, len, signed_part, signed_len, sig);
    if (rc != SOTTO_OK)
        return rc;
    memset(out, 0, sizeof *out);
    sotto_rbuf_init(&r, *signed_part, *signed_len);
    while ((rc = sotto_pb_next(&r, &f)) == 1) {
        switch (f.num) {
        case SRV_ID:
            if (have_id || sotto_pb_get_u32(&f, &out->key_id) != SOTTO_OK)
                return SOTTO_ERR_CERT_MALFORMED;
            have_id = true;
            break;
        case SRV_KEY:
            if (have_key || decode_key_field(&out->key, &f) != SOTTO_OK)
                return SOTTO_ERR_CERT_MALFORMED;
            have_key = true;
            break;
        default:
            break;
        }
    }
    if (rc != 0 || !have_id || !have_key)
        return SOTTO_ERR_CERT_MALFORMED;
    return SOTTO_OK;
}

/* The outer {certificate, signature} message around signed bytes. */
static int make_signed(uint8_t **out, size_t *out_len, const uint8_t *cert, size_t cert_len,
                       const uint8_t priv[SOTTO_PRIVATE_KEY_BYTES])
{
    uint8_t sig[SOTTO_SIGNATURE_BYTES];
    sotto_wbuf w;
    int rc;

    rc = sotto_xeddsa_sign(sig, priv, cert, cert_len);
    if (rc != SOTTO_OK)
        return rc;
    sotto_wbuf_init(&w, SOTTO_CERT_MAX_BYTES);
    sotto_pb_put_bytes(&w, CERT_CERTIFICATE, cert, cert_len);
    sotto_pb_put_bytes(&w, CERT_SIGNATURE, sig, sizeof sig);
    rc = sotto_wbuf_steal(&w, out, out_len);
    sotto_wbuf_free(&w);
    if (rc != SOTTO_OK && rc != SOTTO_ERR_NOMEM)
        rc = SOTTO_ERR_INVALID_ARGUMENT; /* over SOTTO_CERT_MAX_BYTES */
    return rc;
}

int sotto_server_certificate_create(uint8_t **out, size_t *out_len, uint32_t key_id,
                                    const sotto_public_key *server_key,
                                    const uint8_t trust_root_priv[SOTTO_PRIVATE_KEY_BYTES])
{
    uint8_t inner[64];
    sotto_wbuf w;

    if (out == NULL || out_len == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    *out = NULL;
    *out_len = 0;
    if (server_key == NULL || trust_root_priv == NULL || server_key->bytes[0] != SOTTO_KEY_TYPE_DJB)
        return SOTTO_ERR_INVALID_ARGUMENT;
    sotto_wbuf_init_fixed(&w, inner, sizeof inner);
    sotto_pb_put_uint(&w, SRV_ID, key_id);
    sotto_pb_put_bytes(&w, SRV_KEY, server_key->bytes, SOTTO_PUBLIC_KEY_BYTES);
    if (sotto_wbuf_error(&w) != SOTTO_OK)
        return SOTTO_ERR_INTERNAL;
    return make_signed(out, out_len, inner, w.len, trust_root_priv);
}

int sotto_server_certificate_validate(sotto_server_certificate *out, const uint8_t *data,
                                      size_t len, const sotto_public_key *trust_root)
{
    sotto_server_certificate c;
    const uint8_t *signed_part, *sig;
    size_t signed_len;
    int rc;

    if (out == NULL || trust_root == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = server_cert_parse(&c, data, len, &signed_part, &signed_len, &sig);
    if (rc != SOTTO_OK)
        return rc;
    if (sotto_xeddsa_verify(trust_root, signed_part, signed_len, sig) != SOTTO_OK)
        return SOTTO_ERR_CERT_UNTRUSTED;
    *out = c;
    return SOTTO_OK;
}

/* Parses a SenderCertificate; hands out the signed bytes, the signature
 * and the embedded server certificate for the caller to check. */
static int sender_cert_parse(sotto_sender_certificate *out, const uint8_t *data, size_t len,
                             const uint8_t **signed_part, size_t *signed_len, const uint8_t **sig,
                             const uint8_t **signer, size_t *signer_len)
{
    sotto_rbuf r;
    sotto_pb_field f;
    const uint8_t *srv_signed, *srv_sig, *p;
    size_t srv_signed_len, n;
    bool have_sender = false, have_dev = false, have_exp = false, have_key = false,
         have_signer = false, have_e164 = false;
    int rc;

    rc = split_signed(data, len, signed_part, signed_len, sig);
    if (rc != SOTTO_OK)
        return rc;
    memset(out, 0, sizeof *out);
    sotto_rbuf_init(&r, *signed_part, *signed_len);
    while ((rc = sotto_pb_next(&r, &f)) == 1) {
        switch (f.num) {
        case SND_E164: /* libsignal's phone number: never written by Sotto, tolerated */
            if (have_e164 || f.wire_type != SOTTO_PB_LEN)
                return SOTTO_ERR_CERT_MALFORMED;
            have_e164 = true;
            break;
        case SND_UUID_STRING: /* Sotto: the sender's username */
            if (have_sender || sotto_pb_get_bytes(&f, &p, &n) != SOTTO_OK ||
                n > SOTTO_USERNAME_MAX_LEN)
                return SOTTO_ERR_CERT_MALFORMED;
            memcpy(out->sender, p, n);
            out->sender[n] = '\0';
            if (strlen(out->sender) != n || !sotto_username_valid(out->sender))
                return SOTTO_ERR_CERT_MALFORMED;
            have_sender = true;
            break;
        case SND_DEVICE:
            if (have_dev || sotto_pb_get_u32(&f, &out->device_id) != SOTTO_OK ||
                out->device_id == 0 || out->device_id > DEVICE_ID_MAX)
                return SOTTO_ERR_CERT_MALFORMED;
            have_dev = true;
            break;
        case SND_EXPIRES:
            if (have_exp || f.wire_type != SOTTO_PB_I64)
                return SOTTO_ERR_CERT_MALFORMED;
            out->expires_ms = f.value;
            have_exp = true;
            break;
        case SND_IDENTITY_KEY:
            if (have_key || decode_key_field(&out->identity_key, &f) != SOTTO_OK)
                return SOTTO_ERR_CERT_MALFORMED;
            have_key = true;
            break;
        case SND_SIGNER:
            if (have_signer || sotto_pb_get_bytes(&f, signer, signer_len) != SOTTO_OK ||
                server_cert_parse(&out->signer, *signer, *signer_len, &srv_signed, &srv_signed_len,
                                  &srv_sig) != SOTTO_OK)
                return SOTTO_ERR_CERT_MALFORMED;
            have_signer = true;
            break;
        default:
            break;
        }
    }
    if (rc != 0 || !have_sender || !have_dev || !have_exp || !have_key || !have_signer)
        return SOTTO_ERR_CERT_MALFORMED;
    return SOTTO_OK;
}

int sotto_sender_certificate_create(uint8_t **out, size_t *out_len, const char *sender,
                                    uint32_t device_id, const sotto_public_key *identity_key,
                                    uint64_t expires_ms, const uint8_t *server_cert,
                                    size_t server_cert_len,
                                    const uint8_t server_priv[SOTTO_PRIVATE_KEY_BYTES])
{
    sotto_server_certificate srv;
    sotto_key_pair check;
    const uint8_t *srv_signed, *srv_sig;
    size_t srv_signed_len;
    sotto_wbuf w;
    uint8_t *inner = NULL;
    size_t inner_len = 0;
    int rc;

    if (out == NULL || out_len == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    *out = NULL;
    *out_len = 0;
    if (sender == NULL || identity_key == NULL || server_cert == NULL || server_priv == NULL ||
        device_id == 0 || device_id > DEVICE_ID_MAX || identity_key->bytes[0] != SOTTO_KEY_TYPE_DJB)
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (!sotto_username_valid(sender))
        return SOTTO_ERR_INVALID_USERNAME;
    rc = server_cert_parse(&srv, server_cert, server_cert_len, &srv_signed, &srv_signed_len,
                           &srv_sig);
    if (rc != SOTTO_OK)
        return rc;
    rc = sotto_key_pair_from_private(&check, server_priv);
    if (rc != SOTTO_OK)
        return rc;
    rc = sotto_public_key_equal(&check.pub, &srv.key) ? SOTTO_OK : SOTTO_ERR_INVALID_ARGUMENT;
    sotto_key_pair_wipe(&check);
    if (rc != SOTTO_OK)
        return rc;

    /* Fields in ascending number order: 2, 3, 4, 5, 6 (no E164). */
    sotto_wbuf_init(&w, SOTTO_CERT_MAX_BYTES);
    sotto_pb_put_uint(&w, SND_DEVICE, device_id);
    sotto_pb_put_fixed64(&w, SND_EXPIRES, expires_ms);
    sotto_pb_put_bytes(&w, SND_IDENTITY_KEY, identity_key->bytes, SOTTO_PUBLIC_KEY_BYTES);
    sotto_pb_put_bytes(&w, SND_SIGNER, server_cert, server_cert_len);
    sotto_pb_put_bytes(&w, SND_UUID_STRING, sender, strlen(sender));
    rc = sotto_wbuf_steal(&w, &inner, &inner_len);
    sotto_wbuf_free(&w);
    if (rc != SOTTO_OK)
        return rc == SOTTO_ERR_NOMEM ? rc : SOTTO_ERR_CERT_MALFORMED;
    rc = make_signed(out, out_len, inner, inner_len, server_priv);
    free(inner);
    if (rc == SOTTO_OK && *out_len > SOTTO_CERT_MAX_BYTES) { /* not reachable: bounded writer */
        free(*out);
        *out = NULL;
        *out_len = 0;
        rc = SOTTO_ERR_INTERNAL;
    }
    return rc;
}

int sotto_sender_certificate_decode(sotto_sender_certificate *out, const uint8_t *data, size_t len)
{
    sotto_sender_certificate c;
    const uint8_t *signed_part, *sig, *signer;
    size_t signed_len, signer_len;
    int rc;

    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = sender_cert_parse(&c, data, len, &signed_part, &signed_len, &sig, &signer, &signer_len);
    if (rc != SOTTO_OK)
        return rc;
    *out = c;
    return SOTTO_OK;
}

int sotto_sender_certificate_validate(sotto_sender_certificate *out, const uint8_t *data,
                                      size_t len, const sotto_public_key *trust_root,
                                      uint64_t now_ms)
{
    sotto_sender_certificate c;
    sotto_server_certificate srv;
    const uint8_t *signed_part, *sig, *signer;
    size_t signed_len, signer_len;
    int rc;

    if (out == NULL || trust_root == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = sender_cert_parse(&c, data, len, &signed_part, &signed_len, &sig, &signer, &signer_len);
    if (rc != SOTTO_OK)
        return rc;
    rc = sotto_server_certificate_validate(&srv, signer, signer_len, trust_root);
    if (rc != SOTTO_OK)
        return rc;
    if (sotto_xeddsa_verify(&srv.key, signed_part, signed_len, sig) != SOTTO_OK)
        return SOTTO_ERR_CERT_SIGNATURE;
    if (now_ms > c.expires_ms) /* libsignal: invalid when validation time > expiration */
        return SOTTO_ERR_CERT_EXPIRED;
    *out = c;
    return SOTTO_OK;
}

/* ---------------------------------------------------------------------- */
/* AES-256-CTR + HMAC-SHA256/10 (libsignal crypto.rs)                       */

/* AES-256-CTR with an all-zero initial counter block (libsignal: 12-byte
 * zero nonce, 32-bit big-endian block counter from 0; identical for the
 * < 2^32 blocks any message here has). `out` may equal `in`. */
static int aes256_ctr(uint8_t *out, const uint8_t *in, size_t len, const uint8_t key[32])
{
    static const uint8_t iv[16] = {0};
    EVP_CIPHER_CTX *ctx;
    int n1 = 0, n2 = 0, rc = SOTTO_ERR_CRYPTO;

    if (len > (size_t)0x7FFFFFFF)
        return SOTTO_ERR_INVALID_ARGUMENT;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return SOTTO_ERR_NOMEM;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_ctr(), NULL, key, iv) == 1 &&
        EVP_EncryptUpdate(ctx, out, &n1, in, (int)len) == 1 &&
        EVP_EncryptFinal_ex(ctx, out + n1, &n2) == 1 && (size_t)n1 + (size_t)n2 == len)
        rc = SOTTO_OK;
    EVP_CIPHER_CTX_free(ctx); /* EVP_CIPHER_CTX_free cleanses the key schedule */
    return rc;
}

/* out (pt_len + 10 bytes) = AES-CTR(pt) || HMAC(mac_key, ct)[0..10]. */
static int ctr_hmac_encrypt(uint8_t *out, const uint8_t *pt, size_t pt_len,
                            const uint8_t cipher_key[32], const uint8_t mac_key[32])
{
    uint8_t mac[SOTTO_HMAC_SHA256_BYTES];
    int rc;

    rc = aes256_ctr(out, pt, pt_len, cipher_key);
    if (rc == SOTTO_OK)
        rc = sotto_hmac_sha256(mac, mac_key, 32, out, pt_len);
    if (rc == SOTTO_OK)
        memcpy(out + pt_len, mac, SOTTO_SEALED_MAC_BYTES);
    else
        sodium_memzero(out, pt_len + SOTTO_SEALED_MAC_BYTES);
    sodium_memzero(mac, sizeof mac);
    return rc;
}

/* Checks the MAC first, then decrypts ct_len - 10 bytes into `out`.
 * A wrong MAC gives SOTTO_ERR_INVALID_MESSAGE and leaves `out` untouched. */
static int ctr_hmac_decrypt(uint8_t *out, const uint8_t *ct, size_t ct_len,
                            const uint8_t cipher_key[32], const uint8_t mac_key[32])
{
    uint8_t mac[SOTTO_HMAC_SHA256_BYTES];
    size_t n;
    int rc;

    if (ct_len < SOTTO_SEALED_MAC_BYTES)
        return SOTTO_ERR_INVALID_MESSAGE;
    n = ct_len - SOTTO_SEALED_MAC_BYTES;
    rc = sotto_hmac_sha256(mac, mac_key, 32, ct, n);
    if (rc == SOTTO_OK && sodium_memcmp(mac, ct + n, SOTTO_SEALED_MAC_BYTES) != 0)
        rc = SOTTO_ERR_INVALID_MESSAGE;
    sodium_memzero(mac, sizeof mac);
    if (rc != SOTTO_OK)
        return rc;
    rc = aes256_ctr(out, ct, n, cipher_key);
    if (rc != SOTTO_OK)
        sodium_memzero(out, n);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* Key derivations (libsignal sealed_sender.rs, v1)                         */

typedef struct eph_keys {
    uint8_t chain[32], cipher[32], mac[32];
} eph_keys;

/* EphemeralKeys: HKDF(salt = "UnidentifiedDelivery" || recipient IK (33)
 * || ephemeral public (33), ikm = DH, info = "") -> chain || cipher || mac. */
static int ephemeral_keys(eph_keys *k, const uint8_t dh[32], const sotto_public_key *recipient,
                          const sotto_public_key *ephemeral)
{
    uint8_t salt[SALT_PREFIX_LEN + 2 * SOTTO_PUBLIC_KEY_BYTES];
    uint8_t okm[96];
    int rc;

    memcpy(salt, SALT_PREFIX, SALT_PREFIX_LEN);
    memcpy(salt + SALT_PREFIX_LEN, recipient->bytes, SOTTO_PUBLIC_KEY_BYTES);
    memcpy(salt + SALT_PREFIX_LEN + SOTTO_PUBLIC_KEY_BYTES, ephemeral->bytes,
           SOTTO_PUBLIC_KEY_BYTES);
    rc = sotto_hkdf_sha256(okm, sizeof okm, salt, sizeof salt, dh, 32, NULL, 0);
    if (rc == SOTTO_OK) {
        memcpy(k->chain, okm, 32);
        memcpy(k->cipher, okm + 32, 32);
        memcpy(k->mac, okm + 64, 32);
    }
    sodium_memzero(okm, sizeof okm);
    return rc;
}

/* StaticKeys: HKDF(salt = chain key || encryptedStatic (43), ikm = DH of
 * the identity keys, info = "") -> [unused 32] || cipher || mac. */
static int static_keys(eph_keys *k, const uint8_t dh[32], const uint8_t chain[32],
                       const uint8_t static_ct[STATIC_CT_BYTES])
{
    uint8_t salt[32 + STATIC_CT_BYTES];
    uint8_t okm[96];
    int rc;

    memcpy(salt, chain, 32);
    memcpy(salt + 32, static_ct, STATIC_CT_BYTES);
    rc = sotto_hkdf_sha256(okm, sizeof okm, salt, sizeof salt, dh, 32, NULL, 0);
    if (rc == SOTTO_OK) {
        memset(k->chain, 0, 32);
        memcpy(k->cipher, okm + 32, 32);
        memcpy(k->mac, okm + 64, 32);
    }
    sodium_memzero(okm, sizeof okm);
    sodium_memzero(salt, sizeof salt);
    return rc;
}

static bool type_known(uint32_t t)
{
    return t == SOTTO_SEALED_TYPE_PREKEY || t == SOTTO_SEALED_TYPE_MESSAGE ||
           t == SOTTO_SEALED_TYPE_SENDERKEY || t == SOTTO_SEALED_TYPE_PLAINTEXT;
}

/* ---------------------------------------------------------------------- */
/* Sealed sender v1                                                         */

int sotto_sealed_encrypt_usmc(uint8_t **out, size_t *out_len, const sotto_key_pair *sender_identity,
                              const sotto_public_key *recipient_identity, const uint8_t *usmc,
                              size_t usmc_len)
{
    sotto_key_pair eph;
    eph_keys ek, sk;
    uint8_t dh[32];
    uint8_t static_ct[STATIC_CT_BYTES];
    sotto_wbuf w;
    uint8_t *msg_ct = NULL;
    int rc;

    if (out == NULL || out_len == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    *out = NULL;
    *out_len = 0;
    if (sender_identity == NULL || recipient_identity == NULL || (usmc == NULL && usmc_len > 0) ||
        usmc_len > SOTTO_SEALED_MAX_BYTES)
        return SOTTO_ERR_INVALID_ARGUMENT;
    memset(&eph, 0, sizeof eph);
    memset(&ek, 0, sizeof ek);
    memset(&sk, 0, sizeof sk);
    memset(dh, 0, sizeof dh);
    sotto_wbuf_init(&w, SOTTO_SEALED_MAX_BYTES);

    /* Layer 1: ephemeral-static; encrypts the sender's static (identity) key. */
    rc = sotto_key_pair_generate(&eph);
    if (rc != SOTTO_OK)
        goto out;
    rc = sotto_dh(dh, eph.priv, recipient_identity);
    if (rc != SOTTO_OK)
        goto out;
    rc = ephemeral_keys(&ek, dh, recipient_identity, &eph.pub);
    if (rc != SOTTO_OK)
        goto out;
    rc = ctr_hmac_encrypt(static_ct, sender_identity->pub.bytes, SOTTO_PUBLIC_KEY_BYTES, ek.cipher,
                          ek.mac);
    if (rc != SOTTO_OK)
        goto out;

    /* Layer 2: static-static; encrypts the UnidentifiedSenderMessage.Message. */
    rc = sotto_dh(dh, sender_identity->priv, recipient_identity);
    if (rc != SOTTO_OK)
        goto out;
    rc = static_keys(&sk, dh, ek.chain, static_ct);
    if (rc != SOTTO_OK)
        goto out;
    msg_ct = malloc(usmc_len + SOTTO_SEALED_MAC_BYTES);
    if (msg_ct == NULL) {
        rc = SOTTO_ERR_NOMEM;
        goto out;
    }
    rc = ctr_hmac_encrypt(msg_ct, usmc, usmc_len, sk.cipher, sk.mac);
    if (rc != SOTTO_OK)
        goto out;

    sotto_wbuf_put_u8(&w, SOTTO_SEALED_V1_VERSION);
    sotto_pb_put_bytes(&w, USM_EPHEMERAL, eph.pub.bytes, SOTTO_PUBLIC_KEY_BYTES);
    sotto_pb_put_bytes(&w, USM_STATIC, static_ct, sizeof static_ct);
    sotto_pb_put_bytes(&w, USM_MESSAGE, msg_ct, usmc_len + SOTTO_SEALED_MAC_BYTES);
    rc = sotto_wbuf_steal(&w, out, out_len);
    if (rc != SOTTO_OK && rc != SOTTO_ERR_NOMEM)
        rc = SOTTO_ERR_INVALID_ARGUMENT; /* only over SOTTO_SEALED_MAX_BYTES */
out:
    sotto_key_pair_wipe(&eph);
    sodium_memzero(&ek, sizeof ek);
    sodium_memzero(&sk, sizeof sk);
    sodium_memzero(dh, sizeof dh);
    if (msg_ct != NULL) {
        sodium_memzero(msg_ct, usmc_len + SOTTO_SEALED_MAC_BYTES);
        free(msg_ct);
    }
    sotto_wbuf_free(&w);
    return rc;
}

int sotto_sealed_encrypt(uint8_t **out, size_t *out_len, const sotto_key_pair *sender_identity,
                         const sotto_public_key *recipient_identity, uint8_t type,
                         const uint8_t *sender_cert, size_t sender_cert_len, const uint8_t *content,
                         size_t content_len)
{
    sotto_sender_certificate cert;
    sotto_wbuf usmc;
    int rc;

    if (out == NULL || out_len == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    *out = NULL;
    *out_len = 0;
    if (sender_identity == NULL || recipient_identity == NULL || sender_cert == NULL ||
        content == NULL || content_len == 0 || content_len > SOTTO_SEALED_MAX_CONTENT_BYTES ||
        !type_known(type))
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = sotto_sender_certificate_decode(&cert, sender_cert, sender_cert_len);
    if (rc != SOTTO_OK)
        return rc;
    if (!sotto_public_key_equal(&cert.identity_key, &sender_identity->pub))
        return SOTTO_ERR_SEALED_MISMATCH;

    /* Inner UnidentifiedSenderMessage.Message {type, senderCertificate, content}. */
    sotto_wbuf_init(&usmc, SOTTO_SEALED_MAX_BYTES);
    sotto_pb_put_uint(&usmc, USMC_TYPE, type);
    sotto_pb_put_bytes(&usmc, USMC_SENDER_CERT, sender_cert, sender_cert_len);
    sotto_pb_put_bytes(&usmc, USMC_CONTENT, content, content_len);
    rc = sotto_wbuf_error(&usmc);
    if (rc == SOTTO_OK)
        rc = sotto_sealed_encrypt_usmc(out, out_len, sender_identity, recipient_identity, usmc.data,
                                       usmc.len);
    else if (rc != SOTTO_ERR_NOMEM)
        rc = SOTTO_ERR_INVALID_ARGUMENT;
    sotto_wbuf_free(&usmc);
    return rc;
}

/* Parses the decrypted UnidentifiedSenderMessage.Message. Pointers into `p`. */
static int usmc_parse(const uint8_t *p, size_t n, uint32_t *type, const uint8_t **cert,
                      size_t *cert_len, const uint8_t **content, size_t *content_len)
{
    sotto_rbuf r;
    sotto_pb_field f;
    bool have_type = false, have_cert = false, have_content = false;
    int rc;

    sotto_rbuf_init(&r, p, n);
    while ((rc = sotto_pb_next(&r, &f)) == 1) {
        switch (f.num) {
        case USMC_TYPE:
            if (have_type || sotto_pb_get_u32(&f, type) != SOTTO_OK)
                return SOTTO_ERR_INVALID_MESSAGE;
            have_type = true;
            break;
        case USMC_SENDER_CERT:
            if (have_cert || sotto_pb_get_bytes(&f, cert, cert_len) != SOTTO_OK)
                return SOTTO_ERR_INVALID_MESSAGE;
            have_cert = true;
            break;
        case USMC_CONTENT:
            if (have_content || sotto_pb_get_bytes(&f, content, content_len) != SOTTO_OK)
                return SOTTO_ERR_INVALID_MESSAGE;
            have_content = true;
            break;
        default:
            break; /* contentHint (4), groupId (5): not used by Sotto, skipped */
        }
    }
    if (rc != 0 || !have_type || !have_cert || !have_content || !type_known(*type) ||
        *content_len == 0)
        return SOTTO_ERR_INVALID_MESSAGE;
    return SOTTO_OK;
}

int sotto_sealed_decrypt(sotto_sealed_result *out, const uint8_t *data, size_t len,
                         const sotto_key_pair *recipient_identity,
                         const sotto_public_key *trust_root, uint64_t now_ms)
{
    sotto_rbuf r;
    sotto_pb_field f;
    sotto_public_key eph_pub, static_pub;
    sotto_sender_certificate cert;
    eph_keys ek, sk;
    uint8_t dh[32];
    uint8_t static_pt[SOTTO_PUBLIC_KEY_BYTES];
    const uint8_t *static_ct = NULL, *msg_ct = NULL, *p, *cert_p, *content_p;
    size_t static_len = 0, msg_len = 0, n, pt_len = 0, cert_len, content_len;
    uint8_t *pt = NULL;
    uint32_t type = 0;
    bool have_eph = false;
    int rc;

    if (out == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    if (data == NULL || recipient_identity == NULL || trust_root == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    memset(&ek, 0, sizeof ek);
    memset(&sk, 0, sizeof sk);
    memset(dh, 0, sizeof dh);
    memset(static_pt, 0, sizeof static_pt);

    rc = SOTTO_ERR_INVALID_MESSAGE;
    if (len < 1 || len > SOTTO_SEALED_MAX_BYTES)
        goto out;
    if (data[0] != SOTTO_SEALED_V1_VERSION) {
        rc = SOTTO_ERR_UNSUPPORTED_VERSION;
        goto out;
    }
    sotto_rbuf_init(&r, data + 1, len - 1);
    while ((rc = sotto_pb_next(&r, &f)) == 1) {
        rc = SOTTO_ERR_INVALID_MESSAGE;
        switch (f.num) {
        case USM_EPHEMERAL:
            if (have_eph || sotto_pb_get_bytes(&f, &p, &n) != SOTTO_OK)
                goto out;
            if (sotto_public_key_decode(&eph_pub, p, n) != SOTTO_OK) {
                rc = SOTTO_ERR_INVALID_KEY;
                goto out;
            }
            have_eph = true;
            break;
        case USM_STATIC:
            if (static_ct != NULL || sotto_pb_get_bytes(&f, &static_ct, &static_len) != SOTTO_OK)
                goto out;
            break;
        case USM_MESSAGE:
            if (msg_ct != NULL || sotto_pb_get_bytes(&f, &msg_ct, &msg_len) != SOTTO_OK)
                goto out;
            break;
        default:
            break;
        }
    }
    if (rc != 0 || !have_eph || static_ct == NULL || msg_ct == NULL ||
        static_len != STATIC_CT_BYTES || msg_len <= SOTTO_SEALED_MAC_BYTES) {
        rc = SOTTO_ERR_INVALID_MESSAGE;
        goto out;
    }

    /* Layer 1: recover and check the sender's static key. */
    rc = sotto_dh(dh, recipient_identity->priv, &eph_pub);
    if (rc != SOTTO_OK)
        goto out;
    rc = ephemeral_keys(&ek, dh, &recipient_identity->pub, &eph_pub);
    if (rc != SOTTO_OK)
        goto out;
    rc = ctr_hmac_decrypt(static_pt, static_ct, static_len, ek.cipher, ek.mac);
    if (rc != SOTTO_OK)
        goto out;
    if (sotto_public_key_decode(&static_pub, static_pt, sizeof static_pt) != SOTTO_OK) {
        rc = SOTTO_ERR_INVALID_KEY;
        goto out;
    }

    /* Layer 2: the content, under the static-static secret. */
    rc = sotto_dh(dh, recipient_identity->priv, &static_pub);
    if (rc != SOTTO_OK)
        goto out;
    rc = static_keys(&sk, dh, ek.chain, static_ct);
    if (rc != SOTTO_OK)
        goto out;
    pt_len = msg_len - SOTTO_SEALED_MAC_BYTES;
    pt = malloc(pt_len);
    if (pt == NULL) {
        rc = SOTTO_ERR_NOMEM;
        goto out;
    }
    rc = ctr_hmac_decrypt(pt, msg_ct, msg_len, sk.cipher, sk.mac);
    if (rc != SOTTO_OK)
        goto out;
    rc = usmc_parse(pt, pt_len, &type, &cert_p, &cert_len, &content_p, &content_len);
    if (rc != SOTTO_OK)
        goto out;
    rc = sotto_sender_certificate_validate(&cert, cert_p, cert_len, trust_root, now_ms);
    if (rc != SOTTO_OK)
        goto out;
    /* The key that proved itself in layer 2 must be the certificate's. */
    if (sodium_memcmp(static_pub.bytes, cert.identity_key.bytes, SOTTO_PUBLIC_KEY_BYTES) != 0) {
        rc = SOTTO_ERR_SEALED_MISMATCH;
        goto out;
    }
    out->content = malloc(content_len);
    if (out->content == NULL) {
        rc = SOTTO_ERR_NOMEM;
        goto out;
    }
    memcpy(out->content, content_p, content_len);
    out->content_len = content_len;
    out->type = (uint8_t)type;
    out->sender = cert;
    rc = SOTTO_OK;
out:
    sodium_memzero(&ek, sizeof ek);
    sodium_memzero(&sk, sizeof sk);
    sodium_memzero(dh, sizeof dh);
    sodium_memzero(static_pt, sizeof static_pt);
    if (pt != NULL) {
        sodium_memzero(pt, pt_len);
        free(pt);
    }
    if (rc != SOTTO_OK)
        sotto_sealed_result_free(out);
    return rc;
}

void sotto_sealed_result_free(sotto_sealed_result *r)
{
    if (r == NULL)
        return;
    if (r->content != NULL) {
        sodium_memzero(r->content, r->content_len);
        free(r->content);
    }
    sodium_memzero(r, sizeof *r);
}

/* ---------------------------------------------------------------------- */
/* Delivery tokens (Sotto's design)                                         */

int sotto_delivery_token_derive(uint8_t out[SOTTO_DELIVERY_TOKEN_BYTES],
                                const uint8_t profile_key[SOTTO_PROFILE_KEY_BYTES])
{
    uint8_t mac[SOTTO_HMAC_SHA256_BYTES];
    int rc;

    if (out == NULL || profile_key == NULL)
        return SOTTO_ERR_INVALID_ARGUMENT;
    rc = sotto_hmac_sha256(mac, profile_key, SOTTO_PROFILE_KEY_BYTES,
                           (const uint8_t *)DELIVERY_TOKEN_LABEL, sizeof DELIVERY_TOKEN_LABEL - 1);
    if (rc == SOTTO_OK)
        memcpy(out, mac, SOTTO_DELIVERY_TOKEN_BYTES);
    else
        sodium_memzero(out, SOTTO_DELIVERY_TOKEN_BYTES);
    sodium_memzero(mac, sizeof mac);
    return rc;
}

bool sotto_delivery_token_equal(const uint8_t *a, const uint8_t *b)
{
    if (a == NULL || b == NULL)
        return false;
    return sodium_memcmp(a, b, SOTTO_DELIVERY_TOKEN_BYTES) == 0;
}
