/// A token taken apart without checking anything: for `paywall token inspect`.
public struct UnverifiedToken: Sendable {
    public let header: JSONValue
    public let payload: JSONValue

    /// Decodes the header and payload of a compact JWS. Trusts nothing.
    public init(_ token: String) throws(TokenError) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("expected three dot-separated parts") }
        guard let header = Base64URL.decode(parts[0]), let payload = Base64URL.decode(parts[1]) else {
            throw .malformed("not base64url")
        }
        do {
            self.header = try JSONValue.parse(header)
            self.payload = try JSONValue.parse(payload)
        } catch {
            throw .malformed(error.description)
        }
    }
}
