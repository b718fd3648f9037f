/// A GGUF metadata value: an integer (kept signed or unsigned as stored), a float, a bool, a
/// string, or an array of values.
public indirect enum GGUFValue: Sendable, Equatable {
    case unsigned(UInt64)
    case signed(Int64)
    case float(Double)
    case bool(Bool)
    case string(String)
    case array([GGUFValue])

    /// The value as an `Int` when it is an integer that fits.
    public var int: Int? {
        switch self {
        case .unsigned(let value): Int(exactly: value)
        case .signed(let value): Int(exactly: value)
        default: nil
        }
    }

    /// The value as a `Double` when it is a number.
    public var double: Double? {
        switch self {
        case .float(let value): value
        case .unsigned(let value): Double(value)
        case .signed(let value): Double(value)
        default: nil
        }
    }

    public var string: String? { if case .string(let value) = self { value } else { nil } }
    public var bool: Bool? { if case .bool(let value) = self { value } else { nil } }
    public var array: [GGUFValue]? { if case .array(let values) = self { values } else { nil } }

    /// An array of strings (a vocabulary, merges), or nil when it is anything else.
    public var strings: [String]? {
        guard let values = array else { return nil }
        var result: [String] = []
        result.reserveCapacity(values.count)
        for value in values {
            guard let text = value.string else { return nil }
            result.append(text)
        }
        return result
    }
}
