"""The layers of ARCHITECTURE.md, checked by import-linter's contracts in pyproject.toml."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_imports_follow_the_layers() -> None:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    proc = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 kept, 0 broken" in proc.stdout


def test_the_contracts_cover_every_module_and_keep_backends_out_of_report_and_select() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers, forbidden = config["contracts"]
    assert layers["type"] == "layers" and layers["exhaustive"] is True
    listed = {m.strip() for layer in layers["layers"] for m in layer.split(":")}
    package = ROOT / "src" / "hainet"
    modules = {p.stem for p in package.glob("*.py") if p.stem != "__init__"}
    modules |= {p.name for p in package.iterdir() if (p / "__init__.py").is_file()}
    assert modules == listed, "every module of hainet sits in exactly one named layer"
    assert {"embed", "registry"} <= listed
    assert forbidden["type"] == "forbidden"
    assert set(forbidden["source_modules"]) == {"hainet.report", "hainet.select"}
    assert forbidden["forbidden_modules"] == ["hainet.backends"]


MAX_MODULE_LINES = 600


def test_no_module_is_past_600_lines() -> None:
    """STYLE.md habit 11: a module that grows past ~600 lines is split by concept."""
    package = ROOT / "src" / "hainet"
    sizes = {p: len(p.read_text(encoding="utf-8").splitlines()) for p in package.rglob("*.py")}
    offenders = sorted(
        f"{p.relative_to(package)} ({n} lines)" for p, n in sizes.items() if n > MAX_MODULE_LINES
    )
    listed = ", ".join(offenders)
    assert not offenders, f"over {MAX_MODULE_LINES} lines, split by concept: {listed}"
