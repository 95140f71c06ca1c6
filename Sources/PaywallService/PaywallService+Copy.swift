import Foundation
import PaywallStore

extension PaywallService {
    /// Copies the SQLite database at `source` into the empty PostgreSQL database of
    /// `configuration.databaseLocation` (``Store/copy(to:)``: one transaction, checked
    /// before it commits). The source is opened read-only, so it must be fully migrated;
    /// the target is opened as a server would open it (created and migrated). No service is
    /// started: a copy needs neither keys nor a policy.
    public static func copyDatabase(from source: String, configuration: ServiceConfiguration) throws(ServiceError) -> StoreCopyReport {
        try mapped {
            try Store.checkCopyLocations(from: source, to: configuration.databaseLocation)
            var sourceConfiguration = configuration.store
            sourceConfiguration.clock = configuration.clock
            sourceConfiguration.readOnly = true
            // The source first: a missing or outdated file is refused before the target is
            // created or migrated.
            let from = try Store(location: source, configuration: sourceConfiguration)
            defer { try? from.close() }
            var targetConfiguration = configuration.store
            targetConfiguration.clock = configuration.clock
            targetConfiguration.readOnly = false
            let to = try Store(location: configuration.databaseLocation, configuration: targetConfiguration)
            defer { try? to.close() }
            return try from.copy(to: to)
        }
    }
}
