import COpenSSL
import Synchronization

/// ES256 verification with a table of multiples of the public key, for a key that verifies
/// many signatures (the key ring's, at request rate).
///
/// Why: verifying computes u1·G + u2·Q. OpenSSL's P-256 code (nistz256) keeps a table of
/// multiples of the generator G, so u1·G costs about 4.7 µs on this machine, but Q is a
/// new point to it on every call: u2·Q costs about 28 µs, two thirds of a verification
/// (41 µs; `openssl speed ecdsap256`: 24,500/s). Here Q gets a table of its own, built once
/// per key (about 15 ms, 150 KB) by making it the generator of a copy of the group: both
/// products then take the fast path. With the scalar arithmetic in Swift (``P256Scalar``:
/// OpenSSL's inversion of s was then the largest cost left) a whole access token verifies
/// in about 21 µs, twice the raw `EVP_DigestVerify` rate (BENCHMARKS.md, "ES256
/// verification with a table of the key" and "ES256 scalar arithmetic in Swift"). Nothing
/// secret is involved (a verification's inputs are public), so none of it needs to be
/// constant-time.
///
/// Only where OpenSSL's P-256 code has a fixed-base path (nistz256: the x86_64 and aarch64
/// assembly builds, Debian's among them): a generic build multiplies by a generator with
/// its constant-time ladder, table or not, and this would be 2.3× slower than
/// `EVP_DigestVerify` (measured in review). The table is made only when the built-in
/// group reports its own table (`EC_GROUP_have_precompute_mult`), true on nistz256 alone.
/// These low-level EC calls bypass OpenSSL's providers: a deployment that must verify
/// through a FIPS provider must not use this path.
///
/// The arithmetic is FIPS 186-5's ECDSA verification step by step, on OpenSSL's group and
/// big-number functions; it is checked against every Wycheproof P-256 vector and against
/// `EVP_DigestVerify` on random and corrupted signatures (`P256KeyTableTests`), and in review
/// against `ECDSA_do_verify` on constructed edge cases (u1 = 0, u1·G = ±u2·Q, x(R) ≥ n).
final class P256KeyTable: @unchecked Sendable {
    /// P-256 with its standard generator (OpenSSL's built-in table).
    private let standard: OpaquePointer
    /// P-256 with the public key as its generator, and a table built for it. Private, and
    /// never serialized or compared: it still calls itself P-256 (its curve name is kept,
    /// which is what lets its points be added to the standard group's), but it is not.
    private let keyed: OpaquePointer

    /// `raw`: the uncompressed point 0x04‖x‖y, checked to be on the curve.
    init(raw: [UInt8]) throws(CryptoError) {
        guard raw.count == 65, raw[0] == 0x04 else { throw .invalidKey("a P-256 point must be 65 bytes starting with 0x04") }
        guard let standard = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1) else { throw CryptoError.fromQueue("EC_GROUP_new_by_curve_name") }
        guard let keyed = EC_GROUP_dup(standard) else {
            EC_GROUP_free(standard)
            throw CryptoError.fromQueue("EC_GROUP_dup")
        }
        self.standard = standard
        self.keyed = keyed
        guard paywall_ec_group_have_precompute_mult(standard) == 1 else {
            throw .invalidKey("this OpenSSL has no fixed-base P-256 multiplication (not nistz256): a table would be slower")
        }
        guard let point = EC_POINT_new(standard) else { throw CryptoError.fromQueue("EC_POINT_new") }
        defer { EC_POINT_free(point) }
        // oct2point refuses a point not on the curve; P-256's cofactor is 1, so any point on
        // it other than infinity (not encodable with 0x04) generates the whole group.
        guard raw.withUnsafeBufferPointer({ EC_POINT_oct2point(standard, point, $0.baseAddress, 65, nil) }) == 1 else {
            throw CryptoError.fromQueue("EC_POINT_oct2point").asInvalidKey
        }
        guard EC_GROUP_set_generator(keyed, point, EC_GROUP_get0_order(standard), BN_value_one()) == 1 else {
            throw CryptoError.fromQueue("EC_GROUP_set_generator")
        }
        guard paywall_ec_group_precompute_mult(keyed) == 1 else { throw CryptoError.fromQueue("EC_GROUP_precompute_mult") }
    }

    deinit {
        idle.withLock { $0.removeAll() }  // its points before their groups
        EC_GROUP_free(keyed)
        EC_GROUP_free(standard)
    }

    /// One verification's working space: OpenSSL's big-number context and two points.
    /// Kept for the next verification instead of made each time: a fresh context
    /// allocates every temporary it hands out, and the inversion and reductions grow
    /// them limb by limb (measured with `perf` on cold-token checks: `malloc` and `free`
    /// from these calls were a fifth of the verification's time).
    /// Sendable as the pool hands it over: one verification holds it at a time.
    private final class Scratch: @unchecked Sendable {
        let context: OpaquePointer
        let sum: OpaquePointer
        let product: OpaquePointer

        init?(standard: OpaquePointer, keyed: OpaquePointer) {
            guard let context = BN_CTX_new() else { return nil }
            guard let sum = EC_POINT_new(standard) else {
                BN_CTX_free(context)
                return nil
            }
            guard let product = EC_POINT_new(keyed) else {
                EC_POINT_free(sum)
                BN_CTX_free(context)
                return nil
            }
            (self.context, self.sum, self.product) = (context, sum, product)
        }

        deinit {
            EC_POINT_free(product)
            EC_POINT_free(sum)
            BN_CTX_free(context)
        }
    }

    /// Working spaces not in use (one per verification running at once, at most
    /// ``scratchKept`` kept). A context is never shared: OpenSSL's are not thread-safe.
    private let idle = Mutex<[Scratch]>([])
    private static let scratchKept = 16

    /// Whether `signature` (r‖s, 64 bytes) signs `digest` (SHA-256, 32 bytes).
    func verify(signature: [UInt8], digest: [UInt8]) -> Bool {
        guard signature.count == 64, digest.count == 32 else { return false }
        guard let scratch = idle.withLock({ $0.popLast() }) ?? Scratch(standard: standard, keyed: keyed) else { return clearingErrors(false) }
        defer { idle.withLock { if $0.count < Self.scratchKept { $0.append(scratch) } } }
        let context = scratch.context
        BN_CTX_start(context)
        defer { BN_CTX_end(context) }
        guard let r = BN_CTX_get(context), let s = BN_CTX_get(context), let e = BN_CTX_get(context),
              let w = BN_CTX_get(context), let u1 = BN_CTX_get(context), let u2 = BN_CTX_get(context),
              let x = BN_CTX_get(context), let order = EC_GROUP_get0_order(standard)
        else { return clearingErrors(false) }
        let (sum, product) = (scratch.sum, scratch.product)
        let (rScalar, sScalar) = signature.withUnsafeBufferPointer { bytes in
            (P256Scalar(bigEndian: UnsafeBufferPointer(rebasing: bytes[0..<32])), P256Scalar(bigEndian: UnsafeBufferPointer(rebasing: bytes[32..<64])))
        }
        // r and s in [1, n-1].
        guard !rScalar.isZero, !sScalar.isZero, rScalar.isLess(than: .order), sScalar.isLess(than: .order) else { return false }
        // e: the digest as an integer (P-256's n has 256 bits, as SHA-256: no truncation).
        // w = s⁻¹, u1 = e·w, u2 = r·w (mod n), by ``P256Scalar`` (checked; OpenSSL's should
        // it ever fail); then u1·G + u2·Q, both from tables. Every output is written whole
        // by its call: nothing of an earlier verification is read. Every conversion is
        // checked: one that failed (memory) would leave its number at the zero `BN_CTX_get`
        // gave it, and with u1 = 0 the check x(u2·Q) = r is one anyone can satisfy without
        // the key (found in review). Fail closed.
        if let w = sScalar.inverse {
            var eScalar = digest.withUnsafeBufferPointer { P256Scalar(bigEndian: $0) }
            if !eScalar.isLess(than: .order) { eScalar = P256Scalar.difference(eScalar, .order) }
            guard P256Scalar.product(eScalar, w).withBigEndianBytes({ BN_bin2bn($0.baseAddress, 32, u1) }) != nil,
                  P256Scalar.product(rScalar, w).withBigEndianBytes({ BN_bin2bn($0.baseAddress, 32, u2) }) != nil,
                  signature.withUnsafeBufferPointer({ BN_bin2bn($0.baseAddress, 32, r) }) != nil
            else { return clearingErrors(false) }
        } else {
            guard signature.withUnsafeBufferPointer({ BN_bin2bn($0.baseAddress, 32, r) }) != nil,
                  signature.withUnsafeBufferPointer({ BN_bin2bn($0.baseAddress.map { $0 + 32 }, 32, s) }) != nil,
                  digest.withUnsafeBufferPointer({ BN_bin2bn($0.baseAddress, 32, e) }) != nil,
                  BN_mod_inverse(w, s, order, context) != nil,
                  BN_mod_mul(u1, e, w, order, context) == 1, BN_mod_mul(u2, r, w, order, context) == 1
            else { return clearingErrors(false) }
        }
        guard EC_POINT_mul(standard, sum, u1, nil, nil, context) == 1,
              EC_POINT_mul(keyed, product, u2, nil, nil, context) == 1,
              EC_POINT_add(standard, sum, sum, product, context) == 1
        else { return clearingErrors(false) }
        // The sum must not be the point at infinity, and its x mod n must be r.
        guard EC_POINT_is_at_infinity(standard, sum) == 0,
              EC_POINT_get_affine_coordinates(standard, sum, x, nil, context) == 1,
              BN_nnmod(x, x, order, context) == 1
        else { return clearingErrors(false) }
        return BN_cmp(x, r) == 0
    }

    private func clearingErrors(_ result: Bool) -> Bool {
        ERR_clear_error()
        return result
    }
}

/// A public key's table, built once the key has verified enough signatures to be worth it:
/// a key that verifies one signature (an App Store certificate's) never pays the 15 ms.
final class LazyP256KeyTable: Sendable {
    /// Verifications with the plain path before the table is built.
    static let threshold = 16

    private let raw: [UInt8]
    private struct State {
        var uses = 0
        var table: P256KeyTable?
    }
    private let state = Mutex(State())

    init(raw: [UInt8]) { self.raw = raw }

    /// The table if built, without counting a use.
    func peek() -> P256KeyTable? { state.withLock { $0.table } }

    /// The table, if built; the caller that reaches the threshold builds it (the others
    /// meanwhile verify the plain way). A key OpenSSL cannot make a table of stays plain.
    func table() -> P256KeyTable? {
        let (table, build) = state.withLock { state -> (P256KeyTable?, Bool) in
            if let table = state.table { return (table, false) }
            state.uses += 1
            return (nil, state.uses == Self.threshold)
        }
        guard build, let built = try? P256KeyTable(raw: raw) else { return table }
        state.withLock { $0.table = built }
        return built
    }
}
