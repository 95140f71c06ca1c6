import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PaywallCore
import PaywallService
import PaywallViews

/// Readers' accounts under `/v1`: sign up, sign in, refresh, sign out, their own account,
/// email verification, password reset and the free trial. Each route reads its body
/// strictly, calls one service method and renders a view; writes and hashing run on the
/// service's blocking pool.
extension PaywallAPI {
    /// The account routes and their one method each (part of ``routes``).
    static let accountRoutes: [(path: String, allowed: HTTPRequest.Method)] = [
        ("/v1/accounts", .post), ("/v1/sessions", .post), ("/v1/sessions/refresh", .post), ("/v1/sessions/sign-out", .post),
        ("/v1/sessions/sign-out-everywhere", .post), ("/v1/me", .get), ("/v1/me", .delete), ("/v1/me/sessions/{id}", .delete),
        ("/v1/me/password", .post), ("/v1/me/email", .post), ("/v1/me/export", .post),
        ("/v1/email/verification", .post), ("/v1/email/verify", .post), ("/v1/password/forgot", .post), ("/v1/password/reset", .post),
        ("/v1/email/revert", .post),
        ("/v1/trials", .post),
    ]

    func addAccountRoutes(_ router: Router<PaywallRequestContext>) {
        router.post("/v1/accounts") { request, context in try await self.signUp(request, context) }
        router.post("/v1/sessions") { request, context in try await self.signIn(request, context) }
        router.post("/v1/sessions/refresh") { request, _ in try await self.refresh(request) }
        router.post("/v1/sessions/sign-out") { request, _ in try await self.signOut(request) }
        router.post("/v1/sessions/sign-out-everywhere") { request, _ in try await self.signOutEverywhere(request) }
        router.get("/v1/me") { request, _ in try await self.me(request) }
        router.delete("/v1/me") { request, context in try await self.deleteMe(request, context) }
        router.delete("/v1/me/sessions/{id}") { request, context in try await self.revokeSession(request, context) }
        router.post("/v1/me/password") { request, context in try await self.changePassword(request, context) }
        router.post("/v1/me/email") { request, context in try await self.changeEmail(request, context) }
        router.post("/v1/me/export") { request, context in try await self.exportData(request, context) }
        router.post("/v1/email/verification") { request, context in try await self.resendVerification(request, context) }
        router.post("/v1/email/verify") { request, _ in try await self.verifyEmail(request) }
        router.post("/v1/password/forgot") { request, context in try await self.forgotPassword(request, context) }
        router.post("/v1/password/reset") { request, _ in try await self.resetPassword(request) }
        router.post("/v1/email/revert") { request, _ in try await self.revertEmail(request) }
        router.post("/v1/trials") { request, _ in try await self.startTrial(request) }
    }

    // MARK: - Signing up and in

    func signUp(_ request: Request, _ context: PaywallRequestContext) async throws -> Response {
        var request = request
        let body = try await RequestBody.object(&request).only(["email", "password", "name", "deviceToken", "deviceName"])
        let (email, password, name) = (try body.requiredString("email"), try body.requiredString("password"), try body.string("name"))
        // The device token in the body, or (an app that sends it everywhere) as the bearer.
        let deviceToken = try body.string("deviceToken") ?? bearer(request)
        let deviceName = try body.string("deviceName")
        let client = clientRateLimitKey(clientAddress(request, context))
        let session = try await service.blocking { service throws(ServiceError) in
            try service.signUpReader(email: email, password: password, name: name, deviceToken: deviceToken, deviceName: deviceName, client: client)
        }
        Self.log(session.mail, context)
        return try Self.json(ReaderSessionView(session), private: true, status: .created)
    }

    func signIn(_ request: Request, _ context: PaywallRequestContext) async throws -> Response {
        var request = request
        let body = try await RequestBody.object(&request).only(["email", "password", "deviceName"])
        let (email, password) = (try body.requiredString("email"), try body.requiredString("password"))
        let deviceName = try body.string("deviceName")
        let client = clientRateLimitKey(clientAddress(request, context))
        let session = try await service.blocking { service throws(ServiceError) in
            try service.signInReader(email: email, password: password, deviceName: deviceName, client: client)
        }
        return try Self.json(ReaderSessionView(session), private: true, status: .created)
    }

    func refresh(_ request: Request) async throws -> Response {
        var request = request
        let body = try await RequestBody.object(&request).only(["refreshToken"])
        let token = try body.requiredString("refreshToken")
        let session = try await service.blocking { service throws(ServiceError) in try service.refreshReader(token: token) }
        return try Self.json(ReaderSessionView(session), private: true)
    }

    // MARK: - Signing out

    func signOut(_ request: Request) async throws -> Response {
        var request = request
        let body = try await RequestBody.object(&request).only(["refreshToken"])
        let token = try body.requiredString("refreshToken")
        let ended = try await service.blocking { service throws(ServiceError) in try service.signOut(refreshToken: token) }
        return try Self.json(EndedSession(session: SessionView(ended)), private: true)
    }

    func signOutEverywhere(_ request: Request) async throws -> Response {
        var request = request
        let account = try service.signedInAccount(bearer: try bearer(request))
        try await Self.emptyBody(&request)
        let ended = try await service.blocking { service throws(ServiceError) in try service.signOutEverywhere(accountID: account) }
        struct Ended: Encodable { var endedSessions: Int }
        return try Self.json(Ended(endedSessions: ended), private: true)
    }

    func revokeSession(_ request: Request, _ context: PaywallRequestContext) async throws -> Response {
        let account = try service.signedInAccount(bearer: try bearer(request))
        let id = context.parameters.get("id") ?? ""
        let ended = try await service.blocking { service throws(ServiceError) in try service.revokeSession(id: id, accountID: account) }
        return try Self.json(EndedSession(session: SessionView(ended)), private: true)
    }

    // MARK: - The reader's own account

    func me(_ request: Request) async throws -> Response {
        let account = try service.signedInAccount(bearer: try bearer(request))
        // Several reads that are not cached facts: on the blocking pool, as every other
        // route's (on PostgreSQL each waits on the network; measured in review, four of them
        // held on a lock stalled /healthz for 8 s on the cooperative threads).
        let profile = try await service.blocking { service throws(ServiceError) in try service.profile(accountID: account) }
        return try Self.json(ProfileView(profile), private: true)
    }

    /// The reader deletes their account, with their password again (`{"password"}`): 204.
    func deleteMe(_ request: Request, _ context: PaywallRequestContext) async throws -> Response {
        var request = request
        let account = try service.signedInAccount(bearer: try bearer(request))
        let body = try await RequestBody.object(&request).only(["password"])
        let password = try body.requiredString("password")
        let client = clientRateLimitKey(clientAddress(request, context))
        try await service.blocking { service throws(ServiceError) in try service.deleteOwnAccount(accountID: account, password: password, client: client) }
        return Response(status: .noContent, headers: [.cacheControl: "no-store"])
    }

    /// The reader changes their password (`{"currentPassword", "newPassword", "deviceName"?}`):
    /// every session ends, this device gets a new one (the answer is a sign-in's, with
    /// `signedOutSessions`).
    func changePassword(_ request: Request, _ context: PaywallRequestContext) async throws -> Response {
        var request = request
        let account = try service.signedInAccount(bearer: try bearer(request))
        let body = try await RequestBody.object(&request).only(["currentPassword", "newPassword", "deviceName"])
        let (current, new) = (try body.requiredString("currentPassword"), try body.requiredString("newPassword"))
        let deviceName = try body.string("deviceName")
        let client = clientRateLimitKey(clientAddress(request, context))
        let session = try await service.blocking { service throws(ServiceError) in
            try service.changeOwnPassword(accountID: account, currentPassword: current, newPassword: new, deviceName: deviceName, client: client)
        }
        return try Self.json(ReaderSessionView(session), private: true)
    }

    /// The reader changes their email address (`{"password", "email"}`): the account, its
    /// new address unconfirmed, and the verification mail's status.
    func changeEmail(_ request: Request, _ context: PaywallRequestContext) async throws -> Response {
        var request = request
        let account = try service.signedInAccount(bearer: try bearer(request))
        let body = try await RequestBody.object(&request).only(["password", "email"])
        let (password, email) = (try body.requiredString("password"), try body.requiredString("email"))
        let client = clientRateLimitKey(clientAddress(request, context))
        let (changed, delivery) = try await service.blocking { service throws(ServiceError) in
            try service.changeOwnEmail(accountID: account, password: password, newEmail: email, client: client)
        }
        Self.log(delivery, context)
        struct Changed: Encodable { var account: AccountView; var verificationMail: String? }
        return try Self.json(Changed(account: AccountView(changed), verificationMail: delivery.map { _ in MailStatus.queued.rawValue }), private: true)
    }

    /// Everything stored about the reader, with their password again (`{"password"}`): a
    /// JSON file to keep (`Content-Disposition: attachment`).
    func exportData(_ request: Request, _ context: PaywallRequestContext) async throws -> Response {
        var request = request
        let account = try service.signedInAccount(bearer: try bearer(request))
        let body = try await RequestBody.object(&request).only(["password"])
        let password = try body.requiredString("password")
        let client = clientRateLimitKey(clientAddress(request, context))
        let (name, bytes) = try await service.blocking { service throws(ServiceError) in
            try AccountExportView.file(try service.exportOwnData(accountID: account, password: password, client: client), pretty: false)
        }
        var response = Self.json(bytes: bytes, private: true)
        response.headers[.contentDisposition] = #"attachment; filename="\#(name)""#
        return response
    }

    func startTrial(_ request: Request) async throws -> Response {
        var request = request
        let account = try service.signedInAccount(bearer: try bearer(request))
        try await Self.emptyBody(&request)
        let trial = try await service.blocking { service throws(ServiceError) in try service.startOfferedTrial(accountID: account) }
        struct Started: Encodable { var trial: ReaderTrialView }
        return try Self.json(Started(trial: ReaderTrialView(trial, now: service.now)), private: true, status: .created)
    }

    // MARK: - Links by mail

    func resendVerification(_ request: Request, _ context: PaywallRequestContext) async throws -> Response {
        var request = request
        let account = try service.signedInAccount(bearer: try bearer(request))
        try await Self.emptyBody(&request)
        let delivery = try await service.blocking { service throws(ServiceError) in
            try service.sendVerificationLink(accountID: account, actor: .account(account))
        }
        Self.log(delivery, context)
        struct Queued: Encodable { var verificationMail: String }
        return try Self.json(Queued(verificationMail: MailStatus.queued.rawValue), private: true)
    }

    func verifyEmail(_ request: Request) async throws -> Response {
        var request = request
        let body = try await RequestBody.object(&request).only(["token"])
        let token = try body.requiredString("token")
        let account = try await service.blocking { service throws(ServiceError) in try service.verifyEmail(token: token) }
        struct Verified: Encodable { var account: AccountView }
        return try Self.json(Verified(account: AccountView(account)), private: true)
    }

    func forgotPassword(_ request: Request, _ context: PaywallRequestContext) async throws -> Response {
        var request = request
        let body = try await RequestBody.object(&request).only(["email"])
        let email = try body.requiredString("email")
        let client = clientRateLimitKey(clientAddress(request, context))
        let delivery = try await service.blocking { service throws(ServiceError) in try service.requestPasswordReset(email: email, client: client) }
        Self.log(delivery, context)
        // The same answer whether or not the email has an account.
        return Self.json(#"{"status":"accepted"}"#)
    }

    func resetPassword(_ request: Request) async throws -> Response {
        try await usePasswordLink(request) { service, token, password throws(ServiceError) in try service.resetPassword(token: token, password: password) }
    }

    func revertEmail(_ request: Request) async throws -> Response {
        try await usePasswordLink(request) { service, token, password throws(ServiceError) in try service.revertEmail(token: token, password: password) }
    }

    /// The two links in mail that take a new password (a reset, an email change's undo):
    /// `{"token", "password"}` in; the account and how many sessions ended out.
    func usePasswordLink(
        _ request: Request, _ use: @escaping @Sendable (PaywallService, String, String) throws(ServiceError) -> (Account, Int)
    ) async throws -> Response {
        var request = request
        let body = try await RequestBody.object(&request).only(["token", "password"])
        let (token, password) = (try body.requiredString("token"), try body.requiredString("password"))
        let (account, ended) = try await service.blocking { service throws(ServiceError) in try use(service, token, password) }
        struct Done: Encodable { var account: AccountView; var endedSessions: Int }
        return try Self.json(Done(account: AccountView(account), endedSessions: ended), private: true)
    }

    // MARK: - Helpers

    /// Says where mail went, never what it says (it holds a single-use link).
    static func log(_ delivery: MailDelivery?, _ context: PaywallRequestContext) {
        guard let delivery else { return }
        let metadata: Logger.Metadata = ["outbox": .string(String(delivery.queued))]
        if !delivery.sendmailConfigured {
            context.logger.notice("mail queued in the outbox; no sendmail command is configured (PAYWALL_SENDMAIL)", metadata: metadata)
        }
    }

    /// A body-less POST: no body, or an empty JSON object (anything else is read as
    /// strictly as everywhere).
    static func emptyBody(_ request: inout Request) async throws {
        if try await RequestBody.collect(&request).readableBytes > 0 {
            _ = try await RequestBody.object(&request).only([])
        }
    }

    /// The session a sign-out or revocation ended.
    struct EndedSession: Encodable { var session: SessionView }

    static func json<T: Encodable>(_ value: T, private isPrivate: Bool, status: HTTPResponse.Status) throws -> Response {
        var response = try json(value, private: isPrivate)
        response.status = status
        return response
    }
}
