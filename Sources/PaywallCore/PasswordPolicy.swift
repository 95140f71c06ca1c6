/// The rules a new password must meet.
public struct PasswordPolicy: Sendable, Equatable {
    /// Why a password was refused.
    public enum Violation: Error, Equatable, Sendable, CustomStringConvertible {
        case tooShort(minimum: Int)
        /// Longer than the maximum in UTF-8 bytes (what hashing costs, and what the hasher takes).
        case tooLong(maximum: Int)
        case common
        case containsEmail
        /// A change to the password the account has already.
        case unchanged

        public var description: String {
            switch self {
            case let .tooShort(minimum): "it must be at least \(minimum) characters long"
            case let .tooLong(maximum): "it must be at most \(maximum) bytes long (UTF-8)"
            case .common: "it is in the list of commonly used passwords; choose another"
            case .containsEmail: "it must not contain the email address"
            case .unchanged: "it is the current password; choose a new one"
            }
        }
    }

    /// Minimum length in characters (default 10).
    public var minimumLength: Int
    /// Maximum length in UTF-8 bytes (default 1024, the hasher's own limit): bounds the
    /// cost of hashing, and a password the policy accepts always hashes.
    public var maximumLength: Int

    public init(minimumLength: Int = 10, maximumLength: Int = 1024) {
        self.minimumLength = minimumLength
        self.maximumLength = maximumLength
    }

    /// The default policy: 10 to 1024 characters, not a common password.
    public static let standard = PasswordPolicy()

    /// Checks `password` for an account with `email`; throws the first rule it breaks.
    public func validate(_ password: String, email: EmailAddress? = nil) throws(DomainError) {
        if password.utf8.count > maximumLength { throw .weakPassword(.tooLong(maximum: maximumLength)) }
        if password.count < minimumLength { throw .weakPassword(.tooShort(minimum: minimumLength)) }
        let lower = password.lowercased()
        if CommonPasswords.all.contains(lower) { throw .weakPassword(.common) }
        if let email, lower.contains(email.lookupKey) { throw .weakPassword(.containsEmail) }
    }
}
