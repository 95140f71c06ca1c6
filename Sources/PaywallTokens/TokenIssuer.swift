import Foundation
import PaywallCore
import PaywallCrypto

/// Issues our tokens with the key ring's signing key.
public struct TokenIssuer: Sendable {
    public let signer: JWSSigner
    public let issuer: String
    public let clock: any PaywallClock

    public init(signer: JWSSigner, issuer: String, clock: any PaywallClock = SystemClock()) {
        self.signer = signer
        self.issuer = issuer
        self.clock = clock
    }

    func registered(subject: String, audience: String, lifetime: TimeInterval) throws -> RegisteredClaims {
        let now = Date(timeIntervalSince1970: clock.now().timeIntervalSince1970.rounded(.down))
        return RegisteredClaims(
            issuer: issuer, subject: subject, audience: [audience], issuedAt: now, notBefore: now,
            expiresAt: now.addingTimeInterval(lifetime), tokenID: try Self.newTokenID())
    }

    /// 128 random bits, base64url (22 characters).
    static func newTokenID() throws -> String {
        Base64URL.encode(try SecureRandom.bytes16())
    }

    /// An access token carrying `entitlements` and the account's count of sign-outs
    /// everywhere (``AccessClaims/signOutsEverywhere``).
    public func accessToken(
        subject: String, audience: String, lifetime: TimeInterval, entitlements: EntitlementSnapshot, signOutsEverywhere: Int = 0
    ) throws -> (String, AccessClaims) {
        let claims = AccessClaims(
            registered: try registered(subject: subject, audience: audience, lifetime: lifetime), entitlements: entitlements,
            signOutsEverywhere: signOutsEverywhere)
        return (try signer.sign(type: TokenKind.access.rawValue, payload: claims.encoded()), claims)
    }

    /// An article grant.
    public func articleGrant(subject: String, audience: String, title: String, article: String, lifetime: TimeInterval) throws -> (String, ArticleGrantClaims) {
        let claims = ArticleGrantClaims(registered: try registered(subject: subject, audience: audience, lifetime: lifetime), title: title, article: article)
        return (try signer.sign(type: TokenKind.articleGrant.rawValue, payload: claims.encoded()), claims)
    }

    /// A device token for `device` (an id the service made).
    public func deviceToken(device: String, audience: String, lifetime: TimeInterval) throws -> (String, DeviceClaims) {
        let claims = DeviceClaims(registered: try registered(subject: DeviceClaims.prefix + device, audience: audience, lifetime: lifetime))
        return (try signer.sign(type: TokenKind.device.rawValue, payload: claims.encoded()), claims)
    }

    /// A comp grant for `titles`.
    public func compGrant(subject: String, audience: String, titles: [String], lifetime: TimeInterval) throws -> (String, CompGrantClaims) {
        let claims = CompGrantClaims(registered: try registered(subject: subject, audience: audience, lifetime: lifetime), titles: titles)
        return (try signer.sign(type: TokenKind.comp.rawValue, payload: claims.encoded()), claims)
    }

    /// An admin token for `subject` (the admin's name) with `scopes`.
    public func adminToken(subject: String, audience: String, scopes: Set<AdminScope>, lifetime: TimeInterval) throws -> (String, AdminClaims) {
        let claims = AdminClaims(registered: try registered(subject: subject, audience: audience, lifetime: lifetime), scopes: scopes)
        return (try signer.sign(type: TokenKind.admin.rawValue, payload: claims.encoded()), claims)
    }

    /// A gift link's token: anyone may read `article` of `title` in full until it expires.
    public func giftToken(subject: String, audience: String, title: String, article: String, lifetime: TimeInterval) throws -> (String, GiftClaims) {
        let claims = GiftClaims(registered: try registered(subject: subject, audience: audience, lifetime: lifetime), title: title, article: article)
        return (try signer.sign(type: TokenKind.gift.rawValue, payload: claims.encoded()), claims)
    }
}
