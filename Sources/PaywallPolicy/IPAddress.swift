/// An IPv4 or IPv6 address as 128 bits (IPv4 as ::ffff:a.b.c.d). An IPv4-mapped IPv6
/// address (`::ffff:203.0.113.5`) *is* the IPv4 address: equal to it, in the same ranges.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64
    /// Whether the address is IPv4, written either way (`203.0.113.5`, `::ffff:203.0.113.5`).
    public var isIPv4: Bool { high == 0 && low >> 32 == 0xFFFF }

    /// Parses dotted IPv4 or RFC 4291 IPv6 text (with `::`, and embedded IPv4).
    public init?(_ text: String) {
        if let v4 = Self.parseIPv4(Substring(text)) {
            high = 0
            low = 0xFFFF_0000_0000 | UInt64(v4)
            return
        }
        guard let groups = Self.parseIPv6(text) else { return nil }
        high = groups[0..<4].reduce(0) { $0 << 16 | UInt64($1) }
        low = groups[4..<8].reduce(0) { $0 << 16 | UInt64($1) }
    }

    /// Dotted quad: four decimal parts of 1–3 digits, each at most 255, no leading zeros.
    /// Scanned byte by byte (every access check parses the client's address: splitting into
    /// substrings took 1.4% of a member check's CPU).
    static func parseIPv4(_ text: Substring) -> UInt32? {
        var value: UInt32 = 0
        var part: UInt32 = 0
        var digits = 0
        var dots = 0
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if digits == 1, part == 0 { return nil }  // a leading zero
                digits += 1
                guard digits <= 3 else { return nil }
                part = part * 10 + UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "."):
                guard digits > 0, part <= 255, dots < 3 else { return nil }
                value = value << 8 | part
                dots += 1
                part = 0
                digits = 0
            default:
                return nil
            }
        }
        guard digits > 0, part <= 255, dots == 3 else { return nil }
        return value << 8 | part
    }

    static func parseIPv6(_ text: String) -> [UInt16]? {
        guard text.count <= 45, text.contains(":") else { return nil }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String, allowIPv4: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if allowIPv4, index == pieces.count - 1, piece.contains("."), let v4 = parseIPv4(piece) {
                    result.append(UInt16(v4 >> 16))
                    result.append(UInt16(v4 & 0xFFFF))
                } else {
                    guard !piece.isEmpty, piece.count <= 4, let group = UInt16(piece, radix: 16) else { return nil }
                    result.append(group)
                }
            }
            return result
        }
        if halves.count == 1 {
            guard let all = groups(halves[0], allowIPv4: true), all.count == 8 else { return nil }
            return all
        }
        guard let head = groups(halves[0], allowIPv4: false), let tail = groups(halves[1], allowIPv4: true), head.count + tail.count < 8 else { return nil }
        return head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
    }

    public var description: String {
        if isIPv4 {
            let v = UInt32(truncatingIfNeeded: low)
            return "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)"
        }
        let groups = (0..<4).map { UInt16(truncatingIfNeeded: high >> (48 - 16 * $0)) } + (0..<4).map { UInt16(truncatingIfNeeded: low >> (48 - 16 * $0)) }
        return groups.map { String($0, radix: 16) }.joined(separator: ":")
    }
}

/// An address range, `203.0.113.0/24` or `2001:db8::/32`.
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    public let network: IPAddress
    public let prefix: Int
    let maskHigh: UInt64
    let maskLow: UInt64

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPAddress(String(parts[0])), let bits = Int(parts[1]) else { return nil }
        // The prefix counts IPv4 bits after dotted text, IPv6 bits after IPv6 text (also
        // `::ffff:203.0.113.0/120`, the IPv4-mapped form of 203.0.113.0/24).
        let dotted = !parts[0].contains(":")
        guard (0...(dotted ? 32 : 128)).contains(bits), parts[1].allSatisfy(\.isNumber) else { return nil }
        let total = dotted ? 96 + bits : bits
        maskHigh = total >= 64 ? UInt64.max : (total == 0 ? 0 : UInt64.max << (64 - total))
        maskLow = total <= 64 ? 0 : (total >= 128 ? UInt64.max : UInt64.max << (128 - total))
        var network = address
        network.high &= maskHigh
        network.low &= maskLow
        self.network = network
        // A range inside the IPv4-mapped block is an IPv4 range: keep its prefix in IPv4 bits.
        prefix = !dotted && total >= 96 && network.isIPv4 ? total - 96 : bits
    }

    /// Whether `address` is in the range, over all 128 bits: an IPv4 range holds its IPv4
    /// addresses however they are written, and no other IPv6 address.
    public func contains(_ address: IPAddress) -> Bool {
        address.high & maskHigh == network.high && address.low & maskLow == network.low
    }

    public var description: String { "\(network)/\(prefix)" }
}
