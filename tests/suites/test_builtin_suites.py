"""Data-level tests of the reasoning, factual_accuracy, conversation and
instruction_following suites, and their quick subsets on the bundled model."""

import re

import pytest

from hainet.suites import Case, Suite, get_scorer, load_suite
from hainet.suites.instructions import validate_suite
from hainet.suites.scorers import normalize
from hainet.types import Completion, GenerationParams, Timing
from tests.suites.conftest import QuickRun

SUITES = ["reasoning", "factual_accuracy", "conversation", "instruction_following"]
# The end of each suite's prompt-mode template: what the base model continues.
PROMPT_TAIL = {
    "reasoning": "Q: {input}\nA:",
    "factual_accuracy": "Q: {input}\nA:",
    "conversation": "User: {input}\nAssistant:",
    "instruction_following": "Instruction: {input}\nResponse:",
}
# The runner's tests and the README's demo rely on these five.
REASONING_QUICK = ["arith-add", "arith-mul", "seq-even", "alg-add", "logic-syllogism"]


def done(text: str) -> Completion:
    return Completion(text=text, timing=Timing(wall_s=0.0))


def answers(case: Case) -> list[str]:
    return [str(case.target), *case.aliases]


@pytest.fixture(params=SUITES)
def suite(request: pytest.FixtureRequest) -> Suite:
    return load_suite(request.param)


def test_suite_header(suite: Suite) -> None:
    assert suite.version == "1.0"
    assert suite.capability == suite.name
    assert len(suite.cases) >= 30
    ids = [c.id for c in suite.cases]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", i) for i in ids), ids
    assert suite.system and suite.few_shot


def test_quick_subset_is_small_and_documented(suite: Suite) -> None:
    quick = suite.select(quick=True)
    assert 3 <= len(quick) <= 5
    assert [c.id for c in quick] == [c.id for c in suite.cases if c.id in suite.quick]
    for case_id in suite.quick:
        assert case_id in suite.description


def test_every_case_renders_in_both_modes(suite: Suite) -> None:
    for case in suite.cases:
        prompt = suite.request(case, "prompt", GenerationParams())
        assert prompt.prompt is not None
        assert prompt.prompt.startswith(suite.few_shot)
        assert prompt.prompt.endswith(PROMPT_TAIL[suite.name].format(input=case.input))
        assert prompt.params.stop and prompt.params.max_tokens
        chat = suite.request(case, "chat", GenerationParams())
        assert chat.messages is not None and chat.prompt is None
        assert chat.messages[0].role == "system" and chat.messages[-1].content == case.input
        assert [m.role for m in chat.messages[1:-1]] == [t.role for t in case.turns]


def test_few_shot_examples_give_no_case_away(suite: Suite) -> None:
    for case in suite.cases:
        # A question may recur (conversation: "How old am I?") but not with its answer.
        assert not (case.input in suite.few_shot and str(case.target) in suite.few_shot), case.id


@pytest.mark.parametrize("name", ["reasoning", "factual_accuracy", "conversation"])
def test_targets_are_answers_the_scorer_accepts(name: str) -> None:
    """Each target and alias scores 1, a non-answer 0 (instruction cases have checks instead)."""
    suite = load_suite(name)
    for case in suite.cases:
        assert case.target is not None and str(case.target).strip(), case.id
        for answer in answers(case):
            assert normalize(answer), (case.id, answer)  # never an alias matching ""
        scorer = get_scorer(suite.scorer_name(case))
        if suite.scorer_name(case) == "numeric":
            assert isinstance(case.target, int | float), case.id
        for answer in answers(case):
            for text in (f" {answer}", f" {answer}.\nQ: next"):
                assert scorer.score(case, done(text)).value == 1.0, (case.id, text)
        assert scorer.score(case, done(" I do not know")).value == 0.0, case.id


def test_reasoning_keeps_its_original_cases_and_quick_subset() -> None:
    suite = load_suite("reasoning")
    assert suite.quick == REASONING_QUICK
    ids = {c.id for c in suite.cases}
    assert {"arith-add", "arith-div", "seq-double", "alg-mul", "logic-order"} <= ids
    kinds = {c.id.split("-")[0] for c in suite.cases}
    assert kinds == {"arith", "alg", "seq", "logic"}


def test_factual_prompt_is_few_shot_q_and_a_on_one_line() -> None:
    suite = load_suite("factual_accuracy")
    assert suite.stop == ["\n"]
    assert suite.few_shot.count("Q: ") == suite.few_shot.count("\nA: ") >= 3


@pytest.mark.parametrize(
    ("case_id", "wrong"),
    [
        ("geo-capital-australia", "Sydney"),
        ("chem-photosynthesis-gas", "Oxygen, not carbon dioxide"),
        ("date-moon-landing", "1968 or 1969"),
        ("units-cm-in-inch", "2.5"),
        ("author-1984", "Aldous Huxley"),
    ],
)
def test_factual_wrong_answers_fail(case_id: str, wrong: str) -> None:
    suite = load_suite("factual_accuracy")
    [case] = [c for c in suite.cases if c.id == case_id]
    assert get_scorer(suite.scorer_name(case)).score(case, done(wrong)).value == 0.0


def _transcript(case: Case, role: str = "user") -> str:
    return "\n".join(t.content for t in case.turns if t.role == role).lower()


def test_conversation_cases_hold_the_fact_in_earlier_turns() -> None:
    suite = load_suite("conversation")
    for case in suite.cases:
        roles = [t.role for t in case.turns]
        assert len(roles) >= 2 and len(roles) % 2 == 0, case.id
        assert roles == ["user", "assistant"] * (len(roles) // 2), case.id
        said = _transcript(case)
        for fact in case.options.get("facts", [str(case.target)]):
            assert fact.lower() in said, (case.id, fact)
        replaced = case.options.get("replaces")
        if replaced is not None:
            # The correction comes after the value it replaces.
            assert said.find(replaced.lower()) < said.rfind(str(case.target).lower()), case.id


def test_conversation_rejects_the_replaced_value() -> None:
    suite = load_suite("conversation")
    corrections = [c for c in suite.cases if "replaces" in c.options]
    assert len(corrections) >= 6
    for case in corrections:
        scorer = get_scorer(suite.scorer_name(case))
        old, new = case.options["replaces"], case.target
        assert scorer.score(case, done(f" It is {old}.")).value == 0.0, case.id
        assert scorer.score(case, done(f" {old}, then {new}.")).value == 0.0, case.id
        assert scorer.score(case, done(f" It is {new}.")).value == 1.0, case.id


def test_conversation_prompt_shows_the_earlier_turns() -> None:
    suite = load_suite("conversation")
    case = next(c for c in suite.cases if c.id == "number-tickets-correction")
    prompt = suite.request(case, "prompt", GenerationParams()).prompt or ""
    assert prompt.endswith(
        "User: I need 4 tickets for the concert.\nAssistant: Okay, 4 tickets.\n"
        "User: Actually it's 5, not 4. My cousin is coming too.\nAssistant: Understood.\n"
        "User: How many tickets do I need?\nAssistant:"
    )


def test_instruction_checks_are_valid() -> None:
    suite = load_suite("instruction_following")
    validate_suite(suite)
    assert suite.scorer == "instructions" and suite.stop == ["\nInstruction:"]
    ids = {check["id"] for case in suite.cases for check in case.options["checks"]}
    assert len(ids) >= 20  # IFEval's breadth: counts, case, keywords, formats, start/end


# -- the bundled model ------------------------------------------------------------------------


@pytest.mark.model
@pytest.mark.parametrize("name", SUITES)
def test_quick_subset_on_the_bundled_model(name: str, run_quick: QuickRun) -> None:
    suite = load_suite(name)
    run, store = run_quick(suite)
    assert run.status == "completed"
    results = {r.case_id: r for r in store.results(run.id)}
    assert sorted(results) == sorted(suite.quick)
    for case in suite.select(quick=True):
        r = results[case.id]
        assert r.suite == name and r.capability == name and r.suite_version == "1.0"
        assert r.prompt == suite.request(case, "prompt", GenerationParams()).prompt
        assert r.error is None, r.error
        assert r.score is not None and 0.0 <= r.score <= 1.0 and r.explanation
        assert r.completion_tokens <= (case.max_tokens or suite.max_tokens)
        if name == "instruction_following":
            assert r.details is not None
            checks = r.details["checks"]
            assert [c["id"] for c in checks] == [c["id"] for c in case.options["checks"]]
            assert r.details["all_passed"] == all(c["passed"] for c in checks)
            assert r.score == sum(c["passed"] for c in checks) / len(checks)
    assert run.summary["suites"][name]["scored"] == len(suite.quick)
