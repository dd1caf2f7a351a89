"""The public names of hainet.hyper are a contract: lock them."""

import hainet.hyper


def test_exported_names() -> None:
    assert sorted(hainet.hyper.__all__) == sorted(
        [
            "Controls", "HyperConfig", "HyperLoop", "MetaProcedure", "Policy", "ProcedureChange",
            "apply_change", "check_spec", "judge_trial", "model_rewriter", "operator_payoff",
            "parent_weights", "propose_change", "risk_of", "run_hyper", "select_parent", "self_evaluate",
            "spec_diff", "trend",
        ]
    )  # fmt: skip
    for name in hainet.hyper.__all__:
        assert getattr(hainet.hyper, name) is not None
