import ArgumentParser
import Foundation
import PaywallHTTP
import PaywallService
import PaywallWeb

/// Options every command that touches the database accepts.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The SQLite database file, or a PostgreSQL URL (postgres://user:password@host:port/database, or postgres://user:password@/database?host=/var/run/postgresql through its unix socket) shared by several servers.", discussion: "Default: $PAYWALL_DB, else ./paywall.sqlite. Prefer $PAYWALL_DB for a URL with a password: command lines are visible to other users.", valueName: "path-or-url"))
    var db: String?

    @Flag(name: .long, help: "Print machine-readable JSON instead of text.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Who is making the change, for the audit log (default: the OS user).", valueName: "name"))
    var actor: String?

    @Option(name: .long, help: ArgumentHelp("The signing key folder.", discussion: "Default: $PAYWALL_KEYS, else ./Keys.", valueName: "dir"))
    var keys: String?

    func validate() throws {
        if let actor {
            do { _ = try PaywallService.validatedAdminName(actor) } catch {
                throw ValidationError("--actor must be 1 to 64 letters, digits, '.', '_', '-' or '@' (it is written to the append-only audit log)")
            }
        }
    }
}

/// Every `PAYWALL_*` setting a `paywall` command may read: the service's, the HTTP
/// server's and the web pages'. One environment serves every command (a deployment sets
/// the server's, and its admins run commands in it): a name outside them is a typo.
let knownSettings = ServiceConfiguration.environmentNames.union(ServerSettings.environmentNames).union(WebSettings.environmentNames)
