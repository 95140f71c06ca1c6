import GRDB

/// The versioned, forward-only schema. Never edit a shipped migration: add a new one.
enum Migrations {
    /// Migration identifiers in order.
    static var identifiers: [String] { migrator.migrations }

    static let migrator: DatabaseMigrator = {
        var migrator = DatabaseMigrator()

        migrator.registerMigration("v1-accounts") { db in
            try db.execute(sql: """
                CREATE TABLE accounts (
                    id TEXT PRIMARY KEY NOT NULL,
                    email TEXT NOT NULL,
                    email_key TEXT NOT NULL UNIQUE,
                    display_name TEXT,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL
                );
                CREATE TABLE credentials (
                    account_id TEXT PRIMARY KEY NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
                    password_hash TEXT NOT NULL,
                    updated_at INTEGER NOT NULL
                );
                CREATE TABLE audit_log (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    at INTEGER NOT NULL,
                    actor TEXT NOT NULL,
                    action TEXT NOT NULL,
                    target TEXT NOT NULL,
                    details TEXT NOT NULL DEFAULT '{}'
                );
                CREATE INDEX audit_log_by_target ON audit_log(target, id);
                CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
                    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
                CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
                    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
                """)
        }

        migrator.registerMigration("v2-catalog") { db in
            try db.execute(sql: """
                CREATE TABLE titles (
                    id TEXT PRIMARY KEY NOT NULL,
                    name TEXT NOT NULL,
                    publisher TEXT NOT NULL,
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE plans (
                    id TEXT PRIMARY KEY NOT NULL,
                    name TEXT NOT NULL,
                    period TEXT NOT NULL CHECK (period IN ('week', 'month', 'year')),
                    all_titles INTEGER NOT NULL CHECK (all_titles IN (0, 1)),
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE plan_titles (
                    plan_id TEXT NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
                    title_id TEXT NOT NULL REFERENCES titles(id),
                    PRIMARY KEY (plan_id, title_id)
                ) WITHOUT ROWID;
                """)
        }

        migrator.registerMigration("v3-trials-memberships") { db in
            try db.execute(sql: """
                CREATE TABLE trials (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    account_id TEXT UNIQUE REFERENCES accounts(id) ON DELETE SET NULL,
                    person_key TEXT NOT NULL UNIQUE,
                    started_at INTEGER NOT NULL,
                    ends_at INTEGER NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('active', 'canceled'))
                );
                CREATE TABLE memberships (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
                    plan_id TEXT NOT NULL REFERENCES plans(id),
                    status TEXT NOT NULL CHECK (status IN ('active', 'past_due', 'canceled', 'expired')),
                    current_period_end INTEGER NOT NULL,
                    grace_period_end INTEGER,
                    cancel_at_period_end INTEGER NOT NULL DEFAULT 0 CHECK (cancel_at_period_end IN (0, 1)),
                    source TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL
                );
                CREATE INDEX memberships_by_account ON memberships(account_id);
                CREATE UNIQUE INDEX memberships_one_live_per_plan
                    ON memberships(account_id, plan_id) WHERE status != 'expired';
                CREATE TABLE membership_events (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    membership_id INTEGER NOT NULL REFERENCES memberships(id) ON DELETE CASCADE,
                    from_status TEXT,
                    to_status TEXT NOT NULL,
                    at INTEGER NOT NULL,
                    actor TEXT NOT NULL,
                    reason TEXT
                );
                CREATE INDEX membership_events_by_membership ON membership_events(membership_id, id);
                """)
        }

        migrator.registerMigration("v4-meters-sessions") { db in
            try db.execute(sql: """
                CREATE TABLE reads (
                    id INTEGER PRIMARY KEY,
                    subject TEXT NOT NULL,
                    title_id TEXT NOT NULL REFERENCES titles(id),
                    article_id TEXT NOT NULL,
                    read_at INTEGER NOT NULL
                );
                CREATE INDEX reads_by_subject ON reads(subject, read_at, title_id, article_id);
                CREATE TABLE sessions (
                    id TEXT PRIMARY KEY NOT NULL,
                    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
                    family_id TEXT NOT NULL,
                    token_hash BLOB NOT NULL UNIQUE,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    revoked_at INTEGER,
                    replaced_by TEXT
                );
                CREATE INDEX sessions_by_family ON sessions(family_id);
                CREATE INDEX sessions_by_account ON sessions(account_id);
                """)
        }

        migrator.registerMigration("v5-verified-email-title-tags") { db in
            try db.execute(sql: """
                ALTER TABLE accounts ADD COLUMN email_verified_at INTEGER;
                CREATE TABLE title_tags (
                    title_id TEXT NOT NULL REFERENCES titles(id) ON DELETE CASCADE,
                    tag TEXT NOT NULL,
                    PRIMARY KEY (title_id, tag)
                ) WITHOUT ROWID;
                """)
        }

        // Session families get an absolute lifetime (counted from `family_started_at`,
        // backfilled from each family's oldest session) and a rotated token keeps its
        // successor sealed under itself (`successor_sealed`: the successor's 32 bytes
        // XOR SHA-256("paywall refresh successor" || old token)), for the grace window.
        // A row inserted without a start counts as started in 1970: expired, not immortal.
        migrator.registerMigration("v6-session-families") { db in
            try db.execute(sql: """
                ALTER TABLE sessions ADD COLUMN family_started_at INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE sessions ADD COLUMN successor_sealed BLOB;
                UPDATE sessions SET family_started_at =
                    (SELECT MIN(family.created_at) FROM sessions AS family WHERE family.family_id = sessions.family_id);
                """)
        }

        // Readers over HTTP. A session family is what a reader sees as "a session": it
        // gets the device name given at sign-in (`session_devices`; its last use is the
        // creation of its current token). Failed sign-ins are counted per email and per
        // client address so the throttle survives a restart (`sign_in_failures`).
        // Single-use email links keep only their token's SHA-256 (`email_links`); mail
        // waits in `outbox` until a sendmail command takes it (`next_attempt_at` is both
        // a lease against double delivery and the retry backoff).
        migrator.registerMigration("v7-accounts-http") { db in
            try db.execute(sql: """
                CREATE TABLE session_devices (
                    family_id TEXT PRIMARY KEY NOT NULL,
                    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
                    device_name TEXT
                );
                CREATE INDEX session_devices_by_account ON session_devices(account_id);
                CREATE TABLE sign_in_failures (
                    key TEXT PRIMARY KEY NOT NULL,
                    failures INTEGER NOT NULL,
                    window_start INTEGER NOT NULL,
                    blocked_until INTEGER NOT NULL DEFAULT 0
                ) WITHOUT ROWID;
                CREATE TABLE email_links (
                    token_hash BLOB PRIMARY KEY NOT NULL,
                    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
                    purpose TEXT NOT NULL CHECK (purpose IN ('verify-email', 'reset-password')),
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL
                );
                CREATE INDEX email_links_by_account ON email_links(account_id, purpose);
                CREATE TABLE outbox (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    recipient TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    body TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    next_attempt_at INTEGER NOT NULL,
                    sent_at INTEGER,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    last_error TEXT
                );
                CREATE INDEX outbox_pending ON outbox(sent_at, next_attempt_at);
                CREATE INDEX outbox_by_recipient ON outbox(recipient, created_at);
                """)
        }

        // Gift links and their reads, and an index for the admin API's audit filters.
        // A gift read is kept apart from `reads`: meters count every row of `reads`, and a
        // gift must consume nothing of its recipient's meter. `gift_reads` keeps no foreign
        // key to `gifts`: what publishers are paid on survives the giver's account (whose
        // gifts go with it, so their links stop opening).
        migrator.registerMigration("v8-admin-gifts") { db in
            try db.execute(sql: """
                CREATE TABLE gifts (
                    id TEXT PRIMARY KEY NOT NULL,
                    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
                    title_id TEXT NOT NULL REFERENCES titles(id),
                    article_id TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL
                );
                CREATE INDEX gifts_by_account ON gifts(account_id, created_at);
                CREATE TABLE gift_reads (
                    id INTEGER PRIMARY KEY,
                    gift_id TEXT NOT NULL,
                    subject TEXT,
                    title_id TEXT NOT NULL REFERENCES titles(id),
                    article_id TEXT NOT NULL,
                    read_at INTEGER NOT NULL
                );
                CREATE INDEX gift_reads_by_title ON gift_reads(title_id, read_at);
                CREATE INDEX audit_log_by_actor ON audit_log(actor, id);
                """)
        }

        // A gift read counts once per gift and reader (`recordGiftRead`): the lookup
        // needs an index by gift.
        migrator.registerMigration("v9-gift-reads-by-gift") { db in
            try db.execute(sql: "CREATE INDEX gift_reads_by_gift ON gift_reads(gift_id, subject)")
        }

        // Memberships from payments (Stripe, App Store). A reader paying through both keeps
        // both memberships, so "one live membership per plan" becomes one per plan and source.
        // `billing_events` records every event id once (duplicates are answered from it), with
        // its change as JSON so a pending or failed one can be applied later; pending events
        // wait on `waiting_for` (`stripe:customer:…`, `apple:subscription:…`). `billing_subscriptions`
        // keeps the provider time of the newest event applied (`as_of`), so an older
        // snapshot never overwrites a newer one. `billing_customers` links a Stripe customer
        // or the appAccountToken given to the app to an account; `billing_plans` maps
        // Stripe prices and App Store products to plans.
        migrator.registerMigration("v10-billing") { db in
            try db.execute(sql: """
                DROP INDEX memberships_one_live_per_plan;
                CREATE UNIQUE INDEX memberships_one_live_per_plan_source
                    ON memberships(account_id, plan_id, source) WHERE status != 'expired';
                CREATE TABLE billing_plans (
                    provider TEXT NOT NULL CHECK (provider IN ('stripe', 'apple')),
                    external_id TEXT NOT NULL,
                    plan_id TEXT NOT NULL REFERENCES plans(id) ON DELETE CASCADE,
                    created_at INTEGER NOT NULL,
                    PRIMARY KEY (provider, external_id)
                ) WITHOUT ROWID;
                CREATE TABLE billing_customers (
                    provider TEXT NOT NULL CHECK (provider IN ('stripe', 'apple')),
                    customer_id TEXT NOT NULL,
                    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
                    created_at INTEGER NOT NULL,
                    PRIMARY KEY (provider, customer_id)
                ) WITHOUT ROWID;
                CREATE INDEX billing_customers_by_account ON billing_customers(account_id);
                CREATE TABLE billing_subscriptions (
                    provider TEXT NOT NULL CHECK (provider IN ('stripe', 'apple')),
                    subscription_id TEXT NOT NULL,
                    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
                    membership_id INTEGER REFERENCES memberships(id) ON DELETE SET NULL,
                    product TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('active', 'past_due', 'expired')),
                    provider_status TEXT NOT NULL,
                    period_end INTEGER,
                    grace_end INTEGER,
                    cancel_at_period_end INTEGER NOT NULL CHECK (cancel_at_period_end IN (0, 1)),
                    final INTEGER NOT NULL CHECK (final IN (0, 1)),
                    as_of INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    PRIMARY KEY (provider, subscription_id)
                ) WITHOUT ROWID;
                CREATE INDEX billing_subscriptions_by_account ON billing_subscriptions(account_id);
                CREATE TABLE billing_events (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    provider TEXT NOT NULL CHECK (provider IN ('stripe', 'apple')),
                    event_id TEXT NOT NULL,
                    type TEXT NOT NULL,
                    outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'pending', 'stale', 'failed', 'ignored')),
                    detail TEXT,
                    waiting_for TEXT,
                    customer_id TEXT,
                    subscription_id TEXT,
                    account_id TEXT REFERENCES accounts(id) ON DELETE SET NULL,
                    occurred_at INTEGER NOT NULL,
                    received_at INTEGER NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 1,
                    change TEXT NOT NULL,
                    UNIQUE (provider, event_id)
                );
                CREATE INDEX billing_events_waiting ON billing_events(waiting_for, occurred_at) WHERE outcome = 'pending';
                CREATE INDEX billing_events_by_account ON billing_events(account_id, id);
                CREATE INDEX billing_events_unapplied ON billing_events(outcome, id) WHERE outcome IN ('pending', 'failed');
                """)
        }

        // Policies published to the store (`paywall policy publish`): every server runs the
        // newest revision. Append-only: a rollback publishes an older revision's files again.
        // `files` is a JSON object of file name to text.
        migrator.registerMigration("v11-policy-revisions") { db in
            try db.execute(sql: """
                CREATE TABLE policy_revisions (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    revision TEXT NOT NULL,
                    files TEXT NOT NULL,
                    author TEXT NOT NULL,
                    note TEXT,
                    published_at INTEGER NOT NULL
                );
                CREATE INDEX policy_revisions_by_revision ON policy_revisions(revision, id);
                """)
        }

        // PostgreSQL only: triggers that tell every server which cached facts changed
        // (``FactsCache``). One SQLite file has one server, which caches nothing: an empty
        // step, so a version means the same on both backends.
        migrator.registerMigration("v12-facts-notifications") { _ in }

        // SQLite's way of telling a server which cached facts changed (``FactsCache``):
        // other processes (the CLI) write the same file, and SQLite has no notifications.
        // The same triggers as PostgreSQL's `v12` append to a change log that the server
        // reads after each of its own writes that can change a fact and at most every
        // millisecond before a check
        // (``SQLiteFactsChanges``); `prune` drops entries older than a day (a cache entry
        // lives a minute). AUTOINCREMENT: ids never go back, even when the log is emptied.
        migrator.registerMigration("v13-facts-changes") { db in
            try db.execute(sql: """
                CREATE TABLE facts_changes (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    payload TEXT NOT NULL,
                    changed_at INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
                )
                """)
            // What a changed row of each table names, over the row `R` (the old and the new
            // row of an update both: an account id may move). NULL names nothing (a trial
            // without an account). Table and column names are this file's constants.
            let names: [(table: String, payloads: [String])] = [
                ("accounts", ["'account:' || R.id"]),
                ("memberships", ["'account:' || R.account_id"]),
                ("trials", ["'account:' || R.account_id", "'person:' || R.person_key"]),
                ("titles", ["'catalog'"]), ("title_tags", ["'catalog'"]), ("plans", ["'catalog'"]), ("plan_titles", ["'catalog'"]),
            ]
            for (table, payloads) in names {
                for (event, rows) in [("INSERT", ["NEW"]), ("UPDATE", ["OLD", "NEW"]), ("DELETE", ["OLD"])] {
                    let inserts = rows.flatMap { row in
                        payloads.map { payload in
                            let named = payload.replacingOccurrences(of: "R.", with: "\(row).")
                            return "INSERT INTO facts_changes (payload) SELECT \(named) WHERE \(named) IS NOT NULL;"
                        }
                    }
                    try db.execute(sql: "CREATE TRIGGER \(table)_facts_\(event.lowercased()) AFTER \(event) ON \(table) BEGIN \(inserts.joined(separator: " ")) END")
                }
            }
        }

        // PostgreSQL only: a batch of metered reads as one function call. SQLite's one writer
        // runs them read by read in one transaction. An empty step, so a version means the
        // same on both backends.
        migrator.registerMigration("v14-metered-reads-function") { _ in }

        // Admin tokens revoked before they expire (`paywall token revoke-admin`): one token
        // by its jti, or every token of an admin issued until a time (their iat, seconds).
        // `keep_until`: when no token a row covers can still be valid; pruned after.
        migrator.registerMigration("v15-admin-token-revocations") { db in
            try db.execute(sql: """
                CREATE TABLE admin_token_revocations (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    token_id TEXT,
                    subject TEXT,
                    issued_until INTEGER,
                    revoked_at INTEGER NOT NULL,
                    revoked_by TEXT NOT NULL,
                    keep_until INTEGER NOT NULL,
                    CHECK ((token_id IS NOT NULL AND subject IS NULL AND issued_until IS NULL)
                        OR (token_id IS NULL AND subject IS NOT NULL AND issued_until IS NOT NULL))
                );
                CREATE INDEX admin_token_revocations_by_token ON admin_token_revocations(token_id);
                CREATE INDEX admin_token_revocations_by_subject ON admin_token_revocations(subject, issued_until);
                """)
        }

        // PostgreSQL only: the metered-reads function says when a unit frees as SQLite's
        // queries now do (each article's latest read, re-reads asked again). An empty step,
        // so a version means the same on both backends.
        migrator.registerMigration("v16-metered-reads-latest") { _ in }
        // PostgreSQL only: a re-read within a minute of its article's latest read writes
        // nothing (``Store/quietRereadMillis``). An empty step on SQLite, whose query is in
        // Swift.
        migrator.registerMigration("v17-metered-rereads-quiet") { _ in }
        // PostgreSQL only: the metered-reads function records no read for an account
        // deleted meanwhile. An empty step on SQLite, whose insert checks in Swift's SQL.
        migrator.registerMigration("v18-metered-reads-live-accounts") { _ in }
        // PostgreSQL only: an index for admins' search by email prefix in byte order
        // (``Store/accounts(emailPrefix:limit:)``). SQLite's unique index on `email_key` is
        // in byte order already (BINARY): an empty step.
        migrator.registerMigration("v19-accounts-by-email-prefix") { _ in }
        // A title leaves the catalog without losing its reads (``Store/retireTitle(id:actor:)``).
        migrator.registerMigration("v20-title-retirement") { db in
            try db.execute(sql: "ALTER TABLE titles ADD COLUMN retired_at INTEGER")
        }
        // Access tokens end with the sessions: every "all sessions end" counts here, and an
        // access token carries the count it was issued under (``Account/signOutsEverywhere``).
        migrator.registerMigration("v21-sign-outs-everywhere") { db in
            try db.execute(sql: "ALTER TABLE accounts ADD COLUMN sign_outs_everywhere INTEGER NOT NULL DEFAULT 0")
        }
        // The link in the notice an email change sends the old address: it puts that address
        // back (``Store/revertEmail(token:hash:)``). A table of its own: it outlives later
        // changes (the links table is emptied by each), carries the address it restores, and
        // keeps that address for the account while it lives (no other account may take it).
        migrator.registerMigration("v22-email-reverts") { db in
            try db.execute(sql: """
                CREATE TABLE email_reverts (
                    token_hash BLOB PRIMARY KEY NOT NULL,
                    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
                    restores_email TEXT NOT NULL,
                    restores_email_key TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL
                );
                CREATE INDEX email_reverts_by_account ON email_reverts(account_id);
                CREATE INDEX email_reverts_by_address ON email_reverts(restores_email_key);
                """)
        }
        // Limits every server counts alike (``Store/takeRateToken(_:key:)``): a token bucket
        // per kind and key. And the account each queued mail is about, so that a data export
        // lists the reader's mail and no one else's (an address can pass between accounts).
        migrator.registerMigration("v23-rate-limits-mail-accounts") { db in
            try db.execute(sql: """
                CREATE TABLE rate_limits (
                    scope TEXT NOT NULL,
                    key TEXT NOT NULL,
                    tokens REAL NOT NULL,
                    updated_at INTEGER NOT NULL,
                    PRIMARY KEY (scope, key)
                ) WITHOUT ROWID;
                ALTER TABLE outbox ADD COLUMN account_id TEXT;
                CREATE INDEX outbox_by_account ON outbox(account_id, created_at);
                """)
        }

        migrator.registerMigration("v24-site-secrets-session-use") { db in
            try db.execute(sql: """
                CREATE TABLE site_secrets (
                    name TEXT PRIMARY KEY NOT NULL,
                    value BLOB NOT NULL,
                    created_at INTEGER NOT NULL
                ) WITHOUT ROWID;
                ALTER TABLE session_devices ADD COLUMN last_used_at INTEGER;
                """)
        }

        // A provider's verified event this server could not read is kept, failed, with its
        // body (``Store/recordUnreadBillingEvent(provider:eventID:type:occurredAt:body:reason:)``).
        migrator.registerMigration("v25-billing-events-unread") { db in
            try db.execute(sql: "ALTER TABLE billing_events ADD COLUMN body TEXT")
        }

        return migrator
    }()
}
