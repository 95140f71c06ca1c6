import Foundation
import PaywallCore
import PaywallPolicy
import PaywallStore

/// The async face of the operations that block: each runs on the service's bounded thread
/// pool (``BlockingPool``), so an HTTP server's event loops and Swift's cooperative
/// threads never wait for fsync or scrypt. A networked store can later implement these
/// without threads, behind the same API.
extension PaywallService {
    public func signUp(email: String, password: String, displayName: String?, actor: AuditActor) async throws(ServiceError) -> Account {
        try await blocking { service throws(ServiceError) in try service.signUp(email: email, password: password, displayName: displayName, actor: actor) }
    }

    /// Unthrottled (see the synchronous one): internal.
    func signIn(email: String, password: String) async throws(ServiceError) -> SignIn {
        try await blocking { service throws(ServiceError) in try service.signIn(email: email, password: password) }
    }

    public func setPassword(account: String, password: String, actor: AuditActor) async throws(ServiceError) {
        try await blocking { service throws(ServiceError) in try service.setPassword(account: account, password: password, actor: actor) }
    }

    public func refreshSession(token: String) async throws(ServiceError) -> (String, RefreshSession) {
        try await blocking { service throws(ServiceError) in try service.refreshSession(token: token) }
    }

    public func decide(
        reader: Reader, title: String, article: ArticleInput, request: RequestFacts = RequestFacts(), at: Date? = nil,
        explain: Bool = false, record: Bool
    ) async throws(ServiceError) -> Decision {
        try await blocking { service throws(ServiceError) in
            try service.decide(reader: reader, title: title, article: article, request: request, at: at, explain: explain, record: record)
        }
    }

    public func startTrial(account: String, length: TimeInterval? = nil, actor: AuditActor) async throws(ServiceError) -> Trial {
        try await blocking { service throws(ServiceError) in try service.startTrial(account: account, length: length, actor: actor) }
    }

    public func grantMembership(
        account: String, plan: String, until: Date?, source: MembershipSource, actor: AuditActor, reason: String? = nil
    ) async throws(ServiceError) -> Membership {
        try await blocking { service throws(ServiceError) in
            try service.grantMembership(account: account, plan: plan, until: until, source: source, actor: actor, reason: reason)
        }
    }

    public func cancelMembership(account: String, plan: String?, how: Cancellation, actor: AuditActor) async throws(ServiceError) -> Membership {
        try await blocking { service throws(ServiceError) in try service.cancelMembership(account: account, plan: plan, how: how, actor: actor) }
    }

    public func recordRead(subject: MeterSubject, title: String, article: String, at: Date? = nil) async throws(ServiceError) {
        try await blocking { service throws(ServiceError) in try service.recordRead(subject: subject, title: title, article: article, at: at) }
    }

    public func markEmailVerified(account: String, method: String, actor: AuditActor) async throws(ServiceError) -> Account {
        try await blocking { service throws(ServiceError) in try service.markEmailVerified(account: account, method: method, actor: actor) }
    }
}
