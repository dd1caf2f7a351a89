"""The comparisons a report shows, as plain JSON-ready data (no drawing here).

Everything is computed from stored runs only.  A *configuration* is (model,
quantization, flash attention, temperature), as in :mod:`hainet.bench.categorize`;
over several runs of one configuration the newest value of each number wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from statistics import mean
from typing import Any

from hainet.bench.categorize import CAPABILITIES, capability_scores, config_key, profiles
from hainet.errors import HainetError
from hainet.select import load_taxonomy, select
from hainet.store import USABLE_STATUSES, Run

__all__ = ["ANALYSIS_SCHEMA_VERSION", "analyze", "config_label", "best_configurations"]

ANALYSIS_SCHEMA_VERSION = 1
USABLE = USABLE_STATUSES


def config_label(
    model: str, quantization: str | None, flash_attn: bool, temperature: float | None
) -> str:
    """Short name of a configuration, like a sweep cell: ``gemma q4_k_m fa t0.7``."""
    temp = "-" if temperature is None else f"t{temperature:g}"
    return f"{model} {quantization or '-'} {'fa' if flash_attn else 'no-fa'} {temp}"


def _newest(group: Sequence[Run], get: Any) -> Any:
    value = None
    for run in group:  # oldest first, newer values overwrite
        got = get(run)
        value = got if got is not None else value
    return value


def _mean_or_none(values: Iterable[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return mean(got) if got else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _diff(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def _configurations(runs: Sequence[Run]) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], list[Run]] = {}
    for run in sorted(runs, key=lambda r: r.created_at):
        if run.status in USABLE:
            groups.setdefault(config_key(run), []).append(run)
    by_key = {(p.model, p.quantization, p.flash_attn, p.temperature): p for p in profiles(runs)}
    out = []
    for key, group in groups.items():
        model, quant, flash, temp = key
        profile = by_key[key]
        caps: dict[str, float] = {}
        for run in group:
            caps.update(capability_scores(run))
        out.append(
            {
                "config": config_label(model, quant, flash, temp),
                "model": model,
                "quantization": quant,
                "flash_attn": flash,
                "temperature": temp,
                "decode_tps": _newest(group, lambda r: r.summary.decode_tps),
                "prefill_tps": _newest(group, lambda r: r.summary.prefill_tps),
                "ttft_s": _newest(group, lambda r: r.summary.ttft_s),
                "peak_rss_mb": _newest(group, lambda r: r.peak_rss_mb),
                "model_rss_mb": _newest(group, lambda r: r.model_rss_mb),
                "load_s": _newest(group, lambda r: r.load_s),
                "file_size": _newest(group, lambda r: r.model.file_size),
                "capabilities": caps,
                "mean_score": _mean_or_none(caps.values()),
                "categories": profile.categories,
                "tier": profile.tier,
                "runs": [r.id for r in group],
            }
        )
    out.sort(
        key=lambda c: (
            c["model"],
            c["quantization"] or "",
            not c["flash_attn"],
            c["temperature"] if c["temperature"] is not None else -1.0,
        )
    )
    return out


_SPEED = ("decode_tps", "prefill_tps", "ttft_s")
_IDENT = ("config", "model", "quantization", "flash_attn", "temperature")


def _pick(config: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {k: config[k] for k in (*_IDENT, *keys)}


def _temperature_effect(configs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (model, quantization): capability scores at each temperature (mean over
    flash-attention settings, which should not change scores)."""
    groups: dict[tuple[str, str | None], dict[float, list[dict[str, Any]]]] = {}
    for c in configs:
        if c["temperature"] is not None:
            groups.setdefault((c["model"], c["quantization"]), {}).setdefault(
                float(c["temperature"]), []
            ).append(c)
    out = []
    for (model, quant), by_temp in groups.items():
        points = []
        for temp in sorted(by_temp):
            cs = by_temp[temp]
            names = sorted({n for c in cs for n in c["capabilities"]})
            caps = {n: _mean_or_none(c["capabilities"].get(n) for c in cs) for n in names}
            points.append(
                {
                    "temperature": temp,
                    "capabilities": caps,
                    "mean_score": _mean_or_none(caps.values()),
                }
            )
        out.append({"model": model, "quantization": quant, "points": points})
    return out


def _side(c: dict[str, Any]) -> dict[str, Any]:
    return {k: c[k] for k in (*_SPEED, "mean_score", "peak_rss_mb", "capabilities")}


def _flash_pairs(configs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Configurations measured with flash attention on and off, all else equal."""
    by_key = {
        (c["model"], c["quantization"], c["temperature"], c["flash_attn"]): c for c in configs
    }
    out = []
    for (model, quant, temp, flash), on in by_key.items():
        off = by_key.get((model, quant, temp, False))
        if not flash or off is None:
            continue
        out.append(
            {
                "model": model,
                "quantization": quant,
                "temperature": temp,
                "label": config_label(model, quant, True, temp).replace(" fa ", " "),
                "on": _side(on),
                "off": _side(off),
                "decode_speedup": _ratio(on["decode_tps"], off["decode_tps"]),
                "prefill_speedup": _ratio(on["prefill_tps"], off["prefill_tps"]),
                "score_delta": _diff(on["mean_score"], off["mean_score"]),
            }
        )
    return out


def _answer(result: Any) -> dict[str, Any]:
    if hasattr(result, "model_dump"):
        dumped: dict[str, Any] = result.model_dump(mode="json")
        return dumped
    return dict(result)


def best_configurations(runs: Sequence[Run]) -> dict[str, Any]:
    """The selector's answer for every task and agent type (users' own included).

    A type the stored runs cannot answer (the selector raises a hainet error, e.g.
    a capability never measured) maps to ``None``: "not enough measurements".
    """
    taxonomy = load_taxonomy()
    out: dict[str, Any] = {"available": True, "note": "", "task": {}, "agent": {}}
    for kind, names in (("task", taxonomy.task_types), ("agent", taxonomy.agent_types)):
        for name in names:
            try:
                answer = (
                    select(list(runs), task=name)
                    if kind == "task"
                    else select(list(runs), agent=name)
                )
            except HainetError:
                out[kind][name] = None
            else:
                out[kind][name] = _answer(answer)
    return out


def analyze(runs: Sequence[Run]) -> dict[str, Any]:
    """Every comparison of the report, JSON-ready (see README, "Report")."""
    usable = [r for r in runs if r.status in USABLE]
    configs = _configurations(usable)
    names = [n for n in CAPABILITIES if any(n in c["capabilities"] for c in configs)]
    names += sorted({n for c in configs for n in c["capabilities"]} - set(names))
    return {
        "schema_version": ANALYSIS_SCHEMA_VERSION,
        "generated_at": datetime.now(UTC).isoformat(),
        "runs": [r.id for r in usable],
        "profiles": [p.model_dump(mode="json") for p in profiles(usable)],
        "configurations": configs,
        "speed": [_pick(c, _SPEED) for c in configs],
        "memory": [
            _pick(c, ("peak_rss_mb", "model_rss_mb", "load_s", "file_size")) for c in configs
        ],
        "temperature_effect": _temperature_effect(configs),
        "flash_attention": _flash_pairs(configs),
        "capabilities": {
            "names": names,
            "by_config": [_pick(c, ("capabilities", "mean_score")) for c in configs],
        },
        "best": best_configurations(usable),
        "charts": {},
        "skipped": {},
    }
