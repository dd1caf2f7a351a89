"""In-process llama.cpp through llama-cpp-python.

Timings come from llama.cpp's own counters (``llama_perf_context``), reset before each
request:

* prefill tokens/s = ``n_p_eval / t_p_eval``;
* decode tokens/s  = ``n_eval / t_eval``;
* time to first token = wall time of the request minus llama.cpp's decode time, i.e.
  tokenization + prefill + sampling of the first token.  (Streaming would measure it
  from outside, but costs Python work on every token; see benchmarks/overhead.py.)

Every request starts from an empty KV cache: llama-cpp-python otherwise reuses the
longest cached prompt prefix, which makes answers depend on the previous request.
The one exception is deterministic prefix reuse (:meth:`LlamaCppBackend.share_prefix`,
``llama_prefix.py``): a suite's shared prefix is evaluated once, and the cache is cut
back to exactly that prefix before each of its prompts.

JSON schemas become a llama.cpp grammar, applied in llama.cpp's ``common_sampler``
order (``grammar_first = false``), not llama-cpp-python's: sample without the grammar,
check only the chosen token, and re-sample with the grammar only when it is rejected
(:class:`_GrammarLastSampler`).  llama-cpp-python puts the grammar before greedy/top-k,
so every step matches all 262,144 tokens of the bundled model's vocabulary against the
grammar.  Measured on the bundled model, 2 cores, temperature 0, same text both ways:

* quiet machine (load average 0.8): a 48-token nested object 2.8-3.0 s grammar-first,
  1.15-1.2 s here (16-17 vs 41 tokens/s; free decoding 36-43 tokens/s); a 15-token
  object 0.9-1.0 s grammar-first (15-16 tokens/s).  The model's free choice broke
  the grammar on 11 of 49 and 6 of 16 steps, so re-sampling must be cheap too: the
  greedy one checks the best 128 candidates before the whole vocabulary.
* benchmarks/grammar.py, 4 schemas, 128 tokens, median of 3 rounds: load average
  1.0-1.5: grammar-first 7.6 s (16.9 tokens/s), here 3.7 s (34.9 tokens/s), 2.06x;
  load 3.9 falling to 2.7 (another model process finishing): 7.9 s vs 3.7 s, 2.12x;
  free decoding 42 tokens/s both times (wall time
  with prefill, which weighs more in 32-token answers than in free 80-token ones;
  copying the 262,144 logits into the candidate array costs 0.4 ms a step).
  While another process ran the model tests on both cores, this benchmark sat in
  ``llama_decode`` (free decoding included) for minutes; such contention, more than
  the grammar, is behind the 0.4 tokens/s seen on a loaded machine.

``LlamaCppBackend.grammar_first = True`` restores llama-cpp-python's order, for
comparison.  Above temperature 0 the two orders draw different (equally valid)
samples; a seed still fixes the answer.  llama.cpp's decode counter (``t_eval``)
excludes sampling, so ``decode_tps`` does not show the grammar's cost; wall time does.

A request in flight can be aborted (:meth:`LlamaCppBackend.close`, or the awaiting
task being cancelled, as Ctrl-C does): llama.cpp checks an abort callback between
the nodes of every compute graph, prefill included, so the model thread comes back
within milliseconds instead of after the rest of the answer.  Without it, Ctrl-C
under load waited for the case in flight (seen: 9-21 s with four busy processes on
2 cores, over 60 s at the 0.4 tokens/s of a loaded machine) because ``close()``
waited for the model thread.

Build trap on CPUs with AMX: see the Makefile (llama.cpp is compiled without AMX).
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hainet.backends.base import Backend, missing_dependency
from hainet.backends.llama_prefix import PrefixCache
from hainet.errors import BackendError, ConfigError, ModelNotFound
from hainet.types import Completion, ModelSpec, Request, RunConfig, Timing

__all__ = ["LlamaCppBackend", "has_chat_template"]

GGUF_MAGIC = b"GGUF"


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise missing_dependency("llama-cpp-python", "llama", exc) from None
    return llama_cpp


@lru_cache(maxsize=64)
def _grammar(schema_json: str) -> Any:
    llama_cpp = _import_llama_cpp()
    try:
        return llama_cpp.LlamaGrammar.from_json_schema(schema_json, verbose=False)
    except Exception as exc:  # the converter raises bare ValueError/RuntimeError
        raise BackendError(f"cannot turn the JSON schema into a grammar: {exc}") from None


class _GrammarLastSampler:
    """llama.cpp's ``common_sampler`` order (``grammar_first = false``) for one request.

    llama-cpp-python puts the grammar sampler before greedy/top-k, so every step checks
    all 262,144 tokens of the bundled model's vocabulary against the grammar.  Here the
    token is sampled without the grammar and only that one token is checked; when the
    grammar rejects it, the step is sampled again with the grammar applied first.  At
    temperature 0 the re-sample looks at the highest-scoring candidates first (ordered
    like greedy breaks ties: higher logit, then lower id), so the answer is exactly the
    grammar-first argmax; the whole vocabulary is checked only when none of them fits.
    Above temperature 0 the re-sample covers the whole vocabulary, as llama.cpp does.

    Duck-types ``llama_cpp._internals.LlamaSampler``: ``Llama.sample`` calls
    ``sample(ctx, idx)`` and expects the token accepted, as ``llama_sampler_sample``
    does.  A token the grammar rejects never reaches the grammar's ``accept`` (llama.cpp
    aborts the process there).
    """

    # Greedy re-sample: grammar-check this many best candidates before all of them.
    SHORTLIST = 128

    def __init__(self, lc: Any, chain: Any, grammar: Any, n_vocab: int, *, greedy: bool):
        self._lc = lc
        self._chain = chain  # LlamaSampler without the grammar; owns its C sampler
        self._grammar = grammar  # a bare llama_sampler_p owned by this object
        self._n_vocab = n_vocab
        self._greedy = greedy
        self._data = (lc.llama_token_data * n_vocab)()
        self._view = np.ctypeslib.as_array(self._data)
        self._ids = np.arange(n_vocab, dtype=np.int32)
        self._cur = lc.llama_token_data_array(
            data=self._data, size=n_vocab, selected=-1, sorted=False
        )
        self._one = (lc.llama_token_data * 1)()
        self._one_arr = lc.llama_token_data_array(data=self._one, size=1, selected=-1, sorted=False)
        self.steps = 0
        self.resampled = 0

    def _fill(self, ctx: Any, idx: int) -> None:
        logits = np.ctypeslib.as_array(
            self._lc.llama_get_logits_ith(ctx.ctx, idx), shape=(self._n_vocab,)
        )
        self._view["id"] = self._ids
        self._view["logit"] = logits
        self._view["p"] = 0.0
        self._cur.size = self._n_vocab
        self._cur.selected = -1
        self._cur.sorted = False

    def _allowed(self, token: int) -> bool:
        self._one[0].id = token
        self._one[0].logit = 1.0
        self._one[0].p = 0.0
        self._one_arr.size = 1
        self._one_arr.selected = -1
        self._one_arr.sorted = False
        self._lc.llama_sampler_apply(self._grammar, ctypes.byref(self._one_arr))
        return bool(np.isfinite(self._one[0].logit))

    def _greedy_shortlist(self) -> int | None:
        # After the first pass ``_view`` holds the chain's (penalised) logits in id
        # order; greedy would pick the first maximum among the allowed ones.
        logits = self._view["logit"]
        k = min(self.SHORTLIST, self._n_vocab)
        kth = np.partition(logits, self._n_vocab - k)[self._n_vocab - k]
        # Every token tied with the k-th best comes along, so no tie is cut off.
        cand = np.flatnonzero(logits >= kth)
        cand = cand[np.lexsort((cand, -logits[cand]))]
        short = (self._lc.llama_token_data * len(cand))()
        sview = np.ctypeslib.as_array(short)
        sview["id"] = cand.astype(np.int32)
        sview["logit"] = logits[cand]
        sview["p"] = 0.0
        arr = self._lc.llama_token_data_array(data=short, size=len(cand), selected=-1, sorted=False)
        self._lc.llama_sampler_apply(self._grammar, ctypes.byref(arr))
        ok = np.flatnonzero(np.isfinite(sview["logit"]))
        return int(sview["id"][ok[0]]) if len(ok) else None

    def sample(self, ctx: Any, idx: int = -1) -> int:
        lc = self._lc
        self.steps += 1
        self._fill(ctx, idx)
        lc.llama_sampler_apply(self._chain.sampler, ctypes.byref(self._cur))
        token = int(self._data[self._cur.selected].id)
        if not self._allowed(token):
            self.resampled += 1
            found = self._greedy_shortlist() if self._greedy else None
            if found is not None:
                token = found
            else:
                self._fill(ctx, idx)
                lc.llama_sampler_apply(self._grammar, ctypes.byref(self._cur))
                lc.llama_sampler_apply(self._chain.sampler, ctypes.byref(self._cur))
                sel = self._cur.selected
                if sel < 0 or not np.isfinite(self._data[sel].logit):
                    raise BackendError("the JSON grammar allows no token at this point")
                token = int(self._data[sel].id)
        lc.llama_sampler_accept(self._grammar, token)
        lc.llama_sampler_accept(self._chain.sampler, token)
        return token

    def close(self) -> None:
        if self._grammar is not None:
            self._lc.llama_sampler_free(self._grammar)
            self._grammar = None
        self._chain.close()

    def __del__(self) -> None:
        self.close()


@lru_cache(maxsize=1)
def _flag_reader(llama_cpp: Any) -> Any:
    """A C function to use as llama.cpp's abort callback, or None where there is none.

    The callback runs between graph nodes on llama.cpp's compute thread, hundreds of
    times per token: a Python callback would take the GIL each time (and wait up to
    the 5 ms switch interval whenever the event loop holds it).  libc's ``atoi`` reads
    the callback's data, a two-byte buffer holding "0" or "1", with no Python at all;
    its int 0/1 is the bool llama.cpp expects (``bool (*)(void *)``).
    """
    try:
        atoi = ctypes.CDLL(None).atoi
    except (OSError, AttributeError):
        return None
    return ctypes.cast(atoi, llama_cpp.ggml_abort_callback)


@lru_cache(maxsize=1)
def _llama_class(llama_cpp: Any) -> Any:
    """``llama_cpp.Llama`` with the grammar applied after sampling, not before."""

    class GrammarLastLlama(llama_cpp.Llama):  # type: ignore[misc]
        # True: llama-cpp-python's own order (the grammar filters the whole vocabulary
        # before every step); kept for comparison in tests and benchmarks/grammar.py.
        grammar_first = False

        def _init_sampler(self, *args: Any, grammar: Any = None, **kwargs: Any) -> Any:
            if grammar is None or self.grammar_first or kwargs.get("logits_processor"):
                return super()._init_sampler(*args, grammar=grammar, **kwargs)
            chain = super()._init_sampler(*args, grammar=None, **kwargs)
            gsmpl = llama_cpp.llama_sampler_init_grammar(
                self._model.vocab, grammar._grammar.encode(), grammar._root.encode()
            )
            if not gsmpl:
                chain.close()
                raise BackendError("llama.cpp rejected the grammar built from the JSON schema")
            temp = kwargs.get("temp", 0.8)
            return _GrammarLastSampler(llama_cpp, chain, gsmpl, self._n_vocab, greedy=temp == 0.0)

    return GrammarLastLlama


def _quiet() -> Any:
    from llama_cpp._utils import suppress_stdout_stderr

    return suppress_stdout_stderr(disable=False)


def check_gguf(path: Path) -> None:
    """Fail early, with a clear message, on a missing or non-GGUF file."""
    if not path.exists():
        raise ModelNotFound(f"model file not found: {path}")
    if not path.is_file():
        raise ModelNotFound(f"model path is not a file: {path}")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != GGUF_MAGIC:
        raise BackendError(f"{path} is not a GGUF file (starts with {magic!r}, expected b'GGUF')")


def has_chat_template(llm: Any) -> bool:
    return bool(llm.metadata.get("tokenizer.chat_template"))


# Bits per weight of llama.cpp file types, for estimating a variant not made yet.
_BITS = {
    "f32": 32.0,
    "f16": 16.0,
    "bf16": 16.0,
    "q8_0": 8.5,
    "q6_k": 6.6,
    "q5_k_m": 5.7,
    "q5_k_s": 5.5,
    "q5_0": 5.5,
    "q5_1": 6.0,
    "q4_k_m": 4.9,
    "q4_k_s": 4.6,
    "q4_0": 4.5,
    "q4_1": 5.0,
    "q3_k_m": 3.9,
    "q3_k_s": 3.5,
    "q3_k_l": 4.3,
    "q2_k": 3.4,
}
# Measured: making the F16 base of the bundled 268M-parameter model peaks at 2.3 GB.
_F16_CONVERSION_BYTES_PER_PARAM = 8.6


class LlamaCppBackend(Backend):
    name: ClassVar[str] = "llamacpp"
    supports_chat = True
    supports_json_schema = True
    reports_timings = True
    in_process = True
    libraries = ("llama_cpp_python",)
    default_for = ("path",)

    @classmethod
    def weight_bytes(cls, spec: ModelSpec, quantization: str | None, home: Path) -> float:
        """A variant not made yet is sized from its bits per weight; the first one
        of a model also makes its F16 base, which costs more than the model itself."""
        size = float(spec.file_size or 0)
        if quantization and spec.parameters:
            bits = _BITS.get(quantization.lower())
            if bits is not None:
                size = spec.parameters * bits / 8
            if quantization.lower() not in ("none",) and not cls._base_cached(spec, home):
                size = max(size, spec.parameters * _F16_CONVERSION_BYTES_PER_PARAM)
        return size

    @staticmethod
    def _base_cached(spec: ModelSpec, home: Path) -> bool:
        if not spec.path:
            return False
        from hainet.backends.quantize import f16_base_cached

        return f16_base_cached(Path(spec.path), home / "quantized")

    @classmethod
    def normalize_quantization(cls, name: str) -> str:
        """4bit -> q4_k_m, 8bit -> q8_0, none -> f16; llama.cpp type names as they are."""
        from hainet.backends.quantize import normalize_quantization

        return normalize_quantization(name)

    @classmethod
    def check_quantizable(cls, spec: ModelSpec) -> None:
        super().check_quantizable(spec)
        if not spec.path:
            raise ConfigError(f"model {spec.name!r} has no GGUF file to quantize")

    @classmethod
    def prepare(cls, config: RunConfig, home: Path, status: Callable[[str], None]) -> ModelSpec:
        """Make (or find cached) the quantized GGUF of the configuration."""
        spec = super().prepare(config.model_copy(update={"quantization": None}), home, status)
        if config.quantization is None:
            return spec
        from hainet.backends.quantize import quantized_variant

        assert spec.path is not None
        status(f"making {config.quantization} of {spec.name}")
        path = quantized_variant(Path(spec.path), config.quantization, home / "quantized")
        return spec.model_copy(
            update={
                "path": str(path),
                "quantization": config.quantization.upper(),
                "file_size": path.stat().st_size,
                "sha256": None,
            }
        )

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        llama_cpp = _import_llama_cpp()
        self._llama_cpp = llama_cpp
        if not spec.path:
            raise ModelNotFound(f"model {spec.name!r} has no GGUF path")
        path = Path(spec.path).expanduser()
        check_gguf(path)
        # llama-cpp-python defaults to half the cores; decode on 2 cores is ~1.6x
        # faster with both (FIELD-NOTES.md).
        self.n_threads = spec.n_threads or os.cpu_count() or 1
        # Every llama.cpp call for this model, the load included, runs on one thread:
        # llama.cpp's OpenMP team belongs to the calling thread, and a second calling
        # thread brings a second team that competes for the cores.  Measured with
        # asyncio.to_thread's rotating pool: cases ran up to 27% slower.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hainet-llama")
        self._lock = threading.Lock()  # held by the request in flight
        # The abort flag and the request it applies to change together under _state,
        # so that cancelling one request never aborts the next one.
        self._state = threading.Lock()
        self._abort = ctypes.create_string_buffer(b"0", 2)
        self._running: object | None = None
        self._prefix = PrefixCache()
        self._closing = False
        self._closed = False
        start = time.perf_counter()
        try:
            self._llm = self._executor.submit(self._load, llama_cpp, path).result()
        except (ValueError, RuntimeError, OSError) as exc:
            self._executor.shutdown(wait=False)
            raise BackendError(
                f"llama.cpp could not load {path}: {exc}",
                hint="is the file a complete GGUF model? re-download or re-assemble it",
            ) from None
        self.load_seconds = time.perf_counter() - start
        self._chat_ok = bool(spec.chat_format) or has_chat_template(self._llm)
        self._abort_callback = _flag_reader(llama_cpp)
        if self._abort_callback is not None:
            llama_cpp.llama_set_abort_callback(
                self._llm.ctx, self._abort_callback, ctypes.cast(self._abort, ctypes.c_void_p)
            )

    def _load(self, llama_cpp: Any, path: Path) -> Any:
        # llama.cpp writes some notices straight to fd 2 even with verbose=False.
        with _quiet():
            return _llama_class(llama_cpp)(
                model_path=str(path),
                n_ctx=self.spec.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                flash_attn=self.spec.flash_attn,
                chat_format=self.spec.chat_format,
                seed=0,
                verbose=False,
            )

    # -- generation ---------------------------------------------------------------

    async def generate(self, request: Request) -> Completion:
        if request.mode == "chat" and not self._chat_ok:
            raise BackendError(
                f"model {self.spec.name!r} has no chat template, so chat requests would"
                " come back empty",
                hint="use prompt mode, or set chat_format (e.g. 'gemma', 'chatml')",
            )
        loop = asyncio.get_running_loop()
        token = object()
        try:
            return await loop.run_in_executor(self._executor, self._run, request, token)
        except asyncio.CancelledError:
            # Nobody will read this answer: stop computing it (see the module docstring).
            self._abort_if_running(token)
            raise

    def generate_sync(self, request: Request) -> Completion:
        """Blocking version of :meth:`generate` (one request at a time per model).
        Call it from one thread only, or use :meth:`generate`."""
        return self._run(request, object())

    def _run(self, request: Request, token: object) -> Completion:
        with self._lock:
            with self._state:
                if self._closed or self._closing:
                    raise BackendError(f"model {self.spec.name!r} is closed")
                self._running = token
                self._abort.value = b"0"
            try:
                return self._generate_locked(request)
            except RuntimeError:  # llama_decode returned 2: aborted
                if self._abort.value == b"1":
                    raise BackendError(f"{self.spec.name}: generation aborted") from None
                raise
            finally:
                with self._state:
                    self._running = None
                    self._abort.value = b"0"

    def _abort_if_running(self, token: object) -> None:
        with self._state:
            if self._running is token:
                self._abort.value = b"1"

    def _generate_locked(self, request: Request) -> Completion:
        llm, lc, p = self._llm, self._llama_cpp, request.params
        if self._prefix.active and request.prompt is not None:
            self._prefix.prepare(llm, request.prompt, self.clear_cache)
        else:
            self.clear_cache()
        lc.llama_perf_context_reset(llm.ctx)
        common: dict[str, Any] = {
            "max_tokens": p.max_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "seed": p.seed,
            "stop": list(p.stop) or None,
        }
        start = time.perf_counter()
        try:
            if request.prompt is not None:
                if p.json_schema is not None:
                    # Key order matters: the grammar makes the model write keys in this order.
                    common["grammar"] = _grammar(json.dumps(p.json_schema))
                out = llm.create_completion(request.prompt, **common)
                choice = out["choices"][0]
                text = choice["text"]
            else:
                assert request.messages is not None
                if p.json_schema is not None:
                    common["response_format"] = {"type": "json_object", "schema": p.json_schema}
                out = llm.create_chat_completion(
                    messages=[{"role": m.role, "content": m.content} for m in request.messages],
                    **common,
                )
                choice = out["choices"][0]
                text = choice["message"].get("content") or ""
        except ValueError as exc:  # e.g. prompt longer than the context
            raise BackendError(f"{self.spec.name}: {exc}") from None
        wall = time.perf_counter() - start
        perf = lc.llama_perf_context(llm.ctx)
        usage = out.get("usage", {})
        decode_s = perf.t_eval_ms / 1000.0
        timing = Timing(
            wall_s=wall,
            ttft_s=max(wall - decode_s, 0.0),
            prefill_tps=(perf.n_p_eval / perf.t_p_eval_ms * 1000.0)
            if perf.t_p_eval_ms > 0
            else None,
            decode_tps=(perf.n_eval / decode_s) if decode_s > 0 and perf.n_eval > 0 else None,
        )
        return Completion(
            text=text,
            timing=timing,
            prompt_tokens=int(usage.get("prompt_tokens", perf.n_p_eval)),
            completion_tokens=int(usage.get("completion_tokens", perf.n_eval)),
            finish_reason=choice.get("finish_reason"),
            model=self.spec.name,
        )

    @property
    def grammar_first(self) -> bool:
        """Whether JSON-schema requests use llama-cpp-python's own sampler order (the
        grammar checks the whole vocabulary every step) instead of the fast one."""
        return bool(self._llm.grammar_first)

    @grammar_first.setter
    def grammar_first(self, value: bool) -> None:
        self._llm.grammar_first = value

    def clear_cache(self) -> None:
        """Forget every cached token so the next answer depends only on its prompt."""
        self._prefix.loaded = None
        self._llm.reset()
        self._llm._ctx.kv_cache_clear()

    def share_prefix(self, prompts: Sequence[str]) -> int:
        """Evaluate the common prefix of ``prompts`` once (when a prompt first needs
        it) and reuse it for every later prompt request that starts with it; its
        length in tokens, 0 if too short to be worth it (``llama_prefix.py``)."""
        with self._lock:
            return self._prefix.register(self._llm, prompts)

    # How long close() waits for an aborted request to come back before it gives up
    # freeing the model (freeing memory a llama.cpp call still uses would crash).
    CLOSE_WAIT_S: ClassVar[float] = 10.0

    def close(self) -> None:
        """Abort the request in flight, if any, and free the model.

        Bounded: waits at most ``CLOSE_WAIT_S`` for the model thread (an aborted
        request returns within one graph node); if it has not returned by then the
        model is left to the process's exit instead of being freed under it."""
        with self._state:
            self._closing = True
            if self._running is not None:
                self._abort.value = b"1"
        self._executor.shutdown(wait=False, cancel_futures=True)
        if not self._lock.acquire(timeout=self.CLOSE_WAIT_S):
            return
        try:
            if not self._closed:
                self._closed = True
                self._llm.close()
        finally:
            self._lock.release()
