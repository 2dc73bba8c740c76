import pytest
from pydantic import ValidationError

from ingress_api.schemas.instances import InstanceCreate, InstanceUpdate
from ingress_api.schemas.messages import TextMessage

BASE = {"instanceName": "acme__soporte__main", "webhookSecret": "my-secure-secret-32"}


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "javascript:alert(1)",
        "https://user:secret@example.com/hook",
        "https://example.com/hook\r\nX-Injected: 1",
        "https://example.com/a hook",
        "https://example.com/<hook>",
    ],
)
def test_unsafe_webhook_urls_are_refused_at_create(url: str) -> None:
    with pytest.raises(ValidationError):
        InstanceCreate.model_validate(BASE | {"webhookUrl": url})


def test_a_plain_https_webhook_url_is_accepted() -> None:
    created = InstanceCreate.model_validate(BASE | {"webhookUrl": "https://my-saas.com/wh?x=1"})
    assert "https://my-saas.com/wh?x=1" == str(created.webhookUrl)


def test_patch_checks_the_url_and_the_event_names() -> None:
    with pytest.raises(ValidationError):
        InstanceUpdate.model_validate({"webhookUrl": "https://u:p@example.com/"})
    with pytest.raises(ValidationError):
        InstanceUpdate.model_validate({"webhookEvents": ["message.nope"]})
    update = InstanceUpdate.model_validate(
        {"webhookEvents": ["message.status"], "webhookEnabled": True}
    )
    assert (["message.status"], True) == (update.webhookEvents, update.webhookEnabled)


def test_a_message_can_carry_its_own_webhook_url() -> None:
    body = {"instanceName": "acme__soporte__main", "to": "5491112345678", "text": "Hi"}
    with pytest.raises(ValidationError):
        TextMessage.model_validate(body | {"webhookUrl": "gopher://example.com"})
    message = TextMessage.model_validate(body | {"webhookUrl": "https://example.com/m"})
    assert "https://example.com/m" == str(message.webhookUrl)
