"""Passwords: argon2id hashes, checked in the same time whether or not the user exists."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
HASHER = PasswordHasher()  # argon2id with the library's recommended costs
# Checked against when no user has the e-mail, so an unknown e-mail costs a wrong password's time.
_NOBODY = HASHER.hash("no user has this password")


def hash_password(password: str) -> str:
    """The stored form of a password."""
    return HASHER.hash(password)


def password_matches(stored: str | None, password: str) -> bool:
    """Whether `password` is the one `stored` hashes; None (no such user) costs the same time."""
    try:
        return HASHER.verify(stored or _NOBODY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False
