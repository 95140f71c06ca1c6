import COpenSSL

/// Conversion between the DER `ECDSA-Sig-Value` OpenSSL uses and the 64-byte r‖s JWS form.
enum ECDSASignature {
    /// DER → r‖s (each left-padded to 32 bytes). Parses the two INTEGERs directly (OpenSSL
    /// made them); anything unexpected goes through OpenSSL's parser.
    static func raw(fromDER der: [UInt8]) -> [UInt8]? {
        if let fast = parseDirect(der) { return fast }
        return parseWithOpenSSL(der)
    }

    /// `SEQUENCE { INTEGER r, INTEGER s }` with short-form lengths (always so for P-256).
    static func parseDirect(_ der: [UInt8]) -> [UInt8]? {
        guard der.count >= 8, der[0] == 0x30, Int(der[1]) == der.count - 2 else { return nil }
        var out = [UInt8](repeating: 0, count: 64)
        var index = 2
        for half in 0..<2 {
            guard index + 2 <= der.count, der[index] == 0x02 else { return nil }
            var length = Int(der[index + 1])
            index += 2
            guard length >= 1, length <= 33, index + length <= der.count else { return nil }
            var start = index
            while length > 32, der[start] == 0 { start += 1; length -= 1 }
            guard length <= 32 else { return nil }
            for offset in 0..<length { out[half * 32 + 32 - length + offset] = der[start + offset] }
            index = start + length
        }
        return index == der.count ? out : nil
    }

    static func parseWithOpenSSL(_ der: [UInt8]) -> [UInt8]? {
        let parsed: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_ECDSA_SIG(nil, &cursor, buffer.count)
        }
        guard let signature = parsed else { return nil }
        defer { ECDSA_SIG_free(signature) }
        var r: OpaquePointer?
        var s: OpaquePointer?
        ECDSA_SIG_get0(signature, &r, &s)
        var out = [UInt8](repeating: 0, count: 64)
        let ok = out.withUnsafeMutableBufferPointer { buffer in
            BN_bn2binpad(r, buffer.baseAddress, 32) == 32 && BN_bn2binpad(s, buffer.baseAddress! + 32, 32) == 32
        }
        return ok ? out : nil
    }

    /// r‖s → DER `SEQUENCE { INTEGER r, INTEGER s }` (minimal INTEGER encodings).
    static func der(fromRaw raw: [UInt8]) -> [UInt8]? {
        guard raw.count == 64 else { return nil }
        func integer(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
            var trimmed = bytes.drop { $0 == 0 }
            if trimmed.isEmpty { trimmed = [0][...] }
            let body = (trimmed.first! & 0x80 != 0 ? [0] : []) + Array(trimmed)
            return [0x02, UInt8(body.count)] + body
        }
        let content = integer(raw[0..<32]) + integer(raw[32..<64])
        return [0x30, UInt8(content.count)] + content
    }
}
