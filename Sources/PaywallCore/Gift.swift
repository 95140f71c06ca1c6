import Foundation

/// A gift link a member made: anyone holding its token may read one article in full
/// until `expiresAt`. The id is the token's `jti`.
public struct Gift: Hashable, Sendable {
    public var id: String
    /// The giving member.
    public var accountID: AccountID
    public var titleID: TitleID
    public var articleID: String
    public var createdAt: Date
    public var expiresAt: Date

    public init(id: String, accountID: AccountID, titleID: TitleID, articleID: String, createdAt: Date, expiresAt: Date) {
        self.id = id
        self.accountID = accountID
        self.titleID = titleID
        self.articleID = articleID
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }

    /// The calendar month (UTC) holding `instant`, as `[start, end)`: gift limits count
    /// per month as a reader reads "10 gifts a month", not per rolling 30 days.
    public static func month(of instant: Date) -> (start: Date, end: Date) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        let parts = calendar.dateComponents([.year, .month], from: instant)
        let start = calendar.date(from: parts) ?? instant
        let end = calendar.date(byAdding: .month, value: 1, to: start) ?? start.addingTimeInterval(31 * 86_400)
        return (start, end)
    }
}
