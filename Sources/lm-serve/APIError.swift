import Foundation
import Hummingbird
import Model

/// An error in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with its status.
struct APIError: Error, CustomStringConvertible {
    let status: HTTPResponse.Status
    let message: String
    var param: String?
    var code: String?

    var type: String {
        switch status.code {
        case 401: "authentication_error"
        case 404: "not_found_error"
        case 429: "rate_limit_error"
        case 500...: "server_error"
        default: "invalid_request_error"
        }
    }

    var description: String { message }

    /// 400, naming the field.
    static func invalid(_ message: String, param: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, param: param)
    }

    var json: [String: Any] {
        ["error": ["message": message, "type": type, "param": param.map { $0 as Any } ?? NSNull(), "code": code.map { $0 as Any } ?? NSNull()]]
    }

    var response: Response { JSONResponse.make(json, status: status) }
}

extension APIError {
    /// The status and field of a library error: an option out of range or a prompt that cannot
    /// run is the client's (400, naming the field; `input` is the prompt's field), a full queue
    /// 429, shutting down 503; a model producing non-finite values, or anything unforeseen, ours (500).
    init(generation error: Error, input: String) {
        guard let error = error as? GenerationError else {
            self.init(status: .internalServerError, message: "\(error)")
            return
        }
        switch error {
        case .invalidOption(let option, let problem):
            self.init(status: .badRequest, message: "'\(option.field)' \(problem)", param: option.field)
        case .emptyPrompt, .promptTooLong, .tokenOutsideVocabulary:
            self.init(status: .badRequest, message: error.description, param: input)
        case .noTokenAllowed, .unsupported:
            self.init(status: .badRequest, message: error.description)
        case .queueFull: self.init(status: .tooManyRequests, message: error.description)
        case .shuttingDown: self.init(status: .serviceUnavailable, message: error.description)
        case .nonFiniteLogit: self.init(status: .internalServerError, message: error.description)
        }
    }
}

/// JSON bodies built with Foundation's serializer.
enum JSONResponse {
    static func data(_ object: Any) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.withoutEscapingSlashes])) ?? Data("{}".utf8)
    }

    static func make(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: ResponseBody(byteBuffer: ByteBuffer(bytes: data(object))))
    }
}

/// Turns every error that reaches the router (an unknown route, a body over the limit, anything
/// a handler throws) into OpenAI's error shape, and checks the API key of `/v1/` requests.
struct OpenAIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The Bearer token every `/v1/` request must carry, when set.
    let apiKey: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let apiKey, request.uri.path.hasPrefix("/v1/") {
            let given = request.headers[.authorization] ?? ""
            guard constantTimeEqual(given, "Bearer " + apiKey) else {
                return APIError(status: .unauthorized, message: given.isEmpty
                    ? "no API key: send the header 'Authorization: Bearer KEY'" : "the API key is not valid", code: "invalid_api_key").response
            }
        }
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return error.response
        } catch let error as HTTPError {
            switch error.status {
            case .notFound:
                return APIError(status: .notFound, message: "no route \(request.method) \(request.uri.path)").response
            case .contentTooLarge:
                return APIError(status: .contentTooLarge, message: "the request body is over the server's limit").response
            default:
                return APIError(status: error.status, message: error.body ?? "\(error.status)").response
            }
        } catch {
            return APIError(status: .internalServerError, message: "\(error)").response
        }
    }

    /// Compares in time that depends on the lengths only, not on where the strings differ.
    private func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let (x, y) = (Array(a.utf8), Array(b.utf8))
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) { difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
        return difference == 0
    }
}
