import Foundation
import Hummingbird

/// What `GET /metrics` reports, in Prometheus' text format: requests by route and status, prompt,
/// cached and generated tokens, time to first token and the time between tokens as histograms,
/// and the engine's busy slots and queue. Updated from any thread.
final class ServerMetrics: @unchecked Sendable {
    private let lock = NSLock()
    private var requests: [String: [Int: Int]] = [:]  // route → status → count
    private var promptTokens = 0, cachedTokens = 0, generatedTokens = 0
    private var firstToken = Histogram(bounds: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])
    private var betweenTokens = Histogram(bounds: [0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1])

    /// Counts of observations at or under each bound (Prometheus' cumulative buckets).
    struct Histogram {
        let bounds: [Double]
        var counts: [Int]
        var sum = 0.0, count = 0
        init(bounds: [Double]) { (self.bounds, counts) = (bounds, [Int](repeating: 0, count: bounds.count)) }
        mutating func observe(_ value: Double) {
            for (index, bound) in bounds.enumerated() where value <= bound { counts[index] += 1 }
            sum += value
            count += 1
        }
        func lines(_ name: String, help: String) -> [String] {
            ["# HELP \(name) \(help)", "# TYPE \(name) histogram"]
                + zip(bounds, counts).map { "\(name)_bucket{le=\"\($0)\"} \($1)" }
                + ["\(name)_bucket{le=\"+Inf\"} \(count)", "\(name)_sum \(sum)", "\(name)_count \(count)"]
        }
    }

    func request(route: String, status: Int) { lock.withLock { requests[route, default: [:]][status, default: 0] += 1 } }

    func finished(prompt: Int, cached: Int, generated: Int) {
        lock.withLock {
            promptTokens += prompt
            cachedTokens += cached
            generatedTokens += generated
        }
    }

    func firstToken(after seconds: Double) { lock.withLock { firstToken.observe(seconds) } }
    func betweenTokens(_ seconds: Double) { lock.withLock { betweenTokens.observe(seconds) } }

    /// The exposition text.
    func text(slots: Int, active: Int, queued: Int) -> String {
        lock.withLock {
            var lines = ["# HELP lm_requests_total Requests answered, by route and HTTP status.", "# TYPE lm_requests_total counter"]
            for route in requests.keys.sorted() {
                for status in requests[route]!.keys.sorted() {
                    lines.append("lm_requests_total{route=\"\(route)\",status=\"\(status)\"} \(requests[route]![status]!)")
                }
            }
            for (name, help, value) in [("lm_prompt_tokens_total", "Prompt tokens of finished requests.", promptTokens),
                                        ("lm_cached_prompt_tokens_total", "Prompt tokens found in a slot's cache (not computed again).", cachedTokens),
                                        ("lm_generated_tokens_total", "Tokens generated.", generatedTokens)] {
                lines += ["# HELP \(name) \(help)", "# TYPE \(name) counter", "\(name) \(value)"]
            }
            lines += firstToken.lines("lm_time_to_first_token_seconds", help: "From the request to its first token of text.")
            lines += betweenTokens.lines("lm_time_between_tokens_seconds", help: "Between one streamed token and the next.")
            for (name, help, value) in [("lm_slots", "Slots (streams decoded at once).", slots), ("lm_slots_busy", "Slots decoding now.", active),
                                        ("lm_queue_length", "Requests waiting for a slot.", queued)] {
                lines += ["# HELP \(name) \(help)", "# TYPE \(name) gauge", "\(name) \(value)"]
            }
            return lines.joined(separator: "\n") + "\n"
        }
    }
}

/// Counts every response by route and status (outside the error middleware, so errors count with
/// the status they were answered with).
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response = try await next(request, context)
        let path = request.uri.path
        let known = ["/", "/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions", "/v1/inspect"]
        metrics.request(route: known.contains(path) ? path : "other", status: response.status.code)
        return response
    }
}
