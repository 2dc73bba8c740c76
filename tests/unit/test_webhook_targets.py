import pytest

from lanegate.targets import GuardedResolver, TargetRefused, check_target, is_public


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/hook",
        "http://192.168.1.1/hook",
        "http://[::1]:8080/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_private_loopback_and_link_local_literals_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused):
        check_target(url, allow_private=False)


def test_private_literals_pass_when_allowed() -> None:
    check_target("http://127.0.0.1:8080/hook", allow_private=True)


def test_a_public_literal_passes() -> None:
    check_target("https://93.184.216.34/hook", allow_private=False)


@pytest.mark.parametrize(
    "url", ["ftp://93.184.216.34/hook", "file:///etc/passwd", "http://user:pw@93.184.216.34/"]
)
def test_other_schemes_and_credentials_are_refused_even_when_private_is_allowed(url: str) -> None:
    with pytest.raises(TargetRefused):
        check_target(url, allow_private=True)


def test_addresses_are_judged_public_or_not() -> None:
    assert is_public("93.184.216.34")
    assert not is_public("169.254.169.254")
    assert not is_public("127.0.0.1")


async def test_a_name_resolving_to_loopback_is_refused_after_resolution() -> None:
    resolver = GuardedResolver()
    try:
        with pytest.raises(TargetRefused):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()
