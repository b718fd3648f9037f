#!/usr/bin/env python3
"""Differential test of the constrained-decoding JSON recognizer against Python's `jsonschema`.

What it checks: for random JSON Schemas from the subset `JSONSchema.swift` compiles (nested
objects, arrays with prefixItems, strings with lengths and formats, numbers, enum/const, anyOf,
exclusive oneOf, $ref/$defs with a recursive tree), it writes valid documents sampled from each
schema (shuffled keys, bounded whitespace, escapes, surrogate pairs, non-ASCII) and near misses
(a required key dropped, an unknown key, a wrong type, too long, too many items, truncated,
trailing garbage, broken JSON, leading zeros, NaN, duplicate keys, ...). Each schema's documents
go through `lm json-check` in one run, and each verdict is compared with
`jsonschema.Draft202012Validator` (with `FormatChecker`), after `json.loads` with NaN/Infinity
and duplicate keys refused. Every document ends up in one class:

  agree                  both say valid, or both say invalid
  OURS-ACCEPTS-INVALID   we accept what jsonschema refuses: unsound, always a failure
  OURS-REJECTS-VALID     we refuse a valid document that no stated restriction explains: failure
  restricted             we refuse a valid document because of a restriction the recognizer
                         states (RESTRICTIONS below): the restricted form at the byte we refused
                         is rewritten (the run cut to 24, the number or enum value in compact
                         form; every such form at once when the schema keeps several ways open)
                         and the text checked again, so a restriction cannot hide a real refusal
  UNREACHABLE            (--tokenizer) valid for both, but constrained decoding cannot write it in
                         the tokenizer's own split: failure
  SCHEMA-REFUSED         json-check refused a schema this generator means to be in the subset

A summary gives the counts and up to --examples examples per class (schema, document, both
verdicts, and the --seed/--only that reproduces it); the exit status is 1 on any failure.

Run (jsonschema is the only dependency; build `lm` first, e.g. `swift build -c release --product lm`):
  python3 -m venv /tmp/schema-venv && /tmp/schema-venv/bin/pip install jsonschema
  /tmp/schema-venv/bin/python scripts/schema_differential.py --seed 1 --schemas 40 \\
      --tokenizer models/SmolLM2-135M-Instruct.Q4_1.gguf
Options: --lm PATH (default .build/release/lm), --schemas 200 for a longer run, --only I to
rerun one schema of a seed, --keep DIR to keep each schema's files, --no-pinned to skip the
hand-written cases, --plant-bug to flip one of our verdicts per schema (the harness must then fail).
"""

import argparse
import copy
import datetime
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time

try:
    import jsonschema
except ImportError:
    sys.exit("schema_differential: needs jsonschema (pip install jsonschema)")

# The recognizer's stated limits (JSONRecognizer.swift).
MAX_WHITESPACE = 24
MAX_DIGITS = 16
MAX_EXPONENT_DIGITS = 2
WHITESPACE = " \t\n\r"

# Why we may refuse a valid document without it being a bug: the recognizer's stated limits,
# by the name the summary prints. The last one is not in its doc comment but in its code
# (`step`: "a complete document takes nothing more"), so decoding can end at the value.
RESTRICTIONS = {
    "whitespace": f"more than {MAX_WHITESPACE} whitespace bytes in a row",
    "digits": f"more than {MAX_DIGITS} digits in a number's integer part or fraction",
    "exponent": f"more than {MAX_EXPONENT_DIGITS} exponent digits",
    "integer-form": "an integer written with a fraction or an exponent (1.0, 1e2)",
    "literal-form": "an enum/const value not in its compact text (1.0 for 1, \\u00e9 for é, other key order)",
    "trailing-whitespace": "whitespace after the document's value (decoding ends at the value)",
    "format-escape": "a string with a format (date, uuid, …) written with an escape: its shape is matched on plain characters",
}


# The shapes of the formats the recognizer checks: a date, a date-time, a uuid.
import re  # noqa: E402 — kept beside its one use
FORMAT_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2}))?|[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


# MARK: Schemas

# Property names: mostly identifiers, some non-ASCII. Names that need an escape in JSON text are
# in the pool too, rarely (see SchemaGenerator.name).
PLAIN_NAMES = ["id", "name", "tags", "a", "b", "c", "value", "count", "items", "kind", "x_y", "camelCase",
               "café", "日本", "naïve", "émoji😀", "with space", "dash-ed", "0", "$ref", "type"]
ESCAPED_NAMES = ['say "hi"', "back\\slash", "line\nbreak", "tab\there"]
EXTRA_NAMES = ["zz_extra", "other", "ünknown", "more", "", "x1"]

# Characters strings are made of: ASCII, JSON's escapes, controls, non-ASCII (2, 3 and 4 UTF-8
# bytes, outside the Basic Multilingual Plane too), and a few oddities (DEL, U+2028, U+FEFF).
STRING_CHARS = (list("abcxyzABCXYZ0123456789 _-.,:;!?'") + ['"', "\\", "/", "\n", "\t", "\r", "\b", "\f", "\x01", "\x1f"]
                + ["é", "ü", "ß", "日", "本", "€", "😀", "𝄞", "\x7f", "\u2028", "\ufeff"])

# Values enum and const draw from. Numbers are kept where Swift's `description` (behind
# JSONValue.compactText) and Python's repr agree: whole numbers below 1e15, short fractions,
# and a few with exponents.
ENUM_SCALARS = ["red", "green", "", "café", "日本語", "😀", 'say "hi"', "back\\slash", "tab\there", "new\nline", "a/b",
                "\x01",
                0, 1, -7, 42, 1.5, -0.25, 3.14159, 1e20, 1e-07, 123456789012345, None, True, False]
ENUM_COMPOUND = [{"a": 1}, {"b": [1, 2], "a": None}, [1, "x"], [], {}, {"k": "v", "n": {"m": True}}, [[0.5]]]

TYPES = ["object", "array", "string", "integer", "number", "boolean", "null"]


class SchemaGenerator:
    """Random schemas from the supported subset, `max_depth` levels of nesting at most.

    Object schemas always state `additionalProperties`: we read its absence as false (strict
    mode), JSON Schema as true. Formats are `date` and `uuid` only: our check is their shape, so
    the sampler writes calendar-valid dates and the mutations only break the shape (never
    2024-02-30, which jsonschema's calendar check refuses and our shape check accepts); a uuid
    mutation never adds a dash (jsonschema's `UUID()` ignores extra dashes). `date-time` is left
    out: jsonschema checks it only with rfc3339-validator installed.
    """

    def __init__(self, rng, max_depth=3):
        self.rng = rng
        self.max_depth = max_depth
        self.definitions = {}
        self.defs_key = "$defs"

    def root(self):
        rng = self.rng
        if rng.random() < 0.4:
            self.add_definitions()
        if self.definitions and rng.random() < 0.15:
            schema = {"$ref": self.ref_to(rng.choice(sorted(self.definitions)))}
        else:
            schema = self.schema(0)
            if isinstance(schema, dict) and "properties" in schema and rng.random() < 0.15:
                # Recursion through the root: an optional property of the root's own schema.
                schema["properties"]["self"] = {"$ref": "#"}
        if self.definitions:
            schema = dict(schema) if isinstance(schema, dict) else {"anyOf": [schema]}
            schema[self.defs_key] = self.definitions
        return schema

    def add_definitions(self):
        rng = self.rng
        self.defs_key = "$defs" if rng.random() < 0.8 else "definitions"
        self.definitions["tree"] = {
            "type": "object",
            "properties": {
                "value": self.scalar(),
                "children": {"type": "array", "items": {"$ref": self.ref_to("tree")}, "maxItems": 3},
            },
            "required": ["value"],
            "additionalProperties": False,
        }
        if rng.random() < 0.5:
            # A linked list: recursion that ends through anyOf's null branch.
            self.definitions["list"] = {"anyOf": [
                {"type": "null"},
                {"type": "object", "properties": {"head": {"type": "integer"}, "tail": {"$ref": self.ref_to("list")}},
                 "required": ["head", "tail"], "additionalProperties": False},
            ]}
        for name in rng.sample(["point", "label", "a~b", "c/d"], rng.randint(0, 2)):
            self.definitions[name] = self.schema(2, allow_refs=False)

    def ref_to(self, name):
        # A JSON pointer escapes "~" and "/" (RFC 6901).
        return f"#/{self.defs_key}/" + name.replace("~", "~0").replace("/", "~1")

    def name(self):
        return self.rng.choice(ESCAPED_NAMES) if self.rng.random() < 0.03 else self.rng.choice(PLAIN_NAMES)

    def schema(self, depth, allow_refs=True):
        rng = self.rng
        if depth >= self.max_depth:
            return self.scalar()
        kinds = {"object": 6, "array": 5, "string": 4, "integer": 2, "number": 2, "boolean": 1, "null": 1, "types": 2,
                 "enum": 3, "const": 1, "anyOf": 3, "oneOf": 1, "union": 1, "any": 1,
                 "ref": 2 if allow_refs and self.definitions else 0}
        kind = rng.choices(list(kinds), weights=list(kinds.values()))[0]
        if kind == "object":
            return self.object(depth, allow_refs)
        if kind == "array":
            return self.array(depth, allow_refs)
        if kind == "types":
            return self.type_list(depth, allow_refs)
        if kind == "enum":
            return self.enum()
        if kind == "const":
            return self.const()
        if kind == "anyOf":
            schema = {"anyOf": [self.schema(depth + 1, allow_refs) for _ in range(rng.randint(2, 3))]}
            if rng.random() < 0.1:
                # A sibling type beside anyOf: both keywords hold (JSON Schema ANDs them).
                schema["type"] = rng.choice(TYPES)
            return schema
        if kind == "oneOf":
            return self.one_of(depth, allow_refs)
        if kind == "union":
            return self.tagged_union(depth, allow_refs)
        if kind == "any":
            return rng.choice([{}, True])
        if kind == "ref":
            return {"$ref": self.ref_to(rng.choice(sorted(self.definitions)))}
        return self.typed(kind, depth, allow_refs)

    def scalar(self):
        rng = self.rng
        if rng.random() < 0.1:
            # pydantic's `int | float` and `Optional[int]`: branches that overlap, and ones that do not.
            return rng.choice([{"anyOf": [{"type": "integer"}, {"type": "number"}]}, {"type": ["integer", "number"]},
                               {"anyOf": [{"type": "integer"}, {"type": "null"}]}])
        return self.typed(rng.choice(["string", "string", "integer", "number", "boolean", "null"]), self.max_depth, False)

    def typed(self, kind, depth, allow_refs):
        """A schema of one type (its keywords), as `type_list` and `one_of` also use."""
        if kind == "object":
            return self.object(depth, allow_refs)
        if kind == "array":
            return self.array(depth, allow_refs)
        if kind == "string":
            return self.string()
        return {"type": kind}

    def string(self):
        rng = self.rng
        schema = {"type": "string"}
        roll = rng.random()
        if roll < 0.25:
            schema["format"] = rng.choice(["date", "uuid"])
            if rng.random() < 0.15:
                schema[rng.choice(["minLength", "maxLength"])] = rng.choice([5, 10, 36, 40])
        elif roll < 0.6:
            low = rng.choice([0, 0, 1, 2, 3])
            if rng.random() < 0.7:
                schema["minLength"] = low
            if rng.random() < 0.8:
                schema["maxLength"] = low + rng.randint(0, 6)
        return schema

    def object(self, depth, allow_refs):
        rng = self.rng
        names = []
        for _ in range(rng.randint(0, 4)):
            name = self.name()
            if name not in names:
                names.append(name)
        properties = {}
        for name in names:
            # A property whose schema is false may only be absent.
            properties[name] = False if rng.random() < 0.03 else self.schema(depth + 1, allow_refs)
        required = [n for n in names if properties[n] is not False and rng.random() < 0.6]
        roll = rng.random()
        additional = False if roll < 0.55 else True if roll < 0.8 else self.schema(depth + 1, allow_refs)
        schema = {"type": "object", "properties": properties}
        if required or rng.random() < 0.5:
            schema["required"] = required
        schema["additionalProperties"] = additional
        return schema

    def array(self, depth, allow_refs):
        rng = self.rng
        schema = {"type": "array"}
        prefix = 0
        if rng.random() < 0.35:
            prefix = rng.randint(1, 3)
            schema["prefixItems"] = [self.schema(depth + 1, allow_refs) for _ in range(prefix)]
        closed = False
        roll = rng.random()
        if prefix and roll < 0.4:
            schema["items"] = False
            closed = True
        elif roll < 0.85:
            schema["items"] = self.schema(depth + 1, allow_refs)
        if rng.random() < 0.5:
            low = rng.randint(0, prefix if closed else 3)
            schema["minItems"] = low
            if rng.random() < 0.7:
                schema["maxItems"] = low + rng.randint(0, 3)
        elif rng.random() < 0.3:
            schema["maxItems"] = rng.randint(0, 4)
        return schema

    def type_list(self, depth, allow_refs):
        """`type` as a list: each type's keywords side by side in one schema."""
        rng = self.rng
        types = rng.sample(TYPES, rng.randint(2, 3))
        schema = {"type": types}
        for kind in types:
            for key, value in self.typed(kind, depth, allow_refs).items():
                if key != "type":
                    schema[key] = value
        return schema

    def literal_values(self, count):
        rng = self.rng
        values = []
        for _ in range(count):
            value = rng.choice(ENUM_COMPOUND) if rng.random() < 0.2 else rng.choice(ENUM_SCALARS)
            if not any(json_equal(value, seen) for seen in values):
                values.append(value)
        return values

    def enum(self):
        rng = self.rng
        if rng.random() < 0.03:
            # Many values sharing a prefix: the recognizer keeps every one as a way at once.
            return {"enum": [f"option_{i}" for i in range(rng.randint(40, 90))]}
        schema = {"enum": self.literal_values(rng.randint(1, 5))}
        self.maybe_type_beside(schema, schema["enum"])
        return schema

    def const(self):
        schema = {"const": self.literal_values(1)[0]}
        self.maybe_type_beside(schema, [schema["const"]])
        return schema

    def maybe_type_beside(self, schema, values):
        """OpenAI-style `{"type": "string", "enum": [...]}`: usually the values' own type, sometimes
        one that leaves some of them out (JSON Schema then allows only those of that type)."""
        rng = self.rng
        if rng.random() < 0.3:
            kinds = {json_type(v) for v in values}
            if len(kinds) == 1 and rng.random() < 0.7:
                schema["type"] = kinds.pop()
            else:
                schema["type"] = json_type(rng.choice(values))

    def tagged_union(self, depth, allow_refs):
        """A discriminated union (pydantic's shape): objects told apart by a const `kind`, with
        fields they share, so a document may hold shared fields before its tag."""
        rng = self.rng
        names = rng.sample(["id", "value", "tags", "count"], rng.randint(1, 2))
        shared = {name: self.schema(depth + 2, allow_refs) for name in names}
        branches = []
        for tag in rng.sample(["cat", "dog", "bird"], rng.randint(2, 3)):
            properties = dict(shared, kind={"const": tag})
            if rng.random() < 0.5:
                properties[tag + "_only"] = self.scalar()
            branches.append({"type": "object", "properties": properties, "required": ["kind"] + sorted(shared),
                             "additionalProperties": False})
        return {"anyOf": branches}

    def one_of(self, depth, allow_refs):
        """oneOf whose branches are of different JSON types, so at most one matches any value
        (then oneOf and anyOf mean the same; integer and number count as one type)."""
        rng = self.rng
        kinds = rng.sample(["object", "array", "string", "integer", "boolean", "null"], rng.randint(2, 3))
        return {"oneOf": [self.typed(kind if kind != "integer" else rng.choice(["integer", "number"]), depth + 1, allow_refs)
                          for kind in kinds]}


def json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def json_equal(a, b):
    """JSON Schema's equality (enum, const): 1 == 1.0, but true != 1; objects by their members."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def swift_quoted(text):
    """JSONValue.quoted: only ", \\, \\n, \\r, \\t and other controls escaped (\\u00xx)."""
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out) + '"'


def compact_text(value):
    """JSONValue.compactText: the only form in which an enum or const value is recognized."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        number = float(value)
        if number == round(number) and abs(number) < 1e15:
            return str(int(number))
        return repr(number)  # Swift's description, for the numbers ENUM_SCALARS holds
    if isinstance(value, str):
        return swift_quoted(value)
    if isinstance(value, list):
        return "[" + ",".join(compact_text(v) for v in value) + "]"
    return "{" + ",".join(swift_quoted(k) + ":" + compact_text(value[k]) for k in sorted(value)) + "}"


def literal_values_in(schema):
    """Every enum and const value anywhere in `schema` (for recognizing a literal's other forms)."""
    found = []
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "const":
                found.append(value)
            elif key == "enum" and isinstance(value, list):
                found.extend(value)
            elif key in ("properties", "$defs", "definitions"):
                for sub in value.values():
                    found.extend(literal_values_in(sub))
            elif key in ("prefixItems", "anyOf", "oneOf"):
                for sub in value:
                    found.extend(literal_values_in(sub))
            elif key in ("items", "additionalProperties"):
                found.extend(literal_values_in(value))
    return found


# MARK: Documents
#
# A sampled value is a small tree of nodes, kept apart from its text so the same value can be
# written in several ways:
#   ("lit", text, value)        fixed text: an enum/const value in compact form, true, null, a number
#   ("num", text, is_integer)   a number written by the sampler (integer: from an integer schema)
#   ("str", text, plain)        a string; `plain` (a format string) takes an optional escape only rarely
#   ("arr", [node, ...])
#   ("obj", [(key, node), ...])


class TooDeep(Exception):
    pass


class Sampler:
    """Values valid for a schema (as nodes), by walking it with random choices."""

    def __init__(self, rng, root):
        self.rng = rng
        self.root = root

    def resolve(self, reference):
        node = self.root
        if reference != "#":
            for part in reference[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def sample(self, schema, depth=0):
        rng = self.rng
        if depth > 14:
            raise TooDeep()
        if schema is True or schema == {}:
            return self.any_value(depth)
        if "$ref" in schema:
            return self.sample(self.resolve(schema["$ref"]), depth + 1)
        if "const" in schema:
            return literal(schema["const"])
        if "enum" in schema:
            return literal(rng.choice(schema["enum"]))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = list(schema[key])
                rng.shuffle(options)
                for option in options:
                    try:
                        return self.sample(option, depth + 1)
                    except TooDeep:
                        continue
                raise TooDeep()
        types = schema.get("type", "object")
        kind = rng.choice(types) if isinstance(types, list) else types
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, depth)
        if kind == "string":
            return self.string(schema)
        if kind == "integer":
            return ("num", self.integer_text(), True)
        if kind == "number":
            return ("num", self.number_text(), False)
        if kind == "boolean":
            return literal(rng.choice([True, False]))
        return literal(None)

    def object(self, schema, depth):
        rng = self.rng
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        # Deep down, only what is required, so recursive schemas end.
        optional_chance = 0.6 if depth < 6 else 0.0
        members = []
        for name, sub in properties.items():
            if sub is False:
                continue
            if name in required or rng.random() < optional_chance:
                members.append((name, self.sample(sub, depth + 1)))
        additional = schema.get("additionalProperties", False)
        if additional is not False and depth < 6 and rng.random() < 0.4:
            for name in rng.sample(EXTRA_NAMES, rng.randint(1, 2)):
                if name not in properties:
                    members.append((name, self.sample(additional, depth + 1)))
        rng.shuffle(members)
        return ("obj", members)

    def array(self, schema, depth):
        rng = self.rng
        prefix = schema.get("prefixItems", [])
        items = schema.get("items", True)
        low = schema.get("minItems", 0)
        high = schema.get("maxItems", low + 4)
        if items is False:
            high = min(high, len(prefix))
        # Now and then a longer one: every ambiguous item (1 is an integer and a number) doubles
        # the ways the recognizer keeps.
        longest = low + (8 if rng.random() < 0.15 else 3)
        count = rng.randint(low, max(low, min(high, longest))) if depth < 6 else low
        return ("arr", [self.sample(prefix[i] if i < len(prefix) else items, depth + 1) for i in range(count)])

    def string(self, schema):
        rng = self.rng
        fmt = schema.get("format")
        if fmt == "date":
            day = datetime.date(1970, 1, 1) + datetime.timedelta(days=rng.randint(-700000, 40000))
            return ("str", f"{day.year:04d}-{day.month:02d}-{day.day:02d}", True)
        if fmt == "uuid":
            text = "".join(rng.choice("0123456789abcdefABCDEF") for _ in range(32))
            return ("str", f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}", True)
        low = schema.get("minLength", 0)
        high = schema.get("maxLength", low + 10)
        length = rng.randint(low, min(high, low + 8))
        return ("str", "".join(rng.choice(STRING_CHARS) for _ in range(length)), False)

    def integer_text(self):
        rng = self.rng
        roll = rng.random()
        if roll < 0.5:
            value = rng.randint(-20, 100)
        elif roll < 0.9:
            value = rng.randint(-10 ** 9, 10 ** 9)
        else:
            value = rng.choice([1, -1]) * rng.randint(10 ** (MAX_DIGITS - 1), 10 ** MAX_DIGITS - 1)  # at the limit
        return ("-0" if value == 0 and rng.random() < 0.2 else str(value))

    def number_text(self):
        """A JSON number within the limits: up to 16 digits before and after the point, 2 in the exponent."""
        rng = self.rng
        digits = lambda n: "".join(rng.choice("0123456789") for _ in range(n))
        width = rng.choice([1, 1, 2, 3, 6, MAX_DIGITS])
        whole = "0" if rng.random() < 0.3 else rng.choice("123456789") + digits(width - 1)
        text = ("-" if rng.random() < 0.3 else "") + whole
        if rng.random() < 0.6:
            text += "." + digits(rng.choice([1, 2, 3, MAX_DIGITS]))
        if rng.random() < 0.25:
            text += rng.choice("eE") + rng.choice(["", "+", "-"]) + digits(rng.randint(1, MAX_EXPONENT_DIGITS))
        return text

    def any_value(self, depth):
        rng = self.rng
        roll = rng.random()
        if depth > 4 or roll < 0.6:
            return rng.choice([literal(None), literal(True), ("num", self.number_text(), False),
                               ("str", "".join(rng.choice(STRING_CHARS) for _ in range(rng.randint(0, 5))), False)])
        if roll < 0.8:
            return ("arr", [self.any_value(depth + 1) for _ in range(rng.randint(0, 3))])
        names = rng.sample(PLAIN_NAMES + EXTRA_NAMES, rng.randint(0, 3))
        return ("obj", [(name, self.any_value(depth + 1)) for name in names])


def literal(value):
    return ("lit", compact_text(value), value)


class Writer:
    """Writes a node tree as JSON text: the tokens in order, then whitespace between them.

    Styles: compact (none), pretty (newlines and indentation), loose (random runs of 0-4 bytes),
    edge (some runs of exactly MAX_WHITESPACE bytes). Strings get their required escapes in one of
    JSON's spellings and, with `escape_chance`, optional ones (\\u00e9, \\/, surrogate pairs);
    enum/const values are written in their compact text, as one token.
    """

    def __init__(self, rng, style="compact", escape_chance=0.0, key_escape_chance=0.0):
        self.rng = rng
        self.style = style
        self.escape_chance = escape_chance
        self.key_escape_chance = key_escape_chance

    def text(self, node, long_run=False, trailing=""):
        tokens = []
        self.tokens(node, tokens)
        gaps = self.gaps(tokens)
        if long_run:
            # One run past the limit, at a random gap (gap 0 is before the first token).
            length = self.rng.randint(MAX_WHITESPACE + 1, 30)
            gaps[self.rng.randrange(len(gaps))] = "".join(self.rng.choice(WHITESPACE) for _ in range(length))
        return "".join(gap + token for gap, token in zip(gaps, tokens)) + trailing

    def tokens(self, node, out):
        kind = node[0]
        if kind in ("lit", "num"):
            out.append(node[1])
        elif kind == "str":
            # A format string (plain) takes an optional escape rarely: valid JSON, but seldom written.
            plain_chance = 1 / len(node[1]) if node[1] and self.escape_chance and self.rng.random() < 0.03 else 0.0
            out.append(self.string(node[1], self.escape_chance if not node[2] else plain_chance))
        elif kind == "arr":
            out.append("[")
            for index, item in enumerate(node[1]):
                if index:
                    out.append(",")
                self.tokens(item, out)
            out.append("]")
        else:
            out.append("{")
            for index, (key, value) in enumerate(node[1]):
                if index:
                    out.append(",")
                out.append(self.string(key, self.key_escape_chance))
                out.append(":")
                self.tokens(value, out)
            out.append("}")

    def gaps(self, tokens):
        """The whitespace before each token."""
        rng = self.rng
        if self.style == "compact":
            return [""] * len(tokens)
        if self.style == "pretty":
            indent, depth, gaps, previous = rng.choice(["  ", "    ", "\t"]), 0, [], None
            for token in tokens:
                gap = ""
                if token in ("}", "]"):
                    depth -= 1
                    if previous not in ("{", "["):
                        gap = "\n" + (indent * depth)[:MAX_WHITESPACE - 1]
                elif previous in ("{", "[", ","):
                    gap = "\n" + (indent * depth)[:MAX_WHITESPACE - 1]
                elif previous == ":":
                    gap = " "
                if token in ("{", "["):
                    depth += 1
                gaps.append(gap)
                previous = token
            return gaps
        run = lambda n: "".join(rng.choice(WHITESPACE) for _ in range(n))
        if self.style == "edge":
            return [run(MAX_WHITESPACE) if rng.random() < 0.3 else "" for _ in tokens]
        return [run(rng.randint(1, 4)) if rng.random() < 0.3 else "" for _ in tokens]

    def string(self, text, escape_chance):
        rng = self.rng
        out = ['"']
        for ch in text:
            code = ord(ch)
            short = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}.get(ch)
            if short or code < 0x20:
                # A required escape: its short form or \u, either case of hex digits.
                out.append(short if short and rng.random() < 0.7 else hex_escape(code, rng))
            elif rng.random() < escape_chance:
                if code > 0xFFFF:
                    high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
                    out.append(hex_escape(high, rng) + hex_escape(low, rng))
                else:
                    out.append("\\/" if ch == "/" and rng.random() < 0.5 else hex_escape(code, rng))
            else:
                out.append(ch)
        return "".join(out) + '"'


def hex_escape(code, rng):
    text = f"\\u{code:04x}"
    return text.upper().replace("\\U", "\\u") if rng.random() < 0.3 else text


# MARK: Mutations: near misses, mostly invalid (jsonschema decides)


def nodes_of(node, kinds):
    """Every node in the tree of one of `kinds`, as (parent list, index) slots and the node itself."""
    found = []

    def walk(node, slot):
        if node[0] in kinds:
            found.append((slot, node))
        if node[0] == "arr":
            for index, item in enumerate(node[1]):
                walk(item, (node[1], index, False))
        elif node[0] == "obj":
            for index, (_, value) in enumerate(node[1]):
                walk(value, (node[1], index, True))

    walk(node, None)
    return found


def replace(root, slot, new):
    if slot is None:
        return new
    parent, index, in_object = slot
    parent[index] = (parent[index][0], new) if in_object else new
    return root


def mutate_tree(rng, node):
    """A changed copy of `node` and the mutation's name; None when the tree has nothing to change."""
    node = copy.deepcopy(node)
    name = rng.choice(["drop_key", "add_key", "wrong_type", "long_string", "short_string", "extra_items", "fewer_items",
                       "bad_format", "int_to_fraction", "other_literal", "duplicate_key", "empty_container"])
    if name in ("drop_key", "add_key", "duplicate_key"):
        objects = nodes_of(node, {"obj"})
        if not objects:
            return None
        _, target = rng.choice(objects)
        members = target[1]
        if name == "drop_key":
            if not members:
                return None
            members.pop(rng.randrange(len(members)))
        elif name == "add_key":
            member = (rng.choice(EXTRA_NAMES + PLAIN_NAMES), literal(rng.choice([1, "x", None])))
            members.insert(rng.randint(0, len(members)), member)
        else:
            if not members:
                return None
            key, value = rng.choice(members)
            members.insert(rng.randint(0, len(members)), (key, rng.choice([value, literal(0)])))
        return node, name
    if name == "wrong_type":
        slot, target = rng.choice(nodes_of(node, {"lit", "num", "str", "arr", "obj"}))
        options = [literal(None), literal(True), ("num", "7", True), ("num", "2.5", False), ("str", "text", False),
                   ("arr", []), ("obj", [])]
        return replace(node, slot, rng.choice([o for o in options if o[0] != target[0]] or options)), name
    if name in ("long_string", "short_string", "bad_format"):
        # Format strings only change shape (bad_format): jsonschema's uuid check ignores extra dashes.
        strings = [(s, n) for s, n in nodes_of(node, {"str"}) if n[2] == (name == "bad_format")]
        if not strings:
            return None
        slot, (_, text, plain) = rng.choice(strings)
        if name == "long_string":
            text += "".join(rng.choice(STRING_CHARS) for _ in range(rng.randint(1, 12)))
        elif name == "short_string":
            text = text[:rng.randint(0, max(0, len(text) - 1))]
        else:
            # The shape broken, never the calendar: a letter for a digit, a character dropped or added
            # (never a space: uuid's check, int(text, 16), ignores one at either end).
            index = rng.randrange(len(text))
            how = rng.choice(["letter", "drop", "add"])
            if how == "letter":
                text = text[:index] + rng.choice("xZg/") + text[index + 1:]
            elif how == "drop":
                text = text[:index] + text[index + 1:]
            else:
                text = text[:index] + rng.choice("0123456789") + text[index:]
        return replace(node, slot, ("str", text, plain)), name
    if name in ("extra_items", "fewer_items", "empty_container"):
        containers = nodes_of(node, {"arr"} if name != "empty_container" else {"arr", "obj"})
        if not containers:
            return None
        slot, target = rng.choice(containers)
        items = target[1]
        if name == "extra_items":
            filler = items[-1] if items and rng.random() < 0.7 else literal(rng.choice([1, "x", None]))
            items.extend([filler] * rng.randint(1, 4))
        elif name == "fewer_items":
            if not items:
                return None
            del items[rng.randint(0, len(items) - 1):]
        else:
            items.clear()
        return node, name
    if name == "int_to_fraction":
        numbers = nodes_of(node, {"num"})
        if not numbers:
            return None
        slot, target = rng.choice(numbers)
        # Short enough that the double keeps the .5 (2**53 + 0.5 would round to an integer).
        whole = target[1].split("e")[0].split("E")[0].split(".")[0][:8]
        return replace(node, slot, ("num", whole + ".5", False)), name
    literals = nodes_of(node, {"lit"})
    if not literals:
        return None
    slot, target = rng.choice(literals)
    return replace(node, slot, literal(rng.choice(ENUM_SCALARS + ENUM_COMPOUND))), name


def mutate_text(rng, text):
    """Broken or changed JSON text and the mutation's name."""
    name = rng.choice(["truncate", "trailing_garbage", "drop_char", "trailing_comma", "leading_zero", "bad_number",
                       "bad_escape", "raw_control", "single_quotes", "bad_literal", "empty"])
    if name == "truncate" and len(text) > 1:
        return text[:rng.randrange(1, len(text))], name
    if name == "trailing_garbage":
        return text + rng.choice(["x", "}", "]", ",", " 1", "{}", '"', "null", "\x00"]), name
    if name == "drop_char":
        spots = [i for i, ch in enumerate(text) if ch in ',:"{}[]']
        if spots:
            index = rng.choice(spots)
            return text[:index] + text[index + 1:], name
    if name == "trailing_comma":
        spots = [i for i, ch in enumerate(text) if ch in "}]"]
        if spots:
            index = rng.choice(spots)
            return text[:index] + "," + text[index:], name
    if name in ("leading_zero", "bad_number"):
        spots = number_spans(text)
        if spots:
            start, end = rng.choice(spots)
            number = text[start:end]
            if name == "leading_zero":
                new = number.replace("-", "-0", 1) if number.startswith("-") else "0" + number
            else:
                new = rng.choice(["NaN", "Infinity", "-Infinity", "+1", ".5", "1.", "1e", "-", "0x1F", "1e+", "--1",
                                  "1.2.3"])
            return text[:start] + new + text[end:], name
        return rng.choice(["NaN", "Infinity", "-Infinity", "01", "-"]), name
    if name in ("bad_escape", "raw_control"):
        spots = string_insides(text)
        if spots:
            index = rng.choice(spots)
            if name == "bad_escape":
                new = rng.choice(["\\x", "\\u12G4", "\\u00", "\\U0041", "\\'", "\\a"])
            else:
                new = rng.choice(["\n", "\t", "\x01", "\x1f", "\x00"])
            return text[:index] + new + text[index:], name
    if name == "single_quotes" and '"' in text:
        return text.replace('"', "'"), name
    if name == "bad_literal":
        for word, bad in (("true", "tru"), ("false", "False"), ("null", "nul"), ("null", "None"), ("true", "True")):
            if word in text:
                return text.replace(word, bad, 1), name
    return rng.choice(["", " ", "{", "[", '"', "}", "tru", "nul"]), "empty"


def positions(text):
    """Each offset of JSON-like text with where it stands: "outside" a string, an "opening" quote,
    a plain character "inside" a string, or part of an escape or a closing quote ("other")."""
    index, inside = 0, False
    while index < len(text):
        ch = text[index]
        if not inside:
            inside = ch == '"'
            yield index, "opening" if inside else "outside"
        elif ch == "\\":
            yield index, "other"
            index += 1
        elif ch == '"':
            inside = False
            yield index, "other"
        else:
            yield index, "inside"
        index += 1


def number_spans(text):
    """(start, end) of each number outside strings in JSON-like text."""
    spans = []
    for index, where in positions(text):
        if where != "outside":
            continue
        if spans and spans[-1][1] == index and text[index] in "+-0123456789.eE":
            spans[-1] = (spans[-1][0], index + 1)
        elif text[index] in "-0123456789":
            spans.append((index, index + 1))
    return spans


def string_insides(text):
    """Offsets just after an opening quote or a plain character inside a string."""
    return [index + 1 if where == "opening" else index for index, where in positions(text) if where in ("opening", "inside")]


def restricted_probe(rng, node, writer):
    """A valid document that crosses one stated restriction (a few per run, on purpose, so the
    classification is seen to work) and the restriction's name; None when this value has no place for it."""
    name = rng.choice(["whitespace", "digits", "exponent", "integer-form", "literal-form", "trailing-whitespace"])
    if name == "whitespace":
        return writer.text(node, long_run=True), name
    if name == "trailing-whitespace":
        return writer.text(node, trailing=rng.choice([" ", "\n", "\r\n", "\t"])), name
    node = copy.deepcopy(node)
    if name == "literal-form":
        literals = [(slot, n) for slot, n in nodes_of(node, {"lit"}) if other_form(n[2]) is not None]
        if not literals:
            return None
        slot, target = rng.choice(literals)
        return writer.text(replace(node, slot, ("lit", other_form(target[2]), target[2]))), name
    numbers = [(slot, n) for slot, n in nodes_of(node, {"num"}) if n[2] or name != "integer-form"]
    if not numbers:
        return None
    slot, (_, text, is_integer) = rng.choice(numbers)
    if name == "integer-form":
        new = text + rng.choice([".0", "e0", ".00E+1"]) if text.lstrip("-") != "0" else text + ".0"
    elif name == "digits":
        new = text.split("e")[0].split("E")[0].split(".")[0] + "." + "0" * MAX_DIGITS + "1"
    else:
        mantissa = text.split("e")[0].split("E")[0]
        new = mantissa + "e00" + str(rng.randint(0, 9))
    return writer.text(replace(node, slot, ("num", new, is_integer))), name


def other_form(value):
    """The same JSON value in a form other than its compact text, if it has one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        text = compact_text(value)
        return None if "e" in text else text + ("0" if "." in text else ".0")
    if isinstance(value, str):
        plain = [i for i, ch in enumerate(value) if ord(ch) >= 0x20 and ch not in '"\\']
        if not plain:
            return None
        index = plain[0]
        if ord(value[index]) > 0xFFFF:
            return None
        return swift_quoted(value[:index])[:-1] + f"\\u{ord(value[index]):04x}" + swift_quoted(value[index + 1:])[1:]
    if isinstance(value, dict) and len(value) >= 2:
        return "{" + ",".join(swift_quoted(k) + ":" + compact_text(value[k]) for k in sorted(value, reverse=True)) + "}"
    spaced = json.dumps(value, separators=(", ", ": "), ensure_ascii=False)
    return spaced if spaced != compact_text(value) else None


def documents_for(rng, schema, count):
    """(text, label) pairs for `schema`: valid samples, tree and text mutations, a few restricted probes."""
    sampler = Sampler(rng, schema)
    samples = []
    for _ in range(count):
        try:
            samples.append(sampler.sample(schema))
        except TooDeep:
            pass
    documents = []
    for node in samples:
        style = rng.choice(["compact", "compact", "pretty", "loose", "edge"])
        escapes = rng.choice([0.0, 0.0, 0.1, 0.4])
        writer = Writer(rng, style, escape_chance=escapes, key_escape_chance=0.1 if rng.random() < 0.05 else 0.0)
        text = writer.text(node)
        label = f"sample/{style}" + ("/escapes" if escapes else "") + ("/key-escapes" if writer.key_escape_chance else "")
        if rng.random() < 0.1 and not text[:1].isspace():
            text, label = " \n" + text, label + "/leading-space"
        documents.append((text, label))
        mutated = mutate_tree(rng, node)
        if mutated:
            documents.append((Writer(rng, style).text(mutated[0]), "tree/" + mutated[1]))
        broken, how = mutate_text(rng, text)
        documents.append((broken, "text/" + how))
        if rng.random() < 0.04:
            probe = restricted_probe(rng, node, Writer(rng, "compact"))
            if probe:
                documents.append((probe[0], "probe/" + probe[1]))
    unique, seen = [], set()
    for text, label in documents:
        if text not in seen:
            seen.add(text)
            unique.append((text, label))
    return unique


# Hand-written cases run before the random ones. First the stated restrictions, each crossed
# once, so the restricted class is always seen to work (these documents must come out restricted
# or agree, never as failures).
PINNED_RESTRICTED = [
    ({"type": "array", "items": {"type": "integer"}, "maxItems": 3},
     ["[" + " " * 25 + "1]", "[" + " " * 24 + "1]", "[12345678901234567]", "[1.0]", "[1e2]", "[1]\n"]),
    ({"type": "number"}, ["1e100", "1.12345678901234567", "0.5"]),
    ({"enum": ["é", 1, {"a": 1, "b": 2}]},
     ['"\\u00e9"', "1.0", '{"b":2,"a":1}', '{"a": 1, "b": 2}', '"é"', '{"a":1,"b":2}']),
]

# Then the disagreements this test found (minimal forms), kept as regression cases: each was a
# failure until the recognizer was fixed, and must agree now.
PINNED_FOUND = [
    # A surrogate pair is one character to JSON Schema (we count two).
    ({"type": "string", "maxLength": 1}, ['"\\ud83d\\ude00"']),
    ({"type": "string", "minLength": 2}, ['"\\ud83d\\ude00"']),
    # Keywords beside enum, const and anyOf hold too (we drop them).
    ({"type": "string", "enum": ["a", None]}, ["null", '"a"']),
    ({"enum": ["a", "abcdef"], "maxLength": 3}, ['"abcdef"']),
    # Keys that need an escape, and keys written with one (we take keys only plainly).
    ({"type": "object", "properties": {'a"b': {"type": "integer"}}, "required": ['a"b'], "additionalProperties": False},
     ['{"a\\"b":1}']),
    ({"type": "object", "properties": {}, "additionalProperties": True}, ['{"\\u00e9":1}', '{"é":1}']),
    # A format string written with an escape: a stated restriction now (format-escape).
    ({"type": "string", "format": "date"}, ['"\\u0032024-01-01"', '"2024-01-01"']),
    # More than 64 ways at once: values sharing a prefix, and a tagged union whose branches
    # each split per item of a list of int | float (we drop the ways past 64).
    ({"enum": [f"option_{i}" for i in range(70)]}, ['"option_0"', '"option_69"']),
    ({"anyOf": [{"type": "object",
                 "properties": {"kind": {"const": tag},
                                "xs": {"type": "array", "items": {"anyOf": [{"type": "integer"}, {"type": "number"}]}}},
                 "required": ["kind", "xs"], "additionalProperties": False} for tag in ("a", "b")]},
     ['{"xs":[1,2,3,4,5,6],"kind":"a"}', '{"xs":[1,2,3,4,5,6],"kind":"b"}']),
    # With --tokenizer: a plain token longer than the shorter string's room, which the other allows.
    ({"anyOf": [{"type": "string", "maxLength": 1}, {"type": "string"}]}, ['"hello world"']),
]


# Schemas the compiler refuses by design, each with the words its message must hold: a schema no
# value can satisfy, and keywords beside anyOf (an intersection the recognizer does not compute).
PINNED_REFUSED = [
    ({"type": "integer", "const": 1.5}, "no value satisfies"),
    ({"type": "string", "maxLength": 2, "anyOf": [{"type": "string"}, {"type": "integer"}]}, "'maxLength' beside 'anyOf'"),
    ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, "may both match"),
]


# MARK: Verdicts


def reference_verdict(validator, text):
    """(valid, why) from jsonschema: the text parsed strictly, then validated."""
    def no_constant(name):
        raise ValueError(f"{name} is not JSON")

    def no_duplicates(pairs):
        # json.loads keeps the last of duplicate keys; RFC 8259 leaves them undefined and the
        # recognizer refuses them, so here they make the document invalid too.
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate key")
        return dict(pairs)

    try:
        value = json.loads(text, parse_constant=no_constant, object_pairs_hook=no_duplicates)
    except (ValueError, RecursionError) as error:
        return False, f"not JSON: {str(error)[:80]}"
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return True, "valid"
    return False, f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message[:100]}"


def run_json_check(lm, schema, texts, tokenizer, keep_dir, tag):
    """Our verdicts for `texts` (one json-check run), or (None, error) when the schema is refused."""
    directory = keep_dir or tempfile.mkdtemp(prefix="schema-diff-")
    schema_path = os.path.join(directory, f"{tag}.schema.json")
    docs_path = os.path.join(directory, f"{tag}.docs.jsonl")
    with open(schema_path, "w", encoding="utf-8") as file:
        json.dump(schema, file, ensure_ascii=False)
    with open(docs_path, "w", encoding="utf-8") as file:
        for text in texts:
            file.write(json.dumps(text) + "\n")
    command = [lm, "json-check", "--schema", schema_path] + (["--tokenizer", tokenizer] if tokenizer else []) + [docs_path]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    finally:
        if not keep_dir:
            for path in (schema_path, docs_path):
                os.remove(path)
            os.rmdir(directory)
    if result.returncode != 0:
        return None, result.stderr.strip().splitlines()[0] if result.stderr.strip() else f"exit {result.returncode}"
    verdicts = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    if len(verdicts) != len(texts):
        raise RuntimeError(f"json-check printed {len(verdicts)} verdicts for {len(texts)} documents ({tag})")
    return verdicts, None


# MARK: Explaining a refusal by the stated restrictions


def value_spans(text):
    """The spans of every value in valid JSON `text` as (start, end, kind), and where the top
    value ends. `text` must be JSON json.loads accepts."""
    spans = []

    def skip(index):
        while index < len(text) and text[index] in WHITESPACE:
            index += 1
        return index

    def value(index):
        index = skip(index)
        start, ch = index, text[index]
        if ch == "{":
            index = skip(index + 1)
            while text[index] != "}":
                key_end = string(index)
                spans.append((index, key_end, "key"))
                index = key_end
                index = value(skip(index) + 1)  # past the colon
                index = skip(index)
                if text[index] == ",":
                    index = skip(index + 1)
            spans.append((start, index + 1, "object"))
            return index + 1
        if ch == "[":
            index = skip(index + 1)
            while text[index] != "]":
                index = skip(value(index))
                if text[index] == ",":
                    index = skip(index + 1)
            spans.append((start, index + 1, "array"))
            return index + 1
        if ch == '"':
            end = string(index)
            spans.append((start, end, "string"))
            return end
        end = index
        while end < len(text) and text[end] not in WHITESPACE + ",]}":
            end += 1
        spans.append((start, end, "number" if ch in "-0123456789" else "literal"))
        return end

    def string(index):
        index += 1
        while text[index] != '"':
            index += 2 if text[index] == "\\" else 1
        return index + 1

    return spans, value(0)


def character_index(text, at_byte):
    """The index of the character holding UTF-8 byte `at_byte` of `text` (len(text) past the end)."""
    offset = 0
    for index, ch in enumerate(text):
        offset += len(ch.encode("utf-8", "surrogatepass"))
        if offset > at_byte:
            return index
    return len(text)


def canonical_number(token):
    """A number's text within the limits, its value kept; None when there is none."""
    number = json.loads(token)
    if not math.isfinite(number):
        return None
    if isinstance(number, int) or number.is_integer():
        whole = str(int(number))
        return whole if len(whole.lstrip("-")) <= MAX_DIGITS else None
    text = repr(number)
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.lstrip("-").partition(".")
    fits = len(whole) <= MAX_DIGITS and len(fraction) <= MAX_DIGITS and len(exponent.lstrip("+-")) <= MAX_EXPONENT_DIGITS
    return text if fits else None


def number_limit_crossed(token, offset):
    """Which digit limit the byte at `offset` of a number token crosses, if any."""
    mantissa, exponent = token, ""
    for marker in "eE":
        if marker in token:
            mantissa, exponent = token.split(marker, 1)
    whole_start = 1 if mantissa.startswith("-") else 0
    whole, _, fraction = mantissa[whole_start:].partition(".")
    fraction_start = whole_start + len(whole) + 1
    exponent_start = len(mantissa) + 1 + (1 if exponent[:1] in ("+", "-") else 0)
    # Ours refuses the first digit past a limit, so only that byte is explained.
    if len(whole) > MAX_DIGITS and offset == whole_start + MAX_DIGITS:
        return "digits"
    if len(fraction) > MAX_DIGITS and offset == fraction_start + MAX_DIGITS:
        return "digits"
    if len(exponent.lstrip("+-")) > MAX_EXPONENT_DIGITS and offset == exponent_start + MAX_EXPONENT_DIGITS:
        return "exponent"
    return None


def explain_refusal(text, at_byte, facts):
    """Why we may refuse valid `text` at UTF-8 byte `at_byte`: ([RESTRICTIONS names], the text
    rewritten without that cause to check again, or None when it cannot be written away), or
    None when no stated restriction explains the refusal.

    The byte we refuse is where the last way still open ended. With one way that is the
    restricted form itself, and only it is rewritten. With several (anyOf, a type list, enum)
    the way that took the form may have ended earlier, so then every restricted form in the
    text is rewritten at once."""
    at = character_index(text, at_byte)
    spans, end = value_spans(text)
    if end <= at < len(text) and not text[end:].strip(WHITESPACE):
        return ["trailing-whitespace"], text[:end]
    if at >= len(text):
        at = end - 1  # a valid prefix, unfinished: its last value is the suspect
    containing = sorted((s for s in spans if s[0] <= at < s[1]), key=lambda s: s[1] - s[0])  # innermost first
    inner = containing[0] if containing else None
    if text[at] in WHITESPACE and (inner is None or inner[2] not in ("string", "key")):
        run_start, run_end = whitespace_run(text, at)
        if at - run_start >= MAX_WHITESPACE:
            return ["whitespace"], text[:run_start] + text[run_start:run_start + MAX_WHITESPACE] + text[run_end:]
    if inner and inner[2] == "number":
        start, stop, _ = inner
        token = text[start:stop]
        crossed = number_limit_crossed(token, at - start)
        if crossed:
            canonical = canonical_number(token)
            return [crossed], text[:start] + canonical + text[stop:] if canonical else None
    for start, stop, kind in containing:
        literal_text = facts.compact_literal(text[start:stop]) if kind != "key" else None
        if literal_text:
            return ["literal-form"], text[:start] + literal_text + text[stop:]
    if inner and inner[2] == "string" and text[at] == "\\":
        # An escape inside a string whose plain form has a format's shape (a date, a uuid).
        start, stop, _ = inner
        plain = json.loads(text[start:stop])
        if FORMAT_SHAPE.fullmatch(plain):
            return ["format-escape"], text[:start] + json.dumps(plain) + text[stop:]
    if inner and inner[2] == "number" and facts.has_integer:
        start, stop, _ = inner
        token = text[start:stop]
        # Ours refuses an integer's "." or "e" itself.
        if integral_with_fraction(token) and at - start == fraction_marker(token):
            canonical = canonical_number(token)
            return ["integer-form"], text[:start] + canonical + text[stop:] if canonical else None
    if facts.several_ways:
        names, rewritten = rewrite_restricted_forms(text, spans, end, facts)
        if names:
            return names, rewritten
    return None


def rewrite_restricted_forms(text, spans, end, facts):
    """Every restricted form in `text` written in the form the recognizer takes: whitespace runs
    cut to the limit, trailing whitespace dropped, numbers within the digit limits, integral
    numbers as integers (when the schema has integers), enum/const values in compact text."""
    edits = []  # (start, stop, new text, restriction)
    if text[end:].strip(WHITESPACE) == "" and end < len(text):
        edits.append((end, len(text), "", "trailing-whitespace"))
    covered = []
    for start, stop, kind in sorted(spans, key=lambda s: s[0] - s[1]):  # outermost first
        if kind == "key" or any(a <= start and stop <= b for a, b in covered):
            continue
        token = text[start:stop]
        literal_text = facts.compact_literal(token)
        if literal_text:
            edits.append((start, stop, literal_text, "literal-form"))
            covered.append((start, stop))
        elif kind == "number":
            canonical = canonical_number(token)
            crossed = number_limit_crossed_anywhere(token)
            if crossed:
                edits.append((start, stop, canonical or ("1" if integral_with_fraction(token) else "0.5"), crossed))
            elif facts.has_integer and integral_with_fraction(token) and canonical:
                edits.append((start, stop, canonical, "integer-form"))
    index = 0
    while index < end:
        if text[index] in WHITESPACE and not any(a < index < b for a, b, k in spans if k in ("string", "key")):
            run_start, run_end = whitespace_run(text, index)
            if run_end - run_start > MAX_WHITESPACE:
                edits.append((run_start + MAX_WHITESPACE, run_end, "", "whitespace"))
            index = run_end
        else:
            index += 1
    for start, stop, new, _ in sorted(edits, reverse=True):
        text = text[:start] + new + text[stop:]
    return list(dict.fromkeys(name for *_, name in edits)), text


def whitespace_run(text, at):
    start, stop = at, at
    while start > 0 and text[start - 1] in WHITESPACE:
        start -= 1
    while stop < len(text) and text[stop] in WHITESPACE:
        stop += 1
    return start, stop


def integral_with_fraction(token):
    """An integer to JSON Schema (1.0, 1e2; also 2**53 + 0.5, which a double rounds) written with "." or "e"."""
    number = json.loads(token)
    return isinstance(number, float) and math.isfinite(number) and number.is_integer()


def fraction_marker(token):
    return min([token.index(c) for c in ".eE" if c in token] or [len(token)])


def number_limit_crossed_anywhere(token):
    for offset in range(len(token)):
        crossed = number_limit_crossed(token, offset)
        if crossed:
            return crossed
    return None


class SchemaFacts:
    """What explaining a refusal needs to know of a schema."""

    def __init__(self, schema):
        self.literals = literal_values_in(schema)
        text = json.dumps(schema)
        self.has_integer = '"integer"' in text
        # Where the recognizer may keep several ways at once.
        self.several_ways = any(key in text for key in ('"anyOf"', '"oneOf"', '"enum"', '"type": ['))

    def compact_literal(self, token):
        """The compact text of the enum/const value `token` equals, when `token` is another form of it."""
        value = json.loads(token)
        for candidate in self.literals:
            if json_equal(value, candidate) and token != compact_text(candidate):
                return compact_text(candidate)
        return None


# MARK: The run


class Report:
    FAILURES = ("OURS-ACCEPTS-INVALID", "OURS-REJECTS-VALID", "UNREACHABLE", "SCHEMA-REFUSED")

    def __init__(self):
        self.schemas = 0
        self.documents = 0
        self.agree_valid = 0
        self.agree_invalid = 0
        self.restricted = {}  # restriction name -> count
        self.examples = {name: [] for name in self.FAILURES + ("restricted",)}
        self.refusals_missed = 0  # PINNED_REFUSED schemas compiled, or refused without naming why
        self.unsatisfiable = 0  # schemas refused as unsatisfiable, rightly (no document valid)

    def add(self, kind, example):
        self.examples[kind].append(example)

    def failures(self):
        return sum(len(self.examples[name]) for name in self.FAILURES) + self.refusals_missed


def check_schema(args, report, schema, documents, tag, repro):
    """Runs one schema's documents through both validators and files each verdict."""
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    texts = [text for text, _ in documents]
    ours, refusal = run_json_check(args.lm, schema, texts, args.tokenizer, args.keep, tag)
    report.schemas += 1
    if ours is None:
        # A schema no value satisfies may be refused (constrained decoding could write nothing);
        # then none of its documents may be valid to jsonschema either.
        if "no value satisfies" in (refusal or "") and not any(reference_verdict(validator, text)[0] for text, _ in documents):
            report.unsatisfiable += 1
            return
        report.add("SCHEMA-REFUSED",
                   {"schema": schema, "document": None, "label": "", "python": "", "ours": refusal, "repro": repro})
        return
    if args.plant_bug:
        # The harness's own check: a recognizer that accepted one invalid document per schema.
        for index, (text, _) in enumerate(documents):
            if not reference_verdict(validator, text)[0] and not ours[index]["valid"]:
                ours[index] = {"valid": True}
                break
    facts = SchemaFacts(schema)
    retry = []  # (text, byte we refused, restrictions written away so far, example) to look at again
    for index, (text, label) in enumerate(documents):
        report.documents += 1
        valid, why = reference_verdict(validator, text)
        verdict = ours[index]
        example = {"schema": schema, "document": text, "label": label, "python": why, "ours": verdict, "repro": repro}
        if valid == verdict["valid"]:
            if valid:
                report.agree_valid += 1
                if args.tokenizer and verdict.get("reachable") is not True:
                    report.add("UNREACHABLE", example)
            else:
                report.agree_invalid += 1
        elif verdict["valid"]:
            report.add("OURS-ACCEPTS-INVALID", example)
        else:
            retry.append((text, verdict["at"], [], example))
    # A refusal of a valid document: rewrite its cause away while a stated restriction explains
    # it, and run ours again, until ours accepts (restricted) or a cause is left unexplained.
    for round_number in range(8):
        again = []
        for text, at, reasons, example in retry:
            explained = explain_refusal(text, at, facts)
            if explained is None:
                if reasons:
                    # Refused again after restrictions were written away: show that text.
                    example["rewritten"] = {"restrictions": reasons, "document": text, "at": at}
                report.add("OURS-REJECTS-VALID", example)
                continue
            names, rewritten = explained
            reasons = reasons + names
            if rewritten is None or not reference_verdict(validator, rewritten)[0]:
                file_restricted(report, example, reasons)
            else:
                again.append((rewritten, reasons, example))
        if not again:
            return
        texts = [text for text, _, _ in again]
        verdicts, _ = run_json_check(args.lm, schema, texts, None, None, f"{tag}-retry{round_number}")
        retry = []
        for (text, reasons, example), verdict in zip(again, verdicts):
            if verdict["valid"]:
                file_restricted(report, example, reasons)
            else:
                retry.append((text, verdict["at"], reasons, example))
    for _, _, _, example in retry:
        report.add("OURS-REJECTS-VALID", example)


def file_restricted(report, example, reasons):
    for name in dict.fromkeys(reasons):
        report.restricted[name] = report.restricted.get(name, 0) + 1
    example["restrictions"] = list(dict.fromkeys(reasons))
    report.add("restricted", example)


def print_summary(args, report, seconds):
    failures = report.failures()
    agree = report.agree_valid + report.agree_invalid
    print(f"schema_differential: seed {args.seed}, {report.schemas} schemas, {report.documents} documents, {seconds:.1f} s"
          + (f", reachability with {os.path.basename(args.tokenizer)}" if args.tokenizer else ""))
    print(f"  agree                  {agree:6d}  ({report.agree_valid} valid, {report.agree_invalid} invalid)")
    restricted = ", ".join(f"{name} {count}" for name, count in sorted(report.restricted.items()))
    print(f"  restricted             {len(report.examples['restricted']):6d}  ({restricted or 'none'})")
    print(f"  unsatisfiable, refused {report.unsatisfiable:6d}  (schemas no value satisfies, refused by name; no document valid)")
    print(f"  refused by design      {len(PINNED_REFUSED) - report.refusals_missed:6d} of {len(PINNED_REFUSED)} (PINNED_REFUSED, refused naming why)")
    for name in Report.FAILURES:
        if name != "UNREACHABLE" or args.tokenizer:
            print(f"  {name:22s} {len(report.examples[name]):6d}")
    for name in Report.FAILURES + ("restricted",):
        examples = report.examples[name]
        if not examples:
            continue
        limit = args.examples if name != "restricted" else min(args.examples, len(RESTRICTIONS))
        labels = ", ".join(f"{label} {count}" for label, count in count_labels(examples))
        print(f"\n{name}: {len(examples)}; by label: {labels}")
        if name == "restricted":
            for restriction in sorted(report.restricted):
                print(f"  ({restriction}: {RESTRICTIONS[restriction]})")
        for example in pick_examples(examples, limit):
            print_example(example)
    print("\nFAIL" if failures else "\nOK", f"({failures} failures)" if failures else "")


def count_labels(examples):
    counts = {}
    for example in examples:
        counts[example["label"]] = counts.get(example["label"], 0) + 1
    return sorted(counts.items(), key=lambda item: -item[1])


def pick_examples(examples, limit):
    """Short ones first, one per restriction, schema, then label, before any twice: a bug in one
    schema shows up in most of its documents, and different bugs should show up here."""
    ordered = sorted(examples, key=lambda e: len(json.dumps(e["schema"])) + len(e["document"] or ""))
    picked = []
    for key in (lambda e: tuple(e.get("restrictions", ())), lambda e: e["repro"], lambda e: e["label"], id):
        seen = {key(e) for e in picked}
        for example in ordered:
            if len(picked) < limit and key(example) not in seen and example not in picked:
                picked.append(example)
                seen.add(key(example))
    return picked


def print_example(example):
    restrictions = f"  restrictions: {', '.join(example['restrictions'])}" if "restrictions" in example else ""
    print(f"  - {example['repro']}  [{example['label']}]{restrictions}")
    print(f"    schema:   {shorten(json.dumps(example['schema'], ensure_ascii=False), 600)}")
    if example["document"] is not None:
        print(f"    document: {shorten(json.dumps(example['document'], ensure_ascii=False), 400)}")
        print(f"    python:   {example['python']}")
    print(f"    ours:     {shorten(json.dumps(example['ours'], ensure_ascii=False), 300)}")
    if example["document"] is not None and "at" in example["ours"]:
        print(f"    refused:  {near(example['document'], example['ours']['at'])}")
    if "rewritten" in example:
        rewritten = example["rewritten"]
        print(f"    after writing away {', '.join(rewritten['restrictions'])}: "
              f"refused {near(rewritten['document'], rewritten['at'])}")


def near(text, at_byte):
    """The text around UTF-8 byte `at_byte`, the refused character marked: ab⟦c⟧de."""
    at = character_index(text, at_byte)
    shown = lambda part: json.dumps(part, ensure_ascii=False)[1:-1]
    before = shown(text[max(0, at - 24):at])
    return f"…{before}⟦{shown(text[at])}⟧{shown(text[at + 1:at + 24])}…" if at < len(text) else f"…{before}⟦end⟧"


def shorten(text, limit):
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--lm", default=os.path.join(repository, ".build", "release", "lm"),
                        help="the lm binary (default: .build/release/lm)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--schemas", type=int, default=40, help="random schemas to generate")
    parser.add_argument("--documents", type=int, default=20,
                        help="valid samples per schema (each also gets its near misses)")
    parser.add_argument("--tokenizer", help="also require each valid document to be reachable in this tokenizer's split")
    parser.add_argument("--only", type=int, help="run only this schema of the seed (to reproduce one)")
    parser.add_argument("--examples", type=int, default=5, help="examples printed per class")
    parser.add_argument("--keep", help="keep each schema's files in this directory")
    parser.add_argument("--no-pinned", action="store_true", help="skip the hand-written cases")
    parser.add_argument("--plant-bug", action="store_true", help="flip one of our verdicts per schema (the run must fail)")
    args = parser.parse_args()
    if not os.access(args.lm, os.X_OK):
        parser.error(f"--lm {args.lm}: not an executable (build it: swift build -c release --product lm)")
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)

    report = Report()
    started = time.monotonic()
    if not args.no_pinned and args.only is None:
        for number, (schema, words) in enumerate(PINNED_REFUSED):
            with tempfile.TemporaryDirectory() as folder:
                path = os.path.join(folder, "refused.schema.json")
                with open(path, "w", encoding="utf-8") as file:
                    json.dump(schema, file)
                run = subprocess.run([args.lm, "json-check", "--schema", path], input="", capture_output=True, text=True)
            if run.returncode == 0 or words not in run.stderr:
                print(f"FAIL pinned refused case {number}: {json.dumps(schema)} should be refused with '{words}': "
                      f"exit {run.returncode}, {run.stderr.strip()[:200]}")
                report.refusals_missed += 1
        for name, cases in (("restricted", PINNED_RESTRICTED), ("found", PINNED_FOUND)):
            for number, (schema, texts) in enumerate(cases):
                check_schema(args, report, schema, [(text, f"pinned/{name}") for text in texts], f"pinned-{name}{number}",
                             f"pinned {name} case {number}")
    for number in range(args.schemas):
        if args.only is not None and number != args.only:
            continue
        # One generator per schema, so --only reproduces a schema and its documents exactly.
        rng = random.Random(args.seed * 1_000_003 + number)
        schema = SchemaGenerator(rng).root()
        jsonschema.Draft202012Validator.check_schema(schema)
        check_schema(args, report, schema, documents_for(rng, schema, args.documents), f"schema{number}",
                     f"--seed {args.seed} --only {number}")
    print_summary(args, report, time.monotonic() - started)
    sys.exit(1 if report.failures() else 0)


if __name__ == "__main__":
    main()
