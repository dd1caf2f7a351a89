"""`hainet agents`: the group of cli/agents.py with the commands that live in their own
modules (create, evolve, cross, push, pull) added, once, when this is imported."""

from __future__ import annotations

from hainet.cli import agents_create, agents_evolve, agents_hub
from hainet.cli.agents import app

__all__ = ["app"]

app.command("create")(agents_create.create)
app.command("evolve")(agents_evolve.evolve)
app.command("cross")(agents_evolve.cross)
app.command("push")(agents_hub.push)
app.command("pull")(agents_hub.pull)
