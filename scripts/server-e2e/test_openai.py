#!/usr/bin/env python3
"""End-to-end checks of a running lm-serve, the OpenAI-compatible server.

Talks to the server two ways: through the official `openai` package, as a real client would, and
through raw `http.client` for what that library hides or would refuse to send: status codes and
error bodies, malformed and oversized bodies, the SSE framing itself, and a client that hangs up
in the middle of a stream.

    python3 test_openai.py --base-url http://127.0.0.1:8080 --model MODEL_ID [--api-key KEY]

Prints one PASS, FAIL or SKIP line per check and a closing "N passed, N failed, N skipped" line;
exits 1 when any check failed. Needs `openai`, `jsonschema` and `prometheus_client` (PyPI) and the
standard library.
"""

import argparse
import http.client
import json
import re
import select
import socket
import sys
import time
import traceback
import urllib.parse

import random

import jsonschema
import pydantic
from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families

# Prompts whose greedy answers the checks compare. Chosen so that a small instruct model answers
# with a few words of ordinary text (several words are needed by the stop-string check).
CHAT_PROMPT = "What is the capital of France? Answer in one sentence."
COMPLETION_PROMPT = "The three primary colors are"
STORY_PROMPT = "Write a very long story about a dragon who learns to sing. Make it at least ten pages long."
MAX_TOKENS = 24

ERROR_TYPES = {"invalid_request_error", "authentication_error", "not_found_error", "rate_limit_error", "server_error"}
ANY = object()  # "do not check this field of the error body"


class Report:
    """Counts and prints one line per check."""

    def __init__(self):
        self.passed = self.failed = self.skipped = 0

    def check(self, ok, name, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}" + (f": {detail}" if detail else ""), flush=True)
        return ok

    def skip(self, name, why):
        self.skipped += 1
        print(f"SKIP {name}: {why}", flush=True)


class RawHTTP:
    """Plain http.client requests, so that every byte sent and every status received is ours to choose and see."""

    def __init__(self, base_url, api_key, timeout):
        parts = urllib.parse.urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.api_key, self.timeout = api_key, timeout

    def connection(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def headers(self, key="configured", extra=None):
        """key: "configured" sends --api-key (if any), None sends no Authorization header, any other string is sent as the key."""
        headers = {"Content-Type": "application/json"}
        if key == "configured":
            key = self.api_key
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        headers.update(extra or {})
        return headers

    def request(self, method, path, body=None, key="configured"):
        """Returns (status, body bytes, parsed JSON or None). body may be a dict (sent as JSON) or raw bytes."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        conn = self.connection()
        try:
            conn.request(method, path, body=body, headers=self.headers(key))
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = None
        return response.status, data, parsed

    def health(self):
        status, _, parsed = self.request("GET", "/health", key=None)
        if status != 200 or not isinstance(parsed, dict):
            raise RuntimeError(f"GET /health answered {status}")
        return parsed

    def post_oversized(self, path, total_bytes):
        """POSTs a valid JSON body of total_bytes and returns (status, parsed JSON or None).

        A server may answer 413 as soon as it has read the Content-Length and then close without
        reading the rest; if we kept writing, the kernel could answer our bytes with a reset that
        discards the 413 still unread in our receive buffer. So the body goes out in pieces, and we
        stop sending as soon as the socket has something to read (or the server stops reading)."""
        filler = total_bytes - len(b'{"messages":[{"role":"user","content":""}]}')
        body = b'{"messages":[{"role":"user","content":"' + b"a" * filler + b'"}]}'
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        try:
            head = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
            head += [f"{name}: {value}" for name, value in self.headers().items()]
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            for start in range(0, len(body), 64 * 1024):
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                try:
                    sock.sendall(body[start:start + 64 * 1024])
                except (BrokenPipeError, ConnectionResetError):
                    break
            response = http.client.HTTPResponse(sock)
            response.begin()
            data = response.read()
        finally:
            sock.close()
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = None
        return response.status, parsed


def read_sse(response):
    """Yields the payload of each `data:` line of a text/event-stream response until its body ends."""
    while True:
        line = response.readline()
        if not line:
            return
        line = line.rstrip(b"\r\n")
        if line.startswith(b"data:"):
            yield line[len(b"data:"):].lstrip(b" ").decode()


def error_problems(status, parsed, want_status, want_type=ANY, param=ANY, code=ANY, names=None):
    """What is wrong with an error answer (empty when nothing): status, and the body's shape
    {"error":{"message","type","param","code"}} with the expected values. names: a string the
    error must name, in its message or its param (the API says the message names the field)."""
    problems = []
    if status != want_status:
        problems.append(f"status {status}, expected {want_status}")
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        problems.append(f"body is not {{\"error\": {{...}}}}: {parsed!r:.200}")
        return problems
    missing = [key for key in ("message", "type", "param", "code") if key not in error]
    if missing:
        problems.append(f"error lacks {missing}")
    message = error.get("message")
    if not isinstance(message, str) or not message:
        problems.append(f"message {message!r} is not a non-empty string")
        message = ""
    if error.get("type") not in ERROR_TYPES:
        problems.append(f"type {error.get('type')!r} is not one of the documented types")
    if want_type is not ANY and error.get("type") != want_type:
        problems.append(f"type {error.get('type')!r}, expected {want_type!r}")
    for key in ("param", "code"):
        if key in error and error[key] is not None and not isinstance(error[key], str):
            problems.append(f"{key} {error[key]!r} is neither a string nor null")
    if param is not ANY and error.get("param") != param:
        problems.append(f"param {error.get('param')!r}, expected {param!r}")
    if code is not ANY and error.get("code") != code:
        problems.append(f"code {error.get('code')!r}, expected {code!r}")
    if names is not None:
        # A bare word like "n" would match almost any message: for those ask for a whole word.
        pattern = r"\b" + re.escape(names) + r"\b"
        if error.get("param") != names and not re.search(pattern, message):
            problems.append(f"the error does not name {names!r} (message {message!r}, param {error.get('param')!r})")
    return problems


def counts(usage):
    """A usage object's token counts; the cached share of the prompt differs between a request and
    the same request again (the prompt cache), the counts do not."""
    return None if usage is None else (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)


def random_schema(rng, depth):
    """A random JSON schema of the subset lm-serve constrains to."""
    kinds = ["string", "integer", "number", "boolean", "enum", "format"] if depth == 0 else ["object", "object", "array", "anyOf", "string", "integer"]
    kind = rng.choice(kinds)
    if kind == "object":
        names = rng.sample(["id", "name", "tags", "kind", "value", "count"], rng.randint(1, 3))
        properties = {name: random_schema(rng, depth - 1) for name in names}
        return {"type": "object", "properties": properties, "required": [n for n in names if rng.random() < 0.7],
                "additionalProperties": False}
    if kind == "array":
        low = rng.randint(0, 2)
        return {"type": "array", "items": random_schema(rng, depth - 1), "minItems": low, "maxItems": low + rng.randint(0, 3)}
    if kind == "anyOf":
        return {"anyOf": [random_schema(rng, depth - 1), {"type": "null"}]}
    if kind == "string":
        return {"type": "string", "maxLength": rng.randint(3, 30)}
    if kind == "enum":
        return {"enum": rng.sample(["red", "green", "blue", 1, None, True], rng.randint(1, 3))}
    if kind == "format":
        return {"type": "string", "format": rng.choice(["date", "date-time", "uuid"])}
    return {"type": kind}


class Suite:
    def __init__(self, args):
        self.args = args
        self.report = Report()
        self.model = args.model
        # max_retries=0: a retried 429 or 500 must show as a failure, not be hidden by the client.
        self.client = OpenAI(base_url=args.base_url + "/v1", api_key=args.api_key or "no-key",
                             max_retries=0, timeout=args.timeout)
        self.raw = RawHTTP(args.base_url, args.api_key, args.timeout)
        self._greedy = {}

    # Reference answers, made once and shared by the checks that compare with them.

    def greedy_chat(self, prompt=CHAT_PROMPT, max_tokens=MAX_TOKENS):
        key = ("chat", prompt, max_tokens)
        if key not in self._greedy:
            self._greedy[key] = self.client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": prompt}],
                temperature=0, max_tokens=max_tokens)
        return self._greedy[key]

    def greedy_completion(self, prompt=COMPLETION_PROMPT, max_tokens=MAX_TOKENS):
        key = ("completion", prompt, max_tokens)
        if key not in self._greedy:
            self._greedy[key] = self.client.completions.create(
                model=self.model, prompt=prompt, temperature=0, max_tokens=max_tokens)
        return self._greedy[key]

    def stream_chat(self, **options):
        """A streamed chat completion through the openai client: (text, chunks)."""
        options = {"model": self.model, **options}
        chunks = list(self.client.chat.completions.create(stream=True, **options))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return text, chunks

    # The checks, in the order they run.

    def test_health(self):
        health = self.raw.health()
        ok = (health.get("status") == "ok" and health.get("model") == self.model
              and isinstance(health.get("slots"), int) and health["slots"] > 0
              and health.get("active") == 0 and health.get("queued") == 0)
        self.report.check(ok, "GET /health: status ok, this model, slots > 0, idle", repr(health))

    def test_models(self):
        ids = [m.id for m in self.client.models.list().data]
        self.report.check(self.model in ids, f"models.list() contains {self.model!r}", f"got {ids}")

    def test_chat(self):
        r = self.greedy_chat()
        choice, usage = r.choices[0], r.usage
        self.report.check(r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.model == self.model
                          and len(r.choices) == 1 and choice.message.role == "assistant",
                          "chat: object, id, model, one assistant choice",
                          f"object {r.object!r}, id {r.id!r}, model {r.model!r}, {len(r.choices)} choices")
        self.report.check(bool(choice.message.content), "chat: non-empty content", repr(choice.message.content))
        self.report.check(choice.finish_reason in ("stop", "length"), "chat: finish_reason stop or length",
                          repr(choice.finish_reason))
        self.report.check(usage is not None and usage.prompt_tokens > 0
                          and 0 < usage.completion_tokens <= MAX_TOKENS
                          and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens,
                          f"chat: usage consistent (total = prompt + completion, completion <= {MAX_TOKENS})", repr(usage))

    def test_chat_stream(self):
        reference = self.greedy_chat()
        text, chunks = self.stream_chat(messages=[{"role": "user", "content": CHAT_PROMPT}], temperature=0,
                                        max_tokens=MAX_TOKENS, stream_options={"include_usage": True})
        # Reaching this line means the openai client's iteration ended (at `data: [DONE]` or the end of the body).
        self.report.check(text == reference.choices[0].message.content, "chat stream: pieces concatenated equal the non-streamed answer",
                          f"streamed {text!r}, non-streamed {reference.choices[0].message.content!r}")
        with_choices = [c for c in chunks if c.choices]
        first = with_choices[0].choices[0].delta if with_choices else None
        self.report.check(first is not None and first.role == "assistant", "chat stream: first chunk carries role assistant",
                          repr(first))
        finishes = [c.choices[0].finish_reason for c in with_choices]
        self.report.check(bool(finishes) and finishes[-1] == reference.choices[0].finish_reason
                          and all(f is None for f in finishes[:-1]),
                          "chat stream: only the last chunk with a choice has a finish_reason, the non-streamed one",
                          f"finish_reasons {finishes}, non-streamed {reference.choices[0].finish_reason!r}")
        usage_chunks = [i for i, c in enumerate(chunks) if c.usage is not None]
        last_usage = chunks[-1].usage if chunks else None
        self.report.check(usage_chunks == [len(chunks) - 1] and not chunks[-1].choices and counts(last_usage) == counts(reference.usage),
                          "chat stream: one final usage chunk, no choices, same usage as non-streamed",
                          f"usage at chunks {usage_chunks} of {len(chunks)}, {last_usage!r} vs {reference.usage!r}")
        ids = {c.id for c in chunks}
        self.report.check(len(ids) == 1 and all(c.object == "chat.completion.chunk" for c in chunks),
                          "chat stream: one id, every chunk a chat.completion.chunk", f"ids {ids}")

    def test_sse_framing(self):
        """The wire format itself, which the openai client would tolerate being slightly off."""
        body = {"model": self.model, "messages": [{"role": "user", "content": CHAT_PROMPT}], "temperature": 0,
                "max_tokens": 8, "stream": True, "stream_options": {"include_usage": True}}
        conn = self.raw.connection()
        try:
            conn.request("POST", "/v1/chat/completions", body=json.dumps(body).encode(), headers=self.raw.headers())
            response = conn.getresponse()
            content_type = response.getheader("Content-Type", "")
            payloads = list(read_sse(response))  # ends only when the body ends: a stream that never ends times out here
        finally:
            conn.close()
        self.report.check(response.status == 200 and content_type.startswith("text/event-stream"),
                          "SSE: 200 with Content-Type text/event-stream", f"{response.status}, {content_type!r}")
        done_last = bool(payloads) and payloads[-1] == "[DONE]" and payloads.count("[DONE]") == 1
        self.report.check(done_last, "SSE: `data: [DONE]` is the last event, and the body ends after it",
                          f"last payloads {payloads[-2:]!r}")
        try:
            chunks = [json.loads(p) for p in payloads if p != "[DONE]"]
            first_delta = chunks[0]["choices"][0]["delta"]
            last_with_choice = [c for c in chunks if c["choices"]][-1]["choices"][0]
            ok = (first_delta == {"role": "assistant", "content": ""} and last_with_choice["delta"] == {}
                  and last_with_choice["finish_reason"] in ("stop", "length") and chunks[-1]["choices"] == []
                  and "usage" in chunks[-1])
            detail = f"first delta {first_delta!r}, last choice {last_with_choice!r}, last chunk {chunks[-1]!r:.200}"
        except (ValueError, LookupError, TypeError) as error:
            ok, detail = False, f"{type(error).__name__}: {error}"
        self.report.check(ok, 'SSE: first delta {"role":"assistant","content":""}, last delta {} with finish_reason, then usage', detail)

    def test_chat_variants(self):
        """Documented spellings that must mean the same request."""
        reference = self.greedy_chat().choices[0].message.content
        parts = self.client.chat.completions.create(
            model=self.model, temperature=0, max_tokens=MAX_TOKENS,
            messages=[{"role": "user", "content": [{"type": "text", "text": CHAT_PROMPT}]}])
        self.report.check(parts.choices[0].message.content == reference,
                          "chat: content as [{type:text,text}] answers as the plain string", repr(parts.choices[0].message.content))
        alias = self.client.chat.completions.create(
            model=self.model, temperature=0, max_completion_tokens=MAX_TOKENS,
            messages=[{"role": "user", "content": CHAT_PROMPT}])
        self.report.check(alias.choices[0].message.content == reference,
                          "chat: max_completion_tokens means max_tokens", repr(alias.choices[0].message.content))

    def test_completions(self):
        plain = self.greedy_completion()
        choice = plain.choices[0]
        self.report.check(plain.object == "text_completion" and bool(choice.text) and choice.logprobs is None
                          and choice.finish_reason in ("stop", "length")
                          and plain.usage.total_tokens == plain.usage.prompt_tokens + plain.usage.completion_tokens
                          and plain.usage.completion_tokens <= MAX_TOKENS,
                          "completions: text_completion, non-empty text, logprobs null, finish_reason, usage consistent",
                          f"{plain!r:.300}")
        chunks = list(self.client.completions.create(model=self.model, prompt=COMPLETION_PROMPT, temperature=0,
                                                     max_tokens=MAX_TOKENS, stream=True,
                                                     stream_options={"include_usage": True}))
        text = "".join(c.choices[0].text for c in chunks if c.choices)
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
        self.report.check(text == choice.text and finishes and finishes[-1] == choice.finish_reason,
                          "completions stream: equal to the non-streamed text and finish_reason",
                          f"streamed {text!r} ({finishes[-1:]}), non-streamed {choice.text!r} ({choice.finish_reason})")
        self.report.check(counts(chunks[-1].usage) == counts(plain.usage) and not chunks[-1].choices,
                          "completions stream: final usage chunk equal to the non-streamed usage",
                          f"{chunks[-1].usage!r} vs {plain.usage!r}")
        listed = self.client.completions.create(model=self.model, prompt=[COMPLETION_PROMPT], temperature=0, max_tokens=MAX_TOKENS)
        self.report.check(listed.choices[0].text == choice.text, "completions: prompt as an array of one string",
                          repr(listed.choices[0].text))

    def test_logprobs_and_sampling(self):
        """What applications send: logprobs in OpenAI's shape, penalties, top_k and logit_bias."""
        r = self.client.chat.completions.create(model=self.model, messages=[{"role": "user", "content": CHAT_PROMPT}],
                                                temperature=0, max_tokens=MAX_TOKENS, logprobs=True, top_logprobs=3)
        content = r.choices[0].logprobs.content if r.choices[0].logprobs else []
        ok = (len(content) == r.usage.completion_tokens and all(len(c.top_logprobs) == 3 for c in content)
              and all(abs(c.logprob - c.top_logprobs[0].logprob) < 1e-6 and c.logprob <= 0 for c in content)
              and r.choices[0].message.content == self.greedy_chat().choices[0].message.content)
        self.report.check(ok, "chat logprobs: one entry per token, 3 alternatives, greedy = the most likely, same text",
                          f"{content[:2]!r:.300}")
        streamed = [entry for chunk in self.client.chat.completions.create(
                        model=self.model, messages=[{"role": "user", "content": CHAT_PROMPT}], temperature=0,
                        max_tokens=MAX_TOKENS, logprobs=True, top_logprobs=3, stream=True)
                    if chunk.choices and chunk.choices[0].logprobs for entry in chunk.choices[0].logprobs.content]
        self.report.check([e.logprob for e in streamed] == [e.logprob for e in content],
                          "chat logprobs streamed = whole", f"{len(streamed)} vs {len(content)}")
        legacy = self.client.completions.create(model=self.model, prompt=COMPLETION_PROMPT, temperature=0,
                                                max_tokens=MAX_TOKENS, logprobs=2)
        lists = legacy.choices[0].logprobs
        self.report.check(lists is not None and len(lists.tokens) == len(lists.token_logprobs) == len(lists.top_logprobs)
                          == legacy.usage.completion_tokens,
                          "completions logprobs: tokens, token_logprobs, top_logprobs, one per token", f"{lists!r:.300}")
        greedy = self.greedy_completion().choices[0].text
        top_k = self.client.completions.create(model=self.model, prompt=COMPLETION_PROMPT, temperature=1.2, max_tokens=MAX_TOKENS,
                                               seed=5, extra_body={"top_k": 1})
        self.report.check(top_k.choices[0].text == greedy, "top_k 1 at temperature 1.2 = greedy", repr(top_k.choices[0].text))
        penalised = self.client.completions.create(model=self.model, prompt=COMPLETION_PROMPT, temperature=0.8, seed=3,
                                                   max_tokens=MAX_TOKENS, presence_penalty=1.0, frequency_penalty=0.5,
                                                   extra_body={"repeat_penalty": 1.2, "min_p": 0.05})
        self.report.check(bool(penalised.choices[0].text),
                          "presence/frequency/repeat penalties and min_p are taken", repr(penalised.choices[0].text))

    def test_prompt_cache(self):
        """A freed slot keeps its prompt: the same system prompt with another question reuses it."""
        system = " ".join(f"Rule {i}: answer politely and mention the number {i * 7 % 97}." for i in range(40))
        def ask(question):
            return self.client.chat.completions.create(
                model=self.model, temperature=0, max_tokens=4,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": question}])
        first, second = ask("What is rule 3?"), ask("Which rule mentions 21?")
        cached = second.usage.prompt_tokens_details.cached_tokens if second.usage.prompt_tokens_details else 0
        self.report.check(cached >= first.usage.prompt_tokens - 20,
                          "prompt cache: the second question reuses the system prompt (usage.prompt_tokens_details.cached_tokens)",
                          f"cached {cached} of {second.usage.prompt_tokens}")

    def test_structured_output(self):
        """Answers constrained to a JSON schema: a pydantic model through the client's parse helper,
        json_object, and random schemas of the supported subset, every answer validated by the
        `jsonschema` package."""
        class City(pydantic.BaseModel):
            name: str
            country: str
            population: int
            coastal: bool

        parsed = self.client.chat.completions.parse(
            model=self.model, temperature=0, max_tokens=120, response_format=City,
            messages=[{"role": "user", "content": "Describe Paris as JSON with name, country, population and coastal."}])
        city = parsed.choices[0].message.parsed
        self.report.check(isinstance(city, City) and parsed.choices[0].finish_reason == "stop",
                          "structured output: chat.completions.parse with a pydantic model", repr(city))
        r = self.client.chat.completions.create(model=self.model, temperature=0, max_tokens=300,
                                                response_format={"type": "json_object"},
                                                messages=[{"role": "user", "content": "Give me a JSON object with a cat's name and age."}])
        text = r.choices[0].message.content
        ok = r.choices[0].finish_reason == "stop" and isinstance(json.loads(text), dict)
        self.report.check(ok, "structured output: json_object answers a JSON object", repr(text)[:200])

        rng = random.Random(self.args.schema_seed)
        invalid, unfinished = [], 0
        for index in range(self.args.random_schemas):
            schema = random_schema(rng, 2)
            r = self.client.chat.completions.create(
                model=self.model, temperature=0.7, seed=self.args.schema_seed + index, max_tokens=200,
                response_format={"type": "json_schema", "json_schema": {"name": f"s{index}", "schema": schema, "strict": True}},
                messages=[{"role": "user", "content": "Answer with JSON only."}])
            if r.choices[0].finish_reason != "stop":
                unfinished += 1  # the budget ended first (a long string): nothing to validate
                continue
            try:
                jsonschema.validate(json.loads(r.choices[0].message.content), schema)
            except Exception as error:  # noqa: BLE001 — any failure is the check's
                invalid.append(f"{json.dumps(schema)} -> {r.choices[0].message.content!r}: {error}"[:300])
        self.report.check(not invalid and unfinished < self.args.random_schemas // 2,
                          f"structured output: {self.args.random_schemas} random schemas, every finished answer valid "
                          f"({unfinished} ran out of tokens)", "; ".join(invalid[:3]))

    def test_tools(self):
        """A tool round trip through the openai client: a forced call whose arguments validate
        against the function's schema (whole and streamed), its result sent back, an answer."""
        weather = {"type": "function", "function": {
            "name": "get_weather", "description": "The current weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}, "unit": {"enum": ["celsius", "fahrenheit"]}},
                           "required": ["city", "unit"], "additionalProperties": False}}}
        extra = {"max_tokens": 100}
        if self.args.tiny_model:
            # A tiny random model's context (512) holds the template's tool preamble and little else:
            # a one-parameter tool, no budget (what fits), and its whitespace-only tokens banned (a
            # random model would fill the context with them), and its backslashes.
            weather = {"type": "function", "function": {"name": "get_weather", "parameters": {
                "type": "object", "properties": {"city": {"type": "string", "maxLength": 6}}, "required": ["city"], "additionalProperties": False}}}
            vocab = json.load(open(self.args.tiny_model, encoding="utf-8"))["model"]["vocab"]
            # Escapes too: valid in keys and strings, but a random model spells whole keys with them.
            extra = {"logit_bias": {str(i): -100 for piece, i in vocab.items()
                                    if piece and (all(ch in "ĠĊĉč" for ch in piece) or "\\" in piece)}}
        messages = [{"role": "user", "content": "What is the weather in Paris?"}]
        r = self.client.chat.completions.create(model=self.model, messages=messages, tools=[weather], tool_choice="required",
                                                temperature=0, **extra)
        calls = r.choices[0].message.tool_calls or []
        valid = False
        if calls:
            try:
                jsonschema.validate(json.loads(calls[0].function.arguments), weather["function"]["parameters"])
                valid = calls[0].function.name == "get_weather"
            except Exception:  # noqa: BLE001
                valid = False
        self.report.check(r.choices[0].finish_reason == "tool_calls" and valid,
                          "tools: tool_choice required gives a call whose arguments validate", f"{r.choices[0]!r:.300}")
        streamed = list(self.client.chat.completions.create(model=self.model, messages=messages, tools=[weather], tool_choice="required",
                                                            temperature=0, stream=True, **extra))
        deltas = [c.choices[0].delta.tool_calls[0] for c in streamed if c.choices and c.choices[0].delta.tool_calls]
        finishes = [c.choices[0].finish_reason for c in streamed if c.choices and c.choices[0].finish_reason]
        # OpenAI's shape: the first delta of a call has its id and name, the arguments' text follows in pieces.
        joined = "".join(d.function.arguments or "" for d in deltas if d.function)
        first = deltas[0] if deltas else None
        self.report.check(bool(calls) and first is not None and first.id and first.function.name == calls[0].function.name
                          and all(d.index == 0 for d in deltas) and joined == calls[0].function.arguments and finishes == ["tool_calls"],
                          f"tools: streamed tool_calls deltas ({len(deltas)}) add up to the whole answer's call", f"{deltas!r:.300} {finishes}")
        if calls:
            follow = messages + [{"role": "assistant", "content": None, "tool_calls": [c.model_dump() for c in calls]},
                                 {"role": "tool", "tool_call_id": calls[0].id, "content": json.dumps({"temperature": 18, "sky": "clear"})}]
            answer = self.client.chat.completions.create(model=self.model, messages=follow, tools=[weather], temperature=0,
                                                         max_tokens=8 if self.args.tiny_model else 40)
            # The template rendered the call and the result: the next prompt is longer by more than
            # the result's dozen-odd tokens (how a template writes the call back varies).
            grew = answer.usage.prompt_tokens > r.usage.prompt_tokens + 12
            self.report.check(answer.choices[0].finish_reason in ("stop", "length", "tool_calls") and grew,
                              "tools: the call and its result go back; the model answers",
                              f"prompt {r.usage.prompt_tokens} + call {r.usage.completion_tokens} -> {answer.usage.prompt_tokens}; {answer.choices[0]!r:.200}")

    def test_metrics(self):
        """GET /metrics parses with prometheus_client's parser and counts what the suite did."""
        status, body, _ = self.raw.request("GET", "/metrics", key=None)
        try:
            families = {f.name: f for f in text_string_to_metric_families(body.decode() if isinstance(body, bytes) else str(body))}
        except Exception as error:  # noqa: BLE001
            self.report.check(False, "metrics: GET /metrics parses as Prometheus text", f"{error}")
            return
        requests = sum(s.value for s in families["lm_requests"].samples if s.labels.get("status") == "200") if "lm_requests" in families else 0
        generated = families["lm_generated_tokens"].samples[0].value if "lm_generated_tokens" in families else 0
        ttft = ([s for s in families["lm_time_to_first_token_seconds"].samples if s.name.endswith("_count")]
                if "lm_time_to_first_token_seconds" in families else [])
        self.report.check(status == 200 and requests > 10 and generated > 100 and ttft and ttft[0].value > 0,
                          "metrics: GET /metrics parses with prometheus_client (requests, tokens, time to first token)",
                          f"status {status}, {requests} requests, {generated} tokens, families {sorted(families)}")

    def test_stop(self):
        full = self.greedy_chat().choices[0].message.content
        stop = pick_stop_string(full)
        # Generation is greedy, so with the stop string the answer is the same text cut before its first occurrence.
        expected = full[:full.index(stop)]
        options = dict(model=self.model, messages=[{"role": "user", "content": CHAT_PROMPT}], temperature=0, max_tokens=MAX_TOKENS)
        r = self.client.chat.completions.create(stop=stop, **options)
        content, finish = r.choices[0].message.content or "", r.choices[0].finish_reason
        self.report.check(stop not in content and finish == "stop" and content == expected,
                          f"stop {stop!r}: not in the answer, finish_reason stop, the answer cut before it",
                          f"content {content!r}, finish {finish!r}, expected {expected!r}")
        # Streaming must not leak the stop string's first characters while it is still only a possible match.
        text, chunks = self.stream_chat(stop=[stop], **options)
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        self.report.check(text == expected and finishes == ["stop"], f"stop {stop!r} streamed: same text, finish_reason stop",
                          f"streamed {text!r}, finishes {finishes}")
        plain = self.greedy_completion().choices[0].text
        stop = pick_stop_string(plain)
        r = self.client.completions.create(model=self.model, prompt=COMPLETION_PROMPT, temperature=0, max_tokens=MAX_TOKENS,
                                           stop=["\u2603 never appears \u2603", stop])
        self.report.check(r.choices[0].text == plain[:plain.index(stop)] and r.choices[0].finish_reason == "stop",
                          f"completions stop array [never, {stop!r}]: cut before it, finish_reason stop",
                          f"text {r.choices[0].text!r}, finish {r.choices[0].finish_reason!r}")

    def test_max_tokens_one(self):
        r = self.client.chat.completions.create(model=self.model, messages=[{"role": "user", "content": CHAT_PROMPT}],
                                                temperature=0, max_tokens=1)
        self.report.check(r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 1,
                          "max_tokens 1: finish_reason length, completion_tokens 1",
                          f"finish {r.choices[0].finish_reason!r}, usage {r.usage!r}")

    def test_seed(self):
        options = dict(model=self.model, messages=[{"role": "user", "content": STORY_PROMPT}],
                       temperature=0.9, seed=123, max_tokens=MAX_TOKENS)
        first = self.client.chat.completions.create(**options).choices[0].message.content
        second = self.client.chat.completions.create(**options).choices[0].message.content
        self.report.check(first == second and bool(first), "seed 123, temperature 0.9: the same text twice",
                          f"{first!r} vs {second!r}")
        streamed, _ = self.stream_chat(**options)
        self.report.check(streamed == first, "seed 123, temperature 0.9: streamed gives the same text", f"{streamed!r} vs {first!r}")

    def test_errors(self):
        chat = "/v1/chat/completions"
        good = {"model": self.model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
        # About 20000 words, each several tokens ("w123" is a letter and digits): far longer than any context.
        long_prompt = " ".join(f"w{i}" for i in range(20000))
        bad = "invalid_request_error"
        cases = [
            # (name, path, body, expected status, expected error fields)
            ("malformed JSON", chat, b'{"messages": [', 400, dict(want_type=bad)),
            ("max_tokens of the wrong type", chat, {**good, "max_tokens": "ten"}, 400, dict(want_type=bad, param="max_tokens")),
            ("negative max_tokens", chat, {**good, "max_tokens": -1}, 400, dict(want_type=bad, names="max_tokens")),
            ("max_tokens 10**9", chat, {**good, "max_tokens": 10**9}, 400, dict(want_type=bad, names="max_tokens")),
            ("n 2", chat, {**good, "n": 2}, 400, dict(want_type=bad, names="n")),
            ("unknown field frobnicate", chat, {**good, "frobnicate": True}, 400, dict(want_type=bad, names="frobnicate")),
            ("temperature 3", chat, {**good, "temperature": 3}, 400, dict(want_type=bad, names="temperature")),
            ("five stop strings", chat, {**good, "stop": ["a", "b", "c", "d", "e"]}, 400, dict(want_type=bad, names="stop")),
            ("presence_penalty 3", chat, {**good, "presence_penalty": 3}, 400, dict(want_type=bad, names="presence_penalty")),
            ("top_logprobs 21", chat, {**good, "logprobs": True, "top_logprobs": 21}, 400, dict(want_type=bad, names="top_logprobs")),
            ("logit_bias past the vocabulary", chat, {**good, "logit_bias": {"99999999": 5}}, 400, dict(want_type=bad, names="logit_bias")),
            ("invalid UTF-8 in the body", chat,
             b'{"messages":[{"role":"user","content":"caf\xc3\x28 \xff\xfe"}],"max_tokens":4}', 400, dict(want_type=bad)),
            ("prompt longer than the context", chat, {**good, "messages": [{"role": "user", "content": long_prompt}]}, 400,
             dict(want_type=bad)),
            ("completions prompt longer than the context", "/v1/completions",
             {"model": self.model, "prompt": long_prompt, "max_tokens": 4}, 400, dict(want_type=bad)),
            ("unknown model", chat, {**good, "model": "no-such-model"}, 404, dict(want_type="not_found_error", code="model_not_found")),
        ]
        for name, path, body, status, expected in cases:
            got_status, _, parsed = self.raw.request("POST", path, body)
            problems = error_problems(got_status, parsed, status, **expected)
            self.report.check(not problems, f"error: {name} -> {status}", "; ".join(problems))

        got_status, parsed = self.raw.post_oversized(chat, (1 << 20) + 64 * 1024)
        problems = error_problems(got_status, parsed, 413)  # the API names no error type for 413
        self.report.check(not problems, "error: body over 1 MiB -> 413", "; ".join(problems))

        for path in ("/v1/no-such-route", "/no-such-route"):
            got_status, _, parsed = self.raw.request("GET", path)
            problems = error_problems(got_status, parsed, 404, want_type="not_found_error")
            self.report.check(not problems, f"error: GET {path} -> 404", "; ".join(problems))

        if self.args.api_key:
            for name, key in (("missing", None), ("wrong", self.args.api_key + "-wrong")):
                for method, path, body in (("GET", "/v1/models", None), ("POST", chat, good)):
                    got_status, _, parsed = self.raw.request(method, path, body, key=key)
                    problems = error_problems(got_status, parsed, 401, want_type="authentication_error")
                    self.report.check(not problems, f"error: {name} API key on {method} {path} -> 401", "; ".join(problems))
            got_status, _, _ = self.raw.request("GET", "/health", key=None)
            self.report.check(got_status == 200, "GET /health needs no API key", f"status {got_status}")
        else:
            self.report.skip("error: missing or wrong API key -> 401", "no --api-key given")

        self.check_still_serves("after the bad requests")

    def check_still_serves(self, when):
        r = self.client.chat.completions.create(model=self.model, messages=[{"role": "user", "content": CHAT_PROMPT}],
                                                temperature=0, max_tokens=MAX_TOKENS)
        self.report.check(r.choices[0].message.content == self.greedy_chat().choices[0].message.content,
                          f"a normal request still succeeds {when}, with the same greedy answer",
                          repr(r.choices[0].message.content))

    def test_disconnect(self):
        """A client that hangs up mid-stream must free its slot: the server notices the closed socket and stops generating."""
        body = {"model": self.model, "messages": [{"role": "user", "content": STORY_PROMPT}], "temperature": 0,
                "max_tokens": 2000, "stream": True}
        conn = self.raw.connection()
        conn.connect()
        sock = conn.sock  # kept: http.client may hand the socket to the response and drop its own reference
        try:
            conn.request("POST", "/v1/chat/completions", body=json.dumps(body).encode(), headers=self.raw.headers())
            response = conn.getresponse()
            if response.status != 200:
                self.report.check(False, "disconnect: the stream started", f"status {response.status}: {response.read()[:300]!r}")
                return
            events = read_sse(response)
            received = [next(events, None), next(events, None)]  # the role chunk and the first piece of text
            active_while_open = self.raw.health().get("active")
        finally:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # the server may have closed its end already
                pass
            sock.close()
            conn.close()
        self.report.check(None not in received and active_while_open >= 1, "disconnect: the stream started and holds a slot",
                          f"events {received}, active {active_while_open}")
        deadline = time.monotonic() + 5
        health = self.raw.health()
        while (health.get("active") != 0 or health.get("queued") != 0) and time.monotonic() < deadline:
            time.sleep(0.05)
            health = self.raw.health()
        self.report.check(health.get("active") == 0 and health.get("queued") == 0,
                          "disconnect: /health shows active 0 within 5 s of the client hanging up", repr(health))
        self.check_still_serves("after a client hung up")


def pick_stop_string(text):
    """A string that greedy generation of `text` is sure to produce: its 3rd word (without punctuation),
    or, for a text of fewer words, a few characters from its middle."""
    words = [w.strip(".,;:!?\"'()") for w in text.split()]
    words = [w for w in words if w]
    if len(words) >= 3:
        return words[2]
    middle = len(text) // 2
    return text[middle:middle + 3] or text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True, help="the server, e.g. http://127.0.0.1:8080 (no /v1)")
    parser.add_argument("--api-key", help="the key the server was started with (--api-key); enables the 401 checks")
    parser.add_argument("--model", required=True, help="the model id the server reports")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for any one request (default 120)")
    parser.add_argument("--random-schemas", type=int, default=30, help="random JSON schemas to answer and validate (default 30)")
    parser.add_argument("--schema-seed", type=int, default=2026, help="seed of the random schemas (default 2026)")
    parser.add_argument("--tiny-model", metavar="TOKENIZER_JSON",
                        help="the server runs a tiny random model with this tokenizer.json: test_tools keeps to its small context")
    parser.add_argument("--tests", help="only these tests, comma-separated names without 'test_' (e.g. tools,chat)")
    args = parser.parse_args()
    args.base_url = args.base_url.rstrip("/").removesuffix("/v1")

    suite = Suite(args)
    tests = [suite.test_health, suite.test_models, suite.test_chat, suite.test_chat_stream, suite.test_sse_framing,
             suite.test_chat_variants, suite.test_completions, suite.test_logprobs_and_sampling, suite.test_prompt_cache, suite.test_structured_output, suite.test_tools, suite.test_stop, suite.test_max_tokens_one,
             suite.test_seed, suite.test_errors, suite.test_disconnect, suite.test_metrics]
    if args.tests:
        wanted = set(args.tests.split(","))
        unknown = wanted - {t.__name__.removeprefix("test_") for t in tests}
        if unknown:
            parser.error(f"--tests: no such tests: {', '.join(sorted(unknown))}")
        tests = [t for t in tests if t.__name__.removeprefix("test_") in wanted]
    for test in tests:
        try:
            test()
        except Exception as error:  # one broken check must not hide the others
            suite.report.check(False, f"{test.__name__} raised", f"{type(error).__name__}: {error}")
            traceback.print_exc(limit=3)
    r = suite.report
    print(f"test_openai: {r.passed} passed, {r.failed} failed, {r.skipped} skipped")
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
