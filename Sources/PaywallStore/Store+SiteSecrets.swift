import Foundation
import PaywallCore
import PaywallCrypto

extension Store {
    /// A secret every server on this database shares, made on first use (32 random bytes)
    /// and kept: the key that signs the web forms' CSRF fields, so that a form one server
    /// rendered is accepted by another behind the same load balancer (a key per process
    /// refused (N-1)/N of the posts of N servers). Whoever reads the database can read it;
    /// a CSRF field is also bound to the browser's own random cookie, which they cannot.
    public func siteSecret(_ name: String) throws(StoreError) -> [UInt8] {
        let select = "SELECT value FROM site_secrets WHERE name = ?"
        if let value = try read({ db in try db.fetchValue(Data.self, select, [name]) }) { return Array(value) }
        let fresh: [UInt8]
        do { fresh = try SecureRandom.bytes(32) } catch { throw StoreError.randomUnavailable(detail: error.description) }
        // Two servers starting at once: the first insert wins, and both read it.
        let kept = try write { db -> Data? in
            try db.execute("INSERT INTO site_secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
                           [name, Data(fresh), clock.now().millis])
            return try db.fetchValue(Data.self, select, [name])
        }
        guard let kept, kept.count >= 32 else { throw StoreError.corrupt(path: location, detail: "site secret '\(name)' is missing or shorter than 32 bytes") }
        return Array(kept)
    }
}
