import TestSupport
@testable import Tokenizer
import XCTest

final class PreTokenizerTests: XCTestCase {
    /// Expected pieces from Python's `regex` module with the same GPT-2 pattern.
    static let cases: [(String, [String])] = [
        ("Hello, world!", ["Hello", ",", " world", "!"]),
        ("I'm here, you're there, they'll see\u{2014}we've 'LL", ["I", "'m", " here", ",", " you", "'re", " there", ",", " they", "'ll", " see", "\u{2014}", "we", "'ve", " '", "LL"]),
        ("  leading spaces and trailing   ", [" ", " leading", " spaces", " and", " trailing", "   "]),
        ("tabs\u{9}and\u{a}newlines\u{a}\u{a}  indented", ["tabs", "\u{9}", "and", "\u{a}", "newlines", "\u{a}\u{a} ", " indented"]),
        ("numbers 123 4.5 \u{2177} \u{b2}", ["numbers", " 123", " 4", ".", "5", " \u{2177}", " \u{b2}"]),
        ("H\u{e9}ll\u{f2} w\u{f6}rld \u{fc}?", ["H\u{e9}ll\u{f2}", " w\u{f6}rld", " \u{fc}", "?"]),
        ("\u{4e2d}\u{6587}\u{5b57}\u{7b26} and \u{65e5}\u{672c}\u{8a9e}\u{306e}\u{30c6}\u{30ad}\u{30b9}\u{30c8}", ["\u{4e2d}\u{6587}\u{5b57}\u{7b26}", " and", " \u{65e5}\u{672c}\u{8a9e}\u{306e}\u{30c6}\u{30ad}\u{30b9}\u{30c8}"]),
        ("emoji \u{1f643}\u{1f643} ok", ["emoji", " \u{1f643}\u{1f643}", " ok"]),
        ("a\u{301}e\u{301} combining", ["a", "\u{301}", "e", "\u{301}", " combining"]),
        ("x  \u{a}y", ["x", "  ", "\u{a}", "y"]),
        (" 's 't", [" '", "s", " '", "t"]),
        ("'", ["'"]),
        ("' ", ["'", " "]),
        ("  ", ["  "]),
        (" ", [" "]),
        ("\u{3000}\u{3000}word", ["\u{3000}", "\u{3000}", "word"]),
        ("a\u{a0}b", ["a", "\u{a0}", "b"]),
        ("<|endoftext|> text", ["<|", "endoftext", "|>", " text"]),
        ("e\u{301}\u{301}!", ["e", "\u{301}\u{301}!"]),
        ("1st2nd", ["1", "st", "2", "nd"]),
        ("don't", ["don", "'t"]),
        ("DON'T", ["DON", "'", "T"]),
        ("x\u{d}\u{a}\u{d}\u{a}y", ["x", "\u{d}\u{a}\u{d}", "\u{a}", "y"]),
        ("end \u{a}", ["end", " \u{a}"]),
    ]

    func testMatchesTheRegularExpression() {
        for (text, expected) in Self.cases {
            let pieces = PreTokenizer.pieces(text).map { String(decoding: $0, as: UTF8.self) }
            XCTAssertEqual(pieces, expected, "pieces of \(text.debugDescription)")
            XCTAssertEqual(pieces.joined(), text, "pieces cover the text")
        }
    }

    func testEmptyTextHasNoPieces() {
        XCTAssertEqual(PreTokenizer.pieces(""), [])
    }
}
