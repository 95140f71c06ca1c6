/// The meter queries, written once: the hot readers and the write path that records a
/// metered read atomically must count exactly alike.
enum MeterSQL {
    /// Distinct articles a subject read in `(start, end]`. Arguments: subject, start, end.
    static let countAll = """
        SELECT COUNT(*) FROM (SELECT DISTINCT title_id, article_id FROM reads
        WHERE subject = ? AND read_at > ? AND read_at <= ?) AS counted
        """

    /// ``countAll``, and when the counted read that leaves the window first was made (NULL
    /// when none is): an article stays counted while any read of it is in the window, so
    /// each article's latest read is what leaves, and the earliest of those frees the next
    /// unit. (Each article's first read was taken until the sixth session: after a re-read,
    /// "resets at" came before the unit was free.) Arguments: subject, start, end.
    static let countAllAndOldest = """
        SELECT COUNT(*), MIN(latest) FROM (SELECT MAX(read_at) AS latest FROM reads
        WHERE subject = ? AND read_at > ? AND read_at <= ? GROUP BY title_id, article_id) AS counted
        """

    /// ``countAll`` and ``readInWindow`` in one statement (PostgreSQL: one round trip).
    /// Arguments: subject, start, end, subject, start, end, title, article.
    static let meterFactsPostgres = "SELECT (\(countAll)), (\(readInWindow))"

    /// The second column of ``countAllAndOldest`` alone: when the counted read a subject
    /// made in `(start, end]` that leaves the window first was made (NULL when none).
    /// Arguments: subject, start, end.
    static let oldestCounted = """
        SELECT MIN(latest) FROM (SELECT MAX(read_at) AS latest FROM reads
        WHERE subject = ? AND read_at > ? AND read_at <= ? GROUP BY title_id, article_id) AS counted
        """

    /// The same for one title. Arguments: subject, start, end, title.
    static let countTitle = """
        SELECT COUNT(*) FROM (SELECT DISTINCT article_id FROM reads
        WHERE subject = ? AND read_at > ? AND read_at <= ? AND title_id = ?) AS counted
        """

    /// When the subject last read this article in `(start, end]` (NULL: not in the window),
    /// for the write path, which lets a re-read soon after write nothing. Arguments:
    /// subject, start, end, title, article.
    static let latestReadOfArticle = """
        SELECT MAX(read_at) FROM reads
        WHERE subject = ? AND read_at > ? AND read_at <= ? AND title_id = ? AND article_id = ?
        """

    /// Each article the subject read after `start`, with its latest read (the SQLite
    /// writer's ``SQLiteMeterState`` counts from these). Arguments: subject, start.
    static let latestByArticle = """
        SELECT title_id, article_id, MAX(read_at) FROM reads
        WHERE subject = ? AND read_at > ? GROUP BY title_id, article_id
        """

    /// Whether the subject read this article in `(start, end]`. Arguments: subject, start,
    /// end, title, article.
    static let readInWindow = """
        SELECT EXISTS (SELECT 1 FROM reads
        WHERE subject = ? AND read_at > ? AND read_at <= ? AND title_id = ? AND article_id = ?)
        """
}
