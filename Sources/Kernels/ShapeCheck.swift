/// Checks, where data enters a kernel, that a buffer holds exactly the elements its declared
/// shape implies. A mismatch stops with a message naming the kernel, the argument, the declared
/// shape and the element count actually passed. (`package` access: the layers in `Model` check
/// their operands the same way.)
package func requireShape<T>(_ buffer: UnsafeBufferPointer<T>, _ shape: [Int], _ kernel: String, _ name: String) {
    let expected = shape.reduce(1, *)
    precondition(
        buffer.count == expected,
        "\(kernel): \(name) has \(buffer.count) elements but shape \(shape) needs \(expected)")
}

package func requireShape<T>(_ buffer: UnsafeMutableBufferPointer<T>, _ shape: [Int], _ kernel: String, _ name: String) {
    requireShape(UnsafeBufferPointer(buffer), shape, kernel, name)
}

/// Checks that a view has the shape `[rows, columns]` the kernel needs, naming kernel, argument
/// and both shapes when it does not. Two integers rather than an array, and names that are
/// literals: kernels call this on every entry, so nothing may be built unless it fails.
@inline(__always)
package func requireShape(_ view: MatrixView, _ rows: Int, _ columns: Int, _ kernel: String, _ name: String) {
    precondition(view.rows == rows && view.columns == columns,
                 "\(kernel): \(name) is [\(view.rows), \(view.columns)] but must be [\(rows), \(columns)]")
}

/// Checks that a view has the shape of another (an output or gradient beside its input).
@inline(__always)
package func requireShape(_ view: MatrixView, like other: MatrixView, _ kernel: String, _ name: String) {
    requireShape(view, other.rows, other.columns, kernel, name)
}

/// Checks that a view's rows are packed (the kernel reads it as one run of elements).
package func requireContiguous(_ view: MatrixView, _ kernel: String, _ name: String) {
    precondition(view.isContiguous, "\(kernel): \(name) must be packed (row stride \(view.rowStride), columns \(view.columns))")
}

/// Checks that two dimensions that must agree do, naming both shapes when they do not.
package func requireMatch(_ lhs: Int, _ rhs: Int, _ kernel: String, _ description: @autoclosure () -> String) {
    precondition(lhs == rhs, "\(kernel): \(description())")
}
