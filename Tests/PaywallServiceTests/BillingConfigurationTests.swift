import Foundation
import PaywallCore
import PaywallService
import PaywallTestSupport
import Testing

@Suite("Billing settings")
struct BillingConfigurationTests {
    @Test("PAYWALL_STRIPE_* and PAYWALL_APPLE_* are read, checked, and never echo a secret")
    func resolve() throws {
        let chain = try AppleTestChain()
        let configuration = try ServiceConfiguration.resolve(environment: [
            "PAYWALL_STRIPE_WEBHOOK_SECRETS": " whsec_new_0123456789abcdef , whsec_old_0123456789abcdef ",
            "PAYWALL_STRIPE_GRACE": "3d",
            "PAYWALL_APPLE_ROOT_CERT": chain.rootPath, "PAYWALL_APPLE_BUNDLE_ID": "com.example.app", "PAYWALL_APPLE_ENVIRONMENT": "Sandbox",
        ])
        #expect(configuration.stripeWebhookSecrets == ["whsec_new_0123456789abcdef", "whsec_old_0123456789abcdef"])
        #expect(configuration.stripeGracePeriod == 3 * 86_400)
        #expect(configuration.appleRootCertificate == chain.rootDER)
        #expect(configuration.appleBundleID == "com.example.app" && configuration.appleEnvironment == "Sandbox")
        // PEM works as well as DER.
        let pem = chain.folder.path("root.pem")
        #expect(try ServiceConfiguration.resolve(environment: ["PAYWALL_APPLE_ROOT_CERT": pem, "PAYWALL_APPLE_BUNDLE_ID": "a.b"]).appleRootCertificate == chain.rootDER)
        // Defaults: nothing configured.
        let plain = try ServiceConfiguration.resolve(environment: [:])
        #expect(plain.stripeWebhookSecrets.isEmpty && plain.appleRootCertificate == nil && plain.appleEnvironment == "Production")

        func refused(_ environment: [String: String]) -> String? {
            do { _ = try ServiceConfiguration.resolve(environment: environment); return nil } catch { return error.description }
        }
        let short = refused(["PAYWALL_STRIPE_WEBHOOK_SECRETS": "whsec_ok_0123456789abcdef,short"])
        #expect(short?.contains("PAYWALL_STRIPE_WEBHOOK_SECRETS") == true && short?.contains("short") == false)
        #expect(refused(["PAYWALL_STRIPE_GRACE": "90d"]) != nil)
        #expect(refused(["PAYWALL_APPLE_ROOT_CERT": "/nonexistent", "PAYWALL_APPLE_BUNDLE_ID": "a.b"])?.contains("PAYWALL_APPLE_ROOT_CERT") == true)
        #expect(refused(["PAYWALL_APPLE_ROOT_CERT": chain.rootPath])?.contains("PAYWALL_APPLE_BUNDLE_ID") == true)
        #expect(refused(["PAYWALL_APPLE_ENVIRONMENT": "Staging"]) != nil)
    }
}
