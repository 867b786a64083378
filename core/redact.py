"""Personal data out of text: e-mail addresses, phone numbers, payment card numbers and IBANs.

Two renderings of the same finds: `redact` (for text that is kept: stored turns, review items)
replaces each with its kind in brackets, `[email]`; `mask` (for logs) keeps enough to tell two
values apart while debugging (j***@example.com, +***58) and removes secrets in URLs too.

Every pass is linear in the text, since the text is a stranger's: no pattern is tried at every
position with unbounded backtracking, and each candidate is read a bounded number of times.
Card numbers count only when their Luhn check holds and IBANs only with a valid mod-97 check
digit and their country's length, so order numbers and platform ids are left alone."""

from __future__ import annotations

import re
from collections.abc import Callable

EMAIL, PHONE, CARD, IBAN = "[email]", "[phone]", "[card]", "[iban]"

# An address is found from its `@` outwards, never by trying a pattern at every position: a
# long run of letters without an `@` is then one `find`, not quadratic work. Both parts are
# Unicode-aware (`\w`): jöhn.döe@exämple.com is an address like any other.
_LOCAL = re.compile(r"[\w.%+-]+")
"""The local part, matched backwards from the `@` (on the reversed text)."""
_AT_DOMAIN = re.compile(r"@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
"""`@`, labels and a top-level domain of two letters or more."""
# International numbers (+ and 8-15 digits, spaces/dashes/dots/brackets between) and national
# ones written in groups, e.g. (415) 555-0123 or 020 7946 0958. Bare digit runs are left alone:
# they are mostly platform ids. Digits of any script (`\d`), and the full-width plus.
_PHONE = re.compile(
    r"(?<![\w+\uff0b])"
    r"(?:[+\uff0b]\d[\d\s().-]{6,18}\d|\(?\d{2,4}\)?[\s.-]\d{3,4}[\s.-]\d{3,4})(?!\w)"
)
# 13 to 19 ASCII digits, single spaces or dashes between them allowed (4111 1111 1111 1111).
# A start must not follow a word character or a plus, so inside a digit run only its first
# digit is tried, and each try reads at most 37 characters.
_CARD = re.compile(r"(?<![\w+\uff0b])[0-9](?:[ -]?[0-9]){12,18}(?![\w])")
# An IBAN starts with a country code and two check digits, not inside a word; the rest is read
# by hand for the country's length (see `_iban_at`).
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}[0-9]{2}")
# Telegram bot tokens travel inside API URLs (https://api.telegram.org/bot<id>:<secret>/...).
_BOT_TOKEN = re.compile(r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}")

# Lengths from the IBAN registry (SWIFT), by country code.
_IBAN_LENGTHS = {
    **dict.fromkeys(["NO"], 15),
    **dict.fromkeys(["BE"], 16),
    **dict.fromkeys(["DK", "FI", "FO", "GL", "NL"], 18),
    **dict.fromkeys(["MK", "SI"], 19),
    **dict.fromkeys(["AT", "BA", "EE", "KZ", "LT", "LU", "XK"], 20),
    **dict.fromkeys(["CH", "HR", "LI", "LV"], 21),
    **dict.fromkeys(["BG", "BH", "CR", "DE", "GB", "GE", "IE", "ME", "RS", "VA"], 22),
    **dict.fromkeys(["AE", "GI", "IL", "IQ", "TL"], 23),
    **dict.fromkeys(["AD", "CZ", "ES", "MD", "PK", "RO", "SA", "SE", "SK", "TN", "VG"], 24),
    **dict.fromkeys(["PT", "ST"], 25),
    **dict.fromkeys(["IS", "TR"], 26),
    **dict.fromkeys(["FR", "GR", "IT", "MC", "MR", "SM"], 27),
    **dict.fromkeys(["AL", "AZ", "BY", "CY", "DO", "GT", "HU", "LB", "PL", "SV"], 28),
    **dict.fromkeys(["BR", "EG", "PS", "QA", "UA"], 29),
    **dict.fromkeys(["JO", "KW", "MU"], 30),
    **dict.fromkeys(["MT", "SC"], 31),
    **dict.fromkeys(["LC"], 32),
}


def redact(text: str) -> str:
    """Each e-mail address, phone number, card number and IBAN replaced by its kind in
    brackets: what stored text and review items carry."""
    return _phones(_cards(_ibans(_emails(text, _whole(EMAIL)), IBAN), CARD), _whole(PHONE))


def mask(text: str) -> str:
    """For logs: addresses keep their first letter and domain, phone numbers their last two
    digits; card numbers and IBANs are replaced whole and bot tokens removed."""
    text = _BOT_TOKEN.sub("[redacted]", text)
    return _phones(_cards(_ibans(_emails(text, _mask_email), IBAN), CARD), _mask_phone)


def luhn_ok(digits: str) -> bool:
    """The payment card check digit (ISO/IEC 7812): every second digit from the right doubled."""
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = ord(c) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    """ISO 13616: the country's length, and the number read with its first four characters
    moved to the end (letters as 10-35) is 1 modulo 97."""
    iban = iban.upper()
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isascii() or not iban.isalnum():
        return False
    rest = 0
    for c in iban[4:] + iban[:4]:
        rest = (rest * (100 if c.isalpha() else 10) + int(c, 36)) % 97
    return rest == 1


# -- the passes ---------------------------------------------------------------------------------

Render = Callable[[str], str]


def _whole(label: str) -> Render:
    return lambda _found: label


def _emails(text: str, render: Render) -> str:
    """Linear: a domain is read forwards from its `@` and a local part backwards, and neither
    part can hold an `@`, so every character is read at most twice."""
    if "@" not in text:
        return text
    backwards = text[::-1]
    size = len(text)
    out: list[str] = []
    copied = 0  # text before this is in `out`; a local part never reaches back past it
    for domain in _AT_DOMAIN.finditer(text):
        at = domain.start()
        local = _LOCAL.match(backwards, size - at)
        if local is None:
            continue
        start = max(at - len(local.group()), copied)
        if start == at:
            continue
        out += (text[copied:start], render(text[start : domain.end()]))
        copied = domain.end()
    out.append(text[copied:])
    return "".join(out)


def _mask_email(address: str) -> str:
    return f"{address[0]}***{address[address.index('@') :]}"


def _cards(text: str, label: str) -> str:
    def one(m: re.Match[str]) -> str:
        s = m.group(0)
        return label if luhn_ok(s.replace(" ", "").replace("-", "")) else s

    return _CARD.sub(one, text)


def _ibans(text: str, label: str) -> str:
    out: list[str] = []
    copied = 0
    for m in _IBAN_START.finditer(text):
        if m.start() < copied:
            continue
        end = _iban_at(text, m.start())
        if end:
            out += (text[copied : m.start()], label)
            copied = end
    out.append(text[copied:])
    return "".join(out)


def _iban_at(text: str, start: int) -> int:
    """The end of a valid IBAN starting at `start`, else 0. Read for the country's length
    exactly (single spaces between characters allowed), so a word after it is not taken in;
    at most 2 * 34 characters are read for each start."""
    want = _IBAN_LENGTHS.get(text[start : start + 2].upper())
    if want is None:
        return 0
    chars: list[str] = []
    i, size = start, len(text)
    while len(chars) < want and i < size:
        c = text[i]
        if c == " " and chars and i + 1 < size and text[i + 1] != " ":
            i += 1
            continue
        if not (c.isascii() and c.isalnum()):
            return 0
        chars.append(c)
        i += 1
    if len(chars) < want or (i < size and text[i].isascii() and text[i].isalnum()):
        return 0
    return i if iban_ok("".join(chars)) else 0


def _phones(text: str, render: Render) -> str:
    def one(m: re.Match[str]) -> str:
        s = m.group(0)
        return render(s) if sum(c.isdigit() for c in s) >= 7 else s

    return _PHONE.sub(one, text)


def _mask_phone(s: str) -> str:
    lead = "+" if s[0] in "+\uff0b" else ""
    return f"{lead}***{''.join(c for c in s if c.isdigit())[-2:]}"
