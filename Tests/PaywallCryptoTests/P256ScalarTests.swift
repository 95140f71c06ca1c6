import COpenSSL
import Testing
@testable import PaywallCrypto

/// P256Scalar's inversion and products are our own arithmetic: held to OpenSSL's
/// `BN_mod_inverse` and `BN_mod_mul` on edge values and random ones. The inversion is
/// checked where it is used too (a failure falls back to OpenSSL's), so these tests also
/// ask that it never fails: a fallback would hide a defect behind a slower path.
@Suite("P-256 scalar arithmetic modulo n")
struct P256ScalarTests {
    @Test("the inverse of every edge value and of 20,000 random ones is OpenSSL's")
    func inverseAgreesWithOpenSSL() throws {
        var generator = SystemRandomNumberGenerator()
        var values = Self.edges
        for _ in 0..<20_000 { values.append(Self.random(using: &generator)) }
        var wrong: [String] = []
        for value in values where !value.isZero {
            let expected = try Self.openSSL { n, context, a, _, result in BN_mod_inverse(result, a, n, context) != nil } (value, .one)
            guard let inverse = value.inverse else {
                wrong.append("\(Self.hex(value)): no inverse")
                continue
            }
            if inverse != expected { wrong.append("\(Self.hex(value)): \(Self.hex(inverse)), OpenSSL \(Self.hex(expected))") }
        }
        #expect(wrong.isEmpty, "\(wrong.count) wrong, among them: \(wrong.prefix(5))")
        #expect(values.count > 20_000)
    }

    @Test("zero, n and anything above n have no inverse")
    func noInverse() {
        #expect(P256Scalar(0, 0, 0, 0).inverse == nil)
        #expect(P256Scalar.order.inverse == nil)
        #expect(P256Scalar(.max, .max, .max, .max).inverse == nil)
    }

    @Test("products agree with BN_mod_mul, and a digest at or above n is reduced once")
    func productsAgreeWithOpenSSL() throws {
        var generator = SystemRandomNumberGenerator()
        var pairs: [(P256Scalar, P256Scalar)] = []
        for a in Self.edges { for b in Self.edges { pairs.append((a, b)) } }
        for _ in 0..<5_000 { pairs.append((Self.random(using: &generator), Self.random(using: &generator))) }
        var wrong = 0
        for (a, b) in pairs {
            let expected = try Self.openSSL { n, context, a, b, result in BN_mod_mul(result, a, b, n, context) == 1 } (a, b)
            if P256Scalar.product(a, b) != expected { wrong += 1 }
        }
        #expect(wrong == 0)
        let maximum = P256Scalar(.max, .max, .max, .max)
        #expect(P256Scalar.difference(maximum, .order) == P256Scalar(0x0C46_353D_039C_DAAE, 0x4319_0552_58E8_617B, 0, 0xFFFF_FFFF))
    }

    @Test("32 big-endian bytes in and out")
    func bigEndianRoundTrip() {
        let bytes = (0..<32).map { UInt8($0 + 1) }
        let scalar = bytes.withUnsafeBufferPointer { P256Scalar(bigEndian: $0) }
        #expect(scalar == P256Scalar(0x191A_1B1C_1D1E_1F20, 0x1112_1314_1516_1718, 0x090A_0B0C_0D0E_0F10, 0x0102_0304_0506_0708))
        #expect(Self.bytes(scalar) == bytes)
        #expect(Self.bytes(P256Scalar.order) == P256.order)
    }

    /// Values at the edges: 1, 2, n−1, n−2, (n−1)/2, every power of two below n, all-ones
    /// limbs, 1 to 300.
    static let edges: [P256Scalar] = {
        var values: [P256Scalar] = [.one, P256Scalar(2, 0, 0, 0), P256Scalar.difference(.order, .one), P256Scalar.difference(.order, P256Scalar(2, 0, 0, 0))]
        let n = P256Scalar.order
        values.append(P256Scalar(n.w0 >> 1 | n.w1 << 63, n.w1 >> 1 | n.w2 << 63, n.w2 >> 1 | n.w3 << 63, n.w3 >> 1))
        for bit in 0..<256 {
            var limbs: [UInt64] = [0, 0, 0, 0]
            limbs[bit / 64] = 1 << UInt64(bit % 64)
            let value = P256Scalar(limbs[0], limbs[1], limbs[2], limbs[3])
            if value.isLess(than: n) { values.append(value) }
        }
        values.append(P256Scalar(.max, .max, .max, 0))
        values.append(P256Scalar(.max, 0, .max, 0xFFFF_FFFE_FFFF_FFFF))
        values.append(contentsOf: (1...300).map { P256Scalar(UInt64($0), 0, 0, 0) })
        return values
    }()

    static func bytes(_ value: P256Scalar) -> [UInt8] { value.withBigEndianBytes { Array($0) } }

    static func random(using generator: inout SystemRandomNumberGenerator) -> P256Scalar {
        while true {
            let value = P256Scalar(generator.next(), generator.next(), generator.next(), generator.next())
            if !value.isZero, value.isLess(than: .order) { return value }
        }
    }

    static func hex(_ value: P256Scalar) -> String {
        Self.bytes(value).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    struct OpenSSLFailed: Error {}

    /// OpenSSL's answer for a and b: `body(n, context, a, b, result)` fills `result`.
    static func openSSL(
        _ body: @escaping (OpaquePointer, OpaquePointer, OpaquePointer, OpaquePointer, OpaquePointer) -> Bool
    ) -> (P256Scalar, P256Scalar) throws -> P256Scalar {
        { a, b in
            guard let context = BN_CTX_new(), let n = BN_new(), let x = BN_new(), let y = BN_new(), let result = BN_new() else { throw OpenSSLFailed() }
            defer { BN_free(result); BN_free(y); BN_free(x); BN_free(n); BN_CTX_free(context) }
            _ = Self.bytes(P256Scalar.order).withUnsafeBufferPointer { BN_bin2bn($0.baseAddress, 32, n) }
            _ = Self.bytes(a).withUnsafeBufferPointer { BN_bin2bn($0.baseAddress, 32, x) }
            _ = Self.bytes(b).withUnsafeBufferPointer { BN_bin2bn($0.baseAddress, 32, y) }
            guard body(n, context, x, y, result) else { throw OpenSSLFailed() }
            var bytes = [UInt8](repeating: 0, count: 32)
            guard bytes.withUnsafeMutableBufferPointer({ BN_bn2binpad(result, $0.baseAddress, 32) }) == 32 else { throw OpenSSLFailed() }
            return bytes.withUnsafeBufferPointer { P256Scalar(bigEndian: $0) }
        }
    }
}
