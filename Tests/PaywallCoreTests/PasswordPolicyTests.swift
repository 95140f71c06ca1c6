import Testing
@testable import PaywallCore

@Suite("Password policy")
struct PasswordPolicyTests {
    let policy = PasswordPolicy.standard

    @Test("at least 10 characters")
    func length() throws {
        #expect(throws: DomainError.weakPassword(.tooShort(minimum: 10))) { try policy.validate("Sh0rt!pw9") }
        try policy.validate("tr0ub4dor&3x")
        // Characters, not bytes: ten accented letters pass.
        try policy.validate("éàüöçñøåæß")
    }

    @Test("common passwords are refused whatever their case", arguments: ["qwertyuiop", "1234567890", "PASSWORD123", "Password123"])
    func common(_ password: String) {
        #expect(throws: DomainError.weakPassword(.common)) { try policy.validate(password) }
    }

    @Test("the shipped list is loaded and holds only entries the length rule lets through")
    func list() {
        #expect(CommonPasswords.all.count > 1000)
        #expect(CommonPasswords.all.allSatisfy { $0.count >= 10 })
        #expect(CommonPasswords.all.contains("password123"))
    }

    @Test("too long or containing the email")
    func otherRules() throws {
        #expect(throws: DomainError.weakPassword(.tooLong(maximum: 1024))) { try policy.validate(String(repeating: "x7", count: 513)) }
        // Counted in UTF-8 bytes, like the hasher: 400 characters of 3 bytes each are too long,
        // so a password the policy accepts is never refused by the hasher.
        #expect(throws: DomainError.weakPassword(.tooLong(maximum: 1024))) { try policy.validate(String(repeating: "€", count: 400)) }
        try policy.validate(String(repeating: "€", count: 300) + "x")
        let email = try EmailAddress("ada@example.com")
        #expect(throws: DomainError.weakPassword(.containsEmail)) { try policy.validate("my ADA@example.com pw", email: email) }
        try policy.validate("an unrelated passphrase", email: email)
    }
}
