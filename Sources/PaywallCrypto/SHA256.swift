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
            // Through the SHA-256 fetched once: OpenSSL 3's one-shot `SHA256()` fetches
            // it on every call (measured with `perf` on cold-token checks, which hash
            // twice: the fetch was as much as the hashing). It fails only when memory runs
            // out; 32 bytes never written must not become a digest (a cache key, a
            // signature's message), so that stops the process as any allocation would.
            let hashed = EVP_Digest(input.baseAddress, input.count, output.baseAddress, nil, Digests.sha256 ?? EVP_sha256(), nil)
            precondition(hashed == 1, "SHA-256 failed (out of memory)")
            count = 32
        }
    }

    /// The digest of a string's UTF-8 bytes.
    public static func hash(_ text: String) -> [UInt8] {
        var text = text
        return text.withUTF8(hash(buffer:))
    }
}
