import Foundation

// The store's SQL is written once, in the subset SQLite and PostgreSQL share, and runs on
// either backend through `SQLConnection`. Where the two differ (an aggregate's name, a
// lock), the statement asks `dialect`. Values are integers (instants in milliseconds,
// flags as 0/1), text and bytes on both, so a row reads the same from either.

/// The SQL dialect of a connection.
enum SQLDialect: Sendable {
    case sqlite, postgres
}

/// A value bound to a statement or read from a row.
enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob(Data)
}

/// A Swift value that binds to a statement parameter.
protocol SQLBindable {
    var sqlValue: SQLValue { get }
}

extension Int64: SQLBindable { var sqlValue: SQLValue { .integer(self) } }
extension Int: SQLBindable { var sqlValue: SQLValue { .integer(Int64(self)) } }
extension String: SQLBindable { var sqlValue: SQLValue { .text(self) } }
extension Substring: SQLBindable { var sqlValue: SQLValue { .text(String(self)) } }
extension Double: SQLBindable { var sqlValue: SQLValue { .real(self) } }
extension Data: SQLBindable { var sqlValue: SQLValue { .blob(self) } }
extension Array: SQLBindable where Element == UInt8 { var sqlValue: SQLValue { .blob(Data(self)) } }
/// Flags are stored as 0 or 1 on both backends (no boolean column type to convert).
extension Bool: SQLBindable { var sqlValue: SQLValue { .integer(self ? 1 : 0) } }
extension SQLValue: SQLBindable { var sqlValue: SQLValue { self } }

/// The parameters of a statement, in order: `[id, name, nil]`.
struct SQLArguments: ExpressibleByArrayLiteral, Sendable {
    var values: [SQLValue]

    init(arrayLiteral elements: (any SQLBindable)?...) {
        values = elements.map { $0?.sqlValue ?? .null }
    }

    init(_ values: [SQLValue]) { self.values = values }

    mutating func append(_ value: some SQLBindable) { values.append(value.sqlValue) }
}

/// A Swift value a column decodes to. A column that does not hold what the schema says is
/// a bug in this module (as in GRDB, which this replaces): it traps with the column named.
protocol SQLDecodable {
    static func decode(_ value: SQLValue) -> Self?
}

extension Int64: SQLDecodable {
    static func decode(_ value: SQLValue) -> Int64? {
        switch value {
        case let .integer(number): return number
        case let .real(number): return Int64(exactly: number)
        case let .text(text): return Int64(text)  // PostgreSQL's numeric (SUM of bigints)
        default: return nil
        }
    }
}

extension Int: SQLDecodable {
    static func decode(_ value: SQLValue) -> Int? { Int64.decode(value).flatMap { Int(exactly: $0) } }
}

extension Bool: SQLDecodable {
    static func decode(_ value: SQLValue) -> Bool? { Int64.decode(value).map { $0 != 0 } }
}

extension Double: SQLDecodable {
    static func decode(_ value: SQLValue) -> Double? {
        switch value {
        case let .real(number): return number
        case let .integer(number): return Double(number)
        case let .text(text): return Double(text)
        default: return nil
        }
    }
}

extension String: SQLDecodable {
    static func decode(_ value: SQLValue) -> String? {
        if case let .text(text) = value { return text }
        return nil
    }
}

extension Data: SQLDecodable {
    static func decode(_ value: SQLValue) -> Data? {
        if case let .blob(bytes) = value { return bytes }
        return nil
    }
}

extension Array: SQLDecodable where Element == UInt8 {
    static func decode(_ value: SQLValue) -> [UInt8]? { Data.decode(value).map(Array.init) }
}

extension Optional: SQLDecodable where Wrapped: SQLDecodable {
    static func decode(_ value: SQLValue) -> Wrapped?? {
        if value == .null { return .some(nil) }
        return Wrapped.decode(value).map { .some($0) }
    }
}

/// The column names of a result, shared by its rows.
final class SQLColumns: Sendable {
    let names: [String]
    private let indexByName: [String: Int]

    init(_ names: [String]) {
        self.names = names
        var index: [String: Int] = [:]
        for (position, name) in names.enumerated() where index[name] == nil { index[name] = position }
        indexByName = index
    }

    func index(of name: String) -> Int? { indexByName[name] }
}

/// One row of a result.
struct SQLRow: Sendable {
    let columns: SQLColumns
    let values: [SQLValue]

    /// The value of the column at `index` (from 0).
    subscript<T: SQLDecodable>(_ index: Int) -> T {
        guard values.indices.contains(index) else {
            preconditionFailure("no column \(index) in a row of \(values.count) (\(columns.names.joined(separator: ", ")))")
        }
        return Self.decoded(values[index], column: columns.names.indices.contains(index) ? columns.names[index] : "#\(index)")
    }

    /// The columns `range` as a row of their own (a joined row's parts, each decoded by its
    /// own type's `init(row:)`).
    func slice(_ range: Range<Int>) -> SQLRow {
        SQLRow(columns: SQLColumns(Array(columns.names[range])), values: Array(values[range]))
    }

    /// The value of the column named `name`.
    subscript<T: SQLDecodable>(_ name: String) -> T {
        guard let index = columns.index(of: name) else {
            preconditionFailure("no column '\(name)' in a row of \(columns.names.joined(separator: ", "))")
        }
        return Self.decoded(values[index], column: name)
    }

    private static func decoded<T: SQLDecodable>(_ value: SQLValue, column: String) -> T {
        guard let decoded = T.decode(value) else {
            preconditionFailure("column '\(column)' holds \(value), not \(T.self): the schema and the store's code disagree")
        }
        return decoded
    }
}

/// The statements of one transaction (or of one hot read) on one connection, on either
/// backend. SQL uses `?` placeholders and only bound parameters.
protocol SQLConnection {
    var dialect: SQLDialect { get }
    /// Runs a statement; returns the number of rows it changed.
    @discardableResult
    func execute(_ sql: String, _ arguments: SQLArguments) throws -> Int
    /// Runs a query; returns every row.
    func fetchAll(_ sql: String, _ arguments: SQLArguments) throws -> [SQLRow]
    /// Holds, until the transaction ends, the meter locks of `subjects`: call before
    /// counting or changing a subject's reads (PostgreSQL; SQLite's single writer needs none).
    func lockMeters(_ subjects: [String]) throws
}

extension SQLConnection {
    @discardableResult
    func execute(_ sql: String) throws -> Int { try execute(sql, []) }

    func fetchAll(_ sql: String) throws -> [SQLRow] { try fetchAll(sql, []) }

    /// The first row, or nil.
    func fetchOne(_ sql: String, _ arguments: SQLArguments = []) throws -> SQLRow? {
        try fetchAll(sql, arguments).first
    }

    /// The first column of the first row; nil when there is no row or it is NULL.
    func fetchValue<T: SQLDecodable>(_ type: T.Type, _ sql: String, _ arguments: SQLArguments = []) throws -> T? {
        guard let row = try fetchOne(sql, arguments) else { return nil }
        let value: T? = row[0]
        return value
    }

    /// The first column of every row (NULLs skipped).
    func fetchValues<T: SQLDecodable>(_ type: T.Type, _ sql: String, _ arguments: SQLArguments = []) throws -> [T] {
        try fetchAll(sql, arguments).compactMap { row in
            let value: T? = row[0]
            return value
        }
    }

    /// Runs an `INSERT` into a table keyed by an integer `id`; returns the new row's id.
    func insertedID(_ sql: String, _ arguments: SQLArguments) throws -> Int64 {
        guard let id = try fetchValue(Int64.self, sql + " RETURNING id", arguments) else {
            preconditionFailure("an INSERT … RETURNING id returned no id: \(sql)")
        }
        return id
    }

    /// Runs `body` in a savepoint: what it wrote is undone when it throws, and the
    /// enclosing transaction goes on (on PostgreSQL a failed statement otherwise aborts it).
    func inSavepoint<T>(_ body: () throws -> T) throws -> T {
        try execute("SAVEPOINT paywall_step")
        do {
            let result = try body()
            try execute("RELEASE SAVEPOINT paywall_step")
            return result
        } catch {
            try execute("ROLLBACK TO SAVEPOINT paywall_step")
            try execute("RELEASE SAVEPOINT paywall_step")
            throw error
        }
    }

    /// `group_concat(column, ',')` in this dialect.
    func concatenated(_ column: String) -> String {
        switch dialect {
        case .sqlite: return "group_concat(\(column), ',')"
        case .postgres: return "string_agg(\(column), ',')"
        }
    }
}

/// The constraint a failed statement broke, on either backend; nil for other errors.
enum SQLConstraint: Sendable {
    case unique, foreignKey, check, notNull, other

    /// What `error` broke, if it is a constraint violation.
    static func violated(by error: any Error) -> SQLConstraint? {
        SQLiteBackend.constraint(of: error) ?? PostgresBackend.constraint(of: error)
    }
}

/// A comma-separated column list (a type's `columns`) qualified by a table alias:
/// `qualified("id, name", "a")` is `a.id, a.name`.
func qualified(_ columns: String, _ alias: String) -> String {
    columns.split(separator: ",").map { "\(alias)." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }.joined(separator: ", ")
}

/// How many columns a comma-separated list names.
func columnCount(_ columns: String) -> Int { columns.split(separator: ",").count }
