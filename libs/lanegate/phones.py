"""Phone numbers as people write them, read into E.164 digits without `+` (`5511999998888`)."""

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber

ISSUE_CODE = "invalid_phone_number"
# What people put between digits: spaces, dashes, dots, slashes and parentheses.
_FORMATTING = re.compile(r"[\s\-./()]")
_DIGITS = re.compile(r"^\+?[0-9]{1,20}$")
_PLAIN = re.compile(r"^[1-9][0-9]{7,14}$")
_COUNTRY_CODES = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


class InvalidPhoneNumber(ValueError):
    """Raised when a written number cannot be a phone number that exists."""


def is_country(code: str) -> bool:
    """Whether `code` is an ISO 3166 alpha-2 country the number rules know."""
    return len(code) == 2 and phonenumbers.country_code_for_region(code) != 0


def written_digits(written: str) -> str | None:
    """The digits of a number as written, its formatting dropped; None when it holds anything
    else."""
    digits = _FORMATTING.sub("", written.strip()).removeprefix("+")
    return digits if digits.isascii() and digits.isdigit() else None


def _international(digits: str) -> PhoneNumber | None:
    """Plain digits read as country code and national number, without the full parser (this
    is the common case on every send)."""
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in _COUNTRY_CODES:
            national = digits[size:]
            if not national or national.startswith("0"):
                return _parsed("+" + digits, None)
            return PhoneNumber(country_code=code, national_number=int(national))
    return None


def _parsed(text: str, country: str | None) -> PhoneNumber | None:
    try:
        return phonenumbers.parse(text, country)
    except NumberParseException:
        return None


# A number with `+` is international. Plain digits (`5491112345678`, the API's own form) are
# read as international too, unless that number cannot be valid and the default country reads
# it as a valid national number. A formatted number without `+` (`(011) 99999-8888`) is read in
# the default country, or with a leading `00` as international. Of the readings, the first
# valid one wins, else the first international one that is at least possible (the right
# length for its country, as test numbers such as 15551234567 are); none means the number
# cannot exist.
def _readings(written: str, digits: str, country: str | None) -> list[tuple[PhoneNumber, bool]]:
    """The ways a number could be meant, most likely first, each with whether a possible
    number will do: a national reading must be valid, as any short digits are possible in
    some area of a country."""
    if digits.startswith("+"):
        readings = [(_parsed(digits, None), True)]
    else:
        plain = _PLAIN.match(written) is not None
        readings = [(_international(digits), True)] if plain else []
        if country is not None:
            readings.append((_parsed(digits, country), False))
        if digits.startswith("00"):
            readings.append((_parsed("+" + digits[2:], None), True))
        if not plain and not digits.startswith("0"):
            readings.append((_parsed("+" + digits, None), True))
    # A national part of only zeros parses to national_number 0, whose leading-zero count
    # shifts between readings: no such number exists.
    return [(n, lenient) for n, lenient in readings if n is not None and n.national_number]


@lru_cache(maxsize=65_536)
def normalized(written: str, country: str | None = None) -> str:
    """E.164 digits without `+` for a number as written, national forms read in `country`;
    raises InvalidPhoneNumber."""
    written = written.strip()
    digits = _FORMATTING.sub("", written)
    if not _DIGITS.match(digits):
        raise InvalidPhoneNumber(
            "Must be a phone number: digits, with an optional leading + and spaces, "
            "dashes, dots or parentheses"
        )
    readings = _readings(written, digits, country)
    if len(readings) > 1 or (readings and not readings[0][1]):
        valid = next((n for n, _ in readings if phonenumbers.is_valid_number(n)), None)
        if valid is not None:
            return _e164(valid)
    possible = next((n for n, lenient in readings if lenient and _dialable(n)), None)
    if possible is None:
        hint = "" if country else " or set defaultCountry"
        raise InvalidPhoneNumber(
            f"{written} cannot be a phone number; write it with its country code "
            f"(+55 11 99999-8888){hint}"
        )
    return _e164(possible)


def _dialable(number: PhoneNumber) -> bool:
    """The right length to be dialed from abroad (not only within its own area)."""
    reason = phonenumbers.is_possible_number_with_reason(number)
    return bool(reason == phonenumbers.ValidationResult.IS_POSSIBLE)


def _e164(number: PhoneNumber) -> str:
    return f"{number.country_code}{phonenumbers.national_significant_number(number)}"
