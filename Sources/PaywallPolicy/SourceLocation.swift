/// A place in a policy file, for errors that point at the source.
public struct SourceLocation: Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// An error (or warning) found in a policy, with where and the source line.
public struct PolicyDiagnostic: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Severity: String, Sendable { case error, warning }

    public var severity: Severity
    public var location: SourceLocation
    public var message: String
    /// The offending source line, for the caret display.
    public var sourceLine: String

    public init(_ severity: Severity = .error, at location: SourceLocation, _ message: String, sourceLine: String = "") {
        self.severity = severity
        self.location = location
        self.message = message
        self.sourceLine = sourceLine
    }

    /// `file:line:column: error: message`, then the line and a caret under the column.
    public var description: String {
        var text = "\(location): \(severity.rawValue): \(message)"
        if !sourceLine.isEmpty {
            let shown = String(sourceLine.prefix(200))
            let caretColumn = min(max(location.column - 1, 0), shown.count)
            // The line's own tabs kept under it, so the caret lines up however wide a tab is.
            let pad = String(shown.prefix(caretColumn).map { $0 == "\t" ? "\t" : " " })
            text += "\n    \(shown)\n    \(pad)^"
        }
        return text
    }
}

/// Several diagnostics at once (a policy set that does not check clean).
public struct PolicyErrors: Error, Equatable, Sendable, CustomStringConvertible {
    public var diagnostics: [PolicyDiagnostic]
    public init(_ diagnostics: [PolicyDiagnostic]) { self.diagnostics = diagnostics }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}
