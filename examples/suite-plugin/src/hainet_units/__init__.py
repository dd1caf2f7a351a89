"""An example suite plugin: `pip install ./examples/suite-plugin`, then
`hainet bench --suites units`."""

from hainet.suites import Case, Suite


def suite() -> Suite:
    conversions = [("1 km", "m", 1000), ("2 kg", "g", 2000), ("3 hours", "minutes", 180),
                   ("1.5 litres", "ml", 1500), ("5 m", "cm", 500)]
    return Suite(
        name="units",
        version="0.1",
        capability="factual_accuracy",
        scorer="numeric",
        max_tokens=8,
        stop=["\n"],
        few_shot="Q: How many g is 1 kg?\nA: 1000\n\n",
        prompt_template="{few_shot}Q: {input}\nA:",
        system="Answer with just the number.",
        quick=["units-0"],
        cases=[
            Case(id=f"units-{i}", input=f"How many {unit} is {amount}?", target=value)
            for i, (amount, unit, value) in enumerate(conversions)
        ],
    )
