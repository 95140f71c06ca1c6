import Foundation
import PaywallCore
import PaywallCrypto
import PaywallStore

/// The service: validates input, orchestrates the store and the cryptography, and is the
/// one thing the CLI and the HTTP server talk to.
public final class PaywallService: Sendable {
    /// The account store.
    public let store: Store
    /// The settings in force.
    public let configuration: ServiceConfiguration
    let hasher: PasswordHasher

    /// Opens the database at `databasePath` (creating and migrating it as needed).
    public convenience init(databasePath: String, configuration: ServiceConfiguration = ServiceConfiguration()) throws(ServiceError) {
        let store = try mapped { try Store(path: databasePath, configuration: configuration.store) }
        try self.init(store: store, configuration: configuration)
    }

    /// A service over an open store.
    public init(store: Store, configuration: ServiceConfiguration = ServiceConfiguration()) throws(ServiceError) {
        self.store = store
        self.configuration = configuration
        self.hasher = try mapped { try PasswordHasher(parameters: configuration.passwordHashing) }
    }

    /// "Now", from the store's clock.
    public var now: Date { store.clock.now() }
}
