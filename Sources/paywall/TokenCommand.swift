import ArgumentParser
import Foundation
import PaywallCore
import PaywallService
import PaywallTokens
import PaywallViews

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Issue, verify and inspect signed tokens.",
        discussion: """
            Kinds (each with its own typ): access tokens (at+jwt) carry a reader's entitlements; \
            article grants (paywall-article+jwt) let one reader read one article in full; comp \
            grants (paywall-comp+jwt) give free access to titles for some days; admin tokens \
            (paywall-admin+jwt) open the admin API (/admin/v1) for some scopes; gift links \
            (paywall-gift+jwt) are made by members over the API (POST /v1/gifts).
            """,
        subcommands: [Issue.self, Grant.self, Comp.self, Admin.self, RevokeAdmin.self, Verify.self, Inspect.self]
    )

    static func emit(_ issued: IssuedToken, json: Bool, service: PaywallService) {
        announce(issued.createdKey, in: service.configuration.keysDirectory)
        if json { Output(json: true).emit(IssuedTokenView(issued)) } else { print(issued.token) }
    }

    /// Reads a token argument; `-` means the first line of standard input.
    static func read(_ argument: String) throws -> String {
        if argument == "-" {
            guard let line = readLine() else { throw CLIFailure("expected a token on standard input") }
            return line.trimmingCharacters(in: .whitespaces)
        }
        return argument
    }

    struct Issue: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue an access token carrying an account's current entitlements.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The account's email or id.") var account: String
        @Option(parsing: .unconditional, help: "Lifetime, e.g. 15m (default PAYWALL_ACCESS_TTL, else 15m; at most 24h).") var ttl: String?
        @Option(help: "Audience (default: paywall-api).") var aud: String?

        func run() throws {
            // No database made here: one made by mistake (PAYWALL_DB unset) would hold the
            // audit entry while the real keys sign (found in review).
            try global.run(createDatabase: false) { service in
                let issued = try service.issueAccessToken(
                    account: account, lifetime: try ttl.map { try TimeText.duration($0) }, audience: aud, actor: global.auditActor)
                TokenCommand.emit(issued, json: global.json, service: service)
            }
        }
    }

    struct Grant: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue an article grant: one reader may read one article in full.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var subject: MeterCommand.Subject
        @Option(help: "The title id.") var title: String
        @Option(help: "The article id.") var article: String
        @Option(parsing: .unconditional, help: "Lifetime, e.g. 5m (default PAYWALL_GRANT_TTL, else 5m; at most 1h).") var ttl: String?
        @Option(help: "Audience (default: paywall-api).") var aud: String?

        func run() throws {
            try global.run(createDatabase: false) { service in
                let issued = try service.issueArticleGrant(
                    subject: try subject.resolve(service), title: title, article: article, lifetime: try ttl.map { try TimeText.duration($0) }, audience: aud)
                TokenCommand.emit(issued, json: global.json, service: service)
            }
        }
    }

    struct Comp: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Issue a comp grant: free access to titles for some days (recorded in the audit log).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The account's email or id.") var account: String
        @Option(help: "Comma-separated title ids.") var title: String
        @Option(parsing: .unconditional, help: "Days of free access (1 to 31).") var days: Int
        @Option(help: "Audience (default: paywall-api).") var aud: String?

        func validate() throws {
            guard (1...TokenLimits.maximumCompDays).contains(days) else { throw ValidationError("--days must be between 1 and \(TokenLimits.maximumCompDays)") }
        }

        func run() throws {
            try global.run(createDatabase: false) { service in
                let titles = title.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                let issued = try service.issueCompGrant(account: account, titles: titles, days: days, audience: aud, actor: global.auditActor)
                TokenCommand.emit(issued, json: global.json, service: service)
            }
        }
    }

    struct Admin: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue an admin token for the admin API (/admin/v1); recorded in the audit log.",
            discussion: """
                The token's subject is the admin's name: every call made with it is audited as \
                admin:<subject>. Scopes: catalog (titles and plans), members (accounts, memberships, \
                trials, comps, billing events and links), audit (the audit log and the reads report), policy (the policy in \
                force and its reload), privacy (a reader's data export and the account's deletion). \
                Keep tokens short-lived; send one as 'Authorization: Bearer <token>'.

                Example: paywall token admin --scope catalog --scope members --subject alice --lifetime 30m
                """
        )
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("scope"), help: "A scope: \(Self.scopeList) (repeat for several).") var scopes: [String] = []
        @Option(help: "The admin's name: the token's subject and the actor in the audit log.") var subject: String
        @Option(help: "Lifetime, e.g. 30m (default 15m or PAYWALL_ADMIN_TTL; at most 12h).") var lifetime: String?
        @Option(help: "Audience (default: paywall-api).") var aud: String?

        func validate() throws {
            guard !scopes.isEmpty else { throw ValidationError("give at least one --scope (\(Self.scopeList))") }
            for scope in scopes where AdminScope(rawValue: scope) == nil {
                throw ValidationError("unknown scope '\(scope)': use \(Self.scopeList)")
            }
        }

        /// Every scope, as help and errors name them: "catalog, members, audit, policy or privacy".
        static let scopeList: String = {
            let names = AdminScope.allCases.map(\.rawValue)
            return names.dropLast().joined(separator: ", ") + " or " + (names.last ?? "")
        }()

        func run() throws {
            try global.run(createDatabase: false) { service in
                let lifetime = try lifetime.map { try TimeText.duration($0) }
                let issued = try service.issueAdminToken(
                    subject: subject, scopes: Set(scopes.compactMap(AdminScope.init(rawValue:))), lifetime: lifetime, audience: aud, actor: global.auditActor)
                TokenCommand.emit(issued, json: global.json, service: service)
            }
        }
    }

    struct RevokeAdmin: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke-admin",
            abstract: "Revoke admin tokens before they expire: one by its id, or every token of an admin.",
            discussion: """
                Every server refuses a revoked token from its next call (401), with no restart: \
                the revocation is in the store. --id takes a token's jti: 'paywall audit' shows it \
                in the token.admin entry that minted it, and 'paywall token inspect' in the token. \
                --subject revokes every token the admin was given until now, and those minted in \
                the next 30 seconds (the leeway for clocks that differ between hosts): mint a new \
                one after that. Recorded in the audit log.

                Examples: paywall token revoke-admin --id Jb1x2f9sXXW8a0fHq2Jt3w
                          paywall token revoke-admin --token - < leaked-token.txt
                          paywall token revoke-admin --subject alice
                """
        )
        @OptionGroup var global: GlobalOptions
        // Unconditional: a jti is base64url and may begin with "-", which would otherwise be
        // taken for an option ("Missing value for --id").
        @Option(parsing: .unconditional, help: "The token's id (its jti).") var id: String?
        @Option(help: "The token itself, or - to read it from standard input (keeps it out of the process list).") var token: String?
        @Option(help: "The admin's name: every token of theirs issued until now.") var subject: String?
        @Flag(help: "Record the revocation of an --id or --subject no audit entry names (a token minted elsewhere).") var force = false

        func validate() throws {
            guard [id, token, subject].compactMap({ $0 }).count == 1 else { throw ValidationError("give one of --id, --token or --subject") }
        }

        func run() throws {
            try global.run(createDatabase: false) { service in
                let report = if let token {
                    try service.revokeAdminToken(try TokenCommand.read(token), actor: global.auditActor)
                } else {
                    try service.revokeAdminTokens(tokenID: id, subject: subject, force: force, actor: global.auditActor)
                }
                switch (report.revocation, global.json) {
                case let (.token(id), false):
                    let minted = report.mintedFor.map { " (minted for \($0)\(report.expiresAt.map { ", expires \($0)" } ?? ""))" } ?? " (not minted here)"
                    print("revoked admin token \(id)\(minted)")
                case let (.subject(name, until), false): print("revoked every admin token of \(name) issued until \(until.text)")
                case let (.token(id), true):
                    var object: JSONObject = ["revoked": .string("token"), "id": .string(id)]
                    if let subject = report.mintedFor { object["subject"] = .string(subject) }
                    if let expiresAt = report.expiresAt { object["expiresAt"] = .string(expiresAt) }
                    Output(json: true).emit(json: .object(object))
                case let (.subject(name, until), true):
                    Output(json: true).emit(json: .object(["revoked": .string("subject"), "subject": .string(name), "issuedUntil": .string(until.text)]))
                }
            }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify a token: exit 0 and print its claims when valid; exit 1 and the reason when not.",
            discussion: """
                Pass - to read the token from standard input (keeps it out of the process list). An \
                access token is also judged against its account, as the API does: refused when the \
                account was deleted or signed out everywhere since it was issued.
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The token, or - for standard input.") var token: String
        @Option(help: "Audience to verify for (default: the service's, paywall-api unless configured; for --kind gift, its gift-link audience, e.g. paywall-api#gift, or its own for a link made before gift links had one, as the routes take it).") var aud: String?
        @Option(help: "The kind the token must be: access, article, comp, device, admin or gift (a token of another kind is refused).") var kind = "access"

        func validate() throws {
            guard TokenKind(name: kind) != nil else { throw ValidationError("--kind must be access, article, comp, device, admin or gift") }
        }

        func run() throws {
            try global.run(readOnly: true) { service in
                let expected = TokenKind(name: kind).map { Set([$0]) } ?? []
                let text = try TokenCommand.read(token)
                let verified = if expected == [.gift], aud == nil {
                    try service.verifyGiftLink(text)
                } else {
                    try service.verifyToken(text, kinds: expected, audience: aud)
                }
                // An access token is also judged against its account now (deleted, or every
                // session ended since), as the API would.
                if case let .access(claims) = verified { try service.checkAccessTokenStanding(claims) }
                if global.json {
                    Output(json: true).emit(json: .object(["valid": .bool(true), "kind": .string(verified.kind.rawValue), "claims": verified.json]))
                } else {
                    print("valid \(verified.kind) for \(verified.registered.subject), expires \(verified.registered.expiresAt.text)")
                    Output(json: true).emit(json: verified.json)
                }
            }
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Decode a token WITHOUT verifying it (for debugging; trusts nothing).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The token, or - for standard input.") var token: String

        func run() throws {
            do {
                let decoded = try UnverifiedToken(try TokenCommand.read(token))
                try? FileHandle.standardError.write(contentsOf: Data("paywall: NOT VERIFIED: decoded without checking signature, key, type or times; use 'paywall token verify'\n".utf8))
                Output(json: true).emit(json: .object(["verified": .bool(false), "header": decoded.header, "payload": decoded.payload]))
            } catch let error as TokenError {
                printError(error.description)
                throw ExitStatus.refused
            } catch {
                // Standard input empty, say: its message, not the error's Swift spelling.
                throw fail(error)
            }
        }
    }
}
