/* SHA-256 and HMAC-SHA256 (FIPS 180-4, RFC 2104): the signature the engine protocol uses. */
#ifndef CHRONOSCOPE_SHA256_H
#define CHRONOSCOPE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_BYTES 32
#define SHA256_BLOCK_BYTES 64

typedef struct {
    uint32_t state[8];
    uint64_t length_bytes;
    unsigned char block[SHA256_BLOCK_BYTES];
    size_t block_used;
} sha256_ctx;

void sha256_init(sha256_ctx *ctx);
void sha256_update(sha256_ctx *ctx, const void *data, size_t size);
void sha256_final(sha256_ctx *ctx, unsigned char digest[SHA256_DIGEST_BYTES]);

typedef struct {
    sha256_ctx inner;
    unsigned char outer_key[SHA256_BLOCK_BYTES];
} hmac_sha256_ctx;

void hmac_sha256_init(hmac_sha256_ctx *ctx, const void *key, size_t key_size);
void hmac_sha256_update(hmac_sha256_ctx *ctx, const void *data, size_t size);
/* Writes 64 lowercase hex digits and a final NUL (65 bytes). */
void hmac_sha256_hex(hmac_sha256_ctx *ctx, char hex[2 * SHA256_DIGEST_BYTES + 1]);

#endif
