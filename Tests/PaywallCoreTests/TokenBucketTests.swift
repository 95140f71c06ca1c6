import Foundation
import PaywallCore
import Testing

@Suite("Token bucket arithmetic")
struct TokenBucketTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("the burst at once, then the wait to the next whole token; a refusal takes nothing; refilled no further than the burst")
    func takes() {
        var bucket = TokenBucket(tokens: 3, updated: start)
        for _ in 0..<3 { #expect(bucket.take(at: start, burst: 3, interval: 60) == nil) }
        #expect(bucket.take(at: start, burst: 3, interval: 60) == 60)
        #expect(bucket.take(at: start.addingTimeInterval(15), burst: 3, interval: 60) == 45, "a refusal takes nothing")
        #expect(bucket.take(at: start.addingTimeInterval(60), burst: 3, interval: 60) == nil)
        #expect(!bucket.isFull(at: start.addingTimeInterval(60), burst: 3, interval: 60))
        #expect(bucket.isFull(at: start.addingTimeInterval(240), burst: 3, interval: 60))
        for _ in 0..<3 { #expect(bucket.take(at: start.addingTimeInterval(86_400), burst: 3, interval: 60) == nil) }
        #expect(bucket.take(at: start.addingTimeInterval(86_400), burst: 3, interval: 60) != nil, "a day refills three, not more")
    }

    @Test("a time before the last update refills nothing and does not move the bucket back")
    func neverBackInTime() {
        var bucket = TokenBucket(tokens: 0, updated: start)
        #expect(bucket.take(at: start.addingTimeInterval(-600), burst: 3, interval: 60) == 60)
        #expect(bucket.updated == start)
        #expect(bucket.take(at: start.addingTimeInterval(60), burst: 3, interval: 60) == nil)
    }
}
