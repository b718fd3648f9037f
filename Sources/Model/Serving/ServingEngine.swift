import Foundation
import Kernels
import Tokenizer

/// Serves many generation requests at once with one model: continuous batching over a
/// ``BatchDecoder``'s slots. Requests wait in a bounded queue; each takes a free slot, has its
/// prompt prefilled a chunk at a time between decode steps, then decodes in the same step as
/// every other active request, and leaves (freeing its slot) when it ends, is cancelled or fails.
///
/// A prompt cache across requests: a freed slot keeps its tokens and KV rows, and a new request
/// takes the free slot sharing the longest prefix with its prompt and prefills only the rest
/// (``PromptCache``; ``Event/finished(_:promptTokens:completionTokens:cachedTokens:)`` says how
/// many were reused). A long system prompt, or a conversation sent whole each turn, is computed
/// once.
///
/// The model runs on one thread of the engine's own (its kernels spread over the worker pool);
/// callers on any thread submit requests and receive ``Event``s on that thread, so a handler
/// must hand them on without blocking (an `AsyncStream` continuation, say).
///
/// Because a step multiplies each stream's row on its own, a request's text for a given seed is
/// the same however many others share its steps.
public final class ServingEngine: @unchecked Sendable {
    /// What to generate.
    public struct Request: Sendable {
        public var prompt: [Int32]
        /// How to sample and when to stop (``DecodeState``); `stopTokens` are added to the
        /// tokenizer's own.
        public var options: GenerationOptions
        /// Generation ends before any of these appear in the text.
        public var stopStrings: [String]

        public init(prompt: [Int32], options: GenerationOptions, stopStrings: [String] = []) {
            (self.prompt, self.options, self.stopStrings) = (prompt, options, stopStrings)
        }
    }

    public enum FinishReason: String, Sendable {
        /// A stop token or stop string.
        case stop
        /// `maxTokens` generated, or the slot's context is full.
        case length
        /// ``Ticket/cancel()`` (a client that went away).
        case cancelled
    }

    public enum Event: Sendable {
        /// Text to show, in order, with the log-probabilities of the tokens that gave it when the
        /// request asked for them (``GenerationOptions/logprobs``; the text of a token may come
        /// in a later event, held back by the detokenizer or the stop-string filter).
        case text(String, logprobs: [TokenLogprob])
        /// The last event of a request that ran; `cachedTokens` of the prompt were found in the
        /// slot's cache (a prefix an earlier request left there) and not computed again.
        case finished(FinishReason, promptTokens: Int, completionTokens: Int, cachedTokens: Int)
        /// The last event of a request that could not run or stopped on an error.
        case failed(Error)
    }

    /// A submitted request's handle.
    public final class Ticket: @unchecked Sendable {
        private let lock = NSLock()
        private var isCancelled = false
        fileprivate weak var engine: ServingEngine?

        /// Ends the request at the next step (its slot is freed); no more text is sent.
        public func cancel() {
            lock.withLock { isCancelled = true }
            engine?.wake()
        }

        var cancelled: Bool { lock.withLock { isCancelled } }
    }

    public let pretrained: PretrainedModel
    public let decoder: BatchDecoder
    public let queueLimit: Int
    private let tokenizer: any TextTokenizer

    /// Guards everything below; `signal` wakes the engine thread.
    private let signal = NSCondition()
    private var waiting: [Pending] = []
    private var jobs: [() -> Void] = []
    private var activeCount = 0
    private var stopping = false
    private var thread: Thread?

    private struct Pending {
        let request: Request
        let ticket: Ticket
        let onEvent: @Sendable (Event) -> Void
    }

    /// `slots` streams decode at once, each holding up to `context` tokens (default: the model's);
    /// at most `queueLimit` requests wait for a slot. Throws when the model has no tokenizer or
    /// the caches do not fit in memory.
    public init(_ pretrained: PretrainedModel, slots: Int, context: Int? = nil, queueLimit: Int = 64) throws {
        guard let tokenizer = pretrained.tokenizer else { throw ModelError("\(pretrained.path): no tokenizer; serving needs one") }
        guard queueLimit >= 0 else { throw ModelError("the queue limit must be zero or more, got \(queueLimit)") }
        self.pretrained = pretrained
        self.tokenizer = tokenizer
        self.queueLimit = queueLimit
        decoder = try BatchDecoder(model: pretrained.model, slots: slots, context: context)
        let thread = Thread { [unowned self] in self.run() }
        thread.name = "lm-serve engine"
        thread.stackSize = 8 << 20
        self.thread = thread
        thread.start()
    }

    /// Requests decoding and requests waiting for a slot.
    public var load: (active: Int, queued: Int) {
        signal.lock()
        defer { signal.unlock() }
        return (activeCount, waiting.count)
    }

    /// Queues `request`; `onEvent` receives its text and then exactly one `.finished` or
    /// `.failed`. Throws a ``GenerationError``: `queueFull` when `queueLimit` requests already
    /// wait, `shuttingDown`, or what makes the request impossible (an option out of range, a
    /// prompt that does not fit or names ids outside the vocabulary).
    @discardableResult
    public func submit(_ request: Request, onEvent: @escaping @Sendable (Event) -> Void) throws -> Ticket {
        try request.options.validate()
        guard !request.prompt.isEmpty else { throw GenerationError.emptyPrompt }
        guard request.prompt.count < decoder.context else {
            throw GenerationError.promptTooLong(tokens: request.prompt.count, context: decoder.context)
        }
        if let bad = pretrained.model.config.firstInvalidToken(in: request.prompt) {
            throw GenerationError.tokenOutsideVocabulary(index: bad.index, id: bad.id, vocabularySize: pretrained.model.config.vocabSize)
        }
        let ticket = Ticket()
        ticket.engine = self
        signal.lock()
        defer { signal.unlock() }
        guard !stopping else { throw GenerationError.shuttingDown }
        // Requests that a free slot will take at once do not count against the queue.
        guard waiting.count < queueLimit + max(0, decoder.slotCount - activeCount) else {
            throw GenerationError.queueFull(limit: queueLimit)
        }
        waiting.append(Pending(request: request, ticket: ticket, onEvent: onEvent))
        signal.signal()
        return ticket
    }

    /// Runs `body` on the engine's thread between steps (the model is not for concurrent use):
    /// inspection of a prompt, say.
    public func perform<T: Sendable>(_ body: @escaping @Sendable (PretrainedModel) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            signal.lock()
            defer { signal.unlock() }
            guard !stopping else { return continuation.resume(throwing: GenerationError.shuttingDown) }
            let pretrained = self.pretrained
            jobs.append { continuation.resume(with: Result { try body(pretrained) }) }
            signal.signal()
        }
    }

    /// Cancels every queued and active request and stops the engine's thread once they have
    /// been told (each gets `.finished(.cancelled, …)`); returns when it has stopped.
    public func shutdown() {
        signal.lock()
        stopping = true
        signal.signal()
        signal.unlock()
        while thread?.isFinished == false { usleep(1_000) }
    }

    fileprivate func wake() {
        signal.lock()
        signal.signal()
        signal.unlock()
    }

    // MARK: The engine's thread

    /// A request in a slot.
    private final class Stream {
        let pending: Pending
        let slot: Int
        var prefilled = 0
        /// Prompt tokens the slot already held (not computed again).
        var cached = 0
        var next: Int32 = 0
        var state: DecodeState

        init(_ pending: Pending, slot: Int, tokenizer: any TextTokenizer, vocabularySize: Int) throws {
            self.pending = pending
            self.slot = slot
            state = try DecodeState(prompt: pending.request.prompt, options: pending.request.options, vocabularySize: vocabularySize,
                                    tokenizer: tokenizer, stopStrings: pending.request.stopStrings)
        }

        var prompt: [Int32] { pending.request.prompt }
        var isPrefilling: Bool { prefilled < prompt.count }
        /// Answer tokens so far.
        var generated: Int { state.generated }

        func finish(_ reason: FinishReason) {
            pending.onEvent(.finished(reason, promptTokens: prompt.count, completionTokens: generated, cachedTokens: cached))
        }
    }

    private func run() {
        var streams: [Stream] = []
        var slots = PromptCache(slots: decoder.slotCount)
        while true {
            // Take new requests into free slots, and the jobs, or sleep until there is work.
            signal.lock()
            while waiting.isEmpty && jobs.isEmpty && streams.isEmpty && !stopping { signal.wait() }
            let quitting = stopping
            let admitted = quitting ? [] : Array(waiting.prefix(slots.freeCount))
            waiting.removeFirst(admitted.count)
            let cancelledWaiting = quitting ? waiting : []
            if quitting { waiting.removeAll() }
            let work = jobs
            jobs.removeAll()
            activeCount = streams.count + admitted.count
            signal.unlock()

            for job in work { job() }
            if quitting {
                for pending in cancelledWaiting {
                    pending.onEvent(.finished(.cancelled, promptTokens: pending.request.prompt.count, completionTokens: 0, cachedTokens: 0))
                }
                for stream in streams { stream.finish(.cancelled) }
                return
            }
            for pending in admitted {
                // The free slot sharing the longest prefix with the prompt: only the rest is prefilled.
                guard let (slot, shared) = slots.take(for: pending.request.prompt) else { break }
                let kept = decoder.rewind(slot: slot, to: shared)  // less when a sliding layer no longer holds it
                slots.keep(kept, in: slot)
                do {
                    let stream = try Stream(pending, slot: slot, tokenizer: tokenizer, vocabularySize: pretrained.model.config.vocabSize)
                    stream.prefilled = kept
                    stream.cached = kept
                    streams.append(stream)
                } catch {
                    slots.release(slot)
                    pending.onEvent(.failed(error))
                }
            }
            // Cancelled streams leave before any more work is done for them.
            streams.removeAll { stream in
                guard stream.pending.ticket.cancelled else { return false }
                stream.finish(.cancelled)
                slots.release(stream.slot)
                return true
            }
            // One prompt chunk (the oldest prefilling stream's), then one step for every stream
            // that is decoding: a long prompt delays the others by one chunk per step, never more.
            var ended: [Stream] = [], broken: [Stream] = []  // broken: their caches no longer match the ids
            if let stream = streams.first(where: \.isPrefilling) {
                let chunk = Array(stream.prompt[stream.prefilled..<min(stream.prompt.count, stream.prefilled + decoder.maxChunk)])
                do {
                    let logits = try decoder.prefill(slot: stream.slot, tokens: chunk)
                    stream.prefilled += chunk.count
                    slots.append(chunk, to: stream.slot)
                    if !stream.isPrefilling, try !logits.withUnsafeBufferPointer({ try accept($0, for: stream) }) { ended.append(stream) }
                } catch {
                    stream.pending.onEvent(.failed(error))
                    broken.append(stream)
                }
            }
            let decoding = streams.filter { stream in !stream.isPrefilling && stream.generated > 0 && !ended.contains { $0 === stream } }
            if !decoding.isEmpty {
                do {
                    let logits = try decoder.step(decoding.map { (slot: $0.slot, token: $0.next) })
                    let vocab = pretrained.model.config.vocabSize
                    for (row, stream) in decoding.enumerated() {
                        slots.append([stream.next], to: stream.slot)
                        let rowLogits = UnsafeBufferPointer(rebasing: logits[(row * vocab)..<((row + 1) * vocab)])
                        do {
                            if try !accept(rowLogits, for: stream) { ended.append(stream) }
                        } catch {
                            stream.pending.onEvent(.failed(error))
                            ended.append(stream)
                        }
                    }
                } catch {
                    for stream in decoding {
                        stream.pending.onEvent(.failed(error))
                        broken.append(stream)
                    }
                }
            }
            for stream in ended { slots.release(stream.slot) }
            for stream in broken {
                decoder.reset(slot: stream.slot)
                slots.releaseEmpty(stream.slot)
            }
            streams.removeAll { stream in ended.contains { $0 === stream } || broken.contains { $0 === stream } }
            signal.lock()
            activeCount = streams.count
            signal.unlock()
        }
    }

    /// Samples `stream`'s next token from `logits` (``DecodeState``) and sends its text; false
    /// when the stream has ended (its last event sent).
    private func accept(_ logits: UnsafeBufferPointer<Float>, for stream: Stream) throws -> Bool {
        let step = try stream.state.advance(logits, roomLeft: decoder.remaining(in: stream.slot) > 0)
        stream.next = step.token
        // A stop token is not part of the answer: neither its text nor its log-probability.
        var logprobs: [TokenLogprob] = []
        if let logprob = step.logprob, !step.endsOnStopToken { logprobs.append(logprob) }
        if !step.text.isEmpty || !logprobs.isEmpty { stream.pending.onEvent(.text(step.text, logprobs: logprobs)) }
        switch step.finish {
        case nil: return true
        case .stopToken?, .stopString?, .documentComplete?: stream.finish(.stop)
        case .maxTokens?, .contextFull?: stream.finish(.length)
        }
        return false
    }
}

extension DecodeState.Step {
    /// Whether this step sampled a stop token.
    var endsOnStopToken: Bool {
        if case .stopToken? = finish { return true }
        return false
    }
}
