"""An example hainet plugin: ``pip install ./examples/extension-plugin``.

* scorer ``shouted``: the answer is the target in capitals;
* operator ``shout_system`` (risk ``high``, so the self-improving loop asks a human):
  asks the answer step for capitals;
* tool ``reverse``: reverses a text; like every tool, it runs in hainet's sandbox.
"""

from __future__ import annotations

from typing import Any

from hainet.agents.builtin_tools import BuiltinTool
from hainet.agents.operators import Change, ProposalContext, operator
from hainet.agents.spec import AgentSpec
from hainet.suites.scorers import Score

__all__ = ["REVERSE", "ShoutedScorer", "shout_system"]


class ShoutedScorer:
    """1 when the first line of the answer is the target in capitals."""

    name = "shouted"
    blocking = False  # cheap: scored on the event loop

    def score(self, case: Any, completion: Any) -> Score:
        lines = completion.text.strip().splitlines()
        answer = lines[0].strip() if lines else ""
        want = str(case.target).upper()
        if answer == want:
            return Score(1.0, f"shouted {want!r}")
        return Score(0.0, f"{answer!r} is not {want!r}")


@operator("shout_system", risk="high")
def shout_system(spec: AgentSpec, ctx: ProposalContext) -> Change | None:
    """Put "Answer in CAPITALS." in front of the first generate step's template."""
    steps = [s.model_dump() for s in spec.workflow]
    for step in steps:
        if step["kind"] == "generate" and "CAPITALS" not in step["template"]:
            step["template"] = "Answer in CAPITALS.\n" + step["template"]
            return Change(spec.derive(workflow=steps), f"capitals in step {step['id']!r}")
    return None


REVERSE = BuiltinTool(
    name="reverse",
    description="Reverse a text.",
    parameters={
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
        "additionalProperties": False,
    },
    source="def reverse(text):\n    return str(text)[::-1]\n",
    returns="string",
)
