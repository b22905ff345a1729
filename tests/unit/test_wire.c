/*
 * SignalMessage / PreKeySignalMessage / prekey bundle encodings: byte-exact
 * layout as libsignal-protocol-c writes it (spec 1.1-1.4), MAC, and the
 * decoders' acceptance rules against hostile input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "common/buf.h"
#include "common/pb.h"
#include "protocol/ratchet.h"
#include "protocol/wire.h"
#include "sotto/session.h"
#include "testutil.h"

/* Keys from spec section 8 (any fixed values would do). */
static const char *RATCHET = "05472d1fb1a9862c3af6beaca8920277e2b26f4a79213ec7c906aeb35e03cf8950";
static const char *SENDER_ID = "05b4a8455660ada65b401007f615e654041746432e3339c6875149bceefcb42b4a";
static const char *RECEIVER_ID =
    "05f1f43874f6966956c2dd473f8fa15adeb71d1cb991b2341692324cefb1c5e626";
static const char *CK_SEED = "8ab72d6f4cc5ac0d387eaf463378ddb28edd07385b1cb01250c715982e7ad48f";

static void pub_hex(sotto_public_key *k, const char *hex)
{
    tu_unhex_into(hex, k->bytes, SOTTO_PUBLIC_KEY_BYTES);
}

static void kat_message_keys(sotto_message_keys *mk)
{
    uint8_t ck[32], seed[32], next[32];
    tu_unhex_into(CK_SEED, ck, 32);
    assert_int_equal(sotto_chain_step(ck, seed, next), SOTTO_OK);
    assert_int_equal(sotto_message_keys_derive(seed, mk), SOTTO_OK);
}

/* AES-256-CBC/PKCS#7 straight from OpenSSL, independent of lib/crypto. */
static size_t ref_encrypt(uint8_t *out, const sotto_message_keys *mk, const uint8_t *pt, size_t n)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0;
    assert_non_null(c);
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_cbc(), NULL, mk->cipher_key, mk->iv), 1);
    assert_int_equal(EVP_EncryptUpdate(c, out, &l1, pt, (int)n), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, out + l1, &l2), 1);
    EVP_CIPHER_CTX_free(c);
    return (size_t)(l1 + l2);
}

static void ref_mac(uint8_t out[8], const sotto_message_keys *mk, const sotto_public_key *s,
                    const sotto_public_key *r, const uint8_t *d, size_t n)
{
    uint8_t full[32];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, mk->mac_key, 32);
    crypto_auth_hmacsha256_update(&st, s->bytes, 33);
    crypto_auth_hmacsha256_update(&st, r->bytes, 33);
    crypto_auth_hmacsha256_update(&st, d, n);
    crypto_auth_hmacsha256_final(&st, full);
    memcpy(out, full, 8);
}

/* A tiny byte appender for building expected messages by hand. */
typedef struct bytes {
    uint8_t b[512];
    size_t n;
} bytes;

static void put(bytes *x, const void *p, size_t n)
{
    assert_true(x->n + n <= sizeof x->b);
    memcpy(x->b + x->n, p, n);
    x->n += n;
}

static void put1(bytes *x, uint8_t v)
{
    put(x, &v, 1);
}

static void expected_signal(bytes *x, const sotto_public_key *key, const uint8_t *counter_varint,
                            size_t cv_len, const uint8_t *prev_varint, size_t pv_len,
                            const sotto_message_keys *mk, const sotto_public_key *s,
                            const sotto_public_key *r, const char *pt)
{
    uint8_t ct[256], mac[8];
    size_t ct_len = ref_encrypt(ct, mk, (const uint8_t *)pt, strlen(pt));
    x->n = 0;
    put1(x, 0x33);
    put1(x, 0x0a); /* field 1, LEN */
    put1(x, 0x21);
    put(x, key->bytes, 33);
    put1(x, 0x10); /* field 2, VARINT */
    put(x, counter_varint, cv_len);
    put1(x, 0x18); /* field 3, VARINT */
    put(x, prev_varint, pv_len);
    put1(x, 0x22); /* field 4, LEN */
    assert_true(ct_len < 128);
    put1(x, (uint8_t)ct_len);
    put(x, ct, ct_len);
    ref_mac(mac, mk, s, r, x->b, x->n);
    put(x, mac, 8);
}

static void test_signal_message_bytes(void **state)
{
    (void)state;
    sotto_public_key key, s, r;
    sotto_message_keys mk;
    bytes want;
    uint8_t *out = NULL;
    size_t out_len = 0;
    pub_hex(&key, RATCHET);
    pub_hex(&s, SENDER_ID);
    pub_hex(&r, RECEIVER_ID);
    kat_message_keys(&mk);

    /* Counter 0 and previousCounter 0 are written, not omitted. */
    static const uint8_t zero[] = {0x00};
    expected_signal(&want, &key, zero, 1, zero, 1, &mk, &s, &r, "hello");
    assert_int_equal(sotto_signal_message_encode(&key, 0, 0, &mk, &s, &r, (const uint8_t *)"hello",
                                                 5, &out, &out_len),
                     SOTTO_OK);
    assert_int_equal(out_len, 1 + 35 + 2 + 2 + 2 + 16 + 8);
    assert_int_equal(out_len, want.n);
    assert_memory_equal(out, want.b, want.n);
    free(out);

    /* Multi-byte varints: 300 = ac 02, 128 = 80 01; 20 bytes -> 32 of ciphertext. */
    static const uint8_t v300[] = {0xac, 0x02}, v128[] = {0x80, 0x01};
    const char *pt = "twenty bytes of text";
    expected_signal(&want, &key, v300, 2, v128, 2, &mk, &s, &r, pt);
    assert_int_equal(sotto_signal_message_encode(&key, 300, 128, &mk, &s, &r, (const uint8_t *)pt,
                                                 20, &out, &out_len),
                     SOTTO_OK);
    assert_int_equal(out_len, want.n);
    assert_memory_equal(out, want.b, want.n);
    assert_true(out_len <= sotto_signal_message_max_len(20));

    /* It decodes back to the same fields, and the MAC verifies. */
    sotto_signal_message m;
    assert_int_equal(sotto_signal_message_decode(&m, out, out_len), SOTTO_OK);
    assert_memory_equal(m.ratchet_key.bytes, key.bytes, 33);
    assert_int_equal(m.counter, 300);
    assert_int_equal(m.previous_counter, 128);
    assert_int_equal(m.ciphertext_len, 32);
    assert_int_equal(sotto_signal_message_verify_mac(&m, mk.mac_key, &s, &r), SOTTO_OK);
    /* Swapped identities (direction matters) or another key: no. */
    assert_int_equal(sotto_signal_message_verify_mac(&m, mk.mac_key, &r, &s),
                     SOTTO_ERR_INVALID_MESSAGE);
    uint8_t other[32];
    memcpy(other, mk.mac_key, 32);
    other[0] ^= 1;
    assert_int_equal(sotto_signal_message_verify_mac(&m, other, &s, &r), SOTTO_ERR_INVALID_MESSAGE);
    /* Any flipped bit anywhere breaks the MAC (or the parse). */
    for (size_t i = 0; i < out_len * 8; i++) {
        out[i / 8] ^= (uint8_t)(1u << (i % 8));
        int rc = sotto_signal_message_decode(&m, out, out_len);
        if (rc == SOTTO_OK)
            assert_int_equal(sotto_signal_message_verify_mac(&m, mk.mac_key, &s, &r),
                             SOTTO_ERR_INVALID_MESSAGE);
        out[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    free(out);

    /* Empty plaintext: one block of padding. */
    assert_int_equal(sotto_signal_message_encode(&key, 1, 0, &mk, &s, &r, NULL, 0, &out, &out_len),
                     SOTTO_OK);
    assert_int_equal(sotto_signal_message_decode(&m, out, out_len), SOTTO_OK);
    assert_int_equal(m.ciphertext_len, 16);
    free(out);
}

static void test_prekey_message_bytes(void **state)
{
    (void)state;
    sotto_prekey_message_info info;
    uint8_t inner[40];
    uint8_t *out = NULL;
    size_t out_len = 0;
    bytes want;
    for (size_t i = 0; i < sizeof inner; i++)
        inner[i] = (uint8_t)(0x33 + i);
    memset(&info, 0, sizeof info);
    info.registration_id = 1234; /* d2 09 */
    info.has_prekey_id = true;
    info.prekey_id = 5;
    info.signed_prekey_id = 7;
    pub_hex(&info.base_key, RATCHET);
    pub_hex(&info.identity_key, SENDER_ID);

    for (int with = 1; with >= 0; with--) {
        info.has_prekey_id = with;
        want.n = 0;
        put1(&want, 0x33);
        if (with) {
            put1(&want, 0x08); /* field 1 preKeyId, only when used */
            put1(&want, 0x05);
        }
        put1(&want, 0x12); /* field 2 baseKey */
        put1(&want, 0x21);
        put(&want, info.base_key.bytes, 33);
        put1(&want, 0x1a); /* field 3 identityKey */
        put1(&want, 0x21);
        put(&want, info.identity_key.bytes, 33);
        put1(&want, 0x22); /* field 4 message */
        put1(&want, sizeof inner);
        put(&want, inner, sizeof inner);
        put1(&want, 0x28); /* field 5 registrationId, always */
        put1(&want, 0xd2);
        put1(&want, 0x09);
        put1(&want, 0x30); /* field 6 signedPreKeyId, always */
        put1(&want, 0x07);
        assert_int_equal(
            sotto_prekey_signal_message_encode(&info, inner, sizeof inner, &out, &out_len),
            SOTTO_OK);
        assert_int_equal(out_len, want.n);
        assert_memory_equal(out, want.b, want.n);
        free(out);
    }
    /* registrationId 0 is still written (08 00 style: 28 00). */
    info.registration_id = 0;
    assert_int_equal(sotto_prekey_signal_message_encode(&info, inner, sizeof inner, &out, &out_len),
                     SOTTO_OK);
    assert_int_equal(out[out_len - 4], 0x28);
    assert_int_equal(out[out_len - 3], 0x00);
    free(out);
}

/* Build a SignalMessage from pieces with pb.h (for decoder tests). */
typedef struct sm_spec {
    uint8_t version;
    bool key, counter, prev, ct;
    uint8_t key_len;
    uint8_t key_type;
    uint64_t counter_v;
    bool extra_unknown;
    int counter_wire_type;
} sm_spec;

static size_t build_sm(uint8_t *buf, size_t cap, const sm_spec *sp)
{
    sotto_wbuf w;
    uint8_t key[40];
    uint8_t ct[16];
    memset(key, 0x42, sizeof key);
    key[0] = sp->key_type;
    memset(ct, 0x17, sizeof ct);
    sotto_wbuf_init_fixed(&w, buf, cap);
    sotto_wbuf_put_u8(&w, sp->version);
    if (sp->key)
        sotto_pb_put_bytes(&w, 1, key, sp->key_len);
    if (sp->counter) {
        if (sp->counter_wire_type == SOTTO_PB_LEN)
            sotto_pb_put_bytes(&w, 2, ct, 4);
        else
            sotto_pb_put_uint(&w, 2, sp->counter_v);
    }
    if (sp->prev)
        sotto_pb_put_uint(&w, 3, 9);
    if (sp->extra_unknown)
        sotto_pb_put_bytes(&w, 15, ct, 3);
    if (sp->ct)
        sotto_pb_put_bytes(&w, 4, ct, sizeof ct);
    sotto_wbuf_put(&w, "MACMACMA", 8);
    assert_int_equal(sotto_wbuf_error(&w), SOTTO_OK);
    return w.len;
}

static sm_spec good_spec(void)
{
    sm_spec s = {0x33, true, true, true, true, 33, 0x05, 77, false, SOTTO_PB_VARINT};
    return s;
}

static void test_signal_message_decoder(void **state)
{
    (void)state;
    uint8_t buf[256];
    sotto_signal_message m;
    sm_spec sp = good_spec();
    size_t n = build_sm(buf, sizeof buf, &sp);
    assert_int_equal(sotto_signal_message_decode(&m, buf, n), SOTTO_OK);
    assert_int_equal(m.counter, 77);
    assert_int_equal(m.previous_counter, 9);
    assert_int_equal(m.ciphertext_len, 16);
    assert_ptr_equal(m.data, buf);
    assert_int_equal(m.len, n);

    /* Every truncation fails. */
    for (size_t cut = 0; cut < n; cut++)
        assert_int_not_equal(sotto_signal_message_decode(&m, buf, cut), SOTTO_OK);
    assert_int_equal(sotto_signal_message_decode(&m, NULL, 0), SOTTO_ERR_INVALID_MESSAGE);
    assert_int_equal(sotto_signal_message_decode(&m, buf, 1), SOTTO_ERR_INVALID_MESSAGE);
    assert_int_equal(sotto_signal_message_decode(&m, buf, 9), SOTTO_ERR_INVALID_MESSAGE);

    /* Version: the high nibble counts, the low nibble is ignored. */
    static const struct {
        uint8_t v;
        int rc;
    } versions[] = {
        {0x33, SOTTO_OK},
        {0x34, SOTTO_OK},
        {0x30, SOTTO_OK},
        {0x3f, SOTTO_OK},
        {0x23, SOTTO_ERR_LEGACY_MESSAGE},
        {0x13, SOTTO_ERR_LEGACY_MESSAGE},
        {0x03, SOTTO_ERR_LEGACY_MESSAGE},
        {0x43, SOTTO_ERR_UNSUPPORTED_VERSION},
        {0x44, SOTTO_ERR_UNSUPPORTED_VERSION},
        {0xf3, SOTTO_ERR_UNSUPPORTED_VERSION},
    };
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        sp = good_spec();
        sp.version = versions[i].v;
        n = build_sm(buf, sizeof buf, &sp);
        assert_int_equal(sotto_signal_message_decode(&m, buf, n), versions[i].rc);
    }
    /* Required fields: ratchetKey, counter, ciphertext. previousCounter optional. */
    sp = good_spec();
    sp.key = false;
    n = build_sm(buf, sizeof buf, &sp);
    assert_int_equal(sotto_signal_message_decode(&m, buf, n), SOTTO_ERR_INVALID_MESSAGE);
    sp = good_spec();
    sp.counter = false;
    n = build_sm(buf, sizeof buf, &sp);
    assert_int_equal(sotto_signal_message_decode(&m, buf, n), SOTTO_ERR_INVALID_MESSAGE);
    sp = good_spec();
    sp.ct = false;
    n = build_sm(buf, sizeof buf, &sp);
    assert_int_equal(sotto_signal_message_decode(&m, buf, n), SOTTO_ERR_INVALID_MESSAGE);
    sp = good_spec();
    sp.prev = false;
    n = build_sm(buf, sizeof buf, &sp);
    assert_int_equal(sotto_signal_message_decode(&m, buf, n), SOTTO_OK);
    assert_int_equal(m.previous_counter, 0);
    /* Unknown fields are skipped. */
    sp = good_spec();
    sp.extra_unknown = true;
    n = build_sm(buf, sizeof buf, &sp);
    assert_int_equal(sotto_signal_message_decode(&m, buf, n), SOTTO_OK);
    /* Wrong wire type, counter over 32 bits. */
    sp = good_spec();
    sp.counter_wire_type = SOTTO_PB_LEN;
    n = build_sm(buf, sizeof buf, &sp);
    assert_int_equal(sotto_signal_message_decode(&m, buf, n), SOTTO_ERR_INVALID_MESSAGE);
    sp = good_spec();
    sp.counter_v = 1ull << 32;
    n = build_sm(buf, sizeof buf, &sp);
    assert_int_equal(sotto_signal_message_decode(&m, buf, n), SOTTO_ERR_INVALID_MESSAGE);
    sp.counter_v = UINT32_MAX;
    n = build_sm(buf, sizeof buf, &sp);
    assert_int_equal(sotto_signal_message_decode(&m, buf, n), SOTTO_OK);
    /* Ratchet key: type byte and length. */
    sp = good_spec();
    sp.key_type = 0x06;
    n = build_sm(buf, sizeof buf, &sp);
    assert_int_equal(sotto_signal_message_decode(&m, buf, n), SOTTO_ERR_INVALID_KEY);
    sp = good_spec();
    sp.key_len = 32;
    n = build_sm(buf, sizeof buf, &sp);
    assert_int_equal(sotto_signal_message_decode(&m, buf, n), SOTTO_ERR_INVALID_KEY);
    sp.key_len = 34;
    n = build_sm(buf, sizeof buf, &sp);
    assert_int_equal(sotto_signal_message_decode(&m, buf, n), SOTTO_ERR_INVALID_KEY);
    /* Garbage protobuf (a group wire type; an over-long length). */
    sp = good_spec();
    n = build_sm(buf, sizeof buf, &sp);
    buf[1] = 0x0b;
    assert_int_equal(sotto_signal_message_decode(&m, buf, n), SOTTO_ERR_INVALID_MESSAGE);
    buf[1] = 0x0a;
    buf[2] = 0x7f;
    assert_int_equal(sotto_signal_message_decode(&m, buf, n), SOTTO_ERR_INVALID_MESSAGE);
    /* Over the size limit. */
    size_t big = SOTTO_MAX_MESSAGE_BYTES + 1;
    uint8_t *huge = calloc(1, big);
    assert_non_null(huge);
    sp = good_spec();
    n = build_sm(buf, sizeof buf, &sp);
    memcpy(huge, buf, n);
    assert_int_equal(sotto_signal_message_decode(&m, huge, big), SOTTO_ERR_INVALID_MESSAGE);
    free(huge);
}

/* A PreKeySignalMessage around a given inner message, fields optional. */
static size_t build_pk(uint8_t *buf, size_t cap, uint8_t version, const uint8_t *inner,
                       size_t inner_len, unsigned omit)
{
    sotto_wbuf w;
    uint8_t key[33];
    memset(key, 0x21, sizeof key);
    key[0] = 0x05;
    sotto_wbuf_init_fixed(&w, buf, cap);
    sotto_wbuf_put_u8(&w, version);
    if (!(omit & 1u << 1))
        sotto_pb_put_uint(&w, 1, 31337);
    if (!(omit & 1u << 2))
        sotto_pb_put_bytes(&w, 2, key, 33);
    if (!(omit & 1u << 3))
        sotto_pb_put_bytes(&w, 3, key, 33);
    if (!(omit & 1u << 4))
        sotto_pb_put_bytes(&w, 4, inner, inner_len);
    if (!(omit & 1u << 5))
        sotto_pb_put_uint(&w, 5, 42);
    if (!(omit & 1u << 6))
        sotto_pb_put_uint(&w, 6, 8);
    assert_int_equal(sotto_wbuf_error(&w), SOTTO_OK);
    return w.len;
}

static void test_prekey_message_decoder(void **state)
{
    (void)state;
    uint8_t inner[128], buf[512];
    sm_spec sp = good_spec();
    size_t inner_len = build_sm(inner, sizeof inner, &sp);
    sotto_prekey_signal_message m;
    sotto_prekey_message_info info;

    size_t n = build_pk(buf, sizeof buf, 0x33, inner, inner_len, 0);
    assert_int_equal(sotto_prekey_signal_message_decode(&m, buf, n), SOTTO_OK);
    assert_true(m.info.has_prekey_id);
    assert_int_equal(m.info.prekey_id, 31337);
    assert_int_equal(m.info.registration_id, 42);
    assert_int_equal(m.info.signed_prekey_id, 8);
    assert_int_equal(m.message.counter, 77);
    assert_int_equal(sotto_prekey_message_inspect(&info, buf, n), SOTTO_OK);
    assert_int_equal(info.prekey_id, 31337);
    for (size_t cut = 0; cut < n; cut++)
        assert_int_not_equal(sotto_prekey_signal_message_decode(&m, buf, cut), SOTTO_OK);
    assert_int_equal(sotto_prekey_message_inspect(&info, buf, 0), SOTTO_ERR_INVALID_MESSAGE);

    /* preKeyId and registrationId optional; the others required. */
    n = build_pk(buf, sizeof buf, 0x33, inner, inner_len, 1u << 1 | 1u << 5);
    assert_int_equal(sotto_prekey_signal_message_decode(&m, buf, n), SOTTO_OK);
    assert_false(m.info.has_prekey_id);
    assert_int_equal(m.info.registration_id, 0);
    for (unsigned f = 2; f <= 6; f++) {
        if (f == 5)
            continue;
        n = build_pk(buf, sizeof buf, 0x33, inner, inner_len, 1u << f);
        assert_int_equal(sotto_prekey_signal_message_decode(&m, buf, n), SOTTO_ERR_INVALID_MESSAGE);
    }
    /* Outer version. */
    n = build_pk(buf, sizeof buf, 0x23, inner, inner_len, 0);
    assert_int_equal(sotto_prekey_signal_message_decode(&m, buf, n), SOTTO_ERR_LEGACY_MESSAGE);
    n = build_pk(buf, sizeof buf, 0x43, inner, inner_len, 0);
    assert_int_equal(sotto_prekey_signal_message_decode(&m, buf, n), SOTTO_ERR_UNSUPPORTED_VERSION);
    /* Inner version must match (3). */
    inner[0] = 0x23;
    n = build_pk(buf, sizeof buf, 0x33, inner, inner_len, 0);
    assert_int_equal(sotto_prekey_signal_message_decode(&m, buf, n), SOTTO_ERR_LEGACY_MESSAGE);
    inner[0] = 0x43;
    n = build_pk(buf, sizeof buf, 0x33, inner, inner_len, 0);
    assert_int_equal(sotto_prekey_signal_message_decode(&m, buf, n), SOTTO_ERR_UNSUPPORTED_VERSION);
    inner[0] = 0x33;
    /* Inner message garbage or too short. */
    n = build_pk(buf, sizeof buf, 0x33, inner, 5, 0);
    assert_int_equal(sotto_prekey_signal_message_decode(&m, buf, n), SOTTO_ERR_INVALID_MESSAGE);
    /* A base key that is not a key. */
    n = build_pk(buf, sizeof buf, 0x33, inner, inner_len, 0);
    assert_int_equal(buf[5], 0x12); /* 33 | 08 e9 f4 01 | 12 21 05 ... */
    buf[7] = 0x04;
    assert_int_equal(sotto_prekey_signal_message_decode(&m, buf, n), SOTTO_ERR_INVALID_KEY);
}

/* ---- prekey bundle encoding ---- */

static void sample_bundle(sotto_prekey_bundle *b, bool with)
{
    memset(b, 0, sizeof *b);
    b->registration_id = 0x01020304;
    b->device_id = 0x0a0b0c0d;
    pub_hex(&b->identity_key, SENDER_ID);
    b->signed_prekey_id = 0x00ABCDEF;
    pub_hex(&b->signed_prekey, RECEIVER_ID);
    for (int i = 0; i < 64; i++)
        b->signed_prekey_signature[i] = (uint8_t)(i * 3);
    if (with) {
        b->has_prekey = true;
        b->prekey_id = 0x00FFFFFE;
        pub_hex(&b->prekey, RATCHET);
    }
}

static void test_bundle_encoding(void **state)
{
    (void)state;
    uint8_t buf[SOTTO_PREKEY_BUNDLE_MAX_BYTES];
    size_t n;
    sotto_prekey_bundle b, d;
    for (int with = 0; with < 2; with++) {
        sample_bundle(&b, with);
        assert_int_equal(sotto_prekey_bundle_encode(&b, buf, &n), SOTTO_OK);
        assert_int_equal(n, with ? 181 : 144);
        /* Layout: version, flags, reg id, device id, identity, spk id, spk, sig [, opk]. */
        static const uint8_t head[] = {0x01, 0x00, 0x01, 0x02, 0x03, 0x04, 0x0a, 0x0b, 0x0c, 0x0d};
        assert_memory_equal(buf + 2, head + 2, 8);
        assert_int_equal(buf[0], 1);
        assert_int_equal(buf[1], with ? 1 : 0);
        assert_memory_equal(buf + 10, b.identity_key.bytes, 33);
        assert_int_equal(buf[43], 0x00);
        assert_int_equal(buf[44], 0xAB);
        assert_memory_equal(buf + 47, b.signed_prekey.bytes, 33);
        assert_memory_equal(buf + 80, b.signed_prekey_signature, 64);
        if (with) {
            static const uint8_t id[] = {0x00, 0xff, 0xff, 0xfe};
            assert_memory_equal(buf + 144, id, 4);
            assert_memory_equal(buf + 148, b.prekey.bytes, 33);
        }
        assert_int_equal(sotto_prekey_bundle_decode(&d, buf, n), SOTTO_OK);
        assert_memory_equal(&d, &b, sizeof d); /* both memset first: padding equal */
        /* Hostile: every truncation, a trailing byte, bad version/flags/key. */
        for (size_t cut = 0; cut < n; cut++)
            assert_int_not_equal(sotto_prekey_bundle_decode(&d, buf, cut), SOTTO_OK);
        uint8_t longer[SOTTO_PREKEY_BUNDLE_MAX_BYTES + 1];
        memcpy(longer, buf, n);
        longer[n] = 0;
        assert_int_equal(sotto_prekey_bundle_decode(&d, longer, n + 1), SOTTO_ERR_INVALID_MESSAGE);
        buf[0] = 2;
        assert_int_equal(sotto_prekey_bundle_decode(&d, buf, n), SOTTO_ERR_UNSUPPORTED_VERSION);
        buf[0] = 1;
        buf[1] ^= 0x02;
        assert_int_equal(sotto_prekey_bundle_decode(&d, buf, n), SOTTO_ERR_INVALID_MESSAGE);
        buf[1] ^= 0x02;
        buf[10] = 0x06;
        assert_int_equal(sotto_prekey_bundle_decode(&d, buf, n), SOTTO_ERR_INVALID_KEY);
        buf[10] = 0x05;
        buf[47] = 0x00;
        assert_int_equal(sotto_prekey_bundle_decode(&d, buf, n), SOTTO_ERR_INVALID_KEY);
        buf[47] = 0x05;
        if (with) {
            buf[148] = 0x07;
            assert_int_equal(sotto_prekey_bundle_decode(&d, buf, n), SOTTO_ERR_INVALID_KEY);
            buf[148] = 0x05;
            /* Flag says "no prekey" but the bytes are there: trailing bytes. */
            buf[1] = 0;
            assert_int_equal(sotto_prekey_bundle_decode(&d, buf, n), SOTTO_ERR_INVALID_MESSAGE);
            buf[1] = 1;
        }
        assert_int_equal(sotto_prekey_bundle_decode(&d, buf, n), SOTTO_OK);
    }
    assert_int_equal(sotto_prekey_bundle_decode(NULL, buf, 10), SOTTO_ERR_INVALID_ARGUMENT);
    assert_int_equal(sotto_prekey_bundle_encode(NULL, buf, &n), SOTTO_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    assert_int_equal(sotto_init(), SOTTO_OK);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signal_message_bytes),
        cmocka_unit_test(test_prekey_message_bytes),
        cmocka_unit_test(test_signal_message_decoder),
        cmocka_unit_test(test_prekey_message_decoder),
        cmocka_unit_test(test_bundle_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
