import pytest
from pydantic import ValidationError

from lanegate.api import InstanceCreate, TextMessage, parse_instance_name
from lanegate.errors import InvalidInput


def test_instance_name_splits_into_tenant_client_label() -> None:
    assert ("acme", "soporte", "main") == parse_instance_name("acme__soporte__main")


@pytest.mark.parametrize(
    "name", ["acme_soporte_main", "acme__soporte", "acme____main", "acme__so porte__main", ""]
)
def test_malformed_instance_names_do_not_parse(name: str) -> None:
    assert parse_instance_name(name) is None


@pytest.mark.parametrize("to", ["+5491112345678", "549 1112345678", "1234567", "1" * 16, "abc"])
def test_to_must_be_8_to_15_digits(to: str) -> None:
    with pytest.raises(ValidationError) as error:
        TextMessage(instanceName="a__b__c", to=to, text="hi")
    assert [["to"]] == [issue["path"] for issue in InvalidInput.from_pydantic(error.value).issues]


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
