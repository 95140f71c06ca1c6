import Foundation
import PaywallService
import Testing

@Suite("The database setting")
struct DatabaseSettingTests {
    @Test("a PostgreSQL URL paywall cannot use is a usage error before anything connects, naming the setting, never the password", arguments: [
        ("postgres://ada:s3cret@db.example", "names no database"),
        ("postgres://ada:s3cret@db.example/paywall?sslmode=maybe", "sslmode must be"),
        ("postgres://ada:s3cret@db.example/paywall?connect_timeout=3", "unknown URL parameter 'connect_timeout'"),
    ])
    func malformedURL(url: String, reason: String) {
        for (environment, overrides, name) in [
            (["PAYWALL_DB": url], ServiceConfiguration.Overrides(), "PAYWALL_DB"),
            ([:], { var o = ServiceConfiguration.Overrides(); o.databaseLocation = url; return o }(), "--db"),
        ] {
            do {
                _ = try ServiceConfiguration.resolve(environment: environment, overrides: overrides)
                Issue.record("\(url) accepted")
            } catch {
                #expect(error.code == "invalid_configuration", "\(error)")
                #expect(error.description.hasPrefix("invalid \(name) 'postgres://ada:***@db.example"), "\(error)")
                #expect(error.description.contains(reason) && !error.description.contains("s3cret"), "\(error)")
            }
        }
    }

    @Test("a file path and a usable URL pass untouched")
    func accepted() throws {
        #expect(try ServiceConfiguration.resolve(environment: ["PAYWALL_DB": "/var/lib/paywall/paywall.sqlite"]).databaseLocation == "/var/lib/paywall/paywall.sqlite")
        let url = "postgres://ada:s3cret@[::1]:5433/paywall?sslmode=require"
        #expect(try ServiceConfiguration.resolve(environment: ["PAYWALL_DB": url]).databaseLocation == url)
    }
}
