import Foundation
import Kernels
import TensorIO

/// The checkpoint's side of data parallelism: replicas that must agree before anything is written,
/// and moments gathered from the ranks that own them (the step's side is ``TrainStep``'s).
extension Trainer {
    var group: TrainingGroup { parallelism.group }

    /// Throws on every rank, naming the ranks, unless all ranks hold bit-identical weights;
    /// returns this rank's weights' fingerprint (which a checkpoint's state records).
    @discardableResult
    func checkReplicasAgree(when moment: String) throws -> UInt64 {
        let fingerprint = Self.fingerprint(trainStep.session.trainedParameters)
        guard group.size > 1 else { return fingerprint }
        let fingerprints = group.allGather(fingerprint)
        let differing = fingerprints.indices.filter { fingerprints[$0] != fingerprints[0] }
        guard differing.isEmpty else {
            let list = fingerprints.enumerated().map { String(format: "rank %d: %016llx", $0.offset, $0.element) }.joined(separator: ", ")
            throw ModelError("step \(step), \(moment): the weights of rank\(differing.count == 1 ? "" : "s") \(differing.map(String.init).joined(separator: ", ")) differ from rank 0's (\(list)); the ranks no longer train one model. Stopping every rank without writing; the last checkpoint in \(runDirectory) (step \(state.step)) is intact",
                             isCollective: true)
        }
        return fingerprint
    }

    /// The optimizer file's tensors, in its order: both moments of every parameter tensor, with
    /// the range of the flat buffer each covers (unsharded, the moments are laid out like it).
    private var momentTensors: [(name: String, shape: [Int], moment: TensorBuffer, range: Range<Int>)] {
        trainStep.session.trainedLayout.entries.flatMap { entry in
            let names = Checkpoint.momentNames(entry)
            return [(names.first, entry.shape, optimizer.firstMoment, entry.range), (names.second, entry.shape, optimizer.secondMoment, entry.range)]
        }
    }

    /// Rank 0 writes `optimizer.safetensors`: from its own moments, or, when they are sharded,
    /// one tensor at a time gathered from the owners (so rank 0 never holds the whole state).
    func writeMoments(to path: String) throws {
        guard let shards else { return try Checkpoint.write(optimizer, to: path) }
        let tensors = momentTensors, metadata = ["step": String(step)]
        do {
            try SafeTensorsWriter.write(shapes: tensors.map { ($0.name, $0.shape) }, metadata: metadata, to: path) { index, buffer in
                shards.gather(tensors[index].range, of: tensors[index].moment, into: buffer, root: 0, group: group)
            }
        } catch let error as TensorFileError {
            throw ModelError(error.description)
        }
    }

    /// The other ranks' side of ``writeMoments(to:)``: their parts of every tensor, in the same order.
    func sendMomentsToRankZero() {
        guard let shards else { return }
        for tensor in momentTensors { shards.gather(tensor.range, of: tensor.moment, into: nil, root: 0, group: group) }
    }

    /// A 64-bit digest of the exact bits of `buffer` (equal buffers, equal digests; any changed
    /// bit changes it with overwhelming probability).
    static func fingerprint(_ buffer: TensorBuffer) -> UInt64 {
        var hash: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(buffer.count)
        for value in buffer.storage {
            hash = (hash ^ UInt64(value.bitPattern)) &* 0x100_0000_01B3 &+ 0x9E37_79B9
            hash ^= hash >> 29
        }
        return hash
    }

    /// What this rank keeps for training, in bytes: the parameters trained, their gradients and
    /// the AdamW moments (whole, or this rank's part when sharded).
    public var stateBytesPerRank: (parameters: Int, gradients: Int, optimizer: Int) {
        (trainStep.session.trainedParameters.count * 4, trainStep.session.gradients.count * 4, (optimizer.firstMoment.count + optimizer.secondMoment.count) * 4)
    }
}
