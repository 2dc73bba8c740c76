import pytest
from pydantic import ValidationError

from ingress_api.schemas.base import parse_instance_name
from ingress_api.schemas.instances import InstanceCreate
from ingress_api.schemas.messages import TextMessage
from lanegate.errors import InvalidInput


def test_instance_name_splits_into_tenant_client_label() -> None:
    assert ("acme", "soporte", "main") == parse_instance_name("acme__soporte__main")


@pytest.mark.parametrize(
    "name", ["acme_soporte_main", "acme__soporte", "acme____main", "acme__so porte__main", ""]
)
def test_malformed_instance_names_do_not_parse(name: str) -> None:
    assert parse_instance_name(name) is None


@pytest.mark.parametrize(
    "to", ["+999 1234 5678", "(011) 99999-8888", "1234567", "1" * 16, "abc", "+54 911"]
)
def test_a_to_that_cannot_be_a_number_is_invalid_phone_number(to: str) -> None:
    with pytest.raises(ValidationError) as error:
        TextMessage(instanceName="a__b__c", to=to, text="hi")
    [issue] = InvalidInput.from_pydantic(error.value).issues
    assert (["to"], "invalid_phone_number") == (issue["path"], issue["code"])
    assert issue["message"].startswith("invalid_phone_number: ")


@pytest.mark.parametrize(
    ("to", "country", "stored"),
    [
        ("5491112345678", None, "5491112345678"),
        ("+5491112345678", None, "5491112345678"),
        ("+55 11 99999-8888", None, "5511999998888"),
        ("(011) 99999-8888", "BR", "5511999998888"),
        ("11 99999-8888", "BR", "5511999998888"),
        ("11999998888", "BR", "5511999998888"),
        ("0055 11 99999-8888", "BR", "5511999998888"),
        ("+1 (415) 555-0100", "BR", "14155550100"),
        ("(415) 555-0100", "US", "14155550100"),
        ("5491112345678", "BR", "5491112345678"),
        ("15551234567", None, "15551234567"),
        ("+44 (0)20 7946 0958", None, "442079460958"),
    ],
)
def test_to_is_read_as_written_into_e164_digits(to: str, country: str | None, stored: str) -> None:
    body = {"instanceName": "a__b__c", "to": to, "text": "hi"}
    assert stored == TextMessage.model_validate(body, context={"defaultCountry": country}).to


def test_lane_defaults_to_normal() -> None:
    assert "normal" == TextMessage(instanceName="a__b__c", to="5491112345678", text="hi").lane


def test_webhook_secret_needs_16_characters() -> None:
    with pytest.raises(ValidationError) as error:
        InstanceCreate(
            instanceName="acme__soporte__main", webhookUrl="https://x.test/h", webhookSecret="short"
        )
    assert [["webhookSecret"]] == [
        issue["path"] for issue in InvalidInput.from_pydantic(error.value).issues
    ]


def test_lane_window_must_have_min_not_above_max() -> None:
    with pytest.raises(ValidationError):
        InstanceCreate.model_validate(
            {
                "instanceName": "acme__soporte__main",
                "webhookUrl": "https://x.test/h",
                "webhookSecret": "0123456789abcdef",
                "lanes": {"normal": {"delayMs": [8000, 3000]}},
            }
        )
