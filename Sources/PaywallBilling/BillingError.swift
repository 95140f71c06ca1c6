import Foundation
import PaywallCore

/// Why a provider's request was refused. Nothing is written for any of them.
public enum BillingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The provider's secrets or certificates are not configured: its route takes nothing.
    case notConfigured(BillingProvider)
    /// No `Stripe-Signature` header.
    case missingSignature
    /// A `Stripe-Signature` header without a timestamp or a `v1` value, or not as Stripe writes it.
    case malformedSignature(String)
    /// No `v1` value is the HMAC of the body under any configured secret.
    case signatureMismatch
    /// The signed timestamp is further than the tolerance from now (a replay, or a clock off).
    case timestampOutOfTolerance(seconds: Int)
    /// A JWS that is not compact ES256 with an `x5c` chain of three certificates.
    case malformedJWS(String)
    /// The `x5c` chain does not verify up to the configured root (OpenSSL's reason).
    case untrustedChain(String)
    /// A certificate of the chain lacks Apple's marker extension.
    case missingMarker(certificate: String, oid: String)
    /// The ES256 signature does not verify under the leaf's key.
    case badSignature
    /// The payload is for another app.
    case wrongBundle(String)
    /// The payload is from another environment (Sandbox vs Production).
    case wrongEnvironment(String)
    /// A verified event whose content is not as the provider documents it.
    case malformedEvent(String)

    public var description: String {
        switch self {
        case let .notConfigured(provider): "\(provider) events are not configured on this server"
        case .missingSignature: "the Stripe-Signature header is missing"
        case let .malformedSignature(detail): "the Stripe-Signature header is malformed: \(detail)"
        case .signatureMismatch: "no signature matches the body under any configured secret"
        case let .timestampOutOfTolerance(seconds): "the signature's timestamp is \(seconds) s from now, beyond the tolerance (a replay, or a clock off)"
        case let .malformedJWS(detail): "the signed payload is not a valid JWS: \(detail)"
        case let .untrustedChain(detail): "the certificate chain does not verify up to the configured root: \(detail)"
        case let .missingMarker(certificate, oid): "the \(certificate) certificate lacks Apple's marker extension \(oid)"
        case .badSignature: "the signature does not verify under the leaf certificate's key"
        case let .wrongBundle(bundle): "the notification is for another app ('\(bundle.prefix(128))')"
        case let .wrongEnvironment(environment): "the notification is from another environment ('\(environment.prefix(32))')"
        case let .malformedEvent(detail): "the event is malformed: \(detail)"
        }
    }

    /// Whether the request failed authentication (a forged or mangled signature), as
    /// opposed to a verified event we cannot read or a server without the settings.
    public var isSignatureFailure: Bool {
        switch self {
        case .missingSignature, .malformedSignature, .signatureMismatch, .timestampOutOfTolerance, .malformedJWS, .untrustedChain, .missingMarker,
             .badSignature: true
        case .notConfigured, .wrongBundle, .wrongEnvironment, .malformedEvent: false
        }
    }
}

