"""In-process Hugging Face transformers (extra ``transformers``).

``ModelSpec.path`` is either a GGUF file or a local model directory (``config.json``
and weights); nothing is ever fetched from a hub (``local_files_only=True``).

**GGUF files and the conversion cache.**  transformers reads a GGUF by dequantizing
every tensor to fp32, which for the bundled 270M model costs 43-49 s and 3.2 GiB peak
RSS (12 s of it building the 262k-entry tokenizer).  The first load therefore saves
the converted model and tokenizer as an ordinary fp32 model directory under
``HAINET_HOME/transformers/<first 16 hex digits of the GGUF's sha256>/`` and every
later load of the same file reads that directory instead (about 5 s, sha256 of the
GGUF included).  The copy is
written to a hidden temp directory next to it and renamed into place, so an
interrupted conversion never looks complete; two processes converting at once both
succeed and one copy wins.  Delete the directory to reclaim the disk (about 4 bytes
per parameter: 1.1 GB for the bundled model).

**Quantization** (``spec.quantization``), decided by :func:`plan_load` before
anything heavy is loaded:

=========  ====================================  ===================================
value      CPU                                   CUDA
=========  ====================================  ===================================
``none``   fp32                                  the checkpoint's dtype
``8bit``   torch dynamic int8 on ``nn.Linear``   bitsandbytes int8 (LLM.int8())
``4bit``   error: needs a CUDA GPU               bitsandbytes NF4
=========  ====================================  ===================================

Dynamic int8 leaves ``lm_head`` and any Linear that shares its weight with an
embedding in fp32: quantizing the tied output layer breaks the output
(FIELD-NOTES.md).  On the bundled model that keeps the 640 MiB embedding in fp32, so
8bit saves 29% of the weights (736 against 1023 MiB) and decodes at 16 tokens/s
against 19.  GGUF type names such as ``Q4_K_M`` describe a llama.cpp file and
are refused here rather than silently read as ``none``.

**Flash attention** (``spec.flash_attn=True``) means
``attn_implementation="flash_attention_2"``: a CUDA GPU, the ``flash-attn`` package
and half precision (bf16 is used).  Off, transformers picks its default (``sdpa``
where the model supports it, else ``eager``); the choice made is in
:attr:`TransformersBackend.attn_implementation`.  Whatever the hardware cannot do is
a :class:`~hainet.errors.BackendError` naming what it needs, never a fallback.

**Timings.**  A stopping criterion, which transformers calls once after each new
token, stamps the clock: time to first token is from the start of the request
(tokenization included) to the first call; prefill tokens/s = prompt tokens / ttft;
decode tokens/s = (generated tokens - 1) / (time from the first to the last token).

Every torch call for a model, the load included, runs on one dedicated thread, as in
the llama.cpp backend; ``torch.set_num_threads(spec.n_threads or cpu count)`` is set
there (torch's intra-op thread count is process-wide).  On shared cores use fewer:
measured on 2 cores, one busy neighbour process cut 2-thread decoding from 19 to 4
tokens/s (the threads spin at every barrier), while 1 thread held 10.  Sampling
seeds torch's global generator with the request's seed on that thread, so a
(prompt, params) pair gives the same answer every time.  JSON-schema constrained
output is not supported.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import os
import shutil
import threading
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

from hainet.backends.base import Backend, missing_dependency
from hainet.backends.catalog import sha256_file
from hainet.backends.llamacpp import check_gguf
from hainet.config import home_dir
from hainet.errors import BackendError, BackendUnavailable, ModelNotFound
from hainet.types import Completion, ModelSpec, Request, Timing

__all__ = ["LoadPlan", "TransformersBackend", "normalize_quantization", "plan_load"]

Quantization = Literal["none", "8bit", "4bit"]
QUANTIZATIONS: tuple[Quantization, ...] = ("none", "8bit", "4bit")
CACHE_DIRNAME = "transformers"
_SOURCE_FILE = "hainet-source.json"
_CPU_HINT = "on a CPU use quantization none or 8bit (torch dynamic int8) and flash_attn false"


Method = Literal["fp32", "auto", "torch-dynamic-int8", "bitsandbytes-int8", "bitsandbytes-nf4"]
_CUDA_METHODS: dict[Quantization, Method] = {
    "none": "auto",
    "8bit": "bitsandbytes-int8",
    "4bit": "bitsandbytes-nf4",
}


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """How one (quantization, flash attention) pair loads on the hardware found."""

    device: Literal["cpu", "cuda"]
    quantization: Quantization
    method: Method
    """What carries the quantization (``auto`` = the checkpoint's dtype on CUDA)."""
    flash_attn: bool

    @property
    def attn_implementation(self) -> str | None:
        """``None`` lets transformers choose (sdpa where supported, else eager)."""
        return "flash_attention_2" if self.flash_attn else None

    @property
    def needs_bitsandbytes(self) -> bool:
        return self.method.startswith("bitsandbytes")


def normalize_quantization(value: str | None) -> Quantization:
    """``None``/``"none"``/``"8bit"``/``"4bit"`` (any case); anything else is refused."""
    if value is None:
        return "none"
    low = value.strip().lower()
    for q in QUANTIZATIONS:
        if low == q:
            return q
    raise BackendError(
        f"the transformers backend does not know quantization {value!r}",
        hint="use none, 8bit or 4bit (llama.cpp types such as Q4_K_M are for the llamacpp"
        " backend; a GGUF is dequantized on load)",
    )


def plan_load(quantization: str | None, flash_attn: bool, *, cuda: bool) -> LoadPlan:
    """Decide how to load, or raise a :class:`BackendError` naming every combination
    this hardware cannot do and what it would need.  Pure: no import, no I/O."""
    quant = normalize_quantization(quantization)
    problems: list[str] = []
    if not cuda:
        if quant == "4bit":
            problems.append("4bit needs a CUDA GPU (bitsandbytes NF4); none found")
        if flash_attn:
            problems.append(
                "flash attention needs a CUDA GPU and the flash-attn package"
                " (attn_implementation='flash_attention_2'); no CUDA GPU found"
            )
    if problems:
        raise BackendError("; ".join(problems), hint=_CPU_HINT)
    if cuda:
        return LoadPlan("cuda", quant, _CUDA_METHODS[quant], flash_attn)
    return LoadPlan("cpu", quant, "torch-dynamic-int8" if quant == "8bit" else "fp32", False)


def check_plan_dependencies(plan: LoadPlan) -> None:
    """Import what the plan needs beyond torch and transformers, with an install hint."""
    if plan.needs_bitsandbytes:
        try:
            importlib.import_module("bitsandbytes")
        except ImportError as exc:
            raise BackendUnavailable(
                f"{plan.quantization} on CUDA needs bitsandbytes, which is not installed ({exc})",
                hint="pip install bitsandbytes",
            ) from None
    if plan.flash_attn:
        try:
            importlib.import_module("flash_attn")
        except ImportError as exc:
            raise BackendUnavailable(
                f"flash attention needs the flash-attn package, which is not installed ({exc})",
                hint="pip install flash-attn --no-build-isolation",
            ) from None


def _import_stack() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise missing_dependency("torch and transformers", "transformers", exc) from None
    return torch, transformers


def _import_gguf_readers() -> None:
    """transformers reads GGUF files through these two; say so before it does."""
    for name in ("gguf", "accelerate"):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise missing_dependency(
                f"{name} (needed to read GGUF files)", "transformers", exc
            ) from None


@lru_cache(maxsize=1)
def _criteria_classes() -> tuple[type[Any], type[Any]]:
    """Stopping criteria, defined on first use because their base class is optional."""
    import torch
    from transformers import StoppingCriteria

    class Clock(StoppingCriteria):
        """Called once after every new token: stamps the first and the last."""

        def __init__(self) -> None:
            self.first: float | None = None
            self.last: float | None = None

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            now = time.perf_counter()
            if self.first is None:
                self.first = now
            self.last = now
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    class StopStrings(StoppingCriteria):
        """Halts when the text generated so far contains one of ``stops``."""

        def __init__(self, tokenizer: Any, prompt_len: int, stops: tuple[str, ...]) -> None:
            self.tokenizer = tokenizer
            self.prompt_len = prompt_len
            self.stops = stops
            self.hit = False

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            # Decoding every new token again is O(n^2) but costs microseconds next to
            # a decode step; it is right for stops that span several tokens.
            done = [
                any(s in self.tokenizer.decode(row[self.prompt_len :]) for s in self.stops)
                for row in input_ids
            ]
            self.hit = self.hit or any(done)
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return Clock, StopStrings


def _weights_bytes(model: Any) -> int:
    """Bytes of the weights, tied ones once.  Unlike ``get_memory_footprint`` this
    counts dynamic int8 layers, whose weights are packed outside the parameters."""
    seen: set[int] = set()
    total = 0
    stack = list(model.state_dict().values())
    while stack:
        value = stack.pop()
        if isinstance(value, tuple | list):
            stack.extend(value)
        elif hasattr(value, "element_size") and value.data_ptr() not in seen:
            seen.add(value.data_ptr())
            total += value.numel() * value.element_size()
    return total


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    cuts = [i for i in (text.find(s) for s in stops) if i >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


class TransformersBackend(Backend):
    """A local GGUF file or model directory run by transformers on CPU or CUDA.

    ``cache_dir`` overrides where converted GGUFs are kept (default
    ``HAINET_HOME/transformers``).  After loading, :attr:`plan` says how the model
    was loaded, :attr:`converted` whether this load converted a GGUF, and
    :attr:`memory_bytes` what its weights take.
    """

    name: ClassVar[str] = "transformers"
    supports_chat = True
    supports_json_schema = False
    reports_timings = True
    in_process = True
    libraries = ("transformers", "torch")

    @classmethod
    def weight_bytes(cls, spec: ModelSpec, quantization: str | None, home: Path) -> float:
        """fp32 weights whatever the file holds: the first load (GGUF conversion)
        peaked at 12 bytes per parameter."""
        size = float(spec.file_size or 0)
        return max(size, spec.parameters * 12.0) if spec.parameters else size

    def __init__(self, spec: ModelSpec, *, cache_dir: Path | None = None) -> None:
        super().__init__(spec)
        torch, transformers = _import_stack()
        self._torch = torch
        self._transformers = transformers
        if not spec.path:
            raise ModelNotFound(
                f"model {spec.name!r} has no path",
                hint="set path to a GGUF file or a local transformers model directory",
            )
        self.source = Path(spec.path).expanduser()
        self.is_gguf = self._check_source(self.source)
        self.plan = plan_load(spec.quantization, spec.flash_attn, cuda=self._cuda_available())
        check_plan_dependencies(self.plan)
        if self.is_gguf:
            _import_gguf_readers()
        self.cache_root = cache_dir if cache_dir is not None else home_dir() / CACHE_DIRNAME
        self.n_threads = spec.n_threads or os.cpu_count() or 1
        self.converted = False
        self.model_dir: Path | None = None
        self.attn_implementation: str | None = None
        self.memory_bytes = 0
        # One thread for every torch call of this model, the load included (see the
        # llama.cpp backend: a second calling thread brings a second thread team).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hainet-torch")
        self._lock = threading.Lock()
        start = time.perf_counter()
        try:
            self._model, self._tokenizer = self._executor.submit(self._load).result()
        except BaseException:
            self._executor.shutdown(wait=False)
            raise
        self.load_seconds = time.perf_counter() - start
        self._closed = False

    def _cuda_available(self) -> bool:
        return bool(self._torch.cuda.is_available())

    @staticmethod
    def _check_source(path: Path) -> bool:
        """True for a GGUF file, False for a model directory; anything else raises."""
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise ModelNotFound(
                    f"{path} is a directory without config.json, not a transformers model"
                )
            return False
        if path.suffix.lower() == ".gguf" or path.is_file():
            check_gguf(path)  # missing file, or not GGUF: a clear error
            return True
        raise ModelNotFound(f"model path not found: {path}")

    # -- loading (on the model's thread) ---------------------------------------------

    def _load(self) -> tuple[Any, Any]:
        torch, transformers = self._torch, self._transformers
        torch.set_num_threads(self.n_threads)
        bars = transformers.utils.logging.is_progress_bar_enabled()
        transformers.utils.logging.disable_progress_bar()
        try:
            directory = self._cached_conversion() if self.is_gguf else self.source
            self.model_dir = directory
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                str(directory), local_files_only=True
            )
            model = transformers.AutoModelForCausalLM.from_pretrained(
                str(directory), local_files_only=True, **self._load_kwargs()
            )
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise BackendError(
                f"transformers could not load {self.source}: {exc}",
                hint="is it a complete model directory or GGUF file of an architecture"
                f" transformers {transformers.__version__} knows?",
            ) from None
        finally:
            if bars:
                transformers.utils.logging.enable_progress_bar()
        model.eval()
        if self.plan.method == "torch-dynamic-int8":
            model = self._dynamic_int8(model)
        self.attn_implementation = getattr(model.config, "_attn_implementation", None)
        self.memory_bytes = _weights_bytes(model)
        return model, tokenizer

    def _load_kwargs(self) -> dict[str, Any]:
        torch, transformers, plan = self._torch, self._transformers, self.plan
        kwargs: dict[str, Any] = {"attn_implementation": plan.attn_implementation}
        if plan.device == "cpu":
            kwargs["dtype"] = torch.float32
            return kwargs
        kwargs["device_map"] = {"": torch.cuda.current_device()}
        # flash-attn kernels take only fp16/bf16.
        kwargs["dtype"] = torch.bfloat16 if plan.flash_attn else "auto"
        if plan.method == "bitsandbytes-int8":
            kwargs["quantization_config"] = transformers.BitsAndBytesConfig(load_in_8bit=True)
        elif plan.method == "bitsandbytes-nf4":
            kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_compute_dtype=torch.bfloat16,
            )
        return kwargs

    def _dynamic_int8(self, model: Any) -> Any:
        torch = self._torch
        try:
            from torch.ao.quantization import quantize_dynamic
        except ImportError as exc:
            raise BackendError(
                f"8bit on CPU needs torch.ao.quantization.quantize_dynamic, missing in torch"
                f" {torch.__version__} ({exc})",
                hint="install the torch version hainet pins (pip install 'hainet[transformers]')",
            ) from None
        output = model.get_output_embeddings()
        tied = {m.weight.data_ptr() for m in model.modules() if isinstance(m, torch.nn.Embedding)}
        names = {
            name
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear)
            and module is not output
            and module.weight.data_ptr() not in tied
        }
        with warnings.catch_warnings():
            # torch marks eager-mode quantization deprecated in favour of torchao;
            # it still works in the pinned torch and needs nothing else installed.
            warnings.simplefilter("ignore")
            return quantize_dynamic(  # type: ignore[no-untyped-call]
                model, qconfig_spec=names, dtype=torch.qint8, inplace=True
            )

    def _cached_conversion(self) -> Path:
        """The fp32 model directory converted from the GGUF, made on first use."""
        digest = sha256_file(self.source)
        target = self.cache_root / digest[:16]
        if (target / _SOURCE_FILE).is_file():
            return target
        self.converted = True
        transformers = self._transformers
        tmp = self.cache_root / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.mkdir(parents=True)
        try:
            kwargs = {"gguf_file": self.source.name, "local_files_only": True}
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                str(self.source.parent), **kwargs
            )
            model = transformers.AutoModelForCausalLM.from_pretrained(
                str(self.source.parent), dtype=self._torch.float32, **kwargs
            )
            # The GGUF "quantizer" only marks where the weights came from (they are
            # plain fp32 now); save_pretrained refuses a model that carries one.
            model.hf_quantizer = None
            for holder in (model, model.config):
                if hasattr(holder, "quantization_config"):
                    delattr(holder, "quantization_config")
            model.save_pretrained(str(tmp))
            tokenizer.save_pretrained(str(tmp))
            del model
            gc.collect()
            meta = {
                "source": str(self.source),
                "sha256": digest,
                "transformers": transformers.__version__,
                "created": time.time(),
            }
            (tmp / _SOURCE_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
            try:
                os.rename(tmp, target)
            except OSError:
                if not (target / _SOURCE_FILE).is_file():
                    raise
                # Another process finished the same conversion first; keep its copy.
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return target

    # -- generation -------------------------------------------------------------------

    async def generate(self, request: Request) -> Completion:
        if request.params.json_schema is not None:
            raise BackendError(
                "the transformers backend cannot constrain output to a JSON schema",
                hint="use the llamacpp or openai backend for schema-constrained output",
            )
        if request.mode == "chat" and not self.has_chat_template:
            raise BackendError(
                f"model {self.spec.name!r} has no chat template, so chat requests cannot be"
                " formatted",
                hint="use prompt mode (chat_format is a llama.cpp setting)",
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.generate_sync, request)

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self._tokenizer, "chat_template", None))

    def generate_sync(self, request: Request) -> Completion:
        """Blocking version of :meth:`generate`.  Call it from one thread only, or use
        :meth:`generate` (which runs it on the model's own thread)."""
        with self._lock:
            if self._closed:
                raise BackendError(f"model {self.spec.name!r} is closed")
            # Process-wide setting that hainet.embed lowers to 1: restore ours.
            self._torch.set_num_threads(self.n_threads)
            return self._generate_locked(request)

    def _encode(self, request: Request) -> Any:
        tok = self._tokenizer
        if request.prompt is not None:
            return tok(request.prompt, return_tensors="pt")
        assert request.messages is not None
        if not self.has_chat_template:
            raise BackendError(f"model {self.spec.name!r} has no chat template")
        text = tok.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in request.messages],
            tokenize=False,
            add_generation_prompt=True,
        )
        # The template writes the special tokens (BOS) itself.
        return tok(text, return_tensors="pt", add_special_tokens=False)

    def _generate_locked(self, request: Request) -> Completion:
        torch, transformers = self._torch, self._transformers
        model, tok, p = self._model, self._tokenizer, request.params
        start = time.perf_counter()
        inputs = self._encode(request).to(model.device)
        n_prompt = int(inputs["input_ids"].shape[1])
        if n_prompt >= self.spec.n_ctx:
            raise BackendError(
                f"{self.spec.name}: the prompt has {n_prompt} tokens, the context"
                f" {self.spec.n_ctx}",
                hint="raise n_ctx or shorten the prompt",
            )
        max_new = min(p.max_tokens, self.spec.n_ctx - n_prompt)
        gen = model.generation_config
        sampling: dict[str, Any] = {"do_sample": False}
        if p.temperature > 0:
            # Temperature and top_p only: top_k=0 turns off transformers' default of 50.
            sampling = {"do_sample": True, "temperature": p.temperature, "top_p": p.top_p}
            sampling["top_k"] = 0
        config = transformers.GenerationConfig(
            max_new_tokens=max_new,
            **sampling,
            eos_token_id=gen.eos_token_id,
            bos_token_id=gen.bos_token_id,
            pad_token_id=gen.pad_token_id if gen.pad_token_id is not None else tok.pad_token_id,
        )
        clock_cls, stops_cls = _criteria_classes()
        clock = clock_cls()
        criteria: list[Any] = [clock]
        stopper = stops_cls(tok, n_prompt, p.stop) if p.stop else None
        if stopper is not None:
            criteria.append(stopper)
        torch.manual_seed(p.seed)
        try:
            with torch.inference_mode():
                out = model.generate(
                    **inputs,
                    generation_config=config,
                    stopping_criteria=transformers.StoppingCriteriaList(criteria),
                )
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"{self.spec.name}: generation failed: {exc}") from None
        wall = time.perf_counter() - start
        new_ids = out[0][n_prompt:]
        n_new = int(new_ids.shape[0])
        text = tok.decode(new_ids, skip_special_tokens=True)
        text, stopped = _cut_at_stop(text, p.stop)
        eos = gen.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if stopped or (n_new and int(new_ids[-1]) in eos_ids):
            finish = "stop"
        else:
            finish = "length" if n_new >= max_new else "stop"
        ttft = (clock.first - start) if clock.first is not None else None
        decode_s = (clock.last - clock.first) if clock.first is not None else 0.0
        timing = Timing(
            wall_s=wall,
            ttft_s=ttft,
            prefill_tps=n_prompt / ttft if ttft else None,
            decode_tps=(n_new - 1) / decode_s if n_new > 1 and decode_s > 0 else None,
        )
        return Completion(
            text=text,
            timing=timing,
            prompt_tokens=n_prompt,
            completion_tokens=n_new,
            finish_reason=finish,
            model=self.spec.name,
        )

    def close(self) -> None:
        with self._lock:
            if not getattr(self, "_closed", True):
                self._closed = True
                self._model = None
                self._tokenizer = None
                gc.collect()
        self._executor.shutdown(wait=False)
