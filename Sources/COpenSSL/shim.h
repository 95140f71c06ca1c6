// The small C surface of OpenSSL libcrypto that PaywallCrypto uses.
// Only PaywallCrypto imports this module.
#ifndef PAYWALL_COPENSSL_SHIM_H
#define PAYWALL_COPENSSL_SHIM_H

#define OPENSSL_API_COMPAT 30000
#define OPENSSL_NO_DEPRECATED 1

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <openssl/objects.h>
#include <openssl/hmac.h>
#include <openssl/core_names.h>
#include <openssl/params.h>

/// `OPENSSL_free` is a function-like macro; Swift cannot import it.
static inline void paywall_openssl_free(void *ptr) { OPENSSL_free(ptr); }

/// `EVP_PKEY_Q_keygen` is variadic; Swift cannot call it.
static inline EVP_PKEY *paywall_keygen_p256(void) { return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); }
static inline EVP_PKEY *paywall_keygen_ed25519(void) { return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"); }

/// `BIO_get_mem_data` is a macro.
static inline long paywall_bio_mem_data(BIO *bio, char **data) { return BIO_get_mem_data(bio, data); }

/// The `sk_X509_*` stack functions are macro-generated; wrapped so Swift sees plain calls.
static inline STACK_OF(X509) *paywall_x509_stack_new(void) { return sk_X509_new_null(); }
static inline int paywall_x509_stack_push(STACK_OF(X509) *stack, X509 *cert) { return sk_X509_push(stack, cert); }
/// Frees the stack and the certificates in it.
static inline void paywall_x509_stack_free(STACK_OF(X509) *stack) { sk_X509_pop_free(stack, X509_free); }

/// `EC_GROUP_precompute_mult` and `EC_GROUP_have_precompute_mult` are deprecated in OpenSSL
/// 3.0 with the rest of the low-level EC API, and hidden by OPENSSL_NO_DEPRECATED above;
/// libcrypto 3 still exports them (declared here as in 3.0.x's ec.h; checked with 3.0.22),
/// and they are the only way to give a public key a table of its multiples
/// (P256KeyTable.swift says why that is worth it). Should a later OpenSSL drop them, the
/// link fails: loudly, not at run time.
int EC_GROUP_precompute_mult(EC_GROUP *group, BN_CTX *ctx);
int EC_GROUP_have_precompute_mult(const EC_GROUP *group);
static inline int paywall_ec_group_precompute_mult(EC_GROUP *group) { return EC_GROUP_precompute_mult(group, NULL); }
static inline int paywall_ec_group_have_precompute_mult(const EC_GROUP *group) { return EC_GROUP_have_precompute_mult(group); }

#endif
