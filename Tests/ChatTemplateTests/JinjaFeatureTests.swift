import ChatTemplate
import XCTest

/// The Jinja behaviours structured messages and tools need, each against the text Python's jinja2
/// 3.1.6 renders from the same template and variables under transformers' settings (`tojson` as
/// `json.dumps(ensure_ascii=False, …)`).
final class JinjaFeatureTests: XCTestCase {
    /// The variables every case below sees.
    static let variables: [String: TemplateValue] = [
        "data": ["b": [1, 2.5, nil, true], "a": "é\"\\\n\u{8}\u{c}\u{1}🙃", "c": [:], "d": []],
        "floats": [1e16, 1e-05, -0.0, 0.1, 123456789.0, 1.5e300, 9007199254740993.0, 1000000000000000.5, 3.0],
        "decomposed": "e\u{301}",
    ]
    static let messages: [TemplateValue] = [["role": "user", "content": "hi", "items": "shadowed"]]

    static func render(_ source: String) throws -> String {
        try ChatTemplate(source).render(messages: messages, addGenerationPrompt: false, variables: variables)
    }

    /// (what, template, jinja2's output)
    static let cases: [(String, String, String)] = [
        ("tojson plain", "{{ data | tojson }}", "{\"b\": [1, 2.5, null, true], \"a\": \"é\\\"\\\\\\n\\b\\f\\u0001🙃\", \"c\": {}, \"d\": []}"),
        ("tojson indent", "{{ data | tojson(indent=2) }}", "{\n  \"b\": [\n    1,\n    2.5,\n    null,\n    true\n  ],\n  \"a\": \"é\\\"\\\\\\n\\b\\f\\u0001🙃\",\n  \"c\": {},\n  \"d\": []\n}"),
        ("tojson separators and sorted keys", "{{ data | tojson(separators=(',', ':'), sort_keys=true) }}", "{\"a\":\"é\\\"\\\\\\n\\b\\f\\u0001🙃\",\"b\":[1,2.5,null,true],\"c\":{},\"d\":[]}"),
        ("tojson ensure_ascii", "{{ data | tojson(ensure_ascii=true) }}", "{\"b\": [1, 2.5, null, true], \"a\": \"\\u00e9\\\"\\\\\\n\\b\\f\\u0001\\ud83d\\ude43\", \"c\": {}, \"d\": []}"),
        ("tojson floats", "{{ floats | tojson }}", "[1e+16, 1e-05, -0.0, 0.1, 123456789.0, 1.5e+300, 9007199254740992.0, 1000000000000000.5, 3.0]"),
        ("printed floats", "{% for f in floats %}{{ f }} {% endfor %}{{ 0.1 + 0.2 }} {{ 1 / 3 }} {{ 2.5e-5 }}", "1e+16 1e-05 -0.0 0.1 123456789.0 1.5e+300 9007199254740992.0 1000000000000000.5 3.0 0.30000000000000004 0.3333333333333333 2.5e-05"),
        ("code point length and prefix", "{{ decomposed | length }} {{ decomposed.startswith('e') }} {{ decomposed[0] }}|{{ decomposed[::-1] | length }} {{ decomposed == 'é' }}", "2 True e|2 False"),
        ("split and strip", "{{ 'a\r\nb\nc'.split('\n') }} {{ '\u{1f} a b \u{1f}'.strip() }}|{{ 'x--y--z'.split('--', 1) }} {{ '  a  b '.split() }} {{ 'xxaxx'.strip('x') }} {{ 'ab\n\n'.rstrip('\n') }}|{{ '\n\nab'.lstrip('\n') }}", "['a', 'b', 'c'] a b|['x', 'y--z'] ['a', 'b'] a ab|ab"),
        ("replace find count join", "{{ 'aaa'.replace('a', 'b', 2) }} {{ 'abcabc'.find('c') }} {{ 'abcabc'.count('bc') }} {{ ', '.join(['x', 'y']) }} {{ 'abc'.find('z') }}", "bba 2 2 x, y -1"),
        ("undefined semantics", "[{{ messages[10] }}][{{ none.foo }}][{{ (1).foo }}][{{ missing is iterable }}][{{ missing | length }}][{{ messages[0].items is string }}][{{ messages[0]['items'] }}][{{ 'abc'[10] }}]", "[][][][True][0][False][shadowed][]"),
        ("repr of lists and dicts", "{{ [\"it's\", 'say \"hi\"', \"both ' \\\"\", none, true, 1.0, {'k': 'v'}] }}", "[\"it's\", 'say \"hi\"', 'both \\' \"', None, True, 1.0, {'k': 'v'}]"),
        ("repetition and tests", "{{ '-' * 3 }}{{ [1] * 2 }} {{ true is number }} {{ true is integer }} {{ 1 is number }} {{ 'b' > 'a' }} {{ 'Z' < 'a' }}", "---[1, 1] True False True True True"),
        ("reversed loop and namespace", "{% set ns = namespace(last=-1) %}{% for m in [1, 2, 3][::-1] %}{% if m is odd and ns.last < 0 %}{% set ns.last = loop.index0 %}{% endif %}{% endfor %}{{ ns.last }}", "0"),
        ("newlines as Jinja reads them", "x\r\ny\rz{{ 'p\r\nq' }}{% if true %}\r\nA{% endif %}\r\n  {% if 1 %}B{% endif %}\n\n", "x\ny\nzp\nqAB"),
    ]

    func testFeaturesRenderAsJinja2Does() throws {
        for (name, source, expected) in Self.cases {
            XCTAssertEqual(try Self.render(source), expected, name)
        }
    }

    /// (what, template, the end of jinja2's error message)
    static let errors: [(String, String, String)] = [
        ("concatenation", "{{ 'a' + 1 }}", "can only concatenate str (not \"int\") to str"),
        ("list concatenation", "{{ [1] + 'a' }}", "can only concatenate list (not \"str\") to list"),
        ("attribute of undefined", "{{ missing.attr }}", "'missing' is undefined"),
        ("tojson of undefined", "{{ missing | tojson }}", "Object of type Undefined is not JSON serializable"),
    ]

    func testErrorsAreTheOnesJinja2Raises() {
        for (name, source, message) in Self.errors {
            XCTAssertThrowsError(try Self.render(source), name) { error in
                XCTAssertNil((error as? TemplateError)?.raisedMessage, name)
                // Python's own wording where the error is Python's (not Jinja's undefined errors).
                if !message.contains("is undefined") { XCTAssertTrue("\(error)".hasSuffix(message), "\(name): \(error)") }
            }
        }
    }

    /// A template that nests a list in a list in a loop is stopped with an error, not a stack
    /// overflow when the value is printed or freed.
    func testDeepNestingIsAnErrorNotACrash() throws {
        let template = try ChatTemplate("""
            {% set ns = namespace(x=[]) %}{% for i in range(300000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}
            """)
        XCTAssertThrowsError(try template.render(messages: [], addGenerationPrompt: false)) {
            XCTAssertTrue("\($0)".contains("line 1: the template builds lists or dictionaries nested deeper than 200 levels"), "\($0)")
        }
        let shallow = try ChatTemplate("{% set ns = namespace(x=[]) %}{% for i in range(3) %}{% set ns.x = [ns.x, {'k': ns.x}] %}{% endfor %}{{ ns.x | length }}")
        XCTAssertEqual(try shallow.render(messages: [], addGenerationPrompt: false), "2")
    }

    /// Integer arithmetic past 64 bits (which Python's unbounded integers would carry) is an error
    /// naming the operation, not a trap: found by the fuzzer (`2 ** 100` once crashed the process).
    func testIntegerOverflowIsAnErrorNotACrash() throws {
        for (source, expected) in [("{{ 2 ** 10 }}", "1024"), ("{{ 7 // -2 }}", "-4"), ("{{ -7 // 2 }}", "-4"), ("{{ 7 % -2 }}", "-1"),
                                   ("{{ -7 % 2 }}", "1"), ("{{ 3.7|int }}", "3"), ("{{ -3.7|int }}", "-3"), ("{{ (-3) ** 3 }}", "-27")] {
            XCTAssertEqual(try Self.render(source), expected, source)
        }
        for source in ["{{ 2 ** 100 }}", "{{ (-9223372036854775807 - 1) // -1 }}", "{{ 1e300|int }}",
                       "{{ range(-9223372036854775807, 9223372036854775807)|length }}"] {
            XCTAssertThrowsError(try Self.render(source), source)
        }
    }
}
