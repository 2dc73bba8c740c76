"""Template variables, send components (checked against Meta's schema) and status callbacks."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from lanegate.providers import TemplateUpdate
from lanegate.providers.cloud_callbacks import parse_callback_body
from lanegate.providers.cloud_payloads import message_payload
from lanegate.templates import TemplateMismatch, check_components, send_components, variables_of
from tests.simulators.meta_schema import problems


def body(text: str) -> list[dict[str, Any]]:
    return [{"type": "BODY", "text": text}]


def template(components: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "_id": "t-1",
        "name": "order_update",
        "language": "pt_BR",
        "components": components,
        "variables": variables_of(components),
    }


ORDER: list[dict[str, Any]] = [
    {"type": "HEADER", "format": "IMAGE"},
    {"type": "BODY", "text": "Olá {{1}}, seu pedido {{2}} saiu."},
    {
        "type": "BUTTONS",
        "buttons": [
            {"type": "QUICK_REPLY", "text": "Parar"},
            {"type": "URL", "text": "Rastrear", "url": "https://t.example.com/{{1}}"},
        ],
    },
]


def test_positional_variables_come_in_number_order() -> None:
    assert ["1", "2", "3"] == variables_of(body("{{2}} and {{1}}, then {{3}} and {{1}}"))


def test_named_variables_come_in_order_of_appearance() -> None:
    assert ["first_name", "order"] == variables_of(body("Hi {{first_name}}, {{ order }} is here"))


def test_a_template_without_a_body_has_no_variables() -> None:
    assert [] == variables_of([{"type": "HEADER", "format": "TEXT", "text": "{{1}}"}])


def test_send_components_conform_to_metas_message_schema() -> None:
    components = send_components(
        template(ORDER),
        ["Ana", "A-17"],
        header_media={"url": "https://cdn.example.com/p.jpg"},
        buttons=[{"index": 0, "payload": "STOP"}, {"index": 1, "text": "A-17"}],
    )
    stored = {
        "_id": "m-1",
        "to": "5491112345678",
        "type": "template",
        "content": {"name": "order_update", "language": "pt_BR", "components": components},
    }
    assert [] == problems("Message", message_payload(stored, None))


def test_body_parameters_follow_the_template_order() -> None:
    components = send_components(template(body("{{1}} {{2}}")), ["Ana", "A-17"])
    assert [{"type": "text", "text": "Ana"}, {"type": "text", "text": "A-17"}] == components[0][
        "parameters"
    ]


def test_named_variables_are_sent_with_their_names() -> None:
    components = send_components(
        template(body("Hi {{first_name}}, {{order}}")), {"order": "A-17", "first_name": "Ana"}
    )
    assert [
        {"type": "text", "text": "Ana", "parameter_name": "first_name"},
        {"type": "text", "text": "A-17", "parameter_name": "order"},
    ] == components[0]["parameters"]


def test_a_wrong_variable_count_names_the_expected_variables() -> None:
    with pytest.raises(TemplateMismatch) as raised:
        send_components(template(body("{{1}} {{2}}")), ["Ana"])
    assert [
        (["variables"], "Template order_update takes 2 variables ({{1}}, {{2}}); got 1")
    ] == raised.value.issues


def test_missing_and_unknown_names_are_both_named() -> None:
    with pytest.raises(TemplateMismatch) as raised:
        send_components(template(body("{{first_name}} {{order}}")), {"first_name": "A", "x": "y"})
    assert "missing order; unknown x" in raised.value.issues[0][1]


def test_a_media_header_needs_its_media() -> None:
    with pytest.raises(TemplateMismatch) as raised:
        send_components(template(ORDER), ["Ana", "A-17"], buttons=[{"index": 1, "text": "x"}])
    assert [["headerMedia"]] == [path for path, _ in raised.value.issues]


def test_a_url_button_with_a_variable_needs_its_text() -> None:
    with pytest.raises(TemplateMismatch) as raised:
        send_components(
            template(ORDER), ["Ana", "A-17"], header_media={"url": "https://cdn.example.com/a"}
        )
    assert "Button 1 (URL)" in raised.value.issues[0][1]


def test_a_button_the_template_does_not_have_is_refused() -> None:
    with pytest.raises(TemplateMismatch) as raised:
        send_components(template(body("Hi")), [], buttons=[{"index": 3, "payload": "x"}])
    assert [["buttons", 0, "index"]] == [path for path, _ in raised.value.issues]


def test_a_template_status_callback_becomes_a_template_update() -> None:
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1029384756",
                "time": 1773596760,
                "changes": [
                    {
                        "field": "message_template_status_update",
                        "value": {
                            "event": "REJECTED",
                            "message_template_id": 920070352646140,
                            "message_template_name": "order_update",
                            "message_template_language": "pt_BR",
                            "reason": "INVALID_FORMAT",
                            "message_template_category": "UTILITY",
                        },
                    }
                ],
            }
        ],
    }
    assert [
        TemplateUpdate(
            waba_id="1029384756",
            meta_template_id="920070352646140",
            name="order_update",
            language="pt_BR",
            status="REJECTED",
            reason="INVALID_FORMAT",
            category="UTILITY",
            reported_at=datetime.fromtimestamp(1773596760, UTC),
        )
    ] == parse_callback_body(json.dumps(payload).encode())


WITH_BUTTON: list[dict[str, Any]] = [
    {"type": "BODY", "text": "Hi {{1}}, on {{2}}"},
    {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Stop"}]},
]
TWO_PARAMETERS = {
    "type": "body",
    "parameters": [
        {"type": "text", "text": "John"},
        {"type": "date_time", "date_time": {"fallback_value": "June 10, 2023"}},
    ],
}


def test_raw_components_that_fit_the_template_pass() -> None:
    button = {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": []}
    check_components(template(WITH_BUTTON), [TWO_PARAMETERS, button])


@pytest.mark.parametrize(
    ("components", "path"),
    [
        ([], ["components"]),
        ([{"type": "body", "parameters": [{"type": "text", "text": "x"}]}], ["components", 0]),
        ([TWO_PARAMETERS, TWO_PARAMETERS], ["components", 1]),
        ([TWO_PARAMETERS, {"type": "header", "parameters": []}], ["components", 1]),
        ([TWO_PARAMETERS, {"type": "button", "index": "1"}], ["components", 1, "index"]),
    ],
)
def test_raw_components_that_do_not_fit_are_refused_naming_the_component(
    components: list[dict[str, Any]], path: list[str | int]
) -> None:
    with pytest.raises(TemplateMismatch) as refused:
        check_components(template(WITH_BUTTON), components)
    assert path == refused.value.issues[0][0][: len(path)]
