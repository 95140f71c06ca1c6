// The reference for the token benchmark: raw OpenSSL EVP one-shot sign and verify calls
// in a C loop, over the same bytes our tokens sign.
#ifndef CEVPLOOP_H
#define CEVPLOOP_H

#include <stddef.h>
#include <stdint.h>

/// Loads a PKCS#8 PEM private key; returns an opaque EVP_PKEY or NULL.
void *cevp_load_key(const char *pem, size_t length);
void cevp_free_key(void *key);

/// Signs `message` `count` times (EVP_DigestSignInit_ex + EVP_DigestSign each time, SHA-256
/// for EC keys, none for Ed25519). Writes the last signature (DER or raw) to `signature`
/// (capacity 128) and its length to `signature_length`. Returns 0 on success.
int cevp_sign_loop(void *key, const unsigned char *message, size_t length, int64_t count,
                   unsigned char *signature, size_t *signature_length);

/// Verifies `signature` over `message` `count` times. Returns how many verified, or -1.
int64_t cevp_verify_loop(void *key, const unsigned char *message, size_t length, int64_t count,
                         const unsigned char *signature, size_t signature_length);

/// The same loops, but copying one context initialized up front (EVP_MD_CTX_copy_ex)
/// instead of initializing each time: the fastest plain EVP usage.
int cevp_sign_loop_copy(void *key, const unsigned char *message, size_t length, int64_t count,
                        unsigned char *signature, size_t *signature_length);
int64_t cevp_verify_loop_copy(void *key, const unsigned char *message, size_t length, int64_t count,
                              const unsigned char *signature, size_t signature_length);

int64_t cevp_now_ns(void);

#endif
