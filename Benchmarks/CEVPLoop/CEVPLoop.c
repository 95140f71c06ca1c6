#include "CEVPLoop.h"
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <time.h>

void *cevp_load_key(const char *pem, size_t length) {
    BIO *bio = BIO_new_mem_buf(pem, (int)length);
    if (!bio) return NULL;
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    BIO_free(bio);
    return key;
}

void cevp_free_key(void *key) { EVP_PKEY_free((EVP_PKEY *)key); }

int64_t cevp_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *digest_for(EVP_PKEY *key) { return EVP_PKEY_is_a(key, "EC") ? "SHA256" : NULL; }

int cevp_sign_loop(void *handle, const unsigned char *message, size_t length, int64_t count,
                   unsigned char *signature, size_t *signature_length) {
    EVP_PKEY *key = handle;
    const char *digest = digest_for(key);
    for (int64_t i = 0; i < count; i++) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        size_t out = 128;
        if (!ctx || EVP_DigestSignInit_ex(ctx, NULL, digest, NULL, NULL, key, NULL) != 1 ||
            EVP_DigestSign(ctx, signature, &out, message, length) != 1) {
            EVP_MD_CTX_free(ctx);
            return -1;
        }
        *signature_length = out;
        EVP_MD_CTX_free(ctx);
    }
    return 0;
}

int64_t cevp_verify_loop(void *handle, const unsigned char *message, size_t length, int64_t count,
                         const unsigned char *signature, size_t signature_length) {
    EVP_PKEY *key = handle;
    const char *digest = digest_for(key);
    int64_t verified = 0;
    for (int64_t i = 0; i < count; i++) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx || EVP_DigestVerifyInit_ex(ctx, NULL, digest, NULL, NULL, key, NULL) != 1) {
            EVP_MD_CTX_free(ctx);
            return -1;
        }
        if (EVP_DigestVerify(ctx, signature, signature_length, message, length) == 1) verified++;
        EVP_MD_CTX_free(ctx);
    }
    return verified;
}

int cevp_sign_loop_copy(void *handle, const unsigned char *message, size_t length, int64_t count,
                        unsigned char *signature, size_t *signature_length) {
    EVP_PKEY *key = handle;
    EVP_MD_CTX *template = EVP_MD_CTX_new();
    if (!template || EVP_DigestSignInit_ex(template, NULL, digest_for(key), NULL, NULL, key, NULL) != 1) {
        EVP_MD_CTX_free(template);
        return -1;
    }
    for (int64_t i = 0; i < count; i++) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        size_t out = 128;
        if (!ctx || EVP_MD_CTX_copy_ex(ctx, template) != 1 || EVP_DigestSign(ctx, signature, &out, message, length) != 1) {
            EVP_MD_CTX_free(ctx);
            EVP_MD_CTX_free(template);
            return -1;
        }
        *signature_length = out;
        EVP_MD_CTX_free(ctx);
    }
    EVP_MD_CTX_free(template);
    return 0;
}

int64_t cevp_verify_loop_copy(void *handle, const unsigned char *message, size_t length, int64_t count,
                              const unsigned char *signature, size_t signature_length) {
    EVP_PKEY *key = handle;
    EVP_MD_CTX *template = EVP_MD_CTX_new();
    if (!template || EVP_DigestVerifyInit_ex(template, NULL, digest_for(key), NULL, NULL, key, NULL) != 1) {
        EVP_MD_CTX_free(template);
        return -1;
    }
    int64_t verified = 0;
    for (int64_t i = 0; i < count; i++) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx || EVP_MD_CTX_copy_ex(ctx, template) != 1) {
            EVP_MD_CTX_free(ctx);
            EVP_MD_CTX_free(template);
            return -1;
        }
        if (EVP_DigestVerify(ctx, signature, signature_length, message, length) == 1) verified++;
        EVP_MD_CTX_free(ctx);
    }
    EVP_MD_CTX_free(template);
    return verified;
}
