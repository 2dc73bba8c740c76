"""The smtp provider against the real relay simulator: login, TLS trust, the outbound guard,
what each SMTP answer means, and the mail it builds."""

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from lanegate.providers import NotConnected, ProviderError, Sent
from lanegate.providers.calls import Refused
from lanegate.providers.smtp import Smtp, queue_id
from lanegate.secrets import Keyring
from tests.simulators.smtp import Certificates, SmtpSimulator, make_certificates

TO = "ana@customer.example"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("smtp-ca"))


@pytest.fixture
def relay(certificates: Certificates) -> Iterator[SmtpSimulator]:
    simulator = SmtpSimulator(certificates).start()
    yield simulator
    simulator.stop()


# The providers a test made, closed after it: each keeps its relay sessions open.
MADE: list[Smtp] = []


@pytest.fixture(autouse=True)
async def providers_closed() -> AsyncIterator[None]:
    yield
    while MADE:
        await MADE.pop().close()


def provider(certificates: Certificates | None, *, allow_private: bool = True) -> Smtp:
    ca_file = str(certificates.ca_file) if certificates else None
    made = Smtp(keyring=Keyring(""), timeout=5, allow_private=allow_private, ca_file=ca_file)
    MADE.append(made)
    return made


def instance(relay: SmtpSimulator, **config: Any) -> dict[str, Any]:
    return {"_id": "t__c__mail", "state": "open", "providerConfig": relay.config(**config)}


def message(**content: Any) -> dict[str, Any]:
    return {"_id": "m-1", "to": TO, "content": {"text": "hi"} | content}


async def refusal(call: Any) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await call
    return caught.value


async def test_start_logs_in_and_sends_nothing(
    certificates: Certificates, relay: SmtpSimulator
) -> None:
    session = await provider(certificates).start(instance(relay))
    assert ("open", 1, []) == (session.state, relay.logins, relay.received)


async def test_a_wrong_password_is_the_relays_535_and_final(
    certificates: Certificates, relay: SmtpSimulator
) -> None:
    error = await refusal(provider(certificates).start(instance(relay, password="wrong")))
    assert ("535", False) == (error.code, error.retryable)
    assert "Authentication credentials invalid" in error.message


async def test_a_relay_certificate_from_an_untrusted_ca_is_refused(
    certificates: Certificates, relay: SmtpSimulator
) -> None:
    error = await refusal(provider(None).start(instance(relay)))
    assert ("connection_failed", 0) == (error.code, relay.logins)
    assert "CERTIFICATE_VERIFY_FAILED" in error.message


async def test_a_loopback_relay_is_refused_by_the_outbound_guard(
    certificates: Certificates, relay: SmtpSimulator
) -> None:
    error = await refusal(provider(certificates, allow_private=False).start(instance(relay)))
    assert isinstance(error, Refused)
    assert ("target_refused", 0) == (error.code, relay.logins)


async def test_a_250_gives_the_relays_queue_id(
    certificates: Certificates, relay: SmtpSimulator
) -> None:
    sent = await provider(certificates).send(instance(relay), message(), "hi")
    [mail] = relay.to(TO)
    assert Sent(mail.queue_id) == sent


async def test_a_550_is_final_and_a_421_is_retried(
    certificates: Certificates, relay: SmtpSimulator
) -> None:
    smtp = provider(certificates)
    relay.rejected.add(TO)
    rejected = await refusal(smtp.send(instance(relay), message(), "hi"))
    relay.rejected.clear()
    relay.put_off[TO] = 1
    put_off = await refusal(smtp.send(instance(relay), message(), "hi"))
    assert ("550", False) == (rejected.code, rejected.retryable)
    assert ("421", True) == (put_off.code, put_off.retryable)
    assert [] == relay.received


async def test_a_relay_that_is_down_is_retried(
    certificates: Certificates, relay: SmtpSimulator
) -> None:
    relay.stop()
    error = await refusal(provider(certificates).send(instance(relay), message(), "hi"))
    assert ("connection_failed", True) == (error.code, error.retryable)


async def test_a_closed_instance_sends_nothing(
    certificates: Certificates, relay: SmtpSimulator
) -> None:
    with pytest.raises(NotConnected):
        await provider(certificates).send(instance(relay) | {"state": "close"}, message(), "hi")
    assert 0 == relay.logins


async def test_the_mail_carries_the_default_subject_and_no_reply_to_unless_set(
    certificates: Certificates, relay: SmtpSimulator
) -> None:
    await provider(certificates).send(
        instance(relay, defaultSubject="{Your|Your} order"), message(), "hi"
    )
    parsed = relay.to(TO)[0].parsed()
    assert ("Your order", None, None) == (
        parsed["Subject"],
        parsed["Reply-To"],
        parsed["List-Unsubscribe"],
    )


def test_the_queue_id_is_read_from_the_250_answer_else_the_message_id() -> None:
    assert "4Bz1QX0Lk3z9" == queue_id("2.0.0 Ok: queued as 4Bz1QX0Lk3z9", "fallback")
    assert "fallback" == queue_id("2.0.0 OK", "fallback")
