import random

import pytest
from pydantic import ValidationError

from ingress_api.schemas.messages import TextMessage
from lanegate.spintax import MAX_DEPTH, SpintaxError, spin, validate, variants


def test_every_variant_of_a_simple_group_is_reachable() -> None:
    rng = random.Random(7)
    seen = {spin("{Hello|Hey|Hi}!", rng) for _ in range(200)}
    assert {"Hello!", "Hey!", "Hi!"} == seen


def test_nested_groups_resolve_to_every_combination() -> None:
    assert {"Good morning!", "Good afternoon!", "Hello!"} == variants(
        "{Good {morning|afternoon}|Hello}!"
    )
    rng = random.Random(1)
    seen = {spin("{Good {morning|afternoon}|Hello}!", rng) for _ in range(300)}
    assert variants("{Good {morning|afternoon}|Hello}!") == seen


def test_choices_are_roughly_uniform() -> None:
    rng = random.Random(3)
    counts = {"a": 0, "b": 0}
    for _ in range(2000):
        counts[spin("{a|b}", rng)] += 1
    assert 800 < counts["a"] < 1200


def test_text_without_groups_is_unchanged() -> None:
    assert "Your code is 1234." == spin("Your code is 1234.")


def test_backslash_writes_literal_braces_and_bars() -> None:
    assert {"{x} | y"} == variants(r"\{x\} \| y")
    assert {"a|b"} == variants(r"{a\|b}")


def test_empty_option_is_allowed() -> None:
    assert {"Hi!", "Hi there!"} == variants("Hi{| there}!")


@pytest.mark.parametrize(
    ("text", "position"),
    [("{Hello|Hi", 0), ("Hello}", 5), ("{a|{b}", 0), ("trailing \\", 9)],
)
def test_unbalanced_text_names_the_position(text: str, position: int) -> None:
    with pytest.raises(SpintaxError) as error:
        validate(text)
    assert position == error.value.position
    assert f"position {position}" in str(error.value)


def test_rendering_does_not_recurse_however_deep_the_nesting() -> None:
    deep = "{" * 5000 + "a|b" + "}" * 5000
    assert spin(deep, random.Random(0)) in {"a", "b"}


def test_validation_allows_twenty_levels_and_refuses_the_twenty_first() -> None:
    validate("{" * MAX_DEPTH + "a" + "}" * MAX_DEPTH)
    with pytest.raises(SpintaxError, match="Nested deeper than 20") as refused:
        validate("x{" * (MAX_DEPTH + 1) + "}" * (MAX_DEPTH + 1))
    assert 2 * MAX_DEPTH + 1 == refused.value.position


def test_a_send_nested_too_deep_names_the_field() -> None:
    deep = "{" * (MAX_DEPTH + 1) + "a" + "}" * (MAX_DEPTH + 1)
    with pytest.raises(ValidationError) as refused:
        TextMessage(instanceName="t__a__b", to="5491112345678", text=deep)
    assert [("text",)] == [error["loc"] for error in refused.value.errors()]
