import Kernels
import TensorIO

/// An optimizer's state on disk: `optimizer.safetensors` holds both AdamW moments of every tensor
/// of a layout, as F32 tensors `exp_avg.NAME` and `exp_avg_sq.NAME` (PyTorch's state names), and
/// the step in the metadata. With ``write(_:layout:metadata:to:)`` for the parameters, any named
/// tensors (``ParameterLayout/init(tensors:)``) plus their optimizer and step make a checkpoint.
extension Checkpoint {
    /// The moment tensor names of `entry`, first then second.
    static func momentNames(_ entry: ParameterLayout.Entry) -> (first: String, second: String) {
        ("exp_avg." + entry.name, "exp_avg_sq." + entry.name)
    }

    /// Writes `optimizer`'s moments (it must own every parameter: not a shard) and its step.
    public static func write(_ optimizer: AdamW, to path: String) throws {
        let layout = optimizer.layout
        guard optimizer.segments == [0..<layout.totalCount] else {
            throw ModelError("\(path): an optimizer that owns part of the parameters (a shard) cannot be written alone")
        }
        let views = layout.entries.flatMap { entry -> [TensorView] in
            let names = momentNames(entry)
            return [TensorView(name: names.first, shape: entry.shape, values: optimizer.firstMoment.view(entry.offset, entry.count)),
                    TensorView(name: names.second, shape: entry.shape, values: optimizer.secondMoment.view(entry.offset, entry.count))]
        }
        do {
            try SafeTensorsWriter.write(views: views, metadata: ["step": String(optimizer.step)], to: path)
        } catch let error as TensorFileError {
            throw ModelError(error.description)
        }
    }

    /// An AdamW over `layout` resumed from `path` at its saved step. Errors name the file and tensor.
    public static func readOptimizer(path: String, layout: ParameterLayout, options: AdamWOptions) throws -> AdamW {
        let file = try mapFileErrors { try SafeTensorsFile(path: path) }
        guard let text = file.metadata["step"], let step = Int(text), step >= 0 else {
            throw ModelError("\(path): no step in the metadata (not an optimizer state written here)")
        }
        let first = TensorBuffer(count: layout.totalCount), second = TensorBuffer(count: layout.totalCount)
        try readMoments(file, layout: layout, segments: [0..<layout.totalCount], first: first, second: second)
        try mapFileErrors { try file.requireIntact() }
        return try AdamW(layout: layout, options: options, firstMoment: first, secondMoment: second, step: step)
    }

    /// The saved moments of the parameters in `segments`, packed in order (as ``AdamW`` keeps
    /// them), read one tensor at a time: a sharded rank never holds the whole optimizer state.
    static func readMoments(_ file: SafeTensorsFile, layout: ParameterLayout, segments: [Range<Int>],
                            first: TensorBuffer, second: TensorBuffer) throws {
        // Where each segment's values start in the packed moments.
        let packedStarts = segments.reduce(into: [0]) { $0.append($0.last! + $1.count) }
        for entry in layout.entries {
            let parts = segments.indices.compactMap { index -> (part: Range<Int>, packed: Int)? in
                let part = segments[index].clamped(to: entry.range)
                return part.isEmpty ? nil : (part, packedStarts[index] + part.lowerBound - segments[index].lowerBound)
            }
            guard !parts.isEmpty else { continue }
            let names = momentNames(entry)
            for (name, target) in [(names.first, first), (names.second, second)] {
                if parts.count == 1, parts[0].part == entry.range {  // the tensor lies in one segment: read it in place
                    try mapFileErrors { try file.read(name, shape: entry.shape, into: target.slice(parts[0].packed, entry.count)) }
                    continue
                }
                let whole = TensorBuffer(count: entry.count)
                try mapFileErrors { try file.read(name, shape: entry.shape, into: whole.storage) }
                for (part, packed) in parts {
                    _ = target.slice(packed, part.count).update(fromContentsOf: whole.view(part.lowerBound - entry.offset, part.count))
                }
            }
        }
    }

    /// `body`, with the file layer's errors as the model's (the message names the file).
    static func mapFileErrors<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as TensorFileError { throw ModelError(error.description) }
    }
}
