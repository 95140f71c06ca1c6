import Foundation
import GRDB
import PaywallCore

/// A store failure, with what a user needs to act on it.
public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    // The database file itself.
    case notADatabase(path: String)
    case corrupt(path: String, detail: String)
    case readOnly(path: String)
    case locked(path: String, timeoutSeconds: Double)
    case cannotOpen(path: String, detail: String)
    /// A SQLite file that does not exist, opened read-only or without
    /// ``StoreConfiguration/createIfMissing``.
    case noSuchFile(path: String)
    case diskFull(path: String)
    case schemaTooNew(path: String, unknownMigrations: [String])
    case schemaOutdated(path: String, pendingMigrations: [String])

    // Domain lookups and constraints.
    case accountNotFound(String)
    case duplicateEmail(String)
    /// No account has the address, but a live undo link of another account's email change
    /// keeps it for that account until it expires (``Store/revertEmail(token:hash:)``).
    case addressKept(email: String, account: String, until: Date)
    case titleNotFound(String)
    /// The title left the catalog (``Store/retireTitle(id:actor:)``).
    case titleRetired(String)
    case duplicateTitle(String)
    case planNotFound(String)
    /// No plan is mapped to this provider's price or product.
    case billingProductNotMapped(provider: String, product: String)
    case duplicatePlan(String)
    /// A plan that memberships (ended ones included: they keep its history) or billing
    /// mappings name cannot be deleted.
    case planInUse(plan: String, memberships: Int, mappings: Int)
    case emptyBundle(plan: String)
    case trialAlreadyUsed(email: String)
    case trialNotFound(account: String)
    /// Only a running trial can be ended early; this one is `status` (expired or canceled).
    case trialNotRunning(account: String, status: String)
    case membershipNotFound(String)
    case membershipExists(account: String, plan: String, status: String)
    case invalidTransition(from: String, to: String)
    case sessionNotFound
    /// The account's password changed between its check and the session it was checked
    /// for (a reset or change committed meanwhile): the check no longer holds.
    case passwordChanged
    /// No random bytes could be drawn for a refresh token.
    case randomUnavailable(detail: String)
    case destinationExists(path: String)
    /// A revision prefix that names more than one published policy.
    case ambiguousRevision(String)
    /// No published policy has this revision.
    case revisionNotFound(String)
    /// No admin token with this id (jti) was minted here (no `token.admin` audit entry).
    case adminTokenNotFound(String)
    /// `token revoke-admin --subject NAME` for a name no admin token was minted for here.
    case adminNeverMinted(String)
    /// A payment provider's customer already linked to another account.
    case billingCustomerLinked(customer: String, account: String)
    /// A provider subscription already held by another account.
    case billingSubscriptionLinked(subscription: String, account: String)
    /// No event of this provider subscription waits for an account: nothing to link
    /// (`failed`: how many of its events were recorded as failed, to retry instead).
    case billingNothingWaiting(subscription: String, failed: Int)
    /// No event with this id was received from this provider.
    case billingEventNotFound(provider: String, event: String)
    /// The event was settled already (applied, stale, ignored): only a pending or failed
    /// one can be dismissed.
    case billingEventSettled(event: String, outcome: String)
    /// ``Store/copy(to:)`` refused, or found the copy different from its source: nothing
    /// was written to the target.
    case copyRefused(CopyRefusal)

    /// Any other SQLite error, with its code, message and statement.
    case sqlite(path: String, code: Int32, message: String, sql: String?)
    /// Any other PostgreSQL error, with its SQLSTATE, message and statement.
    case postgres(location: String, sqlState: String, message: String, sql: String?)
    /// The database server cannot be reached (refused, dropped, shutting down, every
    /// connection busy): try again.
    case unavailable(location: String, detail: String)

    public var description: String {
        switch self {
        case let .notADatabase(path):
            return "\(path) is not a SQLite database (wrong file, or encrypted)"
        case let .corrupt(path, detail):
            return "\(path) is corrupt (\(detail))"
        case let .readOnly(path):
            return "\(path) is read-only: check the file's and its folder's permissions"
        case let .locked(path, timeout):
            return "\(path) is locked by another process (waited \(timeout) s); try again, or find the process holding it"
        case let .cannotOpen(path, detail):
            return "cannot open \(path): \(detail)"
        case let .noSuchFile(path):
            return "cannot open \(path): no such file"
        case let .diskFull(path):
            return "the disk holding \(path) is full"
        case let .schemaTooNew(path, unknown):
            return "\(path) was written by a newer paywall (unknown migrations: \(unknown.joined(separator: ", ")))"
        case let .schemaOutdated(path, pending):
            return "\(path) needs migrations \(pending.joined(separator: ", ")) before it can be opened read-only"
        case let .accountNotFound(ref):
            return "no account '\(ref)'"
        case let .duplicateEmail(email):
            return "an account with email '\(email)' already exists"
        case let .titleNotFound(id):
            return "no title '\(id)'"
        case let .titleRetired(id):
            return "the title '\(id)' is no longer in the catalog"
        case let .duplicateTitle(id):
            return "title '\(id)' already exists"
        case let .addressKept(email, account, until):
            return "the address '\(email)' is kept until \(TimeText.format(until)) for account \(account), which left it and can still take it back with the link mailed there ('paywall account show \(account)' lists it); another account cannot take it before"
        case let .planNotFound(id):
            return "no plan '\(id)'"
        case let .billingProductNotMapped(provider, product):
            return "no plan is mapped to \(provider) '\(product)'"
        case let .duplicatePlan(id):
            return "plan '\(id)' already exists"
        case let .planInUse(plan, memberships, mappings):
            let uses = [
                memberships > 0 ? "\(memberships) membership\(memberships == 1 ? "" : "s") (ended ones keep its history)" : nil,
                mappings > 0 ? "\(mappings) billing mapping\(mappings == 1 ? "" : "s")" : nil,
            ].compactMap { $0 }
            let fix = memberships > 0
                ? "a plan that was sold stays; to stop selling it, unmap its prices ('paywall billing products' lists them, 'paywall billing unmap' removes one)"
                : "unmap its prices first ('paywall billing products' lists them, 'paywall billing unmap' removes one)"
            return "plan '\(plan)' is in use by \(uses.joined(separator: " and ")): \(fix)"
        case let .emptyBundle(plan):
            return "plan '\(plan)' must grant all titles or at least one listed title"
        case let .trialAlreadyUsed(email):
            return "'\(email)' has already had a free trial (one per person)"
        case let .trialNotFound(account):
            return "account '\(account)' has no trial"
        case let .trialNotRunning(account, status):
            return "the trial of account '\(account)' is not running (it is \(status)): there is nothing to end"
        case let .membershipNotFound(ref):
            return "no membership \(ref)"
        case let .membershipExists(account, plan, status):
            let article = status.first.map { "aeiou".contains($0) } == true ? "an" : "a"
            return "account '\(account)' already has \(article) \(status) membership of plan '\(plan)'"
        case let .invalidTransition(from, to):
            return "a membership cannot go from \(from) to \(to)"
        case .sessionNotFound:
            return "no such session"
        case .passwordChanged:
            return "the password changed while it was being checked; sign in with the new one"
        case let .randomUnavailable(detail):
            return "cannot draw random bytes for a refresh token: \(detail)"
        case let .ambiguousRevision(prefix):
            return "'\(prefix)' names more than one published policy revision; give more of it"
        case let .revisionNotFound(revision):
            return "no published policy has revision '\(revision)' (see paywall policy history)"
        case let .adminNeverMinted(name):
            return "no admin token was minted here for '\(name)' (each token.admin entry of the audit log names its admin: paywall audit list --action token.admin); check for a typo, or pass --force to record the revocation anyway"
        case let .adminTokenNotFound(id):
            return "no admin token with id '\(id)' was minted here (each token.admin entry of the audit log names the jti it minted: paywall audit list --target admin:<name>); check for a typo, or pass --force to record the revocation anyway"
        case let .billingCustomerLinked(customer, account):
            return "customer '\(customer)' is already linked to account \(account)"
        case let .billingSubscriptionLinked(subscription, account):
            return "subscription '\(PrintableText.quoted(subscription))' is already account \(account)'s"
        case let .billingNothingWaiting(subscription, failed) where failed > 0:
            return "no event of subscription '\(PrintableText.quoted(subscription))' is waiting for an account; \(failed) of its events failed (paywall billing failures says why): once that is mended, paywall billing retry applies them again"
        case let .billingNothingWaiting(subscription, _):
            return "no event of subscription '\(PrintableText.quoted(subscription))' is waiting for an account (paywall billing failures lists those that are); check the id, or link it once its first event has come"
        case let .billingEventNotFound(provider, event):
            return "no \(provider) event '\(PrintableText.quoted(event))' was received (paywall billing failures lists those not applied)"
        case let .billingEventSettled(event, outcome):
            return "event '\(PrintableText.quoted(event))' is \(outcome) already; only a pending or failed event can be dismissed"
        case let .destinationExists(path):
            return "\(path) already exists; choose another destination"
        case let .copyRefused(refusal):
            return "cannot copy the database: \(refusal); nothing was written to the target"
        case let .sqlite(path, code, message, sql):
            let statement = sql.map { " in `\($0)`" } ?? ""
            return "SQLite error \(code) on \(path): \(message)\(statement)"
        case let .postgres(location, state, message, sql):
            let statement = sql.map { " in `\($0)`" } ?? ""
            return "PostgreSQL error \(state) on \(location): \(message)\(statement)"
        case let .unavailable(location, detail):
            return "the database \(location) is unavailable (\(detail)); check that it runs and accepts connections"
        }
    }

    /// Maps a GRDB error to the store's error for the file at `path`.
    static func from(_ error: any Error, path: String, busyTimeout: Double) -> StoreError {
        if let storeError = error as? StoreError { return storeError }
        guard let dbError = error as? DatabaseError else {
            return .cannotOpen(path: path, detail: String(describing: error))
        }
        let message = dbError.message ?? "unknown error"
        switch dbError.resultCode {
        case .SQLITE_NOTADB: return .notADatabase(path: path)
        case .SQLITE_CORRUPT: return .corrupt(path: path, detail: message)
        case .SQLITE_READONLY: return .readOnly(path: path)
        case .SQLITE_BUSY, .SQLITE_LOCKED: return .locked(path: path, timeoutSeconds: busyTimeout)
        case .SQLITE_CANTOPEN: return .cannotOpen(path: path, detail: message)
        case .SQLITE_FULL: return .diskFull(path: path)
        case .SQLITE_PERM, .SQLITE_AUTH: return .readOnly(path: path)
        default:
            return .sqlite(path: path, code: dbError.extendedResultCode.rawValue, message: message, sql: dbError.sql)
        }
    }
}
