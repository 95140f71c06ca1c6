import Foundation
import PaywallHTTP
import PaywallService
import PaywallTestSupport
import PaywallWeb
import Testing

/// `paywall serve` refuses a `PAYWALL_*` variable that names no setting (a typo would be
/// ignored and the default taken). The settings are read in three modules (the service,
/// the HTTP server, the web pages); each lists what it reads. This keeps the lists whole.
@Suite("Settings' names")
struct SettingsNamesTests {
    static let known = ServiceConfiguration.environmentNames.union(ServerSettings.environmentNames).union(WebSettings.environmentNames)

    @Test("every PAYWALL_ variable the sources name is a listed setting (or a test's)")
    func listsAreWhole() throws {
        let sources = repositoryRoot.appendingPathComponent("Sources")
        let files = try #require(FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)).compactMap { $0 as? URL }
            .filter { $0.pathExtension == "swift" }
        #expect(files.count > 50)
        let pattern = try Regex(#""(PAYWALL_[A-Z0-9_]*[A-Z0-9])""#)
        var named: Set<String> = []
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            for match in text.matches(of: pattern) { named.insert(String(text[match.range].dropFirst().dropLast())) }
        }
        #expect(named.contains("PAYWALL_PORT") && named.contains("PAYWALL_DB") && named.contains("PAYWALL_SECURE_COOKIES"))
        let unlisted = named.filter { name in
            !Self.known.contains(name) && !ServiceConfiguration.isServiceLink(name)
                && !ServiceConfiguration.reservedEnvironmentPrefixes.contains { name.hasPrefix($0) }
        }
        #expect(unlisted.isEmpty, "read but not listed as settings: \(unlisted.sorted())")
    }

    @Test("an unknown PAYWALL_ variable is found, with the setting it was likely meant to be; tests' prefixes are left alone")
    func unknown() {
        #expect(ServiceConfiguration.unknownSetting(in: ["PAYWALL_PORT": "1", "HOME": "/"], known: Self.known) == nil)
        let typo = ServiceConfiguration.unknownSetting(in: ["PAYWALL_PORTT": "1"], known: Self.known)
        #expect(typo?.name == "PAYWALL_PORTT" && typo?.meant == "PAYWALL_PORT")
        #expect(ServiceConfiguration.unknownSetting(in: ["PAYWALL_DBB": "x"], known: Self.known)?.meant == "PAYWALL_DB")
        #expect(ServiceConfiguration.unknownSetting(in: ["PAYWALL_LOGLEVEL": "x"], known: Self.known)?.meant == "PAYWALL_LOG_LEVEL")
        let far = ServiceConfiguration.unknownSetting(in: ["PAYWALL_SOMETHING_ELSE": "x"], known: Self.known)
        #expect(far?.name == "PAYWALL_SOMETHING_ELSE" && far?.meant == nil)
        // Kubernetes' service links for a Service named paywall are not settings.
        for name in ["PAYWALL_SERVICE_HOST", "PAYWALL_SERVICE_PORT", "PAYWALL_SERVICE_PORT_HTTP", "PAYWALL_PORT_8080_TCP", "PAYWALL_PORT_8080_TCP_ADDR",
                     "PAYWALL_PORT_8080_TCP_PORT", "PAYWALL_PORT_8080_TCP_PROTO", "PAYWALL_PORT_53_UDP"] {
            #expect(ServiceConfiguration.isServiceLink(name), "\(name)")
            #expect(ServiceConfiguration.unknownSetting(in: [name: "x"], known: Self.known) == nil, "\(name)")
        }
        for name in ["PAYWALL_PORT_TCP", "PAYWALL_PORT_8080", "PAYWALL_PORT_8080_TCP_HOST", "PAYWALL_SERVICES_HOST", "PAYWALL_PORTS"] {
            #expect(!ServiceConfiguration.isServiceLink(name), "\(name)")
        }
        for name in ["PAYWALL_TEST_POSTGRES_URL", "PAYWALL_BENCH_POSTGRES_URL", "PAYWALL_CI_POSTGRES_PASSWORD", "PAYWALL_TEST_SCREENSHOTS"] {
            #expect(ServiceConfiguration.unknownSetting(in: [name: "x"], known: Self.known) == nil, "\(name)")
        }
    }
}
