"""6. The embedded local model: a run's wall time against llama-cpp-python used directly.

The server runs with no upstream, so SmolLM2-135M-Instruct answers through llama.cpp in the
server process. The direct side loads the same GGUF with the same settings the provider uses
(`n_ctx` 8192, every CPU, greedy decoding with llama.cpp's classic repetition penalty) in this
process and generates for the same prompt tokens with `Llama.generate`. Both sides alternate,
each while the other is idle.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from bench.common import (
    Figure,
    Section,
    SseEvent,
    ThreadlineServer,
    at_most,
    create_assistant,
    expect,
    http_client,
    ms,
    p50,
)
from bench.harness import Bench
from bench.overhead import streamed_run
from threadline.config import Settings
from threadline.providers.base import ChatRequest
from threadline.providers.local_grammar import plan_request
from threadline.providers.local_llama import (
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    REPEAT_PENALTY,
    bundled_model_path,
)

TARGET_PERCENT = 5.0
SPARSE_INTERVAL_MS = 1000
INSTRUCTIONS = "You are a helpful assistant."
PROMPT = "Write a long story about a robot who learns to paint."
ENDINGS = ("thread.run.completed", "thread.run.incomplete")


@dataclass(frozen=True)
class Generation:
    seconds: float
    prompt_tokens: int
    completion_tokens: int
    text: str


class Direct:
    """llama-cpp-python on its own, set up and prompted as the provider does it.

    The same `Llama` settings, the GGUF's own chat template through the same formatter, the
    same tokenisation flags, and `Llama.generate` with the same sampling, stopping at the
    end-of-generation token or `max_tokens`, detokenising each token as it comes: the work
    the provider does for a reply, with no service around it.
    """

    def __init__(self) -> None:
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        threads = os.cpu_count() or 1
        self.llm = llama_cpp.Llama(
            model_path=str(bundled_model_path()),
            n_ctx=8192,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
        self.vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        self.is_end = llama_cpp.llama_vocab_is_eog

        def special(token: int) -> str:
            return self.llm.detokenize([token], special=True).decode() if token >= 0 else ""

        self.formatter = Jinja2ChatFormatter(
            template=self.llm.metadata["tokenizer.chat_template"],
            eos_token=special(self.llm.token_eos()),
            bos_token=special(self.llm.token_bos()),
        )
        request = ChatRequest(
            model="smollm2",
            messages=[
                {"role": "system", "content": INSTRUCTIONS},
                {"role": "user", "content": PROMPT},
            ],
        )
        self.messages: list[Any] = plan_request(request).messages

    def generate(self, max_tokens: int) -> Generation:
        started = time.perf_counter()
        formatted = self.formatter(messages=self.messages)
        prompt = self.llm.tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
        pieces: list[bytes] = []
        tokens = self.llm.generate(
            prompt,
            temp=DEFAULT_TEMPERATURE,
            top_p=DEFAULT_TOP_P,
            top_k=0,
            min_p=0.0,
            repeat_penalty=REPEAT_PENALTY,
        )
        try:
            for token in tokens:
                if self.is_end(self.vocab, token):
                    break
                pieces.append(self.llm.detokenize([token]))
                if len(pieces) >= max_tokens:
                    break
        finally:
            tokens.close()
        return Generation(
            seconds=time.perf_counter() - started,
            prompt_tokens=len(prompt),
            completion_tokens=len(pieces),
            text=b"".join(pieces).decode("utf-8", "replace"),
        )

    def close(self) -> None:
        self.llm.close()


@dataclass
class Samples:
    runs: list[float] = field(default_factory=list)
    directs: list[float] = field(default_factory=list)
    loop_cpus: list[float] = field(default_factory=list)
    # Samples whose run replied otherwise than the direct generation: they did not do the
    # same work, and the comparison says nothing.
    differing: list[int] = field(default_factory=list)

    @property
    def percent(self) -> float:
        """The median of each run against the direct generation of its pair: the machine's
        pace drifts (other tenants), and a pair shares the moment."""
        return p50(
            [(run / direct - 1) * 100 for run, direct in zip(self.runs, self.directs, strict=True)]
        )

    @property
    def percent_of_medians(self) -> float:
        return (p50(self.runs) - p50(self.directs)) / p50(self.directs) * 100


def _reply_text(events: list[SseEvent]) -> str:
    """The text of the run's message, from the event that closed it."""
    for event in events:
        if event.event in ("thread.message.completed", "thread.message.incomplete"):
            return "".join(part["text"]["value"] for part in event.json()["content"])
    raise RuntimeError(f"no closed message in {[e.event for e in events]}")


async def _samples(
    bench: Bench, direct: Direct, env: dict[str, str], notes: list[str] | None
) -> Samples:
    """Pairs of a run and a direct generation, after one warm-up pair; each sample is
    described in `notes` when given."""
    size = bench.size
    tokens = size.local_tokens
    samples = Samples()
    url = bench.sqlite_url("local")
    with ThreadlineServer(url, bench.workdir, model_url=None, env=env) as server:
        async with http_client(server.url) as client:
            assistant = await create_assistant(client, "smollm2", INSTRUCTIONS)
            for index in range(size.local_samples + 1):
                thread = expect(
                    await client.post(
                        "/v1/threads", json={"messages": [{"role": "user", "content": PROMPT}]}
                    ),
                    "create thread",
                )
                # The run asks for the decoding `Direct` does. Left to the assistant's
                # default temperature of 1, it sampled: different work from greedy decoding.
                body = {
                    "assistant_id": assistant,
                    "max_completion_tokens": tokens,
                    "temperature": DEFAULT_TEMPERATURE,
                }
                # Each side goes first in every other pair: whichever comes second starts
                # while the first one's llama.cpp threads may still be spinning down.
                direct_first = index % 2 == 1
                if direct_first:
                    generation = direct.generate(tokens)
                loop_cpu = server.main_thread_cpu_seconds()
                started, events = await streamed_run(client, thread["id"], body)
                loop_cpu = server.main_thread_cpu_seconds() - loop_cpu
                ends = [e for e in events if e.event in ENDINGS]
                if not ends:
                    raise RuntimeError(f"run did not end: {[e.event for e in events][-3:]}")
                usage = ends[0].json()["usage"]
                if not direct_first:
                    generation = direct.generate(tokens)
                if index == 0:
                    continue
                samples.runs.append(ends[0].received - started)
                samples.loop_cpus.append(loop_cpu)
                samples.directs.append(generation.seconds)
                if _reply_text(events) != generation.text:
                    samples.differing.append(index)
                if notes is not None:
                    notes.append(
                        f"Sample {index}: run {ms(samples.runs[-1]):.0f} ms"
                        f" ({usage['prompt_tokens']} prompt + {usage['completion_tokens']}"
                        f" completion tokens), direct {ms(generation.seconds):.0f} ms"
                        f" ({generation.prompt_tokens} + {generation.completion_tokens} tokens)."
                    )
    return samples


async def measure(bench: Bench) -> Section:
    size = bench.size
    tokens = size.local_tokens
    section = Section("local_model", "6. Local model")
    section.method = [
        f"One run: system `{INSTRUCTIONS}`, user `{PROMPT}`, `max_completion_tokens={tokens}`"
        " (the story never ends sooner, so every reply is exactly that long and the run ends"
        f" `incomplete`), `temperature={DEFAULT_TEMPERATURE:g}` (greedy, as Direct decodes;"
        " the assistant's default of 1 would sample), created with `stream: true` on a thread"
        " that already holds the message; wall time from sending the request to receiving the"
        " run's final event.",
        "Direct: the same GGUF loaded with the same settings in the harness process; the same"
        " messages through the GGUF's chat template and tokeniser as the provider does it, then"
        " `Llama.generate` with the same sampling (temperature 0, top_p 1, top_k 0, min_p 0,"
        f" repeat penalty {REPEAT_PENALTY}) for {tokens} tokens, detokenising each.",
        f"{size.local_samples} samples of each, in pairs (each side first in every other pair),"
        " after one warm-up pair (which loads the model); overhead = the median over the pairs"
        " of run ÷ direct - 1 (the machine's pace drifts between samples; a pair shares its"
        " moment); (p50 run - p50 direct) ÷ p50 direct beside it.",
        "Once with the default settings (text streamed at most every"
        f" {Settings.delta_interval_ms} ms after the first piece), once more with"
        f" THREADLINE_DELTA_INTERVAL_MS={SPARSE_INTERVAL_MS}, to show what the streamed deltas"
        " cost. Event-loop CPU: the server's main thread, from `/proc/<pid>/task/<pid>/schedstat`.",
    ]
    direct = Direct()
    try:
        default = await _samples(bench, direct, {}, section.notes)
        sparse = await _samples(
            bench, direct, {"THREADLINE_DELTA_INTERVAL_MS": str(SPARSE_INTERVAL_MS)}, None
        )
    finally:
        direct.close()
    section.add(
        Figure(
            f"Run wall time, {tokens} tokens, p50",
            ms(p50(default.runs)),
            "ms",
            floor=f"{ms(p50(default.directs)):.0f} ms (llama-cpp-python directly)",
            digits=0,
        )
    )
    headline = section.add(
        Figure(
            "Local model overhead",
            default.percent,
            "%",
            floor="0 %",
            target=f"≤ {TARGET_PERCENT:g} %",
            ok=at_most(default.percent, TARGET_PERCENT),
            digits=1,
        )
    )
    section.add(
        Figure(
            "Local model overhead, p50 run against p50 direct",
            default.percent_of_medians,
            "%",
            floor="0 %",
            digits=1,
        )
    )
    section.add(
        Figure(
            "Server event-loop thread CPU per run, p50",
            ms(p50(default.loop_cpus)),
            "ms",
            floor="0 ms (generation runs in its own threads)",
            digits=1,
        )
    )
    section.add(
        Figure(
            f"Local model overhead, deltas at most every {SPARSE_INTERVAL_MS} ms",
            sparse.percent,
            "%",
            floor="0 %",
            digits=1,
        )
    )
    section.add(
        Figure(
            f"Server event-loop thread CPU per run, deltas at most every {SPARSE_INTERVAL_MS} ms",
            ms(p50(sparse.loop_cpus)),
            "ms",
            digits=1,
        )
    )
    for samples in (default, sparse):
        if samples.differing:
            section.notes.append(
                f"The run's reply and the direct generation's text differ in samples"
                f" {samples.differing}: the two did not do the same work."
            )
    if headline.ok is False:
        section.notes.append(
            f"Target missed. Beside the generation, the server's event-loop thread uses"
            f" {ms(p50(default.loop_cpus)):.1f} ms of CPU per run"
            f" ({ms(p50(sparse.loop_cpus)):.1f} ms with sparse deltas), on the 2 cores"
            " llama.cpp's threads also use: the run's own requests and transactions, and each"
            " streamed delta (a commit, a read, and a socket write that wakes the client). The"
            " profile is in the issue note."
        )
    return section
