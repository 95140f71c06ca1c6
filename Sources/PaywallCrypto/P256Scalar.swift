/// Integers modulo n, the order of the P-256 group: the scalar arithmetic of an ES256
/// verification (w = s⁻¹, u1 = e·w, u2 = r·w), for ``P256KeyTable``.
///
/// Why not OpenSSL's: `BN_mod_inverse` takes a bit at a time through general big-number
/// calls, and was about 8% of a cold-token check's server time (measured with `perf`,
/// after ``P256KeyTable`` kept its big-number context), more than the table's two point
/// products together. The inversion here is Bernstein and Yang's "safegcd" in its
/// variable-time form (62 division steps at a time on machine words; the design
/// libsecp256k1 uses for the same job), and the products are Montgomery multiplications.
///
/// Variable time, so for public inputs only: everything an ES256 verification computes is
/// public (the signature, the digest, the key). Never use it for a signing nonce or key.
///
/// Every inverse is checked before it is used (s·w ≡ 1, one multiplication): a defect
/// here could only make a verification fall back to OpenSSL's inversion, never accept a
/// signature. Tests hold it to `BN_mod_inverse` and `BN_mod_mul` (`P256ScalarTests`).
struct P256Scalar: Equatable {
    /// Little-endian 64-bit limbs.
    var w0, w1, w2, w3: UInt64

    init(_ w0: UInt64, _ w1: UInt64, _ w2: UInt64, _ w3: UInt64) {
        (self.w0, self.w1, self.w2, self.w3) = (w0, w1, w2, w3)
    }

    /// n itself (not a scalar mod n: the modulus, for comparisons).
    static let order = P256Scalar(0xF3B9_CAC2_FC63_2551, 0xBCE6_FAAD_A717_9E84, 0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_0000_0000)
    static let one = P256Scalar(1, 0, 0, 0)
    /// -n⁻¹ mod 2⁶⁴ (Montgomery reduction's factor).
    private static let orderNegInverse64: UInt64 = 0xCCD1_C8AA_EE00_BC4F
    /// R² mod n, R = 2²⁵⁶ (takes a Montgomery product back to an ordinary one).
    private static let rSquared = P256Scalar(0x8324_4C95_BE79_EEA2, 0x4699_799C_49BD_6FA6, 0x2845_B239_2B6B_EC59, 0x66E1_2D94_F3D9_5620)

    /// The 32 big-endian bytes at `bytes` (which must hold 32).
    init(bigEndian bytes: UnsafeBufferPointer<UInt8>) {
        precondition(bytes.count == 32)
        func word(_ at: Int) -> UInt64 {
            var value: UInt64 = 0
            for index in at..<(at + 8) { value = value << 8 | UInt64(bytes[index]) }
            return value
        }
        self.init(word(24), word(16), word(8), word(0))
    }

    /// `body` with the 32 big-endian bytes, from the stack (no array).
    func withBigEndianBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        var words = (w3.bigEndian, w2.bigEndian, w1.bigEndian, w0.bigEndian)
        return withUnsafeBytes(of: &words) { body($0.bindMemory(to: UInt8.self)) }
    }

    var isZero: Bool { (w0 | w1 | w2 | w3) == 0 }

    /// Whether self < other, as integers.
    func isLess(than other: P256Scalar) -> Bool {
        if w3 != other.w3 { return w3 < other.w3 }
        if w2 != other.w2 { return w2 < other.w2 }
        if w1 != other.w1 { return w1 < other.w1 }
        return w0 < other.w0
    }

    /// a - b for b ≤ a (a digest at or above n, reduced: below 2n, so once).
    static func difference(_ a: P256Scalar, _ b: P256Scalar) -> P256Scalar { a.subtracting(b).0 }

    /// self - other, wrapping mod 2²⁵⁶, and whether it borrowed.
    private func subtracting(_ other: P256Scalar) -> (P256Scalar, borrow: Bool) {
        let (d0, b0) = w0.subtractingReportingOverflow(other.w0)
        let (d1, b1) = subtractWithBorrow(w1, other.w1, b0)
        let (d2, b2) = subtractWithBorrow(w2, other.w2, b1)
        let (d3, b3) = subtractWithBorrow(w3, other.w3, b2)
        return (P256Scalar(d0, d1, d2, d3), b3)
    }

    /// a·b mod n, for a and b below n.
    static func product(_ a: P256Scalar, _ b: P256Scalar) -> P256Scalar {
        montgomery(montgomery(a, b), rSquared)
    }

    /// a·b·R⁻¹ mod n (CIOS Montgomery multiplication), for a and b below n.
    private static func montgomery(_ a: P256Scalar, _ b: P256Scalar) -> P256Scalar {
        let n = order
        var t0: UInt64 = 0, t1: UInt64 = 0, t2: UInt64 = 0, t3: UInt64 = 0, t4: UInt64 = 0
        for bi in [b.w0, b.w1, b.w2, b.w3] {
            // t += a·bi
            var carry: UInt64 = 0
            (t0, carry) = multiplyAdd(a.w0, bi, t0, carry)
            (t1, carry) = multiplyAdd(a.w1, bi, t1, carry)
            (t2, carry) = multiplyAdd(a.w2, bi, t2, carry)
            (t3, carry) = multiplyAdd(a.w3, bi, t3, carry)
            let (s4, c4) = t4.addingReportingOverflow(carry)
            t4 = s4
            let t5: UInt64 = c4 ? 1 : 0
            // t += m·n makes t divisible by 2⁶⁴; then t /= 2⁶⁴.
            let m = t0 &* orderNegInverse64
            (_, carry) = multiplyAdd(n.w0, m, t0, 0)
            (t0, carry) = multiplyAdd(n.w1, m, t1, carry)
            (t1, carry) = multiplyAdd(n.w2, m, t2, carry)
            (t2, carry) = multiplyAdd(n.w3, m, t3, carry)
            let (s3, c3) = t4.addingReportingOverflow(carry)
            t3 = s3
            t4 = t5 + (c3 ? 1 : 0)
        }
        let t = P256Scalar(t0, t1, t2, t3)
        // t < 2n: one subtraction at most.
        let (reduced, borrow) = t.subtracting(n)
        return (t4 != 0 || !borrow) ? reduced : t
    }

    /// self⁻¹ mod n, or nil for zero (or should the inversion ever not check out).
    var inverse: P256Scalar? {
        guard !isZero, isLess(than: Self.order), let candidate = SafeGCD.inverse(self) else { return nil }
        return Self.product(self, candidate) == Self.one ? candidate : nil
    }
}

/// lo + hi·2⁶⁴ = a·b + c + d (never overflows 128 bits).
@inline(__always)
private func multiplyAdd(_ a: UInt64, _ b: UInt64, _ c: UInt64, _ d: UInt64) -> (low: UInt64, high: UInt64) {
    var (high, low) = a.multipliedFullWidth(by: b)
    var overflow: Bool
    (low, overflow) = low.addingReportingOverflow(c)
    if overflow { high &+= 1 }
    (low, overflow) = low.addingReportingOverflow(d)
    if overflow { high &+= 1 }
    return (low, high)
}

@inline(__always)
private func subtractWithBorrow(_ a: UInt64, _ b: UInt64, _ borrow: Bool) -> (UInt64, Bool) {
    let (d, b1) = a.subtractingReportingOverflow(b)
    let (e, b2) = d.subtractingReportingOverflow(borrow ? 1 : 0)
    return (e, b1 || b2)
}

/// Bernstein–Yang modular inversion ("Fast constant-time gcd computation and modular
/// inversion", 2019), variable-time, modulo P-256's n. Numbers are five signed 62-bit
/// limbs (value = Σ limb·2⁶²ⁱ), so a 2×2 transition matrix of 62 steps applies with 128-bit
/// products.
private enum SafeGCD {
    typealias Limbs = (Int64, Int64, Int64, Int64, Int64)
    static let mask62: Int64 = Int64(bitPattern: UInt64.max >> 2)
    /// n in signed 62-bit limbs.
    static let modulus: Limbs = (0x33B9_CAC2_FC63_2551, 0x339B_EAB6_9C5E_7A13, 0x3FFF_FFFF_FFFF_FFFB, 0x3FFF_FFC0_0000_003F, 0xFF)
    /// n⁻¹ mod 2⁶².
    static let modulusInverse62: UInt64 = 0x332E_3755_11FF_43B1

    /// The transition matrix of 62 division steps, scaled by 2⁶².
    struct Matrix { var u, v, q, r: Int64 }

    static func inverse(_ x: P256Scalar) -> P256Scalar? {
        var d: Limbs = (0, 0, 0, 0, 0)
        var e: Limbs = (1, 0, 0, 0, 0)
        var f = modulus
        var g: Limbs = (
            Int64(bitPattern: x.w0) & mask62,
            Int64(bitPattern: (x.w0 >> 62 | x.w1 << 2)) & mask62,
            Int64(bitPattern: (x.w1 >> 60 | x.w2 << 4)) & mask62,
            Int64(bitPattern: (x.w2 >> 58 | x.w3 << 6)) & mask62,
            Int64(bitPattern: x.w3 >> 56))
        var eta: Int64 = -1
        var length = 5
        // 741 division steps always suffice for 256-bit inputs (the paper's bound; 590 by
        // the tighter one libsecp256k1 uses): 12 rounds of 62. A review saw no input need
        // more than 10 in 70 million. The bound keeps a defect from looping: an inverse
        // not found by then is nil, and the caller falls back.
        for _ in 0..<12 {
            let (nextEta, t) = divsteps(eta, UInt64(bitPattern: f.0), UInt64(bitPattern: g.0))
            eta = nextEta
            updateDE(&d, &e, t)
            updateFG(length, &f, &g, t)
            if g.0 == 0 {
                var rest: Int64 = 0
                withLimbs(g) { for index in 1..<length { rest |= $0[index] } }
                if rest == 0 {
                    // f is ±1 (the gcd of n and a unit), d·x ≡ f.
                    let top = withLimbs(f) { $0[length - 1] }
                    return normalized(d, negate: top < 0)
                }
            }
            // Drop the top limb when both f and g fit in one fewer.
            if length > 1 {
                let fn = withLimbs(f) { $0[length - 1] }
                let gn = withLimbs(g) { $0[length - 1] }
                if (fn ^ (fn >> 63)) | (gn ^ (gn >> 63)) == 0 {
                    setLimb(&f, length - 2) { $0 | Int64(bitPattern: UInt64(bitPattern: fn) << 62) }
                    setLimb(&g, length - 2) { $0 | Int64(bitPattern: UInt64(bitPattern: gn) << 62) }
                    length -= 1
                }
            }
        }
        return nil
    }

    /// 62 division steps on the low bits of f (odd) and g, several at once where g has
    /// trailing zeros or can be cleared of low bits by a multiple of f.
    static func divsteps(_ eta: Int64, _ f0: UInt64, _ g0: UInt64) -> (Int64, Matrix) {
        var eta = eta
        var (u, v, q, r): (UInt64, UInt64, UInt64, UInt64) = (1, 0, 0, 1)
        var (f, g) = (f0, g0)
        var left = 62
        while true {
            // Zeros at the bottom of g each halve g; a sentinel bit stops at `left`.
            let zeros = (g | (UInt64.max << UInt64(left))).trailingZeroBitCount
            g >>= UInt64(zeros)
            u <<= UInt64(zeros)
            v <<= UInt64(zeros)
            eta -= Int64(zeros)
            left -= zeros
            if left == 0 { break }
            // g is odd now.
            let w: UInt64
            if eta < 0 {
                // Swap f and g (negating the new g), and the matrix's rows likewise.
                eta = -eta
                (f, g) = (g, 0 &- f)
                (u, q) = (q, 0 &- u)
                (v, r) = (r, 0 &- v)
                // Cancel up to 6 low bits of g, no more than `left` and eta + 1.
                let limit = Int(min(eta + 1, Int64(left)))
                let mask = (UInt64.max >> UInt64(64 - limit)) & 63
                // f·(f² - 2) ≡ -f⁻¹ (mod 64) for odd f.
                w = (f &* g &* (f &* f &- 2)) & mask
            } else {
                // Up to 4 bits here: f + (((f + 1) & 4) << 1) ≡ f⁻¹ (mod 16).
                let limit = Int(min(eta + 1, Int64(left)))
                let mask = (UInt64.max >> UInt64(64 - limit)) & 15
                let inverse = f &+ (((f &+ 1) & 4) << 1)
                w = ((0 &- inverse) &* g) & mask
            }
            g = g &+ f &* w
            q = q &+ u &* w
            r = r &+ v &* w
        }
        return (eta, Matrix(u: Int64(bitPattern: u), v: Int64(bitPattern: v), q: Int64(bitPattern: q), r: Int64(bitPattern: r)))
    }

    /// [d, e] = t·[d, e] / 2⁶² (mod n), adding the multiple of n that makes the division
    /// exact (and d, e stay in (-2n, n)).
    static func updateDE(_ d: inout Limbs, _ e: inout Limbs, _ t: Matrix) {
        let (u, v, q, r) = (t.u, t.v, t.q, t.r)
        // Start md, me at 0, plus [u, q] if d < 0, plus [v, r] if e < 0.
        let sd = d.4 >> 63, se = e.4 >> 63
        var md = (u & sd) &+ (v & se)
        var me = (q & sd) &+ (r & se)
        var cd = Int128(u) * Int128(d.0) + Int128(v) * Int128(e.0)
        var ce = Int128(q) * Int128(d.0) + Int128(r) * Int128(e.0)
        // Correct md, me so that the sums' low 62 bits are zero.
        md &-= Int64(bitPattern: (modulusInverse62 &* UInt64(truncatingIfNeeded: cd) &+ UInt64(bitPattern: md)) & UInt64(bitPattern: mask62))
        me &-= Int64(bitPattern: (modulusInverse62 &* UInt64(truncatingIfNeeded: ce) &+ UInt64(bitPattern: me)) & UInt64(bitPattern: mask62))
        cd += Int128(modulus.0) * Int128(md)
        ce += Int128(modulus.0) * Int128(me)
        cd >>= 62
        ce >>= 62
        let dl = [d.1, d.2, d.3, d.4], el = [e.1, e.2, e.3, e.4]
        let ml = [modulus.1, modulus.2, modulus.3, modulus.4]
        var newD: Limbs = (0, 0, 0, 0, 0), newE: Limbs = (0, 0, 0, 0, 0)
        for index in 0..<4 {
            cd += Int128(u) * Int128(dl[index]) + Int128(v) * Int128(el[index]) + Int128(ml[index]) * Int128(md)
            ce += Int128(q) * Int128(dl[index]) + Int128(r) * Int128(el[index]) + Int128(ml[index]) * Int128(me)
            setLimb(&newD, index) { _ in Int64(truncatingIfNeeded: cd) & mask62 }
            setLimb(&newE, index) { _ in Int64(truncatingIfNeeded: ce) & mask62 }
            cd >>= 62
            ce >>= 62
        }
        newD.4 = Int64(truncatingIfNeeded: cd)
        newE.4 = Int64(truncatingIfNeeded: ce)
        (d, e) = (newD, newE)
    }

    /// [f, g] = t·[f, g] / 2⁶² (exact), on the first `length` limbs.
    static func updateFG(_ length: Int, _ f: inout Limbs, _ g: inout Limbs, _ t: Matrix) {
        let (u, v, q, r) = (Int128(t.u), Int128(t.v), Int128(t.q), Int128(t.r))
        withLimbs(f) { fl in
            withLimbs(g) { gl in
                var newF: Limbs = (0, 0, 0, 0, 0), newG: Limbs = (0, 0, 0, 0, 0)
                var cf = u * Int128(fl[0]) + v * Int128(gl[0])
                var cg = q * Int128(fl[0]) + r * Int128(gl[0])
                cf >>= 62
                cg >>= 62
                for index in 1..<length {
                    cf += u * Int128(fl[index]) + v * Int128(gl[index])
                    cg += q * Int128(fl[index]) + r * Int128(gl[index])
                    setLimb(&newF, index - 1) { _ in Int64(truncatingIfNeeded: cf) & mask62 }
                    setLimb(&newG, index - 1) { _ in Int64(truncatingIfNeeded: cg) & mask62 }
                    cf >>= 62
                    cg >>= 62
                }
                setLimb(&newF, length - 1) { _ in Int64(truncatingIfNeeded: cf) }
                setLimb(&newG, length - 1) { _ in Int64(truncatingIfNeeded: cg) }
                f = newF
                g = newG
            }
        }
    }

    /// d (in (-2n, n)) as a scalar in [0, n), negated first when `negate`.
    static func normalized(_ d: Limbs, negate: Bool) -> P256Scalar {
        var (r0, r1, r2, r3, r4) = d
        // Add n if negative, then negate if asked: the value is in (-n, n).
        var add = r4 >> 63
        r0 &+= modulus.0 & add; r1 &+= modulus.1 & add; r2 &+= modulus.2 & add; r3 &+= modulus.3 & add; r4 &+= modulus.4 & add
        let flip: Int64 = negate ? -1 : 0
        r0 = (r0 ^ flip) &- flip; r1 = (r1 ^ flip) &- flip; r2 = (r2 ^ flip) &- flip; r3 = (r3 ^ flip) &- flip; r4 = (r4 ^ flip) &- flip
        r1 &+= r0 >> 62; r0 &= mask62
        r2 &+= r1 >> 62; r1 &= mask62
        r3 &+= r2 >> 62; r2 &= mask62
        r4 &+= r3 >> 62; r3 &= mask62
        // Add n again if still negative: [0, n).
        add = r4 >> 63
        r0 &+= modulus.0 & add; r1 &+= modulus.1 & add; r2 &+= modulus.2 & add; r3 &+= modulus.3 & add; r4 &+= modulus.4 & add
        r1 &+= r0 >> 62; r0 &= mask62
        r2 &+= r1 >> 62; r1 &= mask62
        r3 &+= r2 >> 62; r2 &= mask62
        r4 &+= r3 >> 62; r3 &= mask62
        let (a0, a1, a2, a3, a4) = (UInt64(bitPattern: r0), UInt64(bitPattern: r1), UInt64(bitPattern: r2), UInt64(bitPattern: r3), UInt64(bitPattern: r4))
        return P256Scalar(a0 | a1 << 62, a1 >> 2 | a2 << 60, a2 >> 4 | a3 << 58, a3 >> 6 | a4 << 56)
    }

    @inline(__always)
    static func withLimbs<T>(_ limbs: Limbs, _ body: (UnsafeBufferPointer<Int64>) -> T) -> T {
        withUnsafeBytes(of: limbs) { body($0.bindMemory(to: Int64.self)) }
    }

    @inline(__always)
    static func setLimb(_ limbs: inout Limbs, _ index: Int, _ change: (Int64) -> Int64) {
        withUnsafeMutableBytes(of: &limbs) { raw in
            let typed = raw.bindMemory(to: Int64.self)
            typed[index] = change(typed[index])
        }
    }
}
