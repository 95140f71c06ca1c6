import ArgumentParser
import Foundation
import PaywallCore
import PaywallCrypto
import PaywallService
import PaywallTokens
import PaywallViews

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Manage the token signing keys in Keys/ and publish their JWKS.",
        discussion: """
            States: next (published, not yet signing), active (signs), verify-only (superseded, \
            still verifies its tokens), retired (private key deleted, nothing it signed verifies). \
            Each key's id is its RFC 7638 JWK thumbprint.
            """,
        subcommands: [Generate.self, List.self, Rotate.self, Retire.self, JWKSCommand.self]
    )

    static func algorithm(_ name: String) throws -> SignatureAlgorithm {
        guard let algorithm = SignatureAlgorithm(name: name) else { throw ValidationError("--alg must be ES256 or Ed25519") }
        return algorithm
    }

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Generate a key that signs from now on (the previous one becomes verify-only).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "ES256 (default) or Ed25519.") var alg = "ES256"

        func validate() throws { _ = try KeysCommand.algorithm(alg) }

        func run() throws {
            try global.run { service in
                let replacing = try service.keyStates().first { $0.1 == .active }?.0
                let record = try service.generateKey(try KeysCommand.algorithm(alg), actor: global.auditActor)
                if let replacing {
                    // As 'keys rotate --publish-ahead 0s', the emergency, which says so too.
                    printWarning("\(record.kid) signs at once in place of \(replacing.kid): verifiers holding a cached JWKS (up to \(TimeText.format(duration: service.configuration.jwksMaxAge))) refuse its tokens until their copy expires; 'paywall keys rotate' publishes a key ahead instead")
                }
                if global.json { Output(json: true).emit(KeyView(record, state: .active)); return }
                // A key published by 'keys rotate' and not yet signing still takes over at its time.
                let pending = try service.keyStates().filter { $0.1 == .next }.map(\.0).min { $0.activatesAt < $1.activatesAt }
                if let pending {
                    print("generated \(record.algorithm) key \(record.kid); it signs from now on until \(pending.kid), published earlier with 'keys rotate', takes over at \(TimeText.format(pending.activatesAt))")
                } else {
                    print("generated \(record.algorithm) key \(record.kid); it signs from now on")
                }
            }
        }
    }

    struct Rotate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish a new key now and let it take over signing after --publish-ahead.",
            discussion: """
                Verifiers that cache the JWKS see the new key before any token uses it: --publish-ahead \
                must be at least the JWKS cache time (the max-age it is served with, 5m) and a \
                minute for every server to reload the folder, or 0s in an emergency. The old key \
                stays verify-only; retire it once its longest-lived tokens have expired (31 days).
                """
        )
        @OptionGroup var global: GlobalOptions
        @Option(help: "ES256 (default) or Ed25519.") var alg = "ES256"
        @Option(name: .customLong("publish-ahead"), parsing: .unconditional, help: "How long the key is published before it signs, e.g. 10m, 1h, 0s.") var publishAhead = "10m"

        func validate() throws { _ = try KeysCommand.algorithm(alg) }

        func run() throws {
            try global.run { service in
                let ahead = publishAhead.trimmingCharacters(in: .whitespaces) == "0s" ? 0 : try TimeText.duration(publishAhead)
                let record = try service.rotateKey(try KeysCommand.algorithm(alg), publishAhead: ahead, actor: global.auditActor)
                let state = try service.keyStates().first { $0.0.kid == record.kid }?.1 ?? .next
                // A key published earlier to take over later still does, after this one:
                // an emergency rotation must not be silently undone (said on stderr, in
                // JSON mode too).
                let later = try service.keyStates().filter { $0.1 == .next && $0.0.kid != record.kid && $0.0.activatesAt > record.activatesAt }
                    .map(\.0).min { $0.activatesAt < $1.activatesAt }
                if let later {
                    try? FileHandle.standardError.write(contentsOf: Data("paywall: note: key \(later.kid) takes over signing at \(TimeText.format(later.activatesAt)); if this rotation replaces it, retire it: paywall keys retire --force -- \(later.kid)\n".utf8))
                }
                if global.json { Output(json: true).emit(KeyView(record, state: state)); return }
                if let later {
                    print("published \(record.algorithm) key \(record.kid); it signs from \(record.activatesAt.text) until \(later.kid), published earlier, takes over at \(TimeText.format(later.activatesAt))")
                } else {
                    print("published \(record.algorithm) key \(record.kid); it signs from \(record.activatesAt.text)")
                }
            }
        }
    }

    struct Retire: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Retire a key: its private key is deleted and its tokens stop verifying (running servers reload the ring within 2 seconds).",
            discussion: "Refused for the signing key, and for a superseded key whose tokens may still be live, unless --force. A key id may start with '-' (it is base64url): write options first and `--` before it, e.g. `paywall keys retire --force -- -Xy2…`. Exit 1 with a warning naming the file when the key is retired but its private key file may still be on the disk (not deleted, or its deletion not synced): make sure it is gone."
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The key id.") var kid: String
        @Flag(help: "Retire even if tokens it signed may still be live.") var force = false

        func run() throws {
            try global.run { service in
                let retirement = try service.retireKey(kid: kid, force: force, actor: global.auditActor)
                let record = retirement.record
                if global.json { Output(json: true).emit(KeyView(record, state: .retired)) } else { print("retired key \(record.kid)") }
                if let left = retirement.privateKeyLeft {
                    // Retired all the same (the manifest says so: nothing signs or verifies
                    // with it); its private half must not stay on the disk.
                    try? FileHandle.standardError.write(contentsOf: Data("paywall: warning: the private key file \(left.path) may still be on the disk (\(left.reason)); make sure it is gone\n".utf8))
                    throw ExitStatus.refused
                }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the keys and their states (reads the key folder alone: no database needed).")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            // From the key folder alone: no database needed.
            try global.withKeys { keys in
                let views = keys.states.map { KeyView($0.0, state: $0.1) }
                let out = Output(json: global.json)
                if global.json { out.emit(views); return }
                out.table(["KID", "ALG", "STATE", "CREATED", "SIGNS FROM", "RETIRED"], views.map {
                    [$0.kid, $0.alg, $0.state, $0.createdAt.text, $0.activatesAt.text, $0.retiredAt.text]
                })
            }
        }
    }

    struct JWKSCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "jwks", abstract: "Print the public key set (JWKS) that verifiers use (reads the key folder alone: no database needed).")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            try global.withKeys { keys in
                Output(json: true).emit(json: keys.jwks.json)
            }
        }
    }
}
