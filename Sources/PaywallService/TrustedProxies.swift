import Foundation
import PaywallPolicy

/// Proxies (load balancers, CDNs) whose `X-Forwarded-For` is believed. Behind one, every
/// client would otherwise have the proxy's address: one rate limit and one sign-in
/// throttle for everybody, and the policy's `request.ip` wrong. Shared by every adapter
/// that serves HTTP (the API and the web pages), so they agree on who the client is.
public struct TrustedProxies: Sendable, Equatable {
    public var ranges: [CIDR] = []

    public init(_ ranges: [CIDR] = []) {
        self.ranges = ranges
    }

    /// A comma-separated list of ranges or bare addresses (`10.0.0.0/8,192.0.2.7`); empty
    /// or blank: none. Nil when an item is neither, or past 256 items.
    public init?(parsing text: String) {
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else { return }
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let entry = item.trimmingCharacters(in: .whitespaces)
            // A bare address is its own /32 or /128.
            guard let range = CIDR(entry) ?? IPAddress(entry).flatMap({ CIDR(entry + ($0.isIPv4 ? "/32" : "/128")) }), ranges.count < 256 else {
                return nil
            }
            ranges.append(range)
        }
    }

    func trusts(_ address: IPAddress) -> Bool { ranges.contains { $0.contains(address) } }

    /// Whether the connection's peer is a trusted proxy: only then is a header it sets
    /// about the client believed (`X-Verified-Crawler`: the proxy checked the crawler's
    /// reverse DNS; a client's own word for it would open every article to anyone).
    public func vouches(peer: String?) -> Bool {
        guard let peer, let ip = IPAddress(peer) else { return false }
        return trusts(ip)
    }

    /// The header a trusted proxy sets to `1` for a crawler it verified (`request.verifiedCrawler`).
    public static let verifiedCrawlerHeader = "X-Verified-Crawler"

    /// `request.verifiedCrawler`: the header's value is `1` and a trusted proxy sent it.
    func verifiedCrawler(header: String?, peer: String?) -> Bool {
        header == "1" && vouches(peer: peer)
    }

    /// What the connection and a trusted proxy's headers tell the policy of a request read
    /// through `channel`: the client's address (`client`, from ``client(peer:forwardedFor:)``,
    /// which the caller also keys its rate limits by) and whether the proxy verified a
    /// crawler. One place for the API and the web pages, so they agree.
    public func requestFacts(client: String?, peer: String?, verifiedCrawlerHeader: String?, channel: String) -> RequestFacts {
        var facts = RequestFacts()
        if let client { facts.ip = IPAddress(client) }
        facts.channel = channel
        facts.verifiedCrawler = verifiedCrawler(header: verifiedCrawlerHeader, peer: peer)
        return facts
    }

    /// The client's address: `peer`, or, when the peer is a trusted proxy, the nearest
    /// address of `forwardedFor` (the `X-Forwarded-For` header values, in order) that is
    /// not a trusted proxy, read from the right: entries left of it were written by the
    /// client and prove nothing. A malformed entry ends the walk at the last trusted hop.
    public func client(peer: String?, forwardedFor: [String]) -> String? {
        guard let peer else { return nil }
        guard !ranges.isEmpty, let peerIP = IPAddress(peer), trusts(peerIP) else { return peer }
        var client = peer
        for header in forwardedFor.reversed() {
            for entry in header.split(separator: ",").reversed() {
                let text = entry.trimmingCharacters(in: .whitespaces)
                guard let ip = IPAddress(text) else { return client }
                client = text
                if !trusts(ip) { return client }
            }
        }
        return client
    }
}

/// The key a client address is rate-limited and throttled by: the address, or for IPv6
/// its /64 (one subscriber's network: rotating through it must not buy fresh budgets).
public func clientRateLimitKey(_ address: String?) -> String {
    guard let address else { return "unknown" }
    guard address.contains(":"), let ip = IPAddress(address), !ip.isIPv4 else { return address }
    return String(ip.high, radix: 16) + "::/64"
}
