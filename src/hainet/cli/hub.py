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
    dht_port: int | None = typer.Option(
        None,
        "--dht-port",
        min=0,
        max=65535,
        help="Join the network: the DHT node's UDP port (0: any) [dht_port in config.toml].",
    ),
    bootstrap: list[str] = typer.Option(
        [],
        "--bootstrap",
        help="HOST:PORT of a DHT node to join through; repeatable [dht_bootstrap].",
    ),
    public_url: str | None = typer.Option(
        None,
        "--public-url",
        help="The URL the hub announces in the DHT [http://HOST:PORT as bound].",
    ),
) -> None:
    """Serve the hub's API over this store (``--db``/``HAINET_DB``, else SQLite in
    home); its key is HAINET_HOME/hub/identity/ed25519.key; its gate runs on
    default_model (the bundled model unless configured).  With a DHT port, the hub
    joins the network and announces itself, its listed agents and shared models."""
    from hainet.hub.serve import serve as run  # FastAPI only when serving

    cfg = settings(ctx)
    on_dht = dht_port if dht_port is not None else cfg.dht_port
    line = f"hub on http://{host}:{port} (store {cfg.db_url})"
    if on_dht is not None:
        line += f"; DHT on udp {host}:{on_dht or 'any port'}"
        line += " (its address is in /.well-known/hainet-hub)"
    console.print(line, highlight=False, soft_wrap=True)
    run(cfg, host=host, port=port, dht_port=dht_port, bootstrap=bootstrap, public_url=public_url)
