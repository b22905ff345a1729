/*
 * server/tls.c -- self-signed certificate, fingerprint, exporter, policy.
 */
#include "tls.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "log.h"

static int add_ext(X509 *cert, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? 0 : -1;
}

static int write_pem_key(const char *path, EVP_PKEY *pkey)
{
    int ret = -1;
    FILE *f = NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        goto out;
    f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        goto out;
    }
    if (PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) != 1)
        goto out;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        goto out;
    ret = 0;
out:
    if (f != NULL)
        fclose(f);
    return ret;
}

static int write_pem_cert(const char *path, X509 *cert)
{
    int ret = -1;
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    if (PEM_write_X509(f, cert) != 1)
        goto out;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        goto out;
    ret = 0;
out:
    fclose(f);
    return ret;
}

int sottod_tls_ensure_self_signed(const char *dir, char *cert_path, size_t cert_cap, char *key_path,
                                  size_t key_cap)
{
    int ret = -1;
    EVP_PKEY *pkey = NULL;
    X509 *cert = NULL;
    char tmp_key[1100], tmp_cert[1100];
    struct stat st;
    uint8_t serial[16];

    if ((size_t)snprintf(cert_path, cert_cap, "%s/cert.pem", dir) >= cert_cap ||
        (size_t)snprintf(key_path, key_cap, "%s/key.pem", dir) >= key_cap ||
        (size_t)snprintf(tmp_key, sizeof(tmp_key), "%s/key.pem.tmp", dir) >= sizeof(tmp_key) ||
        (size_t)snprintf(tmp_cert, sizeof(tmp_cert), "%s/cert.pem.tmp", dir) >= sizeof(tmp_cert))
        return -1;
    if (stat(cert_path, &st) == 0 && stat(key_path, &st) == 0)
        return 0;
    if (mkdir(dir, 0700) != 0 && stat(dir, &st) != 0)
        return -1;

    pkey = EVP_EC_gen("P-256");
    if (pkey == NULL)
        goto out;
    cert = X509_new();
    if (cert == NULL)
        goto out;
    X509_set_version(cert, 2);
    randombytes_buf(serial, sizeof(serial));
    serial[0] &= 0x7f;
    serial[0] |= 0x01; /* positive and non-zero */
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL) {
        BN_free(bn);
        goto out;
    }
    BN_free(bn);
    if (X509_gmtime_adj(X509_getm_notBefore(cert), -3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(cert), 10L * 366 * 24 * 3600) == NULL)
        goto out;
    X509_NAME *name = X509_get_subject_name(cert);
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"sottod", -1,
                                   -1, 0) != 1)
        goto out;
    if (X509_set_issuer_name(cert, name) != 1 || X509_set_pubkey(cert, pkey) != 1)
        goto out;
    if (add_ext(cert, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") != 0 ||
        add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
        add_ext(cert, NID_ext_key_usage, "serverAuth") != 0)
        goto out;
    if (X509_sign(cert, pkey, EVP_sha256()) == 0)
        goto out;
    if (write_pem_key(tmp_key, pkey) != 0 || write_pem_cert(tmp_cert, cert) != 0)
        goto out;
    if (rename(tmp_key, key_path) != 0 || rename(tmp_cert, cert_path) != 0)
        goto out;
    sottod_log(SOTTOD_LOG_INFO, "tls_self_signed_created", NULL);
    ret = 0;
out:
    if (ret != 0) {
        unlink(tmp_key);
        unlink(tmp_cert);
    }
    X509_free(cert);
    EVP_PKEY_free(pkey);
    return ret;
}

int sottod_tls_fingerprint(const char *cert_path, char hex[SOTTOD_FINGERPRINT_HEX])
{
    int ret = -1;
    X509 *cert = NULL;
    unsigned char *der = NULL;
    uint8_t digest[32];
    FILE *f = fopen(cert_path, "r");
    if (f == NULL)
        return -1;
    cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (cert == NULL)
        goto out;
    int len = i2d_X509(cert, &der);
    if (len <= 0)
        goto out;
    crypto_hash_sha256(digest, der, (unsigned long long)len);
    sodium_bin2hex(hex, SOTTOD_FINGERPRINT_HEX, digest, sizeof(digest));
    ret = 0;
out:
    OPENSSL_free(der);
    X509_free(cert);
    return ret;
}

int sottod_tls_exporter(SSL *ssl, uint8_t out[SOTTOD_EXPORTER_BYTES])
{
    static const char label[] = "EXPORTER-Channel-Binding";
    if (ssl == NULL || SSL_version(ssl) != TLS1_3_VERSION)
        return -1;
    if (SSL_export_keying_material(ssl, out, SOTTOD_EXPORTER_BYTES, label, sizeof(label) - 1, NULL,
                                   0, 0) != 1)
        return -1;
    return 0;
}

void sottod_tls_configure_ctx(SSL_CTX *ctx)
{
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    /* No resumption tickets: every connection does a full handshake, so the
     * exporter always comes from a fresh key exchange. */
    SSL_CTX_set_num_tickets(ctx, 0);
}

int sottod_tls_reload(SSL_CTX *ctx, const char *cert_path, const char *key_path)
{
    int ret = -1;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    FILE *f = fopen(cert_path, "r");
    if (f == NULL)
        goto out;
    cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    f = fopen(key_path, "r");
    if (f == NULL)
        goto out;
    key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    /* Check the pair before touching ctx, so a bad file keeps the old one. */
    if (cert == NULL || key == NULL || X509_check_private_key(cert, key) != 1)
        goto out;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1)
        goto out;
    ret = 0;
out:
    EVP_PKEY_free(key);
    X509_free(cert);
    return ret;
}
