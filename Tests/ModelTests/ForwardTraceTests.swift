import Drawing
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Kernels
@testable import Model
import TestSupport
import XCTest

final class ForwardTraceTests: XCTestCase {
    func checkTrace(_ model: TransformerLM, tokens: [Int32]) throws {
        let c = model.config, t = tokens.count
        let trace = try model.trace(tokens: tokens)
        XCTAssertEqual(trace.stages.count, 1 + 7 * c.numLayers + 2)
        XCTAssertEqual(trace.stages.first?.shape, [t, c.dModel])
        XCTAssertEqual(trace.stages.last?.shape, [t, c.vocabSize])
        XCTAssertEqual(trace.stages.first { $0.name.hasSuffix("ffn.silu(w1)·w3") }?.shape, [t, c.dFF])
        XCTAssertEqual(trace.stages.first { $0.name.hasSuffix("attn.qkv (RoPE on q, k)") }?.shape, [t, c.qkvWidth])
        // The logits stage is the model's forward, and the prediction its last row's softmax.
        let logits = try model.forward(tokens: tokens, batch: 1, length: t)
        let stats = trace.stages.last!
        XCTAssertEqual(stats.max, Double(logits.max()!), accuracy: 1e-5)
        XCTAssertEqual(stats.min, Double(logits.min()!), accuracy: 1e-5)
        let last = Array(logits.suffix(c.vocabSize))
        XCTAssertEqual(trace.nextTokenProbabilities.reduce(0, +), 1, accuracy: 1e-4)
        XCTAssertEqual(trace.nextTokenProbabilities.indices.max { trace.nextTokenProbabilities[$0] < trace.nextTokenProbabilities[$1] },
                       last.indices.max { last[$0] < last[$1] })
        // Attention: every layer and head, rows summing to one, nothing above the diagonal.
        XCTAssertEqual(trace.attention.count, c.numLayers)
        for (layer, heads) in trace.attention.enumerated() {
            XCTAssertEqual(heads.count, c.numHeads)
            for (head, weights) in heads.enumerated() {
                for query in 0..<t {
                    let row = weights[(query * t)..<((query + 1) * t)]
                    XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-5, "layer \(layer) head \(head) row \(query)")
                    XCTAssertTrue(row.dropFirst(query + 1).allSatisfy { $0 == 0 }, "causal: layer \(layer) head \(head) row \(query)")
                }
            }
        }
    }

    func testTraceOfAFreshModel() throws {
        try checkTrace(try ModelFactory.model(), tokens: ModelFactory.tokens(9, vocab: 53, seed: 41))
    }

    func testTraceOfTheReferenceModel() throws {
        let directory = (try Fixtures.requireSharedData("model/config.json") as NSString).deletingLastPathComponent
        let model = try Checkpoint.load(directory: directory)
        try checkTrace(model, tokens: ModelFactory.tokens(12, vocab: model.config.vocabSize, seed: 42))
    }

    /// Well-formed XML with one cell per (query, key) pair and per head; awkward labels escaped.
    func testAttentionMapIsWellFormedWithOneCellPerPair() throws {
        let t = 5, heads = 3
        let weights = (0..<heads).map { _ in (0..<(t * t)).map { Float($0 % t <= $0 / t ? 1.0 / Float($0 / t + 1) : 0) } }
        let labels = ["<s>", "a&b", "\n", "\"q\"", AttentionMap.label([0x01, 0x41])]
        let svg = AttentionMap.svg(weights: weights, labels: labels, titles: (0..<heads).map { "head \($0)" }, caption: "test <&>")
        final class Counter: NSObject, XMLParserDelegate {
            var cells = 0
            func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String]) {
                if name == "rect" && attributes["class"] == "cell" { cells += 1 }
            }
        }
        let parser = XMLParser(data: Data(svg.utf8)), counter = Counter()
        parser.delegate = counter
        XCTAssertTrue(parser.parse(), "SVG parses as XML: \(parser.parserError.map { "\($0)" } ?? "")")
        XCTAssertEqual(counter.cells, heads * t * t)
        XCTAssertEqual(AttentionMap.label(Array(" \n\t".utf8)), "␣↵⇥")
    }
}
