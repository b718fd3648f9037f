import ArgumentParser
import Foundation
import Hummingbird
import Kernels
import Logging
import Model
import ServiceLifecycle

/// `lm-serve`: a model behind OpenAI's HTTP API, with continuous batching and a page that shows
/// the model at work. Its own executable, so that `lm`'s build carries no HTTP stack.
@main
struct LMServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lm-serve",
        abstract: "Serve a model over OpenAI's API (chat and text completions, streamed or whole), with a web page at /.",
        discussion: """
        --model is a .gguf file, a Hugging Face directory or a model directory of ours. Up to \
        --parallel requests decode together, each in a slot of --context tokens (prompt and \
        answer), their rows in one forward per step; up to --queue more wait (beyond that: 429). \
        A request's text for a given seed does not depend on the others sharing its steps. \
        Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health, \
        POST /v1/inspect (tokens, next-token logits, attention of a prompt), GET / (the page). \
        SIGTERM or Ctrl-C cancels what is running and exits 0.
        """)

    @Option(help: "A .gguf file, a Hugging Face model directory, or one of ours.") var model: String
    @Option(help: "A LoRA adapter to apply, unmerged (a PEFT adapter directory, or an lm train --lora-rank run).") var adapter: String?
    @Option(help: "Address to listen on (127.0.0.1: this machine only).") var host = "127.0.0.1"
    @Option(help: "Port (0: any free port; the one taken is printed).") var port = 8080
    @Option(help: "Require 'Authorization: Bearer KEY' on every /v1/ request.") var apiKey: String?
    @Option(help: "Requests decoded at once (slots, each with its own KV cache).") var parallel = 8
    @Option(help: "Requests waiting for a slot before new ones get 429.") var queue = 64
    @Option(help: "Tokens per slot, prompt and answer together (default: the model's context, at most 2,048).") var context: Int?
    @Option(help: "The model's name in requests and /v1/models (default: the file or directory name).") var modelID: String?
    @Option(help: "Largest request body in bytes.") var maxBody = 1 << 20
    @Option(help: "A Jinja chat template file to use instead of the model's.") var chatTemplate: String?
    @Option(help: "Threads for OpenBLAS and our loops (default: LM_THREADS or every core).") var threads: Int?
    @Flag(help: "Decode a GGUF file's block-quantized weights to Float32 instead of keeping their blocks.") var dequantize = false

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        guard (1...256).contains(parallel) else { throw ValidationError("--parallel must be in 1...256, got \(parallel)") }
        guard queue >= 0 else { throw ValidationError("--queue must be zero or more, got \(queue)") }
        if let context, context < 2 { throw ValidationError("--context must be at least 2, got \(context)") }
        guard maxBody >= 1024 else { throw ValidationError("--max-body must be at least 1024 bytes, got \(maxBody)") }
        if let threads, !(1...Threading.maximumCount).contains(threads) {
            throw ValidationError("--threads must be in 1...\(Threading.maximumCount), got \(threads)")
        }
        if let apiKey, apiKey.isEmpty { throw ValidationError("--api-key must not be empty") }
    }

    func run() async throws {
        // OpenBLAS's settings are read at load: restart once with ours, as `lm` does (its idle
        // workers would otherwise spin for 0.1 s after each prompt's GEMMs, beside our threads).
        BLASCore.restartWithRecommendedSettingsIfNeeded()
        if let threads { Threading.count = threads }
        let pretrained = try PretrainedModel.load(model, chatTemplatePath: chatTemplate, keepQuantized: !dequantize)
        if let adapter { try PEFTAdapter.apply(directory: adapter, to: pretrained.model) }
        let trained = pretrained.model.config.contextLength
        if let context, context > trained {
            throw ValidationError("--context \(context) is above \(model)'s context of \(trained) tokens (its positions end there)")
        }
        let held = context ?? min(trained, 2048)
        let engine = try ServingEngine(pretrained, slots: parallel, context: held, queueLimit: queue)
        let name = modelID ?? Self.defaultID(model)
        let metrics = ServerMetrics()
        let server = OpenAIServer(engine: engine, modelID: name, maxBody: maxBody, page: Self.page(), metrics: metrics)

        let router = Router()
        router.add(middleware: MetricsMiddleware(metrics: metrics))
        router.add(middleware: OpenAIErrorMiddleware(apiKey: apiKey))
        server.routes(router)
        var logger = Logger(label: "lm-serve")
        logger.logLevel = .warning
        let (host, slots) = (self.host, parallel)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "lm-serve"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? 0
                FileHandle.standardError.write(Data("lm-serve: listening on http://\(host):\(bound) (model \(name), \(slots) slots of \(held) tokens)\n".utf8))
            },
            logger: logger)
        // Shut down in reverse order: the engine first (cancelling what runs, so open streams
        // end), then the server, which waits for those responses to close.
        let group = ServiceGroup(configuration: .init(services: [app, EngineService(engine: engine)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        FileHandle.standardError.write(Data("lm-serve: stopped\n".utf8))
    }

    /// The file name without `.gguf`, or the directory's name.
    static func defaultID(_ path: String) -> String {
        let name = URL(fileURLWithPath: path).standardizedFileURL.lastPathComponent
        return name.hasSuffix(".gguf") ? String(name.dropLast(5)) : name
    }

    /// The page, from the executable's resource bundle.
    static func page() -> Result<Data, APIError> {
        guard let url = Bundle.module.url(forResource: "index", withExtension: "html"), let data = try? Data(contentsOf: url) else {
            return .failure(APIError(status: .internalServerError, message: "the page (index.html) is missing from lm-serve's resource bundle beside the executable"))
        }
        return .success(data)
    }
}

/// Ties the engine to the service group's lifetime: on SIGTERM it cancels every request.
struct EngineService: Service {
    let engine: ServingEngine

    func run() async throws {
        try? await gracefulShutdown()
        engine.shutdown()
    }
}
