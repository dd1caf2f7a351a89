"""``hainet hub serve``: run a hub on this machine (loopback unless told otherwise)."""

from __future__ import annotations

import typer

from hainet.cli._common import console, settings

app = typer.Typer(help="Run a hub where agents are shared as signed records.", no_args_is_help=True)


@app.command()
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8731, "--port", min=0, max=65535, help="Port to listen on."),
) -> None:
    """Serve the hub's API over this store (``--db``/``HAINET_DB``, else SQLite in
    home); its key is HAINET_HOME/hub/identity/ed25519.key; its gate runs on
    default_model (the bundled model unless configured)."""
    from hainet.hub.serve import serve as run  # FastAPI only when serving

    cfg = settings(ctx)
    console.print(f"hub on http://{host}:{port} (store {cfg.db_url})", highlight=False)
    run(cfg, host=host, port=port)
