import Foundation
import PaywallCore
import PaywallPolicy
import PaywallStore

/// Policies published to the store: `Policies/` stays what admins edit and test; a
/// publication puts a checked copy of it in the store, where every server sharing the
/// database finds it (``refreshPublishedPolicy()``, run every few seconds by a server and
/// at once on PostgreSQL's notification). History is append-only: a rollback publishes an
/// older revision's files again.
extension PaywallService {
    /// Checks the policy folder and publishes it, by `author`. Refuses a folder that does
    /// not check (nothing is stored). Audited by `actor` (default: `admin:` and the author),
    /// the author and the note in the entry: the audit log is searched by actor, and an
    /// author is free text (found in review: `--actor alice --author "Alice (on call)"` was
    /// recorded as `admin:Alice (on call)`).
    public func publishPolicy(directory: URL, author: String, note: String? = nil, actor: AuditActor? = nil) throws(ServiceError) -> PublishedPolicy {
        let author = try Self.author(author)
        let note = try Self.note(note)
        let sources: [PolicySource]
        let policy: Policy
        do {
            sources = try PolicyLoader.sources(in: directory)
            policy = try PolicyLoader.compile(sources)
        } catch {
            throw .policy(error)
        }
        var files: [String: String] = [:]
        for source in sources { files[URL(fileURLWithPath: source.name).lastPathComponent] = source.text }
        let published = try mapped { try store.publishPolicy(revision: policy.revision, files: files, author: author, note: note, actor: actor) }
        putInForce(policy, publication: published.number)
        return published
    }

    /// The titles `policy` has a section for that the catalog does not hold (retired ones
    /// count as held), sorted: a section for a mistyped id loads and checks, and its rules
    /// never apply, a cap failing open (found in review). Said when a policy is published
    /// and when a server takes one, not refused: a title may be added after its section.
    public func titleSectionsNotInCatalog(_ policy: Policy) throws(ServiceError) -> [String] {
        let known = Set(try titles(includingRetired: true).map(\.id.rawValue))
        return policy.titleSections.subtracting(known).sorted()
    }

    /// Publishes again the files of an earlier publication of `revision` (a revision id or
    /// a unique prefix), by `author`. The files must still check with this version.
    public func rollbackPolicy(to revision: String, author: String, actor: AuditActor? = nil) throws(ServiceError) -> PublishedPolicy {
        let author = try Self.author(author)
        let wanted = revision.trimmingCharacters(in: .whitespaces)
        guard !wanted.isEmpty, wanted.allSatisfy(\.isHexDigit) else {
            throw .invalidInput(.invalidValue(field: "revision", value: wanted, expected: "a policy revision, hexadecimal (see paywall policy history)"))
        }
        guard let earlier = try mapped({ try store.publishedPolicy(revision: wanted.lowercased()) }) else {
            throw .store(.revisionNotFound(wanted))
        }
        let policy = try Self.compile(earlier)
        let published = try mapped {
            try store.publishPolicy(
                revision: policy.revision, files: earlier.files, author: author, note: "rollback to \(earlier.revision) (publication \(earlier.number))", actor: actor)
        }
        putInForce(policy, publication: published.number)
        return published
    }

    /// Publications, newest first.
    public func policyHistory(limit: Int = 50) throws(ServiceError) -> [PublishedPolicy] {
        try mapped { try store.policyHistory(limit: limit) }
    }

    /// Switches to the newest publication if it is newer than the one in force; returns
    /// the policy put in force, or nil when nothing changed. A publication that does not
    /// compile (made by a newer paywall) is refused with its diagnostics, and the policy in
    /// force stays.
    @discardableResult
    public func refreshPublishedPolicy() throws(ServiceError) -> Policy? {
        guard let newest = try mapped({ try store.latestPolicyNumber() }), newest > (policyPublication ?? 0) else { return nil }
        guard let published = try mapped({ try store.latestPublishedPolicy() }) else { return nil }
        let policy = try Self.compile(published)
        return putInForce(policy, publication: published.number) ? policy : nil
    }

    /// Publications as other servers make them (PostgreSQL); nil when the store cannot
    /// notify (SQLite: poll ``refreshPublishedPolicy()``).
    public func policyNotifications() -> AsyncStream<String>? {
        store.policyNotifications()
    }

    /// Compiles a publication's files (in name order, as a folder's).
    static func compile(_ published: PublishedPolicy) throws(ServiceError) -> Policy {
        do {
            return try PolicyLoader.compile(published.files.sorted { $0.key < $1.key }.map { PolicySource(name: $0.key, text: $0.value) })
        } catch {
            throw .policy(error)
        }
    }

    /// An author as recorded: printable, 1–100 characters. Printable as ``PrintableText``
    /// means it: no control character (C0, DEL, C1) and no bidirectional override, which
    /// made a history or an audit line read otherwise than it holds (found in review: only
    /// ASCII controls were refused).
    static func author(_ text: String) throws(ServiceError) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...100).contains(trimmed.count), !trimmed.unicodeScalars.contains(where: PrintableText.mustEscape) else {
            throw .invalidInput(.invalidValue(field: "author", value: PrintableText.quoted(trimmed), expected: "1 to 100 printable characters"))
        }
        return trimmed
    }

    /// A publication's note: nil, or one printable line of at most 500 characters (`policy
    /// history` prints it as it is; it was taken unchecked).
    static func note(_ text: String?) throws(ServiceError) -> String? {
        guard let text else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return nil }
        guard trimmed.count <= 500, !trimmed.unicodeScalars.contains(where: PrintableText.mustEscape) else {
            throw .invalidInput(.invalidValue(field: "note", value: PrintableText.quoted(trimmed), expected: "one line of at most 500 printable characters"))
        }
        return trimmed
    }
}
