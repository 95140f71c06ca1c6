import Testing
@testable import PaywallTokens

@Suite("Strict base64url and JSON")
struct EncodingTests {
    @Test("base64url round trips every length")
    func roundTrip() {
        for length in 0..<70 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let text = Base64URL.encode(bytes)
            #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
            #expect(Base64URL.decode(text) == bytes)
        }
        #expect(Base64URL.encode(Array("foo".utf8)) == "Zm9v")
        #expect(Base64URL.encode([0xFB, 0xFF]) == "-_8")
    }

    @Test("non-canonical or foreign base64 is refused", arguments: [
        "Zm9v=", "Zm9=", "Zm9v\n", " Zm9v", "Zm+v", "Zm/v", "Z", "Zm9vZ", "Zh", "Zm9w!", "Zm9vYg==", "Zm9vYh",
    ])
    func strict(_ text: String) {
        #expect(Base64URL.decode(text) == nil)
    }

    @Test("JSON: objects keep order, values parse, serialization is compact")
    func parse() throws {
        let value = try JSONValue.parse(Array(#" { "b" : [1, -2.5e3, true, null], "a": "x\"\u00e9\ud83d\ude00\n" } "#.utf8))
        let object = try #require(value.objectValue)
        #expect(object.keys == ["b", "a"])
        #expect(object["b"] == .array([.number(1), .number(-2500), .bool(true), .null]))
        #expect(object["a"] == .string("x\"é😀\n"))
        #expect(String(decoding: value.serialized(), as: UTF8.self) == #"{"b":[1,-2500,true,null],"a":"x\"é😀\n"}"#)
    }

    @Test("JSON that is ambiguous or hostile is refused", arguments: [
        #"{"a":1,"a":2}"#, #"{"a":1}x"#, #"{"a":1,}"#, #"[1,]"#, #"{"a" 1}"#, #"{'a':1}"#, "{\"a\":\"\u{01}\"}",
        #"{"a":"\ud800"}"#, #"{"a":"\udc00"}"#, #"{"a":01}"#, #"{"a":1.}"#, #"{"a":-}"#, #"{"a":1e}"#, #"{"a":NaN}"#,
        #"{"a":1e999}"#, #"{"a":tru}"#, "", "   ", #"{"a":"\x"}"#, #"{"a":"unterminated}"#,
        String(repeating: "[", count: 40) + String(repeating: "]", count: 40),
    ])
    func refused(_ text: String) {
        #expect(throws: JSONError.self) { try JSONValue.parse(Array(text.utf8)) }
    }

    @Test("invalid UTF-8 inside a string is refused")
    func invalidUTF8() {
        #expect(throws: JSONError.self) { try JSONValue.parse([0x22, 0xC3, 0x28, 0x22]) }
    }
}
