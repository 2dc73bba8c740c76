import base64
import hashlib
import hmac
import time

from standardwebhooks import Webhook

from lanegate.signing import gateway_signature, signed_headers, verify_gateway_signature

BODY = b'{"event":"message.status","instanceName":"acme__soporte__main"}'
SECRET = "my-secure-secret-32"


def seed_verify_signature(raw_body: bytes, secret: str, signature: str) -> bool:
    expected = hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return expected == signature


def test_gateway_signature_verifies_with_the_seed_recipe() -> None:
    assert seed_verify_signature(BODY, SECRET, gateway_signature(BODY, SECRET))


def test_a_changed_body_or_secret_does_not_verify() -> None:
    signature = gateway_signature(BODY, SECRET)
    assert not verify_gateway_signature(BODY + b" ", SECRET, signature)
    assert not verify_gateway_signature(BODY, SECRET + "x", signature)


def test_standard_webhooks_signature_covers_id_timestamp_and_body() -> None:
    headers = signed_headers("evt-1", 1773596760, BODY, SECRET)
    signed = b"evt-1.1773596760." + BODY
    expected = base64.b64encode(hmac.new(SECRET.encode(), signed, hashlib.sha256).digest())
    assert "v1," + expected.decode() == headers["webhook-signature"]
    assert ("evt-1", "1773596760") == (headers["webhook-id"], headers["webhook-timestamp"])


def test_headers_verify_with_a_standard_webhooks_verifier() -> None:
    headers = signed_headers("evt-1", int(time.time()), BODY, SECRET)
    assert {"event": "message.status", "instanceName": "acme__soporte__main"} == Webhook(
        SECRET.encode()
    ).verify(BODY, headers)


def test_a_whsec_secret_keys_the_standard_signature_by_its_decoded_bytes() -> None:
    key = bytes(range(32))
    secret = "whsec_" + base64.b64encode(key).decode()
    headers = signed_headers("evt-1", int(time.time()), BODY, secret)
    assert Webhook(secret).verify(BODY, headers) == Webhook(key).verify(BODY, headers)
    assert verify_gateway_signature(BODY, secret, headers["x-gateway-signature"])
