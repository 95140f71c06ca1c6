import COpenSSL

/// SHA-256 (FIPS 180-4).
public enum SHA256 {
    /// The 32-byte digest of `data`.
    public static func hash<D: Collection<UInt8>>(_ data: D) -> [UInt8] {
        if let digest = data.withContiguousStorageIfAvailable(hash(buffer:)) { return digest }
        return Array(data).withUnsafeBufferPointer(hash(buffer:))
    }

    /// The digest of bytes in memory: no copy of them (the token cache hashes every
    /// bearer token it is shown, about 600 bytes each).
    static func hash(buffer input: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: 32) { output, count in
            // SHA256 over a memory buffer cannot fail.
            _ = COpenSSL.SHA256(input.baseAddress, input.count, output.baseAddress)
            count = 32
        }
    }

    /// The digest of a string's UTF-8 bytes.
    public static func hash(_ text: String) -> [UInt8] {
        var text = text
        return text.withUTF8(hash(buffer:))
    }
}
