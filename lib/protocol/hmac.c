/*
 * lib/protocol/hmac.c -- keyed HMAC-SHA256 and HKDF on OpenSSL's SHA-256
 * (see hmac.h for why). Uses the low-level SHA256_* functions, deprecated
 * in OpenSSL 3 but present and allocation-free, which EVP is not.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "protocol/hmac.h"

#include <string.h>

#include <openssl/sha.h>
#include <sodium.h>

#include "sotto/error.h"

_Static_assert(sizeof(SHA256_CTX) <= 128, "SHA256_CTX does not fit sotto_hmac_key");

#define BLOCK 64

static SHA256_CTX *inner(sotto_hmac_key *k)
{
    return (SHA256_CTX *)(void *)k->st[0];
}

static SHA256_CTX *outer(sotto_hmac_key *k)
{
    return (SHA256_CTX *)(void *)k->st[1];
}

void sotto_hmac_key_init(sotto_hmac_key *k, const uint8_t *key, size_t key_len)
{
    uint8_t pad[BLOCK];
    uint8_t hashed[SHA256_DIGEST_LENGTH];
    SHA256_CTX c;

    if (key_len > BLOCK) {
        SHA256_Init(&c);
        SHA256_Update(&c, key, key_len);
        SHA256_Final(hashed, &c);
        key = hashed;
        key_len = sizeof hashed;
    }
    memset(pad, 0x36, sizeof pad);
    for (size_t i = 0; i < key_len; i++)
        pad[i] ^= key[i];
    SHA256_Init(inner(k));
    SHA256_Update(inner(k), pad, BLOCK);
    for (size_t i = 0; i < BLOCK; i++)
        pad[i] ^= 0x36 ^ 0x5c;
    SHA256_Init(outer(k));
    SHA256_Update(outer(k), pad, BLOCK);
    sodium_memzero(pad, sizeof pad);
    sodium_memzero(hashed, sizeof hashed);
    sodium_memzero(&c, sizeof c);
}

void sotto_hmac_key_mac(const sotto_hmac_key *k, const uint8_t *const *parts,
                        const size_t *lens, size_t n, uint8_t out[SOTTO_HMAC_BYTES])
{
    SHA256_CTX c;
    uint8_t ih[SHA256_DIGEST_LENGTH];

    memcpy(&c, k->st[0], sizeof c);
    for (size_t i = 0; i < n; i++)
        SHA256_Update(&c, parts[i], lens[i]);
    SHA256_Final(ih, &c);
    memcpy(&c, k->st[1], sizeof c);
    SHA256_Update(&c, ih, sizeof ih);
    SHA256_Final(out, &c);
    sodium_memzero(&c, sizeof c);
    sodium_memzero(ih, sizeof ih);
}

void sotto_hmac_key_wipe(sotto_hmac_key *k)
{
    sodium_memzero(k, sizeof *k);
}

int sotto_ratchet_hkdf(uint8_t *out, size_t out_len,
                       const uint8_t *salt, size_t salt_len,
                       const uint8_t *ikm, size_t ikm_len,
                       const uint8_t *info, size_t info_len)
{
    static const uint8_t zero_salt[SOTTO_HMAC_BYTES];
    sotto_hmac_key k;
    uint8_t prk[SOTTO_HMAC_BYTES], t[SOTTO_HMAC_BYTES];
    size_t done = 0;

    if (out == NULL || out_len == 0 || out_len > 255 * SOTTO_HMAC_BYTES ||
        (ikm == NULL && ikm_len != 0) || (info == NULL && info_len != 0) ||
        (salt == NULL && salt_len != 0))
        return SOTTO_ERR_INVALID_ARGUMENT;
    if (salt == NULL || salt_len == 0) {
        salt = zero_salt;
        salt_len = sizeof zero_salt;
    }
    /* Extract: PRK = HMAC(salt, IKM). */
    sotto_hmac_key_init(&k, salt, salt_len);
    {
        const uint8_t *p[1] = { ikm };
        size_t l[1] = { ikm_len };
        sotto_hmac_key_mac(&k, p, l, 1, prk);
    }
    /* Expand: T(i) = HMAC(PRK, T(i-1) || info || i). */
    sotto_hmac_key_init(&k, prk, sizeof prk);
    for (uint8_t ctr = 1; done < out_len; ctr++) {
        const uint8_t *p[3] = { t, info, &ctr };
        size_t l[3] = { ctr > 1 ? sizeof t : 0, info_len, 1 };
        size_t take;
        sotto_hmac_key_mac(&k, p, l, 3, t);
        take = out_len - done < sizeof t ? out_len - done : sizeof t;
        memcpy(out + done, t, take);
        done += take;
    }
    sotto_hmac_key_wipe(&k);
    sodium_memzero(prk, sizeof prk);
    sodium_memzero(t, sizeof t);
    return SOTTO_OK;
}
