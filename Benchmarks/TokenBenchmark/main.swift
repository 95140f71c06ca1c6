// paywall-token-bench: signing and verifying access tokens beside raw OpenSSL EVP calls
// in a C loop (same key, same signing input) and beside PyJWT with the same claims.
//
//   swift run -c release paywall-token-bench [--count 2000] [--rounds 5] [--no-python]
import CEVPLoop
import Foundation
import PaywallCore
import PaywallCrypto
import PaywallTokens

var count = 2_000
var rounds = 5
var python = true
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let flag = arguments.next() {
    switch flag {
    case "--count": count = Int(arguments.next() ?? "") ?? count
    case "--rounds": rounds = max(1, Int(arguments.next() ?? "") ?? rounds)
    case "--no-python": python = false
    default:
        FileHandle.standardError.write(Data("usage: paywall-token-bench [--count N] [--rounds N] [--no-python]\n".utf8))
        exit(64)
    }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func rate(_ operations: Int, _ body: () throws -> Void) rethrows -> Double {
    let start = cevp_now_ns()
    try body()
    return Double(operations) / (Double(cevp_now_ns() - start) / 1e9)
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("paywall-token-bench: \(message)\n".utf8))
    exit(1)
}

/// A realistic access token: two memberships, a trial end, the registered claims.
let clock = ManualClock(Date())
let now = clock.now()
let snapshot = EntitlementSnapshot(
    memberships: [
        MembershipEntitlement(status: .active, plan: PlanID(rawValue: "monthly-all"), titles: .all, periodEnd: now.addingTimeInterval(20 * 86_400), graceEnd: nil),
        MembershipEntitlement(status: .pastDue, plan: PlanID(rawValue: "news-annual"),
                              titles: .titles([TitleID(rawValue: "euronews"), TitleID(rawValue: "the-daily"), TitleID(rawValue: "le-monde")]),
                              periodEnd: now.addingTimeInterval(-86_400), graceEnd: now.addingTimeInterval(6 * 86_400)),
    ],
    trialEndsAt: nil)

struct Row {
    var algorithm: String
    var operation: String
    var ours: Double
    var raw: Double
    var rawCopy: Double
    var pyjwt: Double?
}
var rows: [Row] = []

for algorithm in SignatureAlgorithm.allCases {
    let key = try PrivateKey.generate(algorithm)
    let kid = JWK.thumbprint(key.publicKey)
    let pem = try key.pem()
    let issuer = TokenIssuer(signer: JWSSigner(key: key, kid: kid), issuer: "paywall", clock: clock)
    let verifier = TokenVerifier(jws: JWSVerifier(keys: [VerificationKey(kid: kid, publicKey: key.publicKey)]), issuer: "paywall", clock: clock)
    let (sample, _) = try issuer.accessToken(subject: "0f8fad5b-d9cb-469f-a165-70867728950e", audience: "paywall-api", lifetime: 900, entitlements: snapshot)
    let parts = sample.split(separator: ".")
    let signingInput = Array((parts[0] + "." + parts[1]).utf8)

    guard let cKey = pem.withCString({ cevp_load_key($0, strlen($0)) }) else { fail("C could not load the key") }
    defer { cevp_free_key(cKey) }
    var cSignature = [UInt8](repeating: 0, count: 128)
    var cSignatureLength = 0

    var ourSign: [Double] = [], rawSign: [Double] = [], ourVerify: [Double] = [], rawVerify: [Double] = []
    var copySign: [Double] = [], copyVerify: [Double] = []
    for _ in 0..<rounds {
        ourSign.append(try rate(count) {
            for _ in 0..<count {
                _ = try issuer.accessToken(subject: "0f8fad5b-d9cb-469f-a165-70867728950e", audience: "paywall-api", lifetime: 900, entitlements: snapshot)
            }
        })
        rawSign.append(rate(count) {
            if cevp_sign_loop(cKey, signingInput, signingInput.count, Int64(count), &cSignature, &cSignatureLength) != 0 { fail("C sign failed") }
        })
        ourVerify.append(try rate(count) {
            for _ in 0..<count { _ = try verifier.verifyAccess(sample, audience: "paywall-api") }
        })
        let signature = Array(cSignature[..<cSignatureLength])
        var verified: Int64 = 0
        rawVerify.append(rate(count) { verified = cevp_verify_loop(cKey, signingInput, signingInput.count, Int64(count), signature, signature.count) })
        if verified != Int64(count) { fail("C verified \(verified) of \(count)") }
        copySign.append(rate(count) {
            if cevp_sign_loop_copy(cKey, signingInput, signingInput.count, Int64(count), &cSignature, &cSignatureLength) != 0 { fail("C sign failed") }
        })
        copyVerify.append(rate(count) { verified = cevp_verify_loop_copy(cKey, signingInput, signingInput.count, Int64(count), signature, signature.count) })
        if verified != Int64(count) { fail("C verified \(verified) of \(count)") }
    }

    var pySign: Double?, pyVerify: Double?
    if python {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("paywall-token-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let pemPath = folder.appendingPathComponent("key.pem")
        try Data(pem.utf8).write(to: pemPath)
        let claims = try require(String(data: Data(Base64URL.decode(parts[1]) ?? []), encoding: .utf8))
        let script = """
            import json, sys, time, statistics, jwt
            from cryptography.hazmat.primitives.serialization import load_pem_private_key
            key = load_pem_private_key(open(sys.argv[1], "rb").read(), None)
            pub = key.public_key()
            alg = "ES256" if sys.argv[2] == "ES256" else "EdDSA"
            claims = json.loads(sys.argv[3]); n = int(sys.argv[4]); rounds = int(sys.argv[5])
            headers = {"kid": sys.argv[6], "typ": "at+jwt"}
            token = jwt.encode(claims, key, algorithm=alg, headers=headers)
            signs, verifies = [], []
            for _ in range(rounds):
                t = time.perf_counter()
                for _ in range(n): jwt.encode(claims, key, algorithm=alg, headers=headers)
                signs.append(n / (time.perf_counter() - t))
                t = time.perf_counter()
                for _ in range(n): jwt.decode(token, pub, algorithms=[alg], audience="paywall-api", issuer="paywall", options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]})
                verifies.append(n / (time.perf_counter() - t))
            print(statistics.median(signs), statistics.median(verifies))
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, pemPath.path, algorithm.rawValue, claims, String(count), String(rounds), kid]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let numbers = text.split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        if process.terminationStatus == 0, numbers.count == 2 {
            pySign = numbers[0]
            pyVerify = numbers[1]
        } else {
            FileHandle.standardError.write(Data("paywall-token-bench: PyJWT run failed (pip install PyJWT cryptography); skipping it\n".utf8))
        }
    }
    rows.append(Row(algorithm: algorithm.rawValue, operation: "sign access token", ours: median(ourSign), raw: median(rawSign), rawCopy: median(copySign), pyjwt: pySign))
    rows.append(Row(algorithm: algorithm.rawValue, operation: "verify access token", ours: median(ourVerify), raw: median(rawVerify), rawCopy: median(copyVerify), pyjwt: pyVerify))
    FileHandle.standardError.write(Data("  \(algorithm) done (token \(sample.utf8.count) bytes)\n".utf8))
}

print("paywall-token-bench: \(rounds) rounds of \(count) operations; medians")
print("")
print("| alg | operation | paywall (ops/s) | raw EVP, init each (ops/s) | raw EVP, ctx copy (ops/s) | paywall ÷ best raw | PyJWT (ops/s) | paywall ÷ PyJWT |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for row in rows {
    let py = row.pyjwt.map { String(format: "%.0f", $0) } ?? "-"
    let pyRatio = row.pyjwt.map { String(format: "%.1f×", row.ours / $0) } ?? "-"
    let best = max(row.raw, row.rawCopy)
    print("| \(row.algorithm) | \(row.operation) | \(String(format: "%.0f", row.ours)) | \(String(format: "%.0f", row.raw)) | \(String(format: "%.0f", row.rawCopy)) | \(String(format: "%.0f%%", 100 * row.ours / best)) | \(py) | \(pyRatio) |")
}

/// `#require` stand-in for a command-line tool.
func require<T>(_ value: T?) throws -> T {
    guard let value else { fail("unexpected nil") }
    return value
}
