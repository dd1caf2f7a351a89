"""``hainet sandbox``: check the sandbox's layers, run a file inside it."""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

import typer

from hainet.cli._common import JsonOption, console, err_console, print_json
from hainet.errors import ConfigError
from hainet.sandbox import Limits, Sandbox

app = typer.Typer(help="The sandbox for untrusted code.", no_args_is_help=True)

UnsafeOption = typer.Option(
    False,
    "--unsafe-no-sandbox",
    help="Run without bubblewrap and seccomp (uid, rlimits and timeout still apply). Unsafe.",
)


def _sandbox(unsafe: bool) -> Sandbox:
    if unsafe:
        # Loud on purpose: the warning the sandbox logs must reach the terminal.
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
        err_console.print(
            "[bold red]WARNING: --unsafe-no-sandbox: code runs without "
            "namespaces or seccomp[/bold red]",
            highlight=False,
        )
    return Sandbox(unsafe_no_sandbox=unsafe)


@app.command("check")
def check(unsafe: bool = UnsafeOption) -> None:
    """Check every layer and run the canary; fails with what is missing."""
    _sandbox(unsafe).self_check()
    layers = "uid + rlimits" if unsafe else "uid + rlimits + bubblewrap + seccomp"
    console.print(f"sandbox ok: {layers}")


@app.command("run")
def run(
    file: Path = typer.Argument(..., help="Python file to run inside the sandbox."),
    stdin: Path | None = typer.Option(None, "--stdin", help="File to feed on stdin."),
    timeout: float = typer.Option(10.0, "--timeout", min=0.1, help="Wall-clock seconds."),
    memory: int = typer.Option(512, "--memory", min=16, help="Address-space limit, MiB."),
    unsafe: bool = UnsafeOption,
    as_json: bool = JsonOption,
) -> None:
    """Run FILE in the sandbox; print what it wrote and how it ended."""
    try:
        code = file.read_text(encoding="utf-8")
        data = stdin.read_bytes() if stdin is not None else None
    except OSError as exc:
        raise ConfigError(f"cannot read {exc.filename}: {exc.strerror}") from None
    limits = Limits(timeout=timeout, memory_mb=memory)
    result = _sandbox(unsafe).run(code, stdin=data, limits=limits)
    if as_json:
        print_json(dataclasses.asdict(result))
    else:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        how = f"killed by {result.killed_by}" if result.killed_by else f"exit {result.exit_code}"
        err_console.print(
            f"[dim]sandbox: {how} after {result.duration:.2f} s"
            f"{' (output truncated)' if result.truncated else ''}[/dim]",
            highlight=False,
        )
    raise typer.Exit(0 if result.exit_code == 0 and not result.killed_by else 1)
