/// The character classes GPT-2's pre-tokenization pattern distinguishes.
enum ScalarClass: UInt8 {
    case letter = 1       // \p{L}
    case number = 2       // \p{N}
    case whitespace = 3   // \s, the Unicode White_Space property (as in the Rust regex crate)
    case other = 4

    /// Precomputed for the Basic Multilingual Plane (64 KiB, built once); other planes are
    /// looked up in the Unicode tables of the Swift runtime.
    private static let basicPlane: [ScalarClass] = (0..<0x10000).map { value in
        guard let scalar = Unicode.Scalar(UInt32(value)) else { return .other }  // surrogates
        return classify(scalar)
    }

    @inline(__always)
    static func of(_ value: UInt32) -> ScalarClass {
        if value < 0x10000 { return basicPlane[Int(value)] }
        guard let scalar = Unicode.Scalar(value) else { return .other }
        return classify(scalar)
    }

    static func classify(_ scalar: Unicode.Scalar) -> ScalarClass {
        let properties = scalar.properties
        if properties.isWhitespace { return .whitespace }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return .other
        }
    }
}
