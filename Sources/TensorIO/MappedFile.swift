import CMappedFileGuard
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory map of a whole file; unmapped when released. Tensors are decoded straight
/// from the map, so a checkpoint is never held in memory twice.
///
/// A file that shrinks while it is mapped (another program truncates it, or rewrites it in place
/// as `np.save` and `cp` do) would kill the reader with SIGBUS at the first page past its new end.
/// Every map is registered with a guard (the C target `CMappedFileGuard`) whose SIGBUS handler
/// puts a page of zeros in place of the lost one and marks the map; readers call
/// ``requireIntact()`` at their check points (after a load, after each training batch, after
/// each decode step) and stop with an error naming the file. Why this design: it costs nothing
/// on the reads themselves (no copy, no system call, no `fstat` per batch, which would also
/// leave a window between the check and the read), it covers every reader of every mapped format
/// at once, and unlike a `sigsetjmp`/`siglongjmp` escape it never jumps over Swift frames (which
/// would skip their releases and `defer`s): the faulting thread simply reads zeros until the
/// next check, which throws before anything computed from them is kept.
///
/// Sendable: the mapping is read-only and lives as long as the object.
final class MappedFile: @unchecked Sendable {
    let path: String
    let bytes: UnsafeRawBufferPointer
    /// The guard's slot for this map, or -1 (empty file, or every slot taken).
    private let guardSlot: Int32

    init(path: String) throws {
        self.path = path
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            throw TensorFileError(path: path, "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw TensorFileError(path: path, "cannot stat: \(String(cString: strerror(errno)))")
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw TensorFileError(path: path, "not a regular file")
        }
        let size = Int(status.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            guardSlot = -1
            return
        }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), address != MAP_FAILED else {
            throw TensorFileError(path: path, "cannot map: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
        guardSlot = mapped_file_guard_register(address, size)
    }

    /// Stops, naming the file, when it shrank while mapped: what was read from its lost pages
    /// since is zeros, not the file.
    func requireIntact() throws {
        guard mapped_file_guard_shrank(guardSlot) != 0 else { return }
        throw TensorFileError(path: path, "the file shrank while it was being read (another program truncated or rewrote it); "
                              + "what was read from it since cannot be trusted")
    }

    deinit {
        mapped_file_guard_unregister(guardSlot)
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}
