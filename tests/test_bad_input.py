"""Every case of the bad-input corpus (tests/corpus/) gets the right error, naming the argument,
before any state changes."""

import pytest

import corpus

CASES = corpus.load()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_by_name(case, tmp_path):
    result, detail = corpus.outcome(case, tmp_path)
    assert result == "handled", f"{case.id}: {result}: {detail}"


def test_the_outcome_classifier_can_fail():
    """The harness itself: silence, a stray exception and a message without the name are not
    'handled'."""
    silent = corpus.Case("api", "accepts", lambda tmp: None, match="x")
    stray = corpus.Case("api", "stray", lambda tmp: [][1], match="x")
    vague = corpus.Case(
        "api", "vague", lambda tmp: (_ for _ in ()).throw(ValueError("bad value")), match="^lr "
    )
    assert [corpus.outcome(c, None)[0] for c in (silent, stray, vague)] == [
        "silent",
        "traceback",
        "wrong message",
    ]
