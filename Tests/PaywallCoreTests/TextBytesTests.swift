import PaywallCore
import Testing

@Suite("Text compared and hashed by its bytes")
struct TextBytesTests {
    func hash(_ parts: String...) -> Int {
        var hasher = Hasher()
        for part in parts { hasher.combine(bytesOf: part) }
        return hasher.finalize()
    }

    @Test("precomposed and decomposed are equal Strings but different bytes; equal bytes hash alike")
    func bytes() {
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        #expect(composed == decomposed)
        #expect(!composed.hasSameBytes(as: decomposed))
        #expect(composed.hasSameBytes(as: "caf" + "\u{E9}"))
        #expect(hash(composed) == hash("caf" + "\u{E9}"))
        #expect(hash(composed) != hash(decomposed))
        #expect("".hasSameBytes(as: "") && !"a".hasSameBytes(as: "ab") && !"ab".hasSameBytes(as: "a"))
    }

    @Test("the count goes in with the bytes: \"ab\", \"c\" and \"a\", \"bc\" hash apart")
    func boundaries() {
        #expect(hash("ab", "c") != hash("a", "bc"))
        #expect(hash("ab", "c") == hash("ab", "c"))
    }
}
