import Foundation

/// The weights of a Hugging Face model directory: one `model.safetensors`, or the shards that
/// `model.safetensors.index.json` maps each tensor to (`{"weight_map": {"name": "shard file"}}`).
///
/// Shard names must be plain file names inside the directory (no `/`, no `..`), every tensor
/// the index lists must be in the shard it names, and a tensor must not appear twice.
public struct SafeTensorsShards {
    public static let singleFile = "model.safetensors"
    public static let indexFile = "model.safetensors.index.json"

    /// Every tensor with the file that holds it, shards in name order, tensors in file order.
    public let tensors: [(file: SafeTensorsFile, entry: TensorEntry)]

    public init(directory: String) throws {
        let index = (directory as NSString).appendingPathComponent(Self.indexFile)
        let single = (directory as NSString).appendingPathComponent(Self.singleFile)
        let manager = FileManager.default
        guard manager.fileExists(atPath: index) else {
            guard manager.fileExists(atPath: single) else {
                throw TensorFileError(path: directory, "no weights here (needs \(Self.singleFile) or \(Self.indexFile))")
            }
            let file = try SafeTensorsFile(path: single)
            tensors = file.entries.map { (file, $0) }
            return
        }
        let map = try Self.weightMap(index)
        var files: [String: SafeTensorsFile] = [:]
        for shard in Set(map.values).sorted() {
            guard !shard.isEmpty, !shard.contains("/"), shard != ".", shard != "..", !shard.contains("\0") else {
                throw TensorFileError(path: index, "shard name '\(shard)' is not a file name inside the model directory")
            }
            files[shard] = try SafeTensorsFile(path: (directory as NSString).appendingPathComponent(shard))
        }
        var seen = Set<String>()
        var tensors: [(file: SafeTensorsFile, entry: TensorEntry)] = []
        for shard in files.keys.sorted() {
            let file = files[shard]!
            for entry in file.entries {
                guard map[entry.name] == shard else {
                    throw TensorFileError(path: file.path, "tensor '\(entry.name)' is not mapped to this shard by \(Self.indexFile)")
                }
                guard seen.insert(entry.name).inserted else { throw TensorFileError(path: file.path, "tensor '\(entry.name)' appears in two shards") }
                tensors.append((file, entry))
            }
        }
        if let missing = map.keys.sorted().first(where: { !seen.contains($0) }) {
            throw TensorFileError(path: index, "tensor '\(missing)' is mapped to \(map[missing]!) but that shard does not hold it")
        }
        self.tensors = tensors
    }

    /// Stops, naming the shard, when one shrank while mapped (see ``SafeTensorsFile/requireIntact()``).
    public func requireIntact() throws {
        var seen = Set<ObjectIdentifier>()
        for (file, _) in tensors where seen.insert(ObjectIdentifier(file)).inserted { try file.requireIntact() }
    }

    /// The index's `weight_map`: tensor name → shard file name.
    private static func weightMap(_ path: String) throws -> [String: String] {
        let bytes = try InputFile.read(path)
        var map: [String: String] = [:]
        try [UInt8](bytes).withUnsafeBufferPointer { buffer in
            var scanner = JSONScanner(buffer, file: path)
            guard scanner.peek() == UInt8(ascii: "{") else { throw TensorFileError(path: path, "not a JSON object") }
            var found = false
            try scanner.readObject { scanner, key in
                guard key == Array("weight_map".utf8) else { return try scanner.skipValue() }
                found = true
                guard scanner.peek() == UInt8(ascii: "{") else { throw TensorFileError(path: path, "'weight_map' is not an object") }
                try scanner.readObject { scanner, name in
                    guard scanner.peek() == UInt8(ascii: "\"") else {
                        throw TensorFileError(path: path, "weight_map entry '\(String(decoding: name, as: UTF8.self))' is not a file name")
                    }
                    map[String(decoding: name, as: UTF8.self)] = String(decoding: try scanner.readString(), as: UTF8.self)
                }
            }
            try scanner.expectEnd()
            guard found else { throw TensorFileError(path: path, "key 'weight_map' is missing") }
        }
        return map
    }
}
