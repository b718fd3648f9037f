#!/usr/bin/env python3
"""Load test of a running lm-serve: answers under concurrency must be exactly the answers alone.

Default mode: 200 requests from 16 concurrent clients, a deterministic mix of chat and completions,
streamed and not, greedy and seeded sampling (temperature 0.8, top_p 0.95, seed = the request's
index), max_tokens 8...48, over 10 prompts. Each distinct request is first made alone, one at a
time, and its text recorded; under load every request must finish (a finish_reason, no error)
with exactly that text and completion token count, and afterwards /health must show no slot
active and none queued. Prints wall time, completion tokens/s and the streamed requests' time to
first token.

--throughput: for 1, 4, 8 and 16 concurrent streams, each asked for a long story with greedy
decoding and max_tokens 128 on its own prompt, prints a table of aggregate decode tokens/s and
time to first token.

    python3 load_test.py --base-url http://127.0.0.1:8080 --model MODEL_ID [--api-key KEY] [--throughput]

Exits 1 on any failure. Needs only `openai` (PyPI) and the standard library.
"""

import argparse
import asyncio
import json
import math
import random
import sys
import time
import urllib.request
from dataclasses import dataclass

from openai import AsyncOpenAI

PROMPTS = [
    "What is the capital of France?",
    "Name three animals that live in the ocean.",
    "Why is the sky blue?",
    "Give me a short recipe for pancakes.",
    "What does a bee make?",
    "Describe a rainy day in two sentences.",
    "How many legs does a spider have?",
    "Write a haiku about the moon.",
    "What is two plus two?",
    "Suggest a name for a friendly robot.",
]

STORY_TOPICS = [
    "a lighthouse keeper", "a lost kitten", "a clockmaker", "a dragon who learns to sing", "a pirate ship",
    "a tiny village in the mountains", "a robot gardener", "a detective in Paris", "a girl who talks to trees",
    "an astronaut on Mars", "a baker and a magic oven", "two rival wizards", "a knight afraid of the dark",
    "a whale that can fly", "a haunted library", "a boy and his kite", "a time-travelling teacher",
    "a city under the sea", "a brave little mouse", "a forgotten toy",
]


@dataclass(frozen=True)
class Spec:
    """One distinct request, without `stream`: the text must not depend on whether it is streamed."""
    endpoint: str          # "chat" or "completions"
    prompt: str
    max_tokens: int
    seed: int | None       # None: greedy (temperature 0); otherwise temperature 0.8, top_p 0.95 with this seed

    def options(self):
        if self.seed is None:
            return {"temperature": 0, "max_tokens": self.max_tokens}
        return {"temperature": 0.8, "top_p": 0.95, "seed": self.seed, "max_tokens": self.max_tokens}

    def describe(self):
        sampling = "greedy" if self.seed is None else f"seed {self.seed}"
        return f"{self.endpoint} {self.prompt[:30]!r} max_tokens {self.max_tokens} {sampling}"


@dataclass
class Outcome:
    text: str = ""
    finish_reason: str | None = None
    completion_tokens: int | None = None
    sent: float = 0.0                # perf_counter when the request was sent
    first_token: float | None = None  # ... when the first non-empty piece of text arrived (streamed only)
    last_token: float | None = None   # ... when the last one did
    error: str | None = None


class Report:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, ok, name, details=()):
        if ok:
            self.passed += 1
            print(f"PASS {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}", flush=True)
            for line in details:
                print(f"     {line}", flush=True)
        return ok


async def run_request(client, model, spec, stream):
    """Makes one request and returns its Outcome; never raises (an exception is the outcome's error)."""
    outcome = Outcome(sent=time.perf_counter())
    try:
        if spec.endpoint == "chat":
            call = client.chat.completions.create(model=model, messages=[{"role": "user", "content": spec.prompt}],
                                                  stream=stream, **spec.options(),
                                                  **({"stream_options": {"include_usage": True}} if stream else {}))
        else:
            call = client.completions.create(model=model, prompt=f"Question: {spec.prompt}\nAnswer:",
                                             stream=stream, **spec.options(),
                                             **({"stream_options": {"include_usage": True}} if stream else {}))
        response = await call
        if not stream:
            choice = response.choices[0]
            outcome.text = choice.message.content if spec.endpoint == "chat" else choice.text
            outcome.finish_reason = choice.finish_reason
            outcome.completion_tokens = response.usage.completion_tokens
            return outcome
        pieces = []
        async for chunk in response:
            if chunk.usage is not None:
                outcome.completion_tokens = chunk.usage.completion_tokens
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            piece = (choice.delta.content if spec.endpoint == "chat" else choice.text) or ""
            if piece:
                # The time to first token counts from sending to the first piece of text, not to the role
                # chunk, which a server may send before the prompt is even processed.
                now = time.perf_counter()
                outcome.first_token = outcome.first_token or now
                outcome.last_token = now
                pieces.append(piece)
            if choice.finish_reason is not None:
                outcome.finish_reason = choice.finish_reason
        outcome.text = "".join(pieces)
    except Exception as error:  # recorded and reported: under load every request must succeed
        outcome.error = f"{type(error).__name__}: {error}"
    return outcome


def percentile(values, p):
    """Nearest-rank percentile (p in 0...100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def get_health(base_url):
    with urllib.request.urlopen(base_url + "/health", timeout=10) as response:
        return json.load(response)


def check_idle(report, base_url, when):
    """/health must come back to active 0 and queued 0: a request that finished but kept its slot is a leak.
    Polled for up to 5 s, since a server may free a slot just after sending the last bytes."""
    deadline = time.monotonic() + 5
    health = get_health(base_url)
    while (health.get("active"), health.get("queued")) != (0, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
        health = get_health(base_url)
    report.check((health.get("active"), health.get("queued")) == (0, 0),
                 f"/health {when}: active 0, queued 0", [repr(health)])


def make_plan(count):
    """The load: (index, spec, stream) for each request, the same on every run."""
    rng = random.Random(20240601)
    plan = []
    for index in range(count):
        spec = Spec(endpoint=rng.choice(["chat", "completions"]),
                    prompt=PROMPTS[index % len(PROMPTS)],
                    max_tokens=rng.randint(8, 48),
                    seed=index if rng.random() < 0.5 else None)
        plan.append((index, spec, rng.random() < 0.5))
    return plan


async def load_mode(args, client, report):
    plan = make_plan(args.requests)
    distinct = list(dict.fromkeys(spec for _, spec, _ in plan))
    streamed = sum(stream for _, _, stream in plan)
    print(f"plan: {len(plan)} requests ({streamed} streamed), {len(distinct)} distinct, {args.concurrency} concurrent clients")

    # The reference: every distinct request alone, one after the other, not streamed.
    started = time.perf_counter()
    alone = {}
    for spec in distinct:
        alone[spec] = await run_request(client, args.model, spec, stream=False)
    alone_seconds = time.perf_counter() - started
    bad = [f"{spec.describe()}: {o.error or 'no finish_reason'}" for spec, o in alone.items() if o.error or not o.finish_reason]
    report.check(not bad, f"alone: {len(distinct)} reference requests completed", bad[:5])
    alone_tokens = sum(o.completion_tokens or 0 for o in alone.values())
    print(f"alone: {alone_seconds:.1f} s, {alone_tokens} completion tokens, {alone_tokens / alone_seconds:.1f} tokens/s sequential")

    # The load: `concurrency` clients, each taking the next request as soon as its previous one is answered.
    pending = asyncio.Queue()
    for item in plan:
        pending.put_nowait(item)
    results = {}

    async def client_loop():
        while not pending.empty():
            index, spec, stream = pending.get_nowait()
            results[index] = await run_request(client, args.model, spec, stream)

    started = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(args.concurrency)))
    wall = time.perf_counter() - started

    failed = [f"#{i} {spec.describe()} stream={stream}: {results[i].error or 'no finish_reason'}"
              for i, spec, stream in plan if results[i].error or not results[i].finish_reason]
    report.check(not failed, f"load: all {len(plan)} requests completed with a finish_reason"
                 + (f" -- {len(failed)} did not" if failed else ""), failed[:10])

    differ = []
    for index, spec, stream in plan:
        got, want = results[index], alone[spec]
        if got.error or want.error:
            continue
        if (got.text, got.completion_tokens, got.finish_reason) != (want.text, want.completion_tokens, want.finish_reason):
            at = next((k for k, (a, b) in enumerate(zip(got.text, want.text)) if a != b), min(len(got.text), len(want.text)))
            start = max(0, at - 20)  # a little of the common text before the difference, for context
            differ.append(f"#{index} {spec.describe()} stream={stream}: differs from character {at}: "
                          f"{got.text[start:at + 30]!r} ({got.completion_tokens} tokens, {got.finish_reason}) under load, "
                          f"{want.text[start:at + 30]!r} ({want.completion_tokens} tokens, {want.finish_reason}) alone")
    report.check(not differ, f"load: every answer equals its alone reference (text, completion_tokens, finish_reason)"
                 + (f" -- {len(differ)} differ" if differ else ""), differ[:10])

    check_idle(report, args.base_url, "after the load")

    tokens = sum(r.completion_tokens or 0 for r in results.values())
    ttfts = [r.first_token - r.sent for r in results.values() if r.first_token is not None]
    print(f"load: wall {wall:.2f} s, {len(plan) / wall:.1f} requests/s, {tokens} completion tokens, "
          f"{tokens / wall:.1f} completion tokens/s aggregate")
    if ttfts:
        print(f"load: time to first token (streamed, {len(ttfts)} requests, queueing included): "
              f"p50 {percentile(ttfts, 50) * 1000:.0f} ms, p99 {percentile(ttfts, 99) * 1000:.0f} ms")


async def throughput_mode(args, client, report):
    levels = [int(n) for n in args.levels.split(",")]
    # Distinct prompts everywhere, even across levels, so that no stream is helped by a prefix cached by an earlier one.
    prompts = iter(f"Story {n}: write a very long and detailed story about {STORY_TOPICS[n % len(STORY_TOPICS)]}, "
                   f"told in many chapters." for n in range(sum(levels)))
    max_tokens = 128
    # One warm-up request, so that the first level does not pay for anything the server does lazily.
    await run_request(client, args.model, Spec("chat", "Hello!", 8, None), stream=True)

    rows = []
    for streams in levels:
        specs = [Spec("chat", next(prompts), max_tokens, None) for _ in range(streams)]
        outcomes = await asyncio.gather(*(run_request(client, args.model, spec, stream=True) for spec in specs))
        bad = [f"{spec.describe()}: {o.error or 'no finish_reason'}" for spec, o in zip(specs, outcomes)
               if o.error or not o.finish_reason or o.first_token is None]
        report.check(not bad, f"throughput {streams} streams: all completed", bad[:5])
        good = [o for o in outcomes if not o.error and o.first_token is not None]
        if not good:
            continue
        tokens = [o.completion_tokens or 0 for o in good]
        # The decode phase: from the first stream's first token to the last stream's last token.
        decode_window = max(o.last_token for o in good) - min(o.first_token for o in good)
        per_stream = [(t - 1) / (o.last_token - o.first_token) for o, t in zip(good, tokens) if o.last_token > o.first_token]
        ttfts = [o.first_token - o.sent for o in good]
        rows.append((streams, sum(tokens), min(tokens), max(tokens), sum(tokens) / decode_window if decode_window > 0 else 0,
                     sum(per_stream) / len(per_stream) if per_stream else 0,
                     percentile(ttfts, 50) * 1000, percentile(ttfts, 99) * 1000))
    check_idle(report, args.base_url, "after the throughput runs")

    print(f"\nthroughput: greedy, max_tokens {max_tokens} per stream (fewer when the model ends its story first)")
    header = ("streams", "tokens", "min/stream", "max/stream", "decode tok/s", "per-stream tok/s", "TTFT p50 ms", "TTFT p99 ms")
    print("  ".join(header))
    for row in rows:
        print("  ".join(f"{value:>{len(h)}.1f}" if isinstance(value, float) else f"{value:>{len(h)}}"
                        for h, value in zip(header, row)))
    print("decode tok/s: all streams' completion tokens / (last stream's last token - first stream's first token);\n"
          "per-stream tok/s: the mean of each stream's (tokens - 1) / (its last token - its first token).")


async def main_async(args):
    report = Report()
    # max_retries=0: a 429 or a dropped connection must count as a failure, not be retried away.
    client = AsyncOpenAI(base_url=args.base_url + "/v1", api_key=args.api_key or "no-key",
                         max_retries=0, timeout=args.timeout)
    try:
        if args.throughput:
            await throughput_mode(args, client, report)
        else:
            await load_mode(args, client, report)
    finally:
        await client.close()
    print(f"load_test: {report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True, help="the server, e.g. http://127.0.0.1:8080 (no /v1)")
    parser.add_argument("--api-key", help="the key the server was started with, if any")
    parser.add_argument("--model", required=True, help="the model id the server reports")
    parser.add_argument("--requests", type=int, default=200, help="requests in the load (default 200)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--throughput", action="store_true", help="measure decode throughput instead of the load test")
    parser.add_argument("--levels", default="1,4,8,16", help="concurrent streams for --throughput (default 1,4,8,16)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for any one request (default 600)")
    args = parser.parse_args()
    args.base_url = args.base_url.rstrip("/").removesuffix("/v1")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
