import Foundation
import Model

/// `lm train`'s conversations (.jsonl) rendered with the model's chat template into token ids
/// and a loss mask (``ChatData``), written into the run directory's `data/` folder, where the
/// run reads them, on resume too.
struct RenderedConversations {
    static let folder = "data"
    let pretrained: PretrainedModel
    let trainOnPrompt: Bool
    let output: String

    /// The ids file to train on for `path`: `path` itself when it holds ids already (.npy), else
    /// the rendered conversations' (`data/NAME.npy`, its mask beside it).
    func ids(of path: String, name: String) throws -> String {
        guard path.hasSuffix(".jsonl") else { return path }
        guard let template = pretrained.chatTemplate, let tokenizer = pretrained.tokenizer else {
            throw ModelError("\(path): conversations need the model's chat template and tokenizer, and \(pretrained.path) has \(pretrained.chatTemplate == nil ? "no chat template" : "no tokenizer")")
        }
        let data = try ChatData(path: path, template: template, tokenizer: tokenizer, bosText: pretrained.bosText, eosText: pretrained.eosText,
                                trainOnPrompt: trainOnPrompt)
        let directory = (output as NSString).appendingPathComponent(Self.folder)
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw ModelError("\(directory): cannot create: \(error.localizedDescription)")
        }
        let idsPath = (directory as NSString).appendingPathComponent(name + ".npy")
        try data.write(ids: idsPath, mask: TokenDataset.maskPath(for: idsPath))
        let learned = data.mask.reduce(0) { $0 + Int($1) }
        printError("\(path): \(data.conversations) conversations, \(data.ids.count) tokens, \(learned) of them learned")
        return idsPath
    }
}
