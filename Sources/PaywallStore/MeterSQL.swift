/// The meter queries, written once: the hot readers and the write path that records a
/// metered read atomically must count exactly alike.
enum MeterSQL {
    /// Distinct articles a subject read in `(start, end]`. Arguments: subject, start, end.
    static let countAll = """
        SELECT COUNT(*) FROM (SELECT DISTINCT title_id, article_id FROM reads
        WHERE subject = ? AND read_at > ? AND read_at <= ?) AS counted
        """

    /// The same for one title. Arguments: subject, start, end, title.
    static let countTitle = """
        SELECT COUNT(*) FROM (SELECT DISTINCT article_id FROM reads
        WHERE subject = ? AND read_at > ? AND read_at <= ? AND title_id = ?) AS counted
        """

    /// Whether the subject read this article in `(start, end]`. Arguments: subject, start,
    /// end, title, article.
    static let readInWindow = """
        SELECT EXISTS (SELECT 1 FROM reads
        WHERE subject = ? AND read_at > ? AND read_at <= ? AND title_id = ? AND article_id = ?)
        """
}
