"""An SMTP relay simulator (aiosmtpd): STARTTLS on a certificate made for the test, AUTH
required, each message it takes recorded; refusals per recipient on demand.

Like a real relay it answers DATA with `250 2.0.0 Ok: queued as <id>`, refuses AUTH before
STARTTLS and MAIL before AUTH, and says `535` to a wrong password.
"""

import datetime
import ipaddress
import secrets
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devtools.stack import free_port


@dataclass(frozen=True)
class Certificates:
    """A test CA (what the gateway is told to trust) and the relay's certificate it signed."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(directory: Path) -> Certificates:
    """A CA and a certificate for 127.0.0.1 and localhost signed by it, written as PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("lanegate test CA"))
        .issuer_name(_name("lanegate test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    found = Certificates(directory / "ca.pem", directory / "relay.pem", directory / "relay.key")
    found.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    found.cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    found.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return found


@dataclass(frozen=True)
class Received:
    """One message the relay took."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    queue_id: str

    def parsed(self) -> EmailMessage:
        """The message as the standard library parses it."""
        message = BytesParser(policy=default).parsebytes(self.data)
        assert isinstance(message, EmailMessage)
        return message


@dataclass
class SmtpSimulator:
    """The relay's state; `start()` serves it on 127.0.0.1 with STARTTLS and AUTH."""

    certificates: Certificates
    username: str = "relay-user"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    # Recipients refused for good (550), and how many more times each is put off (421).
    rejected: set[str] = field(default_factory=set)
    put_off: dict[str, int] = field(default_factory=dict)
    logins: int = 0
    _controller: Controller | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.username
            and data.password.decode() == self.password
        )
        with self._lock:
            self.logins += 1
        return AuthResult(success=ok, handled=False)

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        with self._lock:
            if address in self.rejected:
                return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
            if self.put_off.get(address, 0) > 0:
                self.put_off[address] -= 1
                return "421 4.7.0 Try again later, closing connection"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        queue_id = secrets.token_hex(6).upper()
        content = envelope.original_content or b""
        with self._lock:
            self.received.append(
                Received(str(envelope.mail_from), list(envelope.rcpt_tos), content, queue_id)
            )
        return f"250 2.0.0 Ok: queued as {queue_id}"

    def start(self) -> "SmtpSimulator":
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(self.certificates.cert_file, self.certificates.key_file)
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="localhost",
            tls_context=tls,
            require_starttls=True,
            authenticator=self._authenticate,
            auth_required=True,
            auth_require_tls=True,
            # aiosmtpd's LOGIN waits on a prompt aiosmtplib answers up front; PLAIN is universal.
            auth_exclude_mechanism=["LOGIN"],
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[Received]:
        """The messages taken for `address`."""
        with self._lock:
            return [r for r in self.received if address in r.rcpt_tos]

    def config(self, **fields: Any) -> dict[str, Any]:
        """An `smtp` providerConfig for this relay, with `fields` over it."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "security": "starttls",
            "username": self.username,
            "password": self.password,
            "fromAddress": "orders@shop.example",
            "fromName": "Shop Orders",
        } | fields
