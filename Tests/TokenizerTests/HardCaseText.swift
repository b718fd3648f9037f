import Foundation
import Kernels
@testable import Tokenizer

/// Random strings over an alphabet of the cases GPT-2's pattern treats specially: every kind of
/// whitespace (runs of it before letters, other symbols and the end), letters ASCII and not,
/// combining marks, digits of several scripts, punctuation, apostrophes and contractions, emoji,
/// and the special token.
enum HardCaseText {
    static let special = "<|endoftext|>"

    /// Units drawn uniformly; frequent cases appear several times.
    static let alphabet: [String] = [
        " ", " ", " ", " ", "\t", "\r", "\n", "\n", "\n", "\r\n", "\u{A0}", "\u{3000}", "\u{85}", "\u{2028}", "\u{B}", "\u{C}",
        "a", "b", "s", "t", "l", "v", "r", "e", "d", "m", "L", "S", "é", "ß", "Ж", "中", "ǅ", "ʰ",
        "\u{301}", "\u{20DD}",
        "0", "7", "\u{663}", "\u{B2}", "\u{2177}", "\u{1D7D8}",
        ".", ",", "!", "-", "\"", "*", "#", "\u{2014}", "\u{201C}", "\u{2019}",
        "'", "'", "'", "'s", "'ll", "'ve", "'re", "'d", "'t", "'m", "'S",
        "🙃", "👍🏽", "\u{1F1FA}\u{1F1F8}",
        "<|", "|>", special,
    ]

    /// A string of 0 to `maximumUnits` units.
    static func random(_ generator: inout SeededGenerator, maximumUnits: Int = 14) -> String {
        let count = Int(generator.next() % UInt64(maximumUnits + 1))
        var text = ""
        for _ in 0..<count { text += alphabet[Int(generator.next() % UInt64(alphabet.count))] }
        return text
    }

    /// The byte ranges between occurrences of the special token (found byte by byte; it cannot
    /// overlap itself), and the special token's positions.
    static func segments(_ bytes: [UInt8]) -> [(text: Range<Int>?, isSpecial: Bool)] {
        let token = Array(special.utf8)
        var result: [(Range<Int>?, Bool)] = []
        var start = 0, index = 0
        while index < bytes.count {
            if index + token.count <= bytes.count, Array(bytes[index..<(index + token.count)]) == token {
                if start < index { result.append((start..<index, false)) }
                result.append((nil, true))
                index += token.count
                start = index
            } else {
                index += 1
            }
        }
        if start < bytes.count { result.append((start..<bytes.count, false)) }
        return result
    }
}

/// The GPT-2 pattern run by Swift's `Regex` over Unicode scalars: the independent, plainly
/// written specification the hand-compiled ``PreTokenizer`` is checked against.
struct RegexPreTokenizer {
    let regex: Regex<AnyRegexOutput>

    init() throws {
        regex = try Regex(#"'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#)
            .matchingSemantics(.unicodeScalar)
    }

    /// The pieces of `text` as UTF-8 byte arrays.
    func pieces(_ text: String) -> [[UInt8]] {
        text.matches(of: regex).map { Array(String(text.unicodeScalars[$0.range]).utf8) }
    }

    /// The pieces of valid UTF-8 bytes.
    func pieces(_ bytes: ArraySlice<UInt8>) -> [[UInt8]] {
        pieces(String(decoding: bytes, as: UTF8.self))
    }
}
