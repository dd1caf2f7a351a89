"""Batched decoding for the in-process llama.cpp backend: up to N prompts at once,
one sequence each, in a batch of a fixed shape.

Issue 17 measured that llama.cpp's batched answers follow the batch *shape* (how
many rows a step has), not the companions: at 2-8 sequences about half of the
answers differ from their 1-sequence answers, and the same prompt twice in a batch
gives the same answer whatever it is paired with.  So this decoder never lets the
shape vary:

* its own llama.cpp context on the loaded model's weights, with ``n_seq_max = N``
  and a KV cache split per sequence (``kv_unified = false``): a sequence attends to
  its own stream only, so where its cells are never depends on other sequences;
* every decode step has exactly N rows, one per slot, each with its logits; a slot
  with no case decodes a padding token in its own, otherwise empty, sequence;
* a case's prompt is evaluated alone (a batch of only its tokens, as in 1-sequence
  mode), then it joins the steps; its sampler is its own (greedy, or llama-cpp-
  python's top-k/typical/top-p/min-p/temperature chain with the request's seed).

Each output row of a matrix product is computed from its own row of activations
alone, by the one kernel the step's shape selects, and each sequence's attention
reads only its own stream; padding and the companions' tokens change no sum in a
case's computation.  ``tests/backends/test_llama_batch.py`` checks it on the real
model: the same case beside different companions, in every slot, gives the same
tokens.  What N does change is the shape, hence the kernels: answers at N = 8 are
not the N = 1 (or unbatched) answers, which is why a run records its ``batch``.

Plain prompt requests only; a JSON-schema (grammar) or chat request goes through
the backend's one-at-a-time path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hainet.backends.llama_prefix import prompt_tokens
from hainet.errors import BackendError
from hainet.types import Completion, Request, Timing

__all__ = ["BatchDecoder", "Job"]


@dataclass
class Job:
    """One prompt request being decoded in a slot."""

    request: Request
    deliver: Callable[[Completion | BaseException], None]
    cancelled: Callable[[], bool] = lambda: False
    tokens: list[int] = field(default_factory=list)
    out: list[int] = field(default_factory=list)
    text: str = ""
    pos: int = 0
    sampler: Any = None
    start: float = 0.0
    first_at: float | None = None
    prefill_s: float = 0.0
    decode_s: float = 0.0
    finish: str | None = None


class BatchDecoder:
    """N slots decoded in lockstep on a context of their own (module docstring).
    Used from the model's own thread only."""

    def __init__(
        self, lc: Any, llm: Any, n: int, *, n_ctx: int, n_threads: int, abort: Any
    ) -> None:
        self._lc, self._llm, self.n = lc, llm, n
        params = lc.llama_context_default_params()
        # Each sequence gets the context a single request has (n_ctx / n_seq_max each).
        params.n_ctx = n_ctx * n
        self._n_batch = params.n_batch = params.n_ubatch = max(512, n)
        params.n_seq_max = n
        params.kv_unified = False
        params.n_threads = params.n_threads_batch = n_threads
        params.flash_attn_type = llm.context_params.flash_attn_type
        params.no_perf = False
        self.ctx = lc.llama_init_from_model(llm._model.model, params)
        if not self.ctx:
            raise BackendError("llama.cpp could not make a batched context")
        if abort is not None:
            lc.llama_set_abort_callback(self.ctx, *abort)
        self.n_ctx = n_ctx
        self._mem = lc.llama_get_memory(self.ctx)
        self._vocab = llm._model.vocab
        self._batch = lc.llama_batch_init(params.n_batch, 0, 1)
        self._pad = llm.token_bos()
        self.slots: list[Job | None] = [None] * n
        self.steps = 0

    # -- llama.cpp calls --------------------------------------------------------

    def _decode(self, rows: Sequence[tuple[int, int, int, bool]]) -> None:
        """Decode (token, position, sequence, wants logits) rows as one batch."""
        b = self._batch
        for i, (token, pos, seq, logits) in enumerate(rows):
            b.token[i] = token
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = logits
        b.n_tokens = len(rows)
        rc = self._lc.llama_decode(self.ctx, b)
        if rc == 2:
            raise BackendError("generation aborted")
        if rc != 0:
            raise BackendError(f"llama.cpp batched decode failed ({rc})")

    def _sampler(self, request: Request) -> Any:
        from llama_cpp import _internals

        p = request.params
        smpl: Any = getattr(_internals, "LlamaSampler")()  # noqa: B009 - untyped in the SDK
        smpl.add_penalties(self._llm.n_vocab(), 64, 1.0, 0.0, 0.0)
        if p.temperature == 0.0:
            smpl.add_greedy()
        else:  # llama-cpp-python's create_completion defaults
            smpl.add_top_k(40)
            smpl.add_typical(1.0, 1)
            smpl.add_top_p(p.top_p, 1)
            smpl.add_min_p(0.05, 1)
            smpl.add_temp(p.temperature)
            smpl.add_dist(p.seed)
        return smpl

    def _sample(self, job: Job, row: int) -> None:
        token = int(self._lc.llama_sampler_sample(job.sampler.sampler, self.ctx, row))
        job.out.append(token)
        if self._lc.llama_vocab_is_eog(self._vocab, token):
            job.out.pop()
            job.finish = "stop"
            return
        text = self._llm.detokenize(job.out).decode("utf-8", errors="ignore")
        found = [i for i in (text.find(s) for s in job.request.params.stop) if i >= 0]
        cut = min(found, default=-1)
        if cut >= 0:
            job.text, job.finish = text[:cut], "stop"
        else:
            job.text = text
            limit = min(job.request.params.max_tokens, self.n_ctx - len(job.tokens))
            if len(job.out) >= limit:
                job.finish = "length"

    # -- slots -------------------------------------------------------------------

    def start(self, slot: int, job: Job) -> None:
        """Evaluate ``job``'s prompt alone in ``slot`` and sample its first token."""
        lc = self._lc
        lc.llama_memory_seq_rm(self._mem, slot, -1, -1)
        job.start = time.perf_counter()
        job.tokens = prompt_tokens(self._llm, job.request.prompt or "")
        if len(job.tokens) >= self.n_ctx:
            raise BackendError(
                f"prompt of {len(job.tokens)} tokens does not fit the context of {self.n_ctx}"
            )
        job.sampler = self._sampler(job.request)
        row = 0
        for i in range(0, len(job.tokens), self._n_batch):
            chunk = job.tokens[i : i + self._n_batch]
            last = i + len(chunk) == len(job.tokens)
            row = len(chunk) - 1
            self._decode([(t, i + k, slot, last and k == row) for k, t in enumerate(chunk)])
        job.pos = len(job.tokens)
        job.first_at = time.perf_counter()
        job.prefill_s = job.first_at - job.start
        self._sample(job, row)
        self.slots[slot] = job

    def step(self) -> list[Job]:
        """One decode step of exactly N rows; the jobs that finished in it."""
        rows = []
        for slot, job in enumerate(self.slots):
            if job is None:
                # Padding: one token at position 0 of the slot's empty sequence.
                self._lc.llama_memory_seq_rm(self._mem, slot, -1, -1)
                rows.append((self._pad, 0, slot, True))
            else:
                rows.append((job.out[-1], job.pos, slot, True))
        t0 = time.perf_counter()
        self._decode(rows)
        self.steps += 1
        finished = []
        for slot, job in enumerate(self.slots):
            if job is None:
                continue
            job.pos += 1
            self._sample(job, slot)
            job.decode_s += time.perf_counter() - t0
            if job.finish is not None:
                finished.append(job)
        return finished

    def release(self, job: Job) -> None:
        for slot, held in enumerate(self.slots):
            if held is job:
                self.slots[slot] = None
                self._lc.llama_memory_seq_rm(self._mem, slot, -1, -1)
        if job.sampler is not None:
            job.sampler.close()
            job.sampler = None

    def completion(self, job: Job, model: str) -> Completion:
        wall = time.perf_counter() - job.start
        n_out = len(job.out)
        return Completion(
            text=job.text,
            timing=Timing(
                wall_s=wall,
                ttft_s=job.prefill_s,
                prefill_tps=len(job.tokens) / job.prefill_s if job.prefill_s > 0 else None,
                decode_tps=(n_out - 1) / job.decode_s if job.decode_s > 0 and n_out > 1 else None,
            ),
            prompt_tokens=len(job.tokens),
            completion_tokens=n_out,
            finish_reason=job.finish,
            model=model,
        )

    def run(self, take: Callable[[], Job | None], model: str, stopping: Callable[[], bool]) -> None:
        """Decode until no slot is busy and ``take()`` has nothing more; each job's
        completion (or error) goes to its ``deliver``."""
        while True:
            for slot in range(self.n):
                if self.slots[slot] is None:
                    job = take()
                    if job is None:
                        break
                    self._begin(slot, job, model)
            for job in list(self.slots):
                if job is not None and job.cancelled():
                    self.release(job)
            if all(j is None for j in self.slots):
                return
            if stopping():
                self._fail_all(BackendError(f"{model}: generation aborted"))
                return
            try:
                finished = self.step()
            except BackendError as exc:
                self._fail_all(BackendError(f"{model}: {exc}"))
                return
            for job in finished:
                self.release(job)
                job.deliver(self.completion(job, model))

    def _begin(self, slot: int, job: Job, model: str) -> None:
        try:
            self.start(slot, job)
        except BackendError as exc:
            self.release(job)
            job.deliver(BackendError(f"{model}: {exc}"))
            return
        if job.finish is not None:  # done at its first token
            self.release(job)
            job.deliver(self.completion(job, model))

    def _fail_all(self, exc: BaseException) -> None:
        for job in [j for j in self.slots if j is not None]:
            self.release(job)
            job.deliver(exc)

    def close(self) -> None:
        if self.ctx:
            self._lc.llama_batch_free(self._batch)
            self._lc.llama_free(self.ctx)
            self.ctx = None
