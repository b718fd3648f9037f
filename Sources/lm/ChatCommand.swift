import ArgumentParser
import ChatTemplate
import Foundation
import Model
import Synchronization
import Tokenizer

struct ChatCommand: ParsableCommand, ComputesWithBLAS {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Talk with a model through its chat template, answers streamed.",
        discussion: """
        --model is a .gguf file, a Hugging Face directory or a model directory of ours. Each turn \
        renders the conversation with the model's chat template (or --chat-template FILE), \
        prefills only the tokens the KV cache does not already hold, and answers until the \
        template's end-of-turn token, EOS or --max-tokens. When the conversation outgrows the \
        context, its oldest turns are dropped (the system message stays). Ctrl-C stops the \
        answer, not the session; /reset starts again, /exit or end of input quits. When standard \
        input is not a terminal, each line is one turn, so a script can drive it. Speeds go to \
        stderr.
        """)

    @Option(help: "A .gguf file, a Hugging Face model directory, or one of ours.") var model: String
    @Option(help: "The system message.") var system: String?
    @Option(help: "A Jinja chat template file to use instead of the model's.") var chatTemplate: String?
    @Option(help: "Most tokens per answer.") var maxTokens: Int = 512
    @Option(help: "Sampling temperature; 0 means greedy.") var temperature: Float = 0.7
    @Option(help: "Nucleus sampling mass in (0, 1].") var topP: Float = 0.9
    @Option(help: "Seed of the sampler.") var seed: UInt64 = 0
    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var decoding: DecodeOptions
    @OptionGroup var running: ModelRunOptions

    func validate() throws {
        do { try sampling.applied(to: GenerationOptions(maxTokens: maxTokens, temperature: temperature, topP: topP)).validate() } catch let error as GenerationError {
            throw ValidationError("--\(error)")
        }
    }

    func run() throws {
        running.apply()
        let start = Date()
        let pretrained = try decoding.load(model, chatTemplatePath: chatTemplate)
        let chat = try ChatSession(pretrained, system: system, context: decoding.sessionContext(for: pretrained.model))
        let interactive = isatty(STDIN_FILENO) == 1
        if interactive {
            printError(String(format: "%@ loaded in %.2f s; Ctrl-C stops an answer, /reset starts again, /exit quits", model, Date().timeIntervalSince(start)))
        }
        try sampling.check(vocabularySize: pretrained.model.config.vocabSize)
        let options = try sampling.applied(to: GenerationOptions(maxTokens: maxTokens, temperature: temperature, topP: topP, seed: seed))
        let output = FileHandle.standardOutput
        while true {
            if interactive { output.write(Data("> ".utf8)) }
            guard let line = readLine(strippingNewline: true) else { break }
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            if text == "/exit" || text == "/quit" { break }
            if text == "/reset" {
                chat.reset()
                printError("(conversation reset)")
                continue
            }
            let turn = try AnswerInterrupt.during {
                try chat.respond(to: text, options: options) { piece in
                    output.write(Data(piece.utf8))
                    return !AnswerInterrupt.isRequested
                }
            }
            output.write(Data("\n".utf8))
            var note = String(format: "[prefill %d tokens (%d cached), %.0f tokens/s · decode %d tokens, %.1f tokens/s",
                              turn.promptTokens - turn.reusedTokens, turn.reusedTokens,
                              Double(turn.promptTokens - turn.reusedTokens) / max(turn.prefillSeconds, 1e-9),
                              turn.generatedTokens, Double(turn.generatedTokens) / max(turn.decodeSeconds, 1e-9))
            if turn.ending == .stoppedByCaller { note += " · stopped" }
            if turn.ending == .maxTokens { note += " · --max-tokens reached" }
            if turn.droppedMessages > 0 { note += " · context full: the \(turn.droppedMessages) oldest messages were dropped" }
            printError(note + "]")
        }
    }
}

/// Ctrl-C while an answer streams: stops the answer (the handler only sets a flag); outside an
/// answer the usual handler applies.
enum AnswerInterrupt {
    private static let requested = Atomic<Bool>(false)

    static var isRequested: Bool { requested.load(ordering: .relaxed) }

    static func during<T>(_ body: () throws -> T) rethrows -> T {
        requested.store(false, ordering: .relaxed)
        var action = sigaction(), previous = sigaction()
        action.__sigaction_handler.sa_handler = { _ in AnswerInterrupt.requested.store(true, ordering: .relaxed) }
        sigemptyset(&action.sa_mask)
        sigaction(SIGINT, &action, &previous)
        defer { sigaction(SIGINT, &previous, nil) }
        return try body()
    }
}
