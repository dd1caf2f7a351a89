"""``select``: the best stored configuration for a task type, agent type or free text.

Reads stored measurements only (a Store, runs, profiles or an analysis file); it never
calls a backend.  See :mod:`hainet.select.scoring` for the score.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from hainet.bench.categorize import Profile
from hainet.errors import ConfigError, ValidationError
from hainet.inputs import RESULTS_LIMITS, load_file
from hainet.select.scoring import Candidate, Scored, candidates_from_runs, score_all
from hainet.select.taxonomy import Taxonomy, load_taxonomy
from hainet.store import Run, Store
from hainet.suites.loader import CAPABILITIES

__all__ = ["load_analysis", "select"]

# Every run the store holds is read; far more than any real store has.
_RUN_LIMIT = 1_000_000
_TOP_MATCHES = 3


def load_analysis(path: Path) -> list[Profile]:
    """Profiles from an analysis JSON (``hainet report``): ``{"profiles": [...]}``."""
    data = load_file(Path(path), error=ConfigError, limits=RESULTS_LIMITS, kind=".json")
    items = data.get("profiles") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValidationError(f'{path}: expected a top-level "profiles" list')
    try:
        return [Profile.model_validate(item) for item in items]
    except PydanticValidationError as exc:
        raise ValidationError(f"{path}: a profile is malformed: {exc}") from exc


def _candidates(source: Store | Iterable[Run | Profile]) -> tuple[list[Candidate], str]:
    if isinstance(source, Store):
        return candidates_from_runs(source.list_runs(limit=_RUN_LIMIT)), f"store {source.where}"
    items = list(source)
    runs = [i for i in items if isinstance(i, Run)]
    profs = [Candidate(i) for i in items if isinstance(i, Profile)]
    if len(runs) + len(profs) != len(items):
        raise ValidationError("select() takes a Store, or runs / profiles")
    return candidates_from_runs(runs) + profs, "profiles" if profs else "runs"


def _bench_hint(terms: Iterable[str]) -> str:
    suites = [t for t in CAPABILITIES if t in set(terms)]
    return "run `hainet bench" + (f" --suites {' '.join(suites)}`" if suites else "`")


def _entry(s: Scored, reason: str) -> dict[str, Any]:
    entry = {
        "selected_model": s.candidate.profile.model,
        "recommended_config": s.candidate.config(),
        "score": s.score,
        "reason": reason,
        "missing": s.missing,
    }
    if s.candidate.origin is not None:
        entry["origin"] = s.candidate.origin
    return entry


def _origin_text(origin: dict[str, Any]) -> str:
    if origin.get("source") != "network":
        return f"; measured elsewhere ({origin.get('source')}), not on this machine"
    where = (
        "your hardware class"
        if origin.get("same_hardware_class")
        else ("the nearest hardware class to yours")
    )
    sha = str(origin.get("model_sha256", ""))[:12]
    return (
        f"; not run here: the network's medians (model {sha}, shared by "
        f"{origin.get('signers')} signers; {origin.get('class_signers')} of them on "
        f"{where}, {origin.get('hardware_class')})"
    )


def _reason(s: Scored, weights: dict[str, float], goal: str) -> str:
    parts = []
    for term, w in sorted(weights.items(), key=lambda kv: -kv[1]):
        value = s.terms.get(term)
        parts.append(f"{term} {'not measured' if value is None else f'{value:.2f}'} (w {w:.2f})")
    text = f"best measured fit for {goal}: " + ", ".join(parts)
    if s.missing:
        caps = [m for m in s.missing if m in CAPABILITIES]
        text += f"; missing measurements: {', '.join(s.missing)} counted as 0"
        if caps:
            text += f" ({_bench_hint(caps)} to measure them)"
    if s.candidate.origin is not None:
        text += _origin_text(s.candidate.origin)
    return text


def _constraints(
    cands: list[Candidate], max_memory_mb: float | None, min_speed: float | None
) -> tuple[list[Candidate], list[dict[str, Any]]]:
    kept, excluded = [], []
    for c in cands:
        why = []
        rss, tps = c.profile.peak_rss_mb, c.profile.decode_tps
        if max_memory_mb is not None and (rss is None or rss > max_memory_mb):
            why.append("peak RSS not measured" if rss is None else f"peak RSS {rss:.0f} MB")
        if min_speed is not None and (tps is None or tps < min_speed):
            why.append("decode speed not measured" if tps is None else f"decode {tps:.1f} tok/s")
        if why:
            excluded.append({"model": c.profile.model, **c.config(), "why": "; ".join(why)})
        else:
            kept.append(c)
    return kept, excluded


def _describe_weights(
    text: str, taxonomy: Taxonomy, home: Path | None
) -> tuple[list[dict[str, Any]], list[tuple[float, dict[str, float]]]]:
    from hainet.select.describe import match_types

    matches = match_types(text, taxonomy, home=home, top=_TOP_MATCHES)
    blends: list[tuple[float, dict[str, float]]] = []
    for m in matches:
        if m["kind"] == "task":
            w = taxonomy.task_weights(m["name"])
        elif m["kind"] == "agent":
            w = taxonomy.agent_weights(m["name"])
        else:  # pragma: no cover - match_types returns task and agent types only
            raise ValidationError(f"unknown match kind {m['kind']!r}")
        blends.append((float(m["confidence"]), w))
    return matches, blends


def select(
    store_or_runs: Store | Iterable[Run | Profile],
    *,
    task: str | None = None,
    agent: str | None = None,
    describe: str | None = None,
    max_memory_mb: float | None = None,
    min_speed: float | None = None,
    top: int = 3,
    home: Path | None = None,
    network: Iterable[Candidate] = (),
) -> dict[str, Any]:
    """Rank stored configurations for exactly one of ``task``, ``agent``, ``describe``.

    ``network``: candidates measured elsewhere (each with its ``origin``, e.g. the
    network's medians on hardware like the user's), ranked with the stored ones; the
    answer's ``reason`` and ``basis`` say which figures were not measured here.

    Returns ``{"selected_model", "recommended_config", "score", "reason",
    "alternatives", "excluded", "considered", "basis"}``; raises
    :class:`~hainet.errors.ConfigError` when no stored measurement fits (naming the
    benchmark to run) and :class:`~hainet.errors.ValidationError` on bad input.
    """
    given = [x for x in (task, agent, describe) if x is not None]
    if len(given) != 1:
        raise ValidationError("give exactly one of task, agent or describe")
    if top < 1:
        raise ValidationError("top must be at least 1")
    taxonomy = load_taxonomy(home)
    matches: list[dict[str, Any]] | None = None
    if task is not None:
        blends = [(1.0, taxonomy.task_weights(task))]
        goal = f"task type {task}"
    elif agent is not None:
        blends = [(1.0, taxonomy.agent_weights(agent))]
        goal = f"agent type {agent}"
    else:
        if not (describe or "").strip():
            raise ValidationError("describe needs some text")
        matches, blends = _describe_weights(str(describe), taxonomy, home)
        goal = "the description, matched to " + ", ".join(
            f"{m['kind']} type {m['name']} ({m['confidence']:.2f})" for m in matches
        )

    wanted = {t for _, w in blends for t in w}
    hint = _bench_hint(wanted)
    cands, source = _candidates(store_or_runs)
    others = list(network)
    if others:
        cands += others
        source += f" + {len(others)} configurations measured on the network"
    if not cands:
        raise ConfigError(f"no stored benchmark results to select from; {hint} first")
    kept, excluded = _constraints(cands, max_memory_mb, min_speed)
    if not kept:
        raise ConfigError(
            f"none of the {len(cands)} stored configurations meets the constraints "
            f"({'; '.join(e['model'] + ': ' + e['why'] for e in excluded)}); "
            f"{hint} on a smaller or faster configuration (e.g. --quantizations q4_k_m)"
        )
    needed_caps = {t for t in wanted if t in CAPABILITIES}
    if needed_caps and not any(needed_caps & set(c.profile.capabilities) for c in kept):
        raise ConfigError(
            f"no stored configuration was measured on {', '.join(sorted(needed_caps))}; "
            f"{_bench_hint(needed_caps)} first"
        )
    if "quality" in wanted and not any(c.profile.capabilities for c in kept):
        raise ConfigError(f"no stored configuration has any capability score; {hint} first")

    # Confidence-weighted blend: score = sum(c_i * score_i) / sum(c_i) over matched types.
    total_conf = sum(c for c, _ in blends) or 1.0
    per_type = [(conf, score_all(kept, w)) for conf, w in blends]
    combined: dict[tuple[Any, ...], float] = {}
    for conf, (scored, _, _) in per_type:
        for s in scored:
            combined[s.candidate.key] = combined.get(s.candidate.key, 0.0) + conf * s.score
    first_scored, first_weights, _ = per_type[0][1]
    by_key = {s.candidate.key: s for s in first_scored}
    ranked = sorted(
        by_key.values(),
        key=lambda s: (-combined[s.candidate.key], len(s.missing), s.candidate.key),
    )
    for s in ranked:
        s.score = round(min(max(combined[s.candidate.key] / total_conf, 0.0), 1.0), 4)
        if len(per_type) > 1:  # missing terms across every matched type
            s.missing = sorted(
                {
                    m
                    for _, (scored, _, _) in per_type
                    for x in scored
                    if x.candidate.key == s.candidate.key
                    for m in x.missing
                }
            )
    best = ranked[0]
    answer = _entry(best, _reason(best, first_weights, goal))
    answer["alternatives"] = [_entry(s, _reason(s, first_weights, goal)) for s in ranked[1:top]]
    answer["excluded"] = len(excluded)
    answer["considered"] = len(kept)
    basis: dict[str, Any] = {
        "source": source,
        "goal": {"task": task, "agent": agent, "describe": describe},
        "weights": [
            {
                "confidence": conf,
                "weights": {k: round(v, 4) for k, v in used.items()},
                "dropped": dropped,
            }
            for conf, (_, used, dropped) in per_type
        ],
        "normalization": "speed = decode_tps / best; ttft = best / ttft_s; "
        "memory = lowest peak_rss_mb / peak_rss_mb (best among considered); "
        "capabilities as stored; missing = 0",
        "constraints": {"max_memory_mb": max_memory_mb, "min_speed": min_speed},
        "excluded": excluded,
        "candidates": [
            {**s.candidate.measured(), "score": s.score, "terms": s.terms, "missing": s.missing}
            for s in ranked
        ],
    }
    if others:
        basis["network"] = {
            "candidates": len(others),
            "rule": "network-tested models only (enough distinct signers); figures are "
            "the medians of the hardware class nearest yours; not measured here",
        }
    if matches is not None:
        answer["matches"] = matches
        basis["matches"] = matches
    answer["basis"] = basis
    return answer
