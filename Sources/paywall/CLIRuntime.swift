import ArgumentParser
import Foundation
import PaywallCore
import PaywallCrypto
import PaywallService
import PaywallTokens
import PaywallViews

/// Exit statuses, documented in `paywall --help`.
enum ExitStatus {
    static let refused = ExitCode(1)
    static let databaseUnavailable = ExitCode(2)
}

/// A refusal found by the CLI itself (bad input on standard input, say): one line on
/// stderr and exit status 1, without the usage text a ``ValidationError`` prints.
struct CLIFailure: Error {
    let message: String
    /// The exit status (1: refused, unless the failure is the database's).
    let status: ExitCode
    init(status: ExitCode = ExitStatus.refused, _ message: String) {
        self.message = message
        self.status = status
    }
}

/// Writes one line to standard error.
func printError(_ message: String) {
    try? FileHandle.standardError.write(contentsOf: Data("paywall: error: \(message)\n".utf8))
}

/// Writes one warning line to standard error (the command still succeeds).
func printWarning(_ message: String) {
    try? FileHandle.standardError.write(contentsOf: Data("paywall: warning: \(message)\n".utf8))
}

extension GlobalOptions {
    /// The audit actor: `admin:<--actor or OS user>`.
    var auditActor: AuditActor {
        if let actor { return .admin(actor) }  // checked as an option
        // The system user, as given: controls and bidirectional overrides escaped and the
        // length cut, as `--actor` would refuse them (found in review: unchecked, a `$USER`
        // could write what it liked into the audit log).
        let user = ProcessInfo.processInfo.environment["USER"] ?? ProcessInfo.processInfo.userName
        return .admin((try? PaywallService.validatedAdminName(user)) ?? PrintableText.quoted(user, limit: 64))
    }

    /// The service's configuration from the environment and these flags.
    func configuration(readOnly: Bool, policies: String?, policyFolderFirst: Bool = false, createDatabase: Bool = true, migrate: Bool = true) throws(ServiceError) -> ServiceConfiguration {
        var overrides = ServiceConfiguration.Overrides()
        overrides.createDatabase = createDatabase
        overrides.databaseLocation = db
        overrides.keysDirectory = keys
        overrides.policyDirectory = policies
        overrides.readOnly = readOnly
        // The CLI's first-use convenience: a development key when the ring has none (said
        // on stderr when it happens). PAYWALL_DEV_KEYS=0 turns it off.
        overrides.developmentKeysByDefault = true
        overrides.knownEnvironment = knownSettings
        var configuration = try ServiceConfiguration.resolve(environment: ProcessInfo.processInfo.environment, overrides: overrides)
        configuration.policyFolderFirst = policyFolderFirst
        configuration.store.migrate = migrate
        return configuration
    }

    /// Opens the service, runs `body`, and turns any failure into one line on stderr and
    /// a non-zero exit status.
    /// `policies` named on the command line is the policy to use even when one was
    /// published to the database (`policyFolderFirst`).
    /// Runs `body` with the key folder's keys and JWKS, opening no database (the key
    /// listing commands); failures as ``run(readOnly:policies:policyFolderFirst:createDatabase:_:)``.
    func withKeys(_ body: ((states: [(KeyRecord, KeyState)], jwks: JWKS)) throws -> Void) throws {
        do {
            try body(try PaywallService.publishedKeys(configuration: try configuration(readOnly: true, policies: nil)))
        } catch {
            throw fail(error)
        }
    }

    /// `createDatabase` false: a command that writes but has nothing to do on a new database
    /// (a backup) refuses a SQLite file that does not exist, as one that only reads does.
    func run(
        readOnly: Bool = false, policies: String? = nil, policyFolderFirst: Bool = false, createDatabase: Bool = true, migrate: Bool = true,
        _ body: (PaywallService) throws -> Void
    ) throws {
        do {
            let service = try PaywallService(configuration: try configuration(
                readOnly: readOnly, policies: policies, policyFolderFirst: policyFolderFirst, createDatabase: createDatabase, migrate: migrate))
            // Closed before the process ends: a message the mail courier is handing to
            // sendmail is marked sent first (exiting mid-delivery left it "queued", to be sent
            // again when its lease ran out); the courier takes no further one.
            defer { try? service.close() }
            try body(service)
        } catch {
            throw fail(error)
        }
    }
}

/// Prints an error (with a hint on what to run next, when there is one) and returns the
/// exit status for it: 1 refused, 2 the database or keys cannot be used.
func fail(_ error: any Error) -> any Error {
    switch error {
    case let error as ExitCode: return error
    case let error as CLIFailure:
        printError(error.message)
        return error.status
    default:
        let error = ServiceError.wrapping(error)
        if case let .policy(errors) = error {
            // Every diagnostic, as file:line:column with the line and a caret.
            try? FileHandle.standardError.write(contentsOf: Data((errors.description + "\n").utf8))
            let count = errors.diagnostics.count
            printError("\(count) error\(count == 1 ? "" : "s"); the policy was not loaded")
        } else {
            printError(error.description + (hint(for: error).map { " (\($0))" } ?? ""))
        }
        // An invalid setting (PAYWALL_BUSY_TIMEOUT=abc) is a usage error, as 'serve' says.
        switch error {
        case .configuration, .unknownSetting: return ExitCode.validationFailure
        default: return exitCode(for: error.category)
        }
    }
}

func exitCode(for category: ServiceErrorCategory) -> ExitCode {
    switch category {
    case .invalid, .notFound, .conflict, .unauthorized, .forbidden, .rateLimited: ExitStatus.refused
    case .unavailable, .internal: ExitStatus.databaseUnavailable
    }
}

/// What to run next, in the CLI's words (the service's messages name no command).
func hint(for error: ServiceError) -> String? {
    switch error {
    case let .store(error):
        switch error {
        case .noSuchFile: "check --db or $PAYWALL_DB; 'paywall db migrate' creates a new database"
        case .schemaOutdated: "run 'paywall db migrate'"
        case .schemaTooNew: "upgrade paywall"
        case .titleNotFound: "list titles with 'paywall title list'"
        case .planNotFound: "list plans with 'paywall plan list'"
        case .billingProductNotMapped: "list the mappings with 'paywall billing products'"
        case .membershipExists: "change it, or cancel it first with 'paywall membership cancel'"
        case .accountNotFound: "list accounts with 'paywall account list'"
        case .corrupt: "restore it from a backup ('paywall db backup' makes one)"
        case let .copyRefused(refusal):
            switch refusal {
            case .schemaVersionsDiffer: "run 'paywall db migrate' on the older one"
            case .unsupportedDirection: "give --from a SQLite file and --to (or PAYWALL_DB) a postgres:// URL"
            case .sameDatabase: "--to defaults to $PAYWALL_DB; give --to a postgres:// URL"
            default: nil
            }
        default: nil
        }
    case let .keys(error):
        switch error {
        case .noSigningKey: "make one with 'paywall keys generate' (a command other than serve makes a development key with PAYWALL_DEV_KEYS=1; serve only with --demo)"
        case .unknownKey: "list keys with 'paywall keys list'"
        case .missingPrivateKey, .tooSoonToRetire: "'paywall keys retire KID --force' retires it anyway"
        case .symbolicLink: "point --keys at the real folder"
        case .noSuchFolder(_, nil): "check --keys or $PAYWALL_KEYS; 'paywall keys generate' makes a key in a new folder"
        case .noSuchFolder: "check --keys or $PAYWALL_KEYS; a key folder is made only inside an existing folder: create its parent first"
        case .retiringSigningKey: "rotate first with 'paywall keys rotate'"
        default: nil
        }
    case let .billing(.notConfigured(provider)):
        provider == .apple ? "set PAYWALL_APPLE_ROOT_CERT and PAYWALL_APPLE_BUNDLE_ID" : "set PAYWALL_STRIPE_WEBHOOK_SECRETS"
    case .subscriptionActive: "once it is cancelled with the provider, 'paywall account delete … --yes --even-if-renewing' deletes it at once"
    default: nil
    }
}

/// Says on stderr that a development key was just created.
func announce(_ created: KeyRecord?, in folder: URL) {
    guard let created else { return }
    try? FileHandle.standardError.write(contentsOf: Data("paywall: no signing key in \(folder.path): created development key \(created.kid) (\(created.algorithm)); PAYWALL_DEV_KEYS=0 refuses instead\n".utf8))
}

/// Output in text or JSON.
struct Output {
    let json: Bool

    /// Prints an encodable value as pretty JSON (sorted keys, ISO 8601 dates).
    func emit<T: Encodable>(_ value: T) {
        if let data = try? ViewEncoding.encoder(pretty: true).encode(value) {
            print(String(decoding: data, as: UTF8.self))
        }
    }

    /// Prints `key: value` lines, aligned.
    func fields(_ pairs: [(String, String)]) {
        let width = pairs.map(\.0.count).max() ?? 0
        for (key, value) in pairs {
            print(key.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value)
        }
    }

    /// Prints a JSON value pretty (sorted keys).
    func emit(json value: JSONValue) {
        let compact = Data(value.serialized())
        if let object = try? JSONSerialization.jsonObject(with: compact),
           let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) {
            print(String(decoding: pretty, as: UTF8.self))
        } else {
            print(String(decoding: compact, as: UTF8.self))
        }
    }

    /// Prints rows under a header, columns aligned.
    func table(_ header: [String], _ rows: [[String]]) {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        print(line(header))
        for row in rows { print(line(row)) }
    }
}

/// Reads a password: the first line of standard input (prompting without echo when it is
/// a terminal). Passwords are never taken from the command line, where other users of the
/// machine could see them.
func readPassword(prompt: String) throws -> String {
    if isatty(STDIN_FILENO) == 1 {
        guard let raw = getpass(prompt) else { throw CLIFailure("no password entered") }
        return String(cString: raw)
    }
    guard let line = readLine(strippingNewline: true) else {
        throw CLIFailure("expected the password on the first line of standard input")
    }
    return line
}

/// Parses `--until DATE` / `--for DURATION` into an instant.
func parseEnd(until: String?, for duration: String?, now: Date) throws(DomainError) -> Date? {
    if let until { return try TimeText.instant(until) }
    if let duration { return now.addingTimeInterval(try TimeText.duration(duration)) }
    return nil
}

extension Optional where Wrapped == Date {
    var text: String { map(TimeText.format) ?? "-" }
}

extension Date {
    var text: String { TimeText.format(self) }
}
