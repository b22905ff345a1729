/*
 * server/tls.h -- sottod's certificate handling and TLS channel binding.
 *
 * Design: without a configured certificate sottod makes a self-signed
 * ECDSA P-256 certificate in DATA_DIR/tls/ on first start (key file 0600)
 * and reuses it afterwards; clients pin the SHA-256 of its DER encoding,
 * which sottod prints. The channel binding is the RFC 9266 tls-exporter
 * value that login signatures cover (docs/api.md section 4).
 */
#ifndef SOTTOD_TLS_H
#define SOTTOD_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define SOTTOD_EXPORTER_BYTES 32
#define SOTTOD_FINGERPRINT_HEX 65 /* 64 lowercase hex + NUL */

/* Creates dir/cert.pem and dir/key.pem (self-signed, CN=sottod, SAN
 * localhost and 127.0.0.1, 10 years) unless both exist. Returns 0 or -1. */
int sottod_tls_ensure_self_signed(const char *dir, char *cert_path, size_t cert_cap, char *key_path,
                                  size_t key_cap);

/* Lowercase hex SHA-256 of the DER encoding of the first certificate in a
 * PEM file. Returns 0 or -1. */
int sottod_tls_fingerprint(const char *cert_path, char hex[SOTTOD_FINGERPRINT_HEX]);

/* RFC 9266 tls-exporter: SSL_export_keying_material with label
 * "EXPORTER-Channel-Binding", empty context, 32 bytes. Refuses anything but
 * TLS 1.3. Returns 0 or -1. */
int sottod_tls_exporter(SSL *ssl, uint8_t out[SOTTOD_EXPORTER_BYTES]);

/* Applies sottod's TLS policy to a server SSL_CTX: TLS 1.3 only, released
 * idle buffers (small idle connections), no session tickets state kept. */
void sottod_tls_configure_ctx(SSL_CTX *ctx);

/* Replaces the certificate and key of ctx from PEM files (SIGHUP). The old
 * ones stay if the new ones do not load or do not match. Returns 0 or -1. */
int sottod_tls_reload(SSL_CTX *ctx, const char *cert_path, const char *key_path);

#endif /* SOTTOD_TLS_H */
