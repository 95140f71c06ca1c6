import Foundation
import PaywallBilling
import PaywallCore
import PaywallCrypto
import PaywallPolicy
import PaywallStore
import PaywallTokens

/// What kind of failure an error is: the one thing adapters map from (the CLI's exit
/// status, the HTTP status).
public enum ServiceErrorCategory: String, Sendable, CaseIterable {
    /// The input is malformed or breaks a rule (HTTP 400/422; exit 1).
    case invalid
    /// What the input names does not exist (404; exit 1).
    case notFound
    /// The request clashes with what is stored (409; exit 1).
    case conflict
    /// Who is asking could not be established (401; exit 1).
    case unauthorized
    /// They may not do this (403; exit 1).
    case forbidden
    /// Too many attempts: wait and try again (429 with `Retry-After`; exit 1).
    case rateLimited
    /// The database or the keys cannot be used now (503; exit 2).
    case unavailable
    /// A fault of ours or of a library (500; exit 2).
    case `internal`
}

/// Why a service operation failed. Each case carries a message a user can act on; adapters
/// map ``category`` to their statuses and may show ``code``, a stable identifier.
public enum ServiceError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input was malformed (email, password, id, date…).
    case invalidInput(DomainError)
    /// A setting (environment variable or flag) has an invalid value.
    case configuration(name: String, value: String, expected: String)
    /// A `PAYWALL_*` environment variable that names no setting (a typo would otherwise be
    /// ignored and the default taken), with the setting it was likely meant to be.
    case unknownSetting(name: String, meant: String?)
    /// The store refused or failed.
    case store(StoreError)
    /// A cryptographic operation failed.
    case crypto(CryptoError)
    /// Wrong email or password (deliberately not saying which).
    case invalidCredentials
    /// The refresh token is unknown, expired or revoked.
    case sessionRejected
    /// A refresh token was used twice; its whole session family is now revoked.
    case sessionReused
    /// A token was refused, with the precise reason (not for callers' eyes over HTTP).
    case token(TokenError)
    /// The key ring cannot be used or changed as asked.
    case keys(KeyRingError)
    /// The policy set does not check clean (every diagnostic, with file:line:column).
    case policy(PolicyErrors)
    /// The service is shutting down and takes no more work.
    case shuttingDown
    /// Too much blocking work is already waiting; try again shortly.
    case overloaded
    /// A readiness probe's check did not finish in time (why, for the log and the probe).
    case notReady(String)
    /// The operation needs a bearer token and none was given.
    case tokenRequired
    /// An admin operation was asked with a valid token that is not an admin token.
    case adminTokenRequired
    /// The admin token lacks the scope the operation needs (its name).
    case missingScope(String)
    /// Only a member whose plan covers the title may do this (give its articles).
    case notEntitled(title: String)
    /// The member already made `limit` gift links this month; the next one from `resetsAt`.
    case giftLimitReached(limit: Int, resetsAt: Date)
    /// A gift link that is not valid (the precise reason, for the log only).
    case giftRefused(String)
    /// A comp grant sent with an access check was refused (expired, forged, another reader's).
    case compRefused(String)
    /// Too many failed sign-ins for this email or from this address: wait `retryAfter` seconds.
    case tooManyAttempts(retryAfter: TimeInterval)
    /// Too much mail to this address lately: wait `retryAfter` seconds.
    case tooMuchMail(retryAfter: TimeInterval)
    /// Too many sign-ups from this client address lately: wait `retryAfter` seconds.
    case tooManySignUps(retryAfter: TimeInterval)
    /// Too many password-reset requests from this client address lately.
    case tooManyResetRequests(retryAfter: TimeInterval)
    /// Too many email-address changes of this account lately.
    case tooManyEmailChanges(retryAfter: TimeInterval)
    /// Too many data exports of this account lately.
    case tooManyExports(retryAfter: TimeInterval)
    /// An email link that is unknown, expired, superseded or already used.
    case linkInvalid
    /// The policy in force offers no free trial.
    case trialNotOffered
    /// The trial needs a confirmed email address (``ServiceConfiguration/trialNeedsVerifiedEmail``).
    case emailNotVerified
    /// A payment provider still renews a membership of the account it would delete.
    case subscriptionActive(provider: String)
    /// The sendmail command refused `count` messages; they stay in the outbox.
    case mailNotDelivered(count: Int)
    /// A payment provider's event was refused (signature, chain, shape) or its provider is
    /// not configured; nothing was written.
    case billing(BillingError)
    /// A replay of billing events (`paywall billing replay`) stopped at a refused event:
    /// the ones before it are applied (each in its own transaction), none after it.
    /// `transient`: the refusal was the database's or the server's (unavailable,
    /// overloaded), not the event's: the same file replayed later may go through.
    case billingReplayStopped(event: Int, total: Int, reason: String, transient: Bool)
    /// A change outside the database was made (the key folder), and its audit entry could
    /// not be written after it: said as made, with what to record by hand, so that nobody
    /// runs it again believing nothing happened (found in review: a retried `keys generate`
    /// made another signing key).
    case auditMissing(change: String, reason: String)

    /// Whether trying the same request again may succeed where this failed: not for a change
    /// made whose audit entry is missing (``auditMissing(change:reason:)``), which would be
    /// made again. Adapters ask it of unavailable errors (HTTP's `Retry-After`).
    public var invitesRetry: Bool {
        if case .auditMissing = self { return false }
        return true
    }

    public var description: String {
        switch self {
        case let .invalidInput(error): error.description
        case let .configuration(name, value, expected):
            // An environment variable left empty is one not set; a flag given "" is invalid.
            value.isEmpty && !name.hasPrefix("-") ? "\(name) is not set: set it to \(expected)" : "invalid \(name) '\(value.prefix(80))': expected \(expected)"
        case let .unknownSetting(name, meant):
            "\(PrintableText.oneLine(name)) is not a setting of paywall\(meant.map { " (did you mean \($0)?)" } ?? ""); unset it, or name it "
                + "with \(ServiceConfiguration.reservedEnvironmentPrefixes.joined(separator: ", ")) if a test or script sets it"
        case let .store(error): error.description
        case let .crypto(error): error.description
        case .invalidCredentials: "wrong email or password"
        case .sessionRejected: "the session has expired or was revoked; sign in again"
        case .sessionReused: "this refresh token was already used; every session of its family is revoked, sign in again"
        case let .token(error): error.description
        case let .keys(error): error.description
        case let .policy(errors): errors.description
        case .shuttingDown: "the service is shutting down"
        case .overloaded: "too many requests are waiting; try again shortly"
        case let .notReady(reason): "not ready: \(reason)"
        case .tokenRequired: "this operation needs a bearer token"
        case .adminTokenRequired: "this operation needs an admin token ('paywall token admin'); a reader's token is not one"
        case let .missingScope(scope): "the admin token lacks the '\(scope)' scope this operation needs"
        case let .notEntitled(title): "only a member whose plan includes title '\(title)' may give its articles"
        case let .giftLimitReached(limit, resetsAt):
            limit == 0 ? "gift links are turned off" : "you have made \(limit) gift links this month, the most allowed; the next from \(TimeText.format(resetsAt))"
        case let .giftRefused(reason): "the gift link was refused: \(reason)"
        case let .compRefused(reason): "the comp grant was refused: \(reason)"
        case let .tooManyAttempts(wait): "too many failed sign-ins; try again in \(Self.seconds(wait)) seconds"
        case let .tooMuchMail(wait): "too much mail sent to this address lately; try again in \(Self.seconds(wait)) seconds"
        case let .tooManySignUps(wait): "too many sign-ups from this address; try again in \(Self.seconds(wait)) seconds"
        case let .tooManyResetRequests(wait): "too many password-reset requests from this address; try again in \(Self.seconds(wait)) seconds"
        case let .tooManyEmailChanges(wait): "the email address of this account was changed several times lately; try again in \(Self.seconds(wait)) seconds"
        case let .tooManyExports(wait): "this account's data was exported several times lately; try again in \(Self.seconds(wait)) seconds"
        case .linkInvalid: "the link is invalid, expired, or already used; ask for a new one"
        case .trialNotOffered: "no free trial is offered"
        case .emailNotVerified: "confirm your email address first: open the link we mailed you, or ask for a new one"
        case let .subscriptionActive(provider):
            "a subscription through \(provider == "apple" ? "the App Store" : "Stripe") still renews a membership of this account: cancel it there first (it ends at the end of its period), then delete the account"
        case let .billing(error): error.description
        case let .auditMissing(change, reason):
            "\(change) was made, but its audit entry could not be written (\(reason)): do not run it again; record it by hand once the database answers"
        case let .billingReplayStopped(event, total, reason, transient):
            "event \(event) of \(total) was refused (\(reason)); the \(event - 1) before it were taken (applied, or waiting or failed as listed) and none after it: "
                + (transient ? "replay the file again once the database answers" : "fix or remove it and replay the file again")
                + " (events already applied change nothing)"
        case let .mailNotDelivered(count): "the sendmail command refused \(count) message\(count == 1 ? "" : "s"); they stay in the outbox and are tried again"
        }
    }

    /// What may be shown to someone outside (an HTTP client): the full message for their
    /// own mistakes, and a generic one where the detail is ours (SQL, paths, key files) or
    /// would help an attacker (why a token or a password was refused). The full message
    /// belongs in the log.
    public var publicMessage: String {
        switch category {
        case .invalid, .notFound, .conflict, .forbidden, .rateLimited:
            if case .policy = self { return "the policy could not be loaded" }
            // Why a gift token failed would help someone forging one; the reader needs only this.
            if case .giftRefused = self { return "the gift link is not valid for this article, or has expired" }
            if case .compRefused = self { return "the comp grant is not valid for this reader, or has expired" }
            // Which account keeps an address, and until when, is support's to know (the CLI
            // and the log say it); a reader is answered as for a taken address.
            if case let .store(.addressKept(email, _, _)) = self { return StoreError.duplicateEmail(email).description }
            // Which check a forged event failed would help the forger; the log has it.
            if case let .billing(error) = self, error.isSignatureFailure { return "the event's signature could not be verified" }
            return description
        case .unauthorized:
            switch self {
            case .invalidCredentials, .sessionRejected, .sessionReused, .tokenRequired: return description
            default: return "the token was refused"
            }
        case .unavailable:
            if case .notReady = self { return description }
            // Said as made (the database's reason stays in the log).
            if case let .auditMissing(change, _) = self { return "\(change) was made, but its audit entry could not be written: do not do it again" }
            return self == .overloaded ? description : "the service is unavailable; try again shortly"
        case .internal: return "an internal error occurred"
        }
    }

    /// The seconds a client must wait before retrying, for errors that say so.
    public var retryAfter: TimeInterval? {
        switch self {
        case let .tooManyAttempts(wait), let .tooMuchMail(wait), let .tooManySignUps(wait), let .tooManyResetRequests(wait), let .tooManyEmailChanges(wait), let .tooManyExports(wait): max(1, wait)
        default: nil
        }
    }

    /// Whole seconds, at least 1, at most a day (never trapping on NaN or huge values).
    public static func seconds(_ wait: TimeInterval) -> Int {
        guard wait.isFinite else { return 86_400 }
        return Int(min(86_400, max(1, wait.rounded(.up))))
    }

    /// The kind of failure.
    public var category: ServiceErrorCategory {
        switch self {
        case .invalidInput, .configuration, .unknownSetting, .policy: .invalid
        case let .store(error): Self.category(of: error)
        case let .crypto(error):
            switch error {
            // A password too long is the caller's; a stored hash we cannot use is ours.
            case .passwordTooLong: .invalid
            default: .internal
            }
        case .invalidCredentials, .sessionRejected, .sessionReused, .token, .tokenRequired: .unauthorized
        case .adminTokenRequired, .missingScope, .notEntitled, .giftLimitReached, .giftRefused, .compRefused: .forbidden
        case let .keys(error):
            switch error {
            case .noSigningKey, .cannotAccess, .noSuchFolder, .corrupt, .missingPrivateKey, .insecurePermissions, .writableByOthers, .symbolicLink,
                 .notRegularFile, .wrongOwner: .unavailable
            case .unknownKey: .notFound
            case .alreadyRetired, .retiringSigningKey, .tooSoonToRetire: .conflict
            case .crypto: .internal
            }
        case .shuttingDown, .overloaded, .notReady, .mailNotDelivered: .unavailable
        case .tooManyAttempts, .tooMuchMail, .tooManySignUps, .tooManyResetRequests, .tooManyEmailChanges, .tooManyExports: .rateLimited
        case .linkInvalid: .invalid
        case .trialNotOffered: .conflict
        case .emailNotVerified: .forbidden
        case .subscriptionActive: .conflict
        case let .billingReplayStopped(_, _, _, transient): transient ? .unavailable : .invalid
        case .auditMissing: .unavailable
        case let .billing(error):
            // 404, not 503: a server without the provider's settings has no such endpoint,
            // and the provider keeps the event to deliver again.
            if case .notConfigured = error { .notFound } else { .invalid }
        }
    }

    static func category(of error: StoreError) -> ServiceErrorCategory {
        switch error {
        case .notADatabase, .corrupt, .readOnly, .locked, .cannotOpen, .noSuchFile, .diskFull, .schemaTooNew, .schemaOutdated, .unavailable: .unavailable
        case .sqlite, .postgres, .randomUnavailable: .internal
        case .accountNotFound, .titleNotFound, .titleRetired, .planNotFound, .billingProductNotMapped, .trialNotFound, .membershipNotFound, .sessionNotFound, .revisionNotFound, .adminTokenNotFound, .adminNeverMinted, .billingNothingWaiting, .billingEventNotFound: .notFound
        case .duplicateEmail, .addressKept, .duplicateTitle, .duplicatePlan, .planInUse, .trialAlreadyUsed, .membershipExists, .invalidTransition, .trialNotRunning, .destinationExists, .billingCustomerLinked, .billingSubscriptionLinked, .billingEventSettled: .conflict
        case .emptyBundle, .ambiguousRevision: .invalid
        case .copyRefused: .conflict
        case .passwordChanged: .unauthorized  // reaches adapters as ``invalidCredentials`` (``wrapping(_:)``)
        }
    }

    /// A stable, machine-readable name of the error (for JSON bodies and scripts).
    public var code: String {
        switch self {
        case let .invalidInput(error):
            switch error {
            case .invalidEmail: "invalid_email"
            case .weakPassword: "weak_password"
            case .invalidIdentifier: "invalid_identifier"
            case .invalidName: "invalid_name"
            case .invalidDuration: "invalid_duration"
            case .invalidDate: "invalid_date"
            case .invalidValue: "invalid_value"
            }
        case .configuration: "invalid_configuration"
        case .unknownSetting: "unknown_setting"
        case let .store(error):
            switch error {
            case .notADatabase, .corrupt, .readOnly, .cannotOpen, .noSuchFile, .diskFull, .schemaTooNew, .schemaOutdated, .unavailable: "database_unavailable"
            case .locked: "database_locked"
            case .sqlite, .postgres: "database_error"
            case .randomUnavailable: "random_unavailable"
            case .accountNotFound: "account_not_found"
            case .titleNotFound: "title_not_found"
            case .titleRetired: "title_retired"
            case .planNotFound: "plan_not_found"
            case .billingProductNotMapped: "billing_product_not_found"
            case .trialNotFound: "trial_not_found"
            case .membershipNotFound: "membership_not_found"
            case .sessionNotFound: "session_not_found"
            case .duplicateEmail, .addressKept: "email_taken"
            case .duplicateTitle: "title_exists"
            case .duplicatePlan: "plan_exists"
            case .planInUse: "plan_in_use"
            case .trialAlreadyUsed: "trial_already_used"
            case .membershipExists: "membership_exists"
            case .invalidTransition, .trialNotRunning: "invalid_transition"
            case .destinationExists: "destination_exists"
            case .billingCustomerLinked: "customer_linked"
            case .billingSubscriptionLinked: "subscription_linked"
            case .billingNothingWaiting: "no_events_waiting"
            case .billingEventNotFound: "billing_event_not_found"
            case .billingEventSettled: "billing_event_settled"
            case .emptyBundle: "empty_bundle"
            case .ambiguousRevision: "ambiguous_revision"
            case .revisionNotFound: "revision_not_found"
            case .adminTokenNotFound, .adminNeverMinted: "admin_token_not_found"
            case .copyRefused: "copy_refused"
            case .passwordChanged: "invalid_credentials"
            }
        case .crypto: category == .internal ? "crypto_failure" : "password_too_long"
        case .invalidCredentials: "invalid_credentials"
        case .sessionRejected: "session_rejected"
        case .sessionReused: "session_reused"
        case .token: "invalid_token"
        case .keys: category == .unavailable ? "keys_unavailable" : "key_refused"
        case .policy: "invalid_policy"
        case .shuttingDown: "shutting_down"
        case .overloaded: "overloaded"
        case .notReady: "not_ready"
        case .tokenRequired: "token_required"
        case .adminTokenRequired: "admin_token_required"
        case .missingScope: "insufficient_scope"
        case .notEntitled: "not_entitled"
        case .giftLimitReached: "gift_limit_reached"
        case .giftRefused: "invalid_gift"
        case .compRefused: "invalid_comp"
        case .tooManyAttempts: "too_many_attempts"
        case .tooMuchMail: "too_much_mail"
        case .tooManySignUps: "too_many_sign_ups"
        case .tooManyResetRequests: "too_many_reset_requests"
        case .tooManyEmailChanges: "too_many_email_changes"
        case .tooManyExports: "too_many_exports"
        case .linkInvalid: "link_invalid"
        case .trialNotOffered: "trial_not_offered"
        case .emailNotVerified: "email_not_verified"
        case .subscriptionActive: "subscription_active"
        case .mailNotDelivered: "mail_not_delivered"
        case .billingReplayStopped: "replay_stopped"
        case .auditMissing: "audit_missing"
        case let .billing(error):
            if case .notConfigured = error { "billing_not_configured" } else if error.isSignatureFailure { "invalid_signature" } else { "invalid_event" }
        }
    }
}

/// Runs `body`, wrapping the errors of the lower layers.
func mapped<T>(_ body: () throws -> T) throws(ServiceError) -> T {
    do {
        return try body()
    } catch {
        throw ServiceError.wrapping(error)
    }
}

extension ServiceError {
    /// The service error for an error of a lower layer.
    public static func wrapping(_ error: any Error) -> ServiceError {
        switch error {
        case let error as ServiceError: error
        case let error as DomainError: .invalidInput(error)
        // The password a sign-in checked was changed (a reset) before its session started:
        // answered as that password now is, wrong (the sign-in counted as it went).
        case StoreError.passwordChanged: .invalidCredentials
        case let error as StoreError: .store(error)
        case CryptoError.busy: .overloaded  // 503: too many sign-ins at once
        case let error as CryptoError: .crypto(error)
        case let error as TokenError: .token(error)
        case let error as KeyRingError: .keys(error)
        case let error as PolicyErrors: .policy(error)
        case let error as BillingError: .billing(error)
        default: .store(.sqlite(path: "?", code: -1, message: String(describing: error), sql: nil))
        }
    }
}
