import Glibc

/// An owned, zero-initialised block of Floats: the storage of parameters, gradients and
/// activations. Kernels never allocate; the layers that own a `TensorBuffer` hand out views.
///
/// Sendable because the reference (not the memory) is what crosses threads: which task writes
/// which elements is decided by the kernels' parallel loops (see ``DisjointRangesBody``).
public final class TensorBuffer: @unchecked Sendable {
    /// The whole buffer.
    public let storage: UnsafeMutableBufferPointer<Float>

    public var count: Int { storage.count }
    public var pointer: UnsafeMutablePointer<Float> { storage.baseAddress! }

    /// `count` zeros.
    ///
    /// From `calloc`: a large buffer comes from the kernel as zero pages that are only backed
    /// by memory when first written, so a KV cache sized for 8,192 positions costs neither the
    /// time to clear it nor resident memory for the positions a short conversation never reaches.
    public init(count: Int) {
        precondition(count >= 0, "TensorBuffer: negative size \(count)")
        // One spare element keeps baseAddress non-nil for empty buffers.
        guard let raw = calloc(max(count, 1), MemoryLayout<Float>.stride) else {
            fatalError("TensorBuffer: out of memory for \(count) floats")
        }
        storage = UnsafeMutableBufferPointer(start: raw.bindMemory(to: Float.self, capacity: max(count, 1)), count: count)
    }

    /// A copy of `values`.
    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        _ = storage.update(from: values)
    }

    deinit { free(storage.baseAddress!) }

    /// Elements `offset..<offset + count`, writable.
    public func slice(_ offset: Int, _ count: Int) -> UnsafeMutableBufferPointer<Float> {
        precondition(offset >= 0 && count >= 0 && offset + count <= storage.count,
                     "TensorBuffer: slice \(offset)..<\(offset + count) outside 0..<\(storage.count)")
        return UnsafeMutableBufferPointer(rebasing: storage[offset..<(offset + count)])
    }

    /// Elements `offset..<offset + count`, read-only.
    public func view(_ offset: Int, _ count: Int) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(slice(offset, count))
    }

    /// The contents as an array (a copy).
    public var array: [Float] { Array(storage) }

    public func zero() { storage.update(repeating: 0) }
}
