import ArgumentParser
import Foundation
import PaywallCore
import PaywallCrypto
import PaywallService
import PaywallStore
import PaywallTokens

/// Exit statuses, documented in `paywall --help`.
enum ExitStatus {
    static let refused = ExitCode(1)
    static let databaseUnavailable = ExitCode(2)
}

/// A refusal found by the CLI itself (bad input on standard input, say): one line on
/// stderr and exit status 1, without the usage text a ``ValidationError`` prints.
struct CLIFailure: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// Writes one line to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data("paywall: error: \(message)\n".utf8))
}

extension GlobalOptions {
    /// The audit actor: `admin:<--actor or OS user>`.
    var auditActor: AuditActor {
        let name = actor ?? ProcessInfo.processInfo.environment["USER"] ?? ProcessInfo.processInfo.userName
        return .admin(name)
    }

    /// Opens the service, runs `body`, and turns any failure into one line on stderr and
    /// a non-zero exit status.
    func run(readOnly: Bool = false, _ body: (PaywallService) throws -> Void) throws {
        do {
            var configuration = ServiceConfiguration()
            configuration.store.readOnly = readOnly
            let environment = ProcessInfo.processInfo.environment
            if let text = environment["PAYWALL_SCRYPT_LN"] {
                // May raise the cost; lowering it below OWASP's N = 2^17 is for tests only.
                guard let logN = Int(text) else { throw CLIFailure("PAYWALL_SCRYPT_LN must be a number") }
                if logN < ScryptParameters.owasp.logN, environment["PAYWALL_TESTING"] != "1" {
                    throw CLIFailure("PAYWALL_SCRYPT_LN=\(logN) is below OWASP's minimum (17); only tests may lower it (PAYWALL_TESTING=1)")
                }
                configuration.passwordHashing = ScryptParameters(logN: logN, r: 8, p: 1)
            }
            configuration.keysDirectory = URL(fileURLWithPath: keysPath)
            if let issuer = ProcessInfo.processInfo.environment["PAYWALL_ISSUER"] { configuration.issuer = issuer }
            if let text = ProcessInfo.processInfo.environment["PAYWALL_BUSY_TIMEOUT"], let seconds = Double(text) {
                configuration.store.busyTimeout = seconds
            }
            let service = try PaywallService(databasePath: databasePath, configuration: configuration)
            try body(service)
        } catch let error as ServiceError {
            printError(error.description)
            throw Self.exitCode(for: error)
        } catch let error as CLIFailure {
            printError(error.message)
            throw ExitStatus.refused
        } catch let error as DomainError {
            printError(error.description)
            throw ExitStatus.refused
        } catch let error as StoreError {
            printError(error.description)
            throw Self.exitCode(for: .store(error))
        }
    }

    static func exitCode(for error: ServiceError) -> ExitCode {
        if case let .store(storeError) = error {
            switch storeError {
            case .notADatabase, .corrupt, .readOnly, .locked, .cannotOpen, .diskFull, .schemaTooNew, .schemaOutdated, .sqlite:
                return ExitStatus.databaseUnavailable
            default:
                return ExitStatus.refused
            }
        }
        if case let .keys(keyError) = error {
            switch keyError {
            case .cannotAccess, .corrupt, .missingPrivateKey, .insecurePermissions: return ExitStatus.databaseUnavailable
            default: return ExitStatus.refused
            }
        }
        return ExitStatus.refused
    }
}

/// Says on stderr that a development key was just created.
func announce(_ created: KeyRecord?, in folder: String) {
    guard let created else { return }
    FileHandle.standardError.write(Data("paywall: no signing key in \(folder): created development key \(created.kid) (\(created.algorithm))\n".utf8))
}

/// Output in text or JSON.
struct Output {
    let json: Bool

    /// Prints an encodable value as pretty JSON (sorted keys, ISO 8601 dates).
    func emit<T: Encodable>(_ value: T) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        if let data = try? encoder.encode(value) {
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
