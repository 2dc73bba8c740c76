"""E-mail addresses as people write them, checked and normalised for the `email` channel."""

from email_validator import EmailNotValidError, validate_email

ISSUE_CODE = "invalid_email"


class InvalidEmail(ValueError):
    """Raised when a written address cannot be an e-mail address."""


def normalized_email(written: str) -> str:
    """The address in its normal form (domain lower-cased, IDN encoded); raises InvalidEmail.
    Its domain is not looked up: a send must not wait on DNS."""
    try:
        return validate_email(written, check_deliverability=False).normalized
    except EmailNotValidError as e:
        raise InvalidEmail(str(e)) from e


def looks_like_email(written: str) -> bool:
    """Whether `to` is written as an e-mail address rather than a phone number."""
    return "@" in written
