"""Personal-data firewall: reject any submission cell that looks like personal data.

Rule 1 of the hub is that no personal data ever enters it, so a suspicious cell is never
cleaned: the whole submission is rejected, and the report names row, column and the kind
of data but never repeats the value (not in a ``Finding``, its repr or str, nor in an
exception), because reports end up in responses, logs and the audit trail.

The scan is built for volume (every cell of every submission): each column kind has a
cheap allow-pattern, and a cell that fully matches it cannot hold any kind of data this
module looks for, so it needs no further checks. For lists of cells the allow-pattern runs
once over the whole column joined by newlines (one regex call in C instead of one per
cell); for ``pyarrow`` arrays it runs vectorised in ``pyarrow.compute``. Only the cells
that fail it go through the precise (slower) checks.

Decisions, documented so that reviewers can disagree with them explicitly:

- Plain digit strings ("02079460958", "1234") are never phone numbers: they cannot be told
  apart from counts and numeric ids. Phones are E.164 (``+`` and 7-15 digits) or grouped
  national forms: a parenthesised area code, or three or more groups of 2-5 digits
  separated by spaces, dots or hyphens (ISO dates and 1.234.567-style thousands excluded).
- ``1e3``, ``NaN`` and ``Infinity`` pass the firewall in number columns: they are not
  personal data; the value validator rejects what is not a valid number.
- Defanged URLs (``hxxp://``, ``hxxps[:]//``) and any ``scheme://`` are URLs; ``www.`` and
  bare domain names (dotted labels ending in a 2-24 letter label, or ``xn--`` punycode)
  are domains. Numbers, versions like ``1.2`` and ISO dates/times never end in a letter
  label, so they are not flagged; a four-part version ``1.2.3.4`` is an IPv4 address.
- IPv6 candidates are checked with :mod:`ipaddress`, so ``::1``, ``fe80::1%eth0`` (with a
  zone) and v4-mapped ``::ffff:192.0.2.1`` are all flagged; loopback is not exempt.
- A run of 32 or more hex characters with at least one letter is a digest (MD5, SHA-1,
  SHA-256, PhotoDNA-like), inside longer tokens and in any case; in id columns (case_ref,
  code, org_code) a value made only of 32, 40 or 64 hex characters is a digest even when
  it has no letter. UUIDs (hex runs of at most 12) are legitimate opaque ids.
- Base64: a run of 40 or more characters of the base64 alphabet (standard or URL-safe)
  that has ``=`` padding, ``+`` or ``/``, or mixes upper case, lower case and digits.
  Consequence: a random-looking case_ref of 40+ characters is rejected.
- Control characters (tab, CR and LF included), NUL, bidi controls and zero-width
  characters (a BOM inside a cell included) are their own findings; a cell over
  ``MAX_CELL_LENGTH`` characters is ``oversized`` and not scanned further.
- Free text is accepted nowhere: a cell with whitespace (other than the single date/time
  separator of a timestamp) that is not caught by a more precise rule is ``free_text``.
- A cell (outside number columns) that a spreadsheet would evaluate is ``formula_injection``:
  it starts with ``=``, ``+`` or ``@``, or with ``-`` followed by anything but an id's
  characters. It is checked after the personal-data kinds, so ``@name`` stays a handle.
- A cell that merely has the wrong shape for its column (``gb`` as a country) is left to
  the value validator; the firewall only looks for data that must not be stored.
"""

from __future__ import annotations

import ipaddress
import random
import re
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from operator import itemgetter
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingest.events import blank_to_null

MAX_CELL_LENGTH = 256


class ColumnKind(StrEnum):
    """What a column may legitimately contain; decides the allow-pattern of its cells."""

    CODE = "code"  # closed-list codes: metric, category, outcome, notice_source, ...
    COUNTRY = "country"  # ISO 3166-1 alpha-2 (NA is Namibia)
    PERIOD = "period"  # 2025, 2025-03, 2025-Q1, 2025-H1
    NUMBER = "number"  # decimal number as text
    TIMESTAMP = "timestamp"  # ISO 8601 with UTC offset
    CASE_REF = "case_ref"  # the reporter's opaque id, [A-Za-z0-9_-]{1,64}, not a digest
    ORG_CODE = "org_code"  # organisation code


@dataclass(frozen=True)
class Finding:
    """One rejected cell: where it is and what it looks like, never its value.

    ``row`` is the 1-based line (or record) number; ``column`` a declared column name, or
    for an unknown column its name only when that name is itself harmless.
    """

    row: int
    column: str
    data_kind: str
    rule: str
    hint: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column}: {self.data_kind} ({self.rule}): {self.hint}"


# --- allow-patterns ---------------------------------------------------------------------
# Each core is RE2-compatible (no look-arounds) so pyarrow.compute can run it too; the
# length bound is applied separately. A cell that fully matches cannot contain '@', '.',
# ':', '+', whitespace, a 32-hex run or a 40-char base64 run.

_ID_CORE = r"[A-Za-z0-9_-]*[A-Za-z_][A-Za-z0-9_-]*|[0-9]+(?:-[0-9]+)?"
_CORES: dict[ColumnKind, tuple[str, int]] = {
    ColumnKind.CODE: (_ID_CORE, 31),
    ColumnKind.CASE_REF: (_ID_CORE, 31),
    ColumnKind.ORG_CODE: (_ID_CORE, 31),
    ColumnKind.COUNTRY: (r"[A-Z]{2}", 2),
    ColumnKind.PERIOD: (r"[0-9]{4}(?:-(?:0[1-9]|1[0-2]|Q[1-4]|H[12]))?", 7),
    ColumnKind.NUMBER: (
        r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[Nn]a[Nn]|-?[Ii]nf(?:inity)?",
        31,
    ),
    ColumnKind.TIMESTAMP: (
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?"
        r"(?:Z|z|[+-][0-9]{2}(?::?[0-9]{2})?)",
        40,
    ),
}


def _element_pattern(kind: ColumnKind) -> str:
    """One cell (possibly empty) in Python re syntax, bounded in length, never spanning '\\n'."""
    core, limit = _CORES[kind]
    return rf"(?:(?=[^\n]{{1,{limit}}}(?![^\n]))(?:{core}))?"


_CELL_ALLOW = {kind: re.compile(_element_pattern(kind)) for kind in ColumnKind}
_COLUMN_ALLOW = {
    kind: re.compile(rf"(?:{_element_pattern(kind)}\n)*{_element_pattern(kind)}") for kind in ColumnKind
}
# The same check over a whole column joined by newlines, for RE2 (linear time, no look-arounds).
_COLUMN_RE2 = {kind: f"^(?:(?:{core})?\n)*(?:{core})?$" for kind, (core, _limit) in _CORES.items()}
_ID_KINDS = frozenset({ColumnKind.CODE, ColumnKind.CASE_REF, ColumnKind.ORG_CODE})

# --- precise checks (slow path) -----------------------------------------------------------

_NUL = "\x00"
_CONTROL = re.compile(r"[\x01-\x1f\x7f-\x9f]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_ZERO_WIDTH = re.compile("[\u200b-\u200d\u2060\ufeff]")
_WHITESPACE = re.compile(r"\s")

_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?:[^\W\d_]{2,24}|xn--[a-z0-9-]{1,59})",
)
_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,30}(?::|\[:\])//")
_URL_WWW = re.compile(r"(?<![\w-])www\d{0,3}\.", re.IGNORECASE)
_DOMAIN = re.compile(
    r"(?<![\w.-])(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?:[^\W\d_]{2,24}|xn--[a-z0-9-]{1,59})(?![\w-])",
    re.IGNORECASE,
)
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
_IPV6_CANDIDATE = re.compile(r"(?<![\w:.])[0-9A-Fa-f:][0-9A-Fa-f:.]*(?:%[\w.-]+)?")
_HANDLE = re.compile(r"@\w{2,}")
_PHONE_E164 = re.compile(r"(?<![\w+])\+\d[\d ().-]{5,22}\d(?!\w)")
_PHONE_GROUPED = re.compile(r"(?<![\w+.:-])(?:\(\d{1,5}\)[ .-]?)?\d{1,5}(?:[ .-]\d{1,5}){1,6}(?![\w:])")
_DATE_SPACE_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_THOUSANDS = re.compile(r"\d{1,3}(?:([ .])\d{3})(?:\1\d{3})*")
_HEX_RUN = re.compile(r"[0-9A-Fa-f]{32,}")
_HEX_ONLY = re.compile(r"[0-9A-Fa-f]{32}|[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64}")
_HEX_LETTER = re.compile(r"[A-Fa-f]")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{40,}={0,2}")
_FORMULA_START = re.compile(r"[=+@]|-.*[^A-Za-z0-9_-]", re.DOTALL)

_HINTS = {
    "oversized": f"cells are at most {MAX_CELL_LENGTH} characters; free text is not accepted",
    "nul_byte": "remove NUL bytes; the file may be UTF-16 or binary, save it as UTF-8 text",
    "control_character": "cells hold one value on one line, without tabs or control characters",
    "bidi_control": "remove right-to-left/left-to-right override characters",
    "zero_width": "remove invisible zero-width characters (and byte-order marks inside cells)",
    "email": "e-mail addresses are personal data and are never accepted",
    "url": "URLs are not accepted; report counts, never the location of material",
    "domain": "domain names are not accepted; report counts, never the location of material",
    "ip_address": "IP addresses are personal data and are never accepted",
    "phone": "phone numbers are personal data and are never accepted",
    "handle": "user handles are personal data and are never accepted",
    "hex_digest": "content hashes are not accepted; use your own opaque case reference",
    "base64": "encoded blobs (hashes, images) are not accepted",
    "formula": "a cell starting with =, +, - or @ would run as a spreadsheet formula: remove the sign",
    "free_text": "free text is not accepted; each cell holds a single code, number, period or time",
    "unknown_column": "the format has no such column; remove it (free text is accepted nowhere)",
}


def _finding(row: int, column: str, data_kind: str, rule: str) -> Finding:
    return Finding(row=row, column=column, data_kind=data_kind, rule=rule, hint=_HINTS[data_kind])


def _has_ipv4(value: str) -> bool:
    return any(all(int(octet) <= 255 for octet in m.groups()) for m in _IPV4.finditer(value))


def _has_ipv6(value: str) -> bool:
    for match in _IPV6_CANDIDATE.finditer(value):
        token = match.group().rstrip(".")
        if token.count(":") < 2:
            continue
        try:
            ipaddress.IPv6Address(token)
        except ValueError:
            continue
        return True
    return False


def _has_phone(value: str) -> bool:
    for match in _PHONE_E164.finditer(value):
        if 7 <= sum(ch.isdigit() for ch in match.group()) <= 15:
            return True
    for match in _PHONE_GROUPED.finditer(value):
        token = match.group()
        digits = sum(ch.isdigit() for ch in token)
        if not 7 <= digits <= 15:
            continue
        if token.startswith("("):
            return True
        groups = re.split(r"[ .-]", token)
        if len(groups) < 3 or any(len(g) < 2 for g in groups[1:]):
            continue
        if _ISO_DATE.fullmatch(token) or _THOUSANDS.fullmatch(token):
            continue
        return True
    return False


def _has_base64(value: str) -> bool:
    for match in _BASE64_RUN.finditer(value):
        run = match.group()
        if run.endswith("=") or "+" in run or "/" in run:
            return True
        if (
            any(ch.isupper() for ch in run)
            and any(ch.islower() for ch in run)
            and any(ch.isdigit() for ch in run)
        ):
            return True
    return False


def _classify(value: str, kind: ColumnKind) -> tuple[str, str] | None:
    """(data_kind, rule) of the first problem in a cell that failed its allow-pattern."""
    if len(value) > MAX_CELL_LENGTH:
        return "oversized", "cell.oversized"
    if _NUL in value:
        return "nul_byte", "cell.nul_byte"
    if _BIDI.search(value):
        return "bidi_control", "cell.bidi_control"
    if _ZERO_WIDTH.search(value):
        return "zero_width", "cell.zero_width"
    if _CONTROL.search(value):
        return "control_character", "cell.control_character"
    if "@" in value:
        if _EMAIL.search(value):
            return "email", "pd.email"
        if _HANDLE.search(value):
            return "handle", "pd.handle"
    if ":" in value or "." in value:
        if _URL_SCHEME.search(value):
            return "url", "pd.url_scheme"
        if _URL_WWW.search(value):
            return "url", "pd.url_www"
        if "." in value and _has_ipv4(value):
            return "ip_address", "pd.ipv4"
        if ":" in value and _has_ipv6(value):
            return "ip_address", "pd.ipv6"
        if "." in value and _DOMAIN.search(value):
            return "domain", "pd.domain"
    if _has_phone(value):
        return "phone", "pd.phone"
    if kind in _ID_KINDS and _HEX_ONLY.fullmatch(value):
        return "hex_digest", "pd.hex_id"
    if any(_HEX_LETTER.search(m.group()) for m in _HEX_RUN.finditer(value)):
        return "hex_digest", "pd.hex_digest"
    if _has_base64(value):
        return "base64", "pd.base64"
    if kind is not ColumnKind.NUMBER and _FORMULA_START.match(value):
        return "formula", "cell.formula_injection"
    text = value.strip()
    if kind is ColumnKind.TIMESTAMP and _DATE_SPACE_TIME.match(text):
        text = text.replace(" ", "T", 1)  # ISO 8601 allows one space between date and time
    if _WHITESPACE.search(text):
        return "free_text", "cell.free_text"
    return None


def _kind(kind: ColumnKind | str) -> ColumnKind:
    try:
        return ColumnKind(kind)
    except ValueError:
        raise ValueError("unknown column kind; expected one of: " + ", ".join(ColumnKind)) from None


def scan_cell(value: str, *, column: str, kind: ColumnKind, row: int = 0) -> Finding | None:
    """The finding for one cell, or None when the cell is harmless for its column kind."""
    kind = _kind(kind)
    if type(value) is not str:
        value = "" if value is None else str(value)
    if _CELL_ALLOW[kind].fullmatch(value):
        return None
    found = _classify(value, kind)
    return None if found is None else _finding(row, column, *found)


def _as_text(values: Sequence[Any]) -> list[str]:
    return ["" if v is None else v if type(v) is str else str(v) for v in values]


def suspicious_indices(values: Sequence[str] | pa.Array | pa.ChunkedArray, kind: ColumnKind) -> list[int]:
    """Indices of the cells that fail their kind's allow-pattern (candidates for the precise checks).

    A list of cells is checked in one pass: the column is joined with newlines and matched
    once by RE2 (pyarrow.compute), linear in its size; per-cell matching happens only when
    that fails. A cell containing a newline shows up as an extra separator, so it cannot
    hide as two harmless pieces.
    """
    kind = _kind(kind)
    if not isinstance(values, Sequence):
        return _arrow_suspicious(values, kind)
    if not values:
        return []
    try:
        longest = max(map(len, values))
        blob = "\n".join(values)
    except TypeError:
        values = _as_text(values)
        longest = max(map(len, values))
        blob = "\n".join(values)
    limit = _CORES[kind][1]
    if longest <= limit and blob.count("\n") == len(values) - 1:
        whole = pc.match_substring_regex(pa.array([blob], pa.large_string()), _COLUMN_RE2[kind])
        if whole[0].as_py():
            return []
    allow = _CELL_ALLOW[kind].fullmatch
    return [i for i, v in enumerate(values) if not allow(v)]


def _arrow_suspicious(values: pa.Array | pa.ChunkedArray, kind: ColumnKind) -> list[int]:
    """Vectorised allow-check with pyarrow.compute (RE2); nulls count as empty cells.

    Built for files of millions of rows: a dictionary column (the event reader reads its
    closed-list columns so) is checked on its few distinct values only, and a timestamp
    column that Arrow's strict ISO 8601 cast accepts whole needs no regex at all (such text
    is digits, separators and an offset: nothing personal fits in it; tests hold that every
    form the cast accepts passes the precise checks too).
    """
    if pa.types.is_dictionary(values.type):
        return _dictionary_suspicious(values, kind)
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        values = pc.cast(values, pa.string())
    if kind is ColumnKind.TIMESTAMP and _all_timestamps(values):
        return []
    core, limit = _CORES[kind]
    # every core is ASCII-only, so for a matching cell bytes == characters: binary_length is exact
    ok = pc.and_kleene(
        pc.match_substring_regex(values, f"^(?:{core})?$"), pc.less_equal(pc.binary_length(values), limit)
    )
    if values.null_count:
        ok = pc.or_kleene(pc.is_null(values), pc.fill_null(ok, False))
    if pc.all(ok).as_py() is not False:
        return []
    bad = pc.indices_nonzero(pc.invert(ok))
    return [int(i) for i in bad.to_pylist()]


def _dictionary_suspicious(values: pa.Array | pa.ChunkedArray, kind: ColumnKind) -> list[int]:
    """The allow-check on each chunk's dictionary; only rows holding a failing value are listed."""
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    found: list[int] = []  # a null is an empty cell: always allowed
    offset = 0
    for chunk in chunks:
        bad_codes = _arrow_suspicious(chunk.dictionary, kind)
        if bad_codes:
            rows = pc.indices_nonzero(
                pc.is_in(chunk.indices, value_set=pa.array(bad_codes, chunk.indices.type))
            )
            found.extend(offset + int(i) for i in rows.to_pylist())
        offset += len(chunk)
    return sorted(found)


def _all_timestamps(values: pa.Array | pa.ChunkedArray) -> bool:
    """True when every non-empty cell casts to a UTC timestamp (Arrow's cast requires an offset)."""
    column = values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])
    try:
        pc.cast(blank_to_null(column), pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def scan_column(
    values: Sequence[str] | pa.Array | pa.ChunkedArray,
    *,
    column: str,
    kind: ColumnKind,
    first_row: int = 2,
    candidates: list[int] | None = None,
) -> list[Finding]:
    """All findings of one column; cell ``i`` is reported as row ``first_row + i``.

    ``candidates``: the cells that failed the kind's allow-pattern, when the caller already has
    them (:func:`scan_table` records them for callers with checks of their own on such cells).
    """
    kind = _kind(kind)
    if candidates is None:
        candidates = suspicious_indices(values, kind)
    findings = []
    for index in candidates:
        raw = values[index]
        if isinstance(raw, pa.Scalar):
            raw = raw.as_py()
        value = "" if raw is None else raw if type(raw) is str else str(raw)
        found = _classify(value, kind)
        if found is not None:
            findings.append(_finding(first_row + index, column, *found))
    return findings


def scan_table(
    table: pa.Table,
    *,
    columns: Mapping[str, ColumnKind],
    first_row: int = 2,
    proven_timestamps: Collection[str] = (),
    suspicious: dict[str, list[int]] | None = None,
) -> list[Finding]:
    """Every finding of an Arrow table (e.g. from ``pyarrow.csv`` read with all columns as strings).

    ``proven_timestamps``: timestamp columns the caller has already cast, every non-empty cell,
    to a UTC timestamp; such a cell cannot hold anything else, so they are not cast again.
    ``suspicious``, when given, receives each scanned column's cells that failed its kind's
    allow-pattern: every other cell is known to fit the pattern (e.g. an ID of at most 31
    characters of [A-Za-z0-9_-]), which spares the caller a second pass over the column.
    """
    kinds = {name: _kind(kind) for name, kind in columns.items()}
    findings = [
        _finding(first_row, _column_label(name, position), "unknown_column", "format.unknown_column")
        for position, name in enumerate(table.column_names, start=1)
        if name not in kinds
    ]
    for name, kind in kinds.items():
        if name in table.column_names and not (kind is ColumnKind.TIMESTAMP and name in proven_timestamps):
            candidates = suspicious_indices(table[name], kind)
            if suspicious is not None:
                suspicious[name] = candidates
            findings.extend(
                scan_column(table[name], column=name, kind=kind, first_row=first_row, candidates=candidates)
            )
    order = {name: i for i, name in enumerate(kinds)}
    findings.sort(key=lambda f: (f.row, order.get(f.column, -1) if f.rule != "format.unknown_column" else -1))
    return findings


_SAFE_COLUMN_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _column_label(name: object, position: int) -> str:
    """A column name fit to repeat in a report; otherwise the column's position."""
    if (
        isinstance(name, str)
        and _SAFE_COLUMN_NAME.fullmatch(name)
        and _classify(name, ColumnKind.CODE) is None
    ):
        return name
    return f"column #{position}"


def scan_rows(
    rows: Iterable[Mapping[str, str]],
    *,
    columns: Mapping[str, ColumnKind],
    first_row: int = 2,
) -> list[Finding]:
    """Every finding of a table, ordered by row then column; unknown columns reported once each.

    A column that is not in ``columns`` rejects the submission wherever it appears (its
    first row is reported). A declared column missing from a row is read as empty: that
    is the format validator's concern, not a personal-data one.
    """
    kinds = {name: _kind(kind) for name, kind in columns.items()}
    names = tuple(kinds)
    table = rows if isinstance(rows, list) else list(rows)
    findings: list[Finding] = []
    cells: dict[str, list[str]] | None = None
    if not table or set(map(len, table)) == {len(names)}:
        try:  # every row has all declared columns and no other: no per-row key check needed
            cells = {name: list(map(itemgetter(name), table)) for name in names}
        except KeyError:
            cells = None
    if cells is None:
        unknown_seen: set[str] = set()
        for offset, row in enumerate(table):
            for position, name in enumerate(row, start=1):
                if name not in kinds and name not in unknown_seen:
                    unknown_seen.add(name)
                    label = _column_label(name, position)
                    findings.append(
                        _finding(first_row + offset, label, "unknown_column", "format.unknown_column")
                    )
        cells = {name: [row.get(name, "") for row in table] for name in names}
    for name in names:
        findings.extend(scan_column(cells[name], column=name, kind=kinds[name], first_row=first_row))
    order = {name: i for i, name in enumerate(names)}
    findings.sort(key=lambda f: (f.row, order.get(f.column, -1) if f.rule != "format.unknown_column" else -1))
    return findings


# --- benchmark -----------------------------------------------------------------------------

EVENT_COLUMNS: dict[str, ColumnKind] = {
    "reporter": ColumnKind.ORG_CODE,
    "case_ref": ColumnKind.CASE_REF,
    "notice_source": ColumnKind.CODE,
    "category": ColumnKind.CODE,
    "content_type": ColumnKind.CODE,
    "hosting_country": ColumnKind.COUNTRY,
    "received_at": ColumnKind.TIMESTAMP,
    "actioned_at": ColumnKind.TIMESTAMP,
    "outcome": ColumnKind.CODE,
}


def typical_event_rows(count: int, *, seed: int = 0) -> list[dict[str, str]]:
    """Realistic event rows (nine columns, about one in ten not yet actioned) for benchmarks."""
    rng = random.Random(seed)
    sources = ("user_report", "hotline", "law_enforcement", "trusted_flagger", "proactive_detection")
    categories = ("csam_baseline", "csam_national", "grooming", "sextortion", "other")
    types = ("image", "video", "url", "text", "livestream", "account", "other")
    countries = ("US", "GB", "NL", "DE", "NA", "FR", "CA", "BR")
    outcomes = ("removed", "access_disabled", "not_illegal", "not_found", "referred")
    base = [
        {
            "reporter": "example-platform",
            "case_ref": f"case_{i:07d}-A",
            "notice_source": rng.choice(sources),
            "category": rng.choice(categories),
            "content_type": rng.choice(types),
            "hosting_country": rng.choice(countries),
            "received_at": f"2025-03-{1 + i % 28:02d}T{i % 24:02d}:{(i // 7) % 60:02d}:{(i * 7) % 60:02d}Z",
            "actioned_at": ""
            if i % 10 == 0
            else f"2025-03-{1 + i % 28:02d}T{(i + 3) % 24:02d}:{i % 60:02d}:00.250+01:00",
            "outcome": "pending" if i % 10 == 0 else rng.choice(outcomes),
        }
        for i in range(min(count, 10_000))
    ]
    rows = []
    for i in range(count):
        row = dict(base[i % len(base)]) if base else {}
        row["case_ref"] = f"case_{i:07d}-A"
        ms = f"{i % 1000:03d}"
        row["received_at"] = row["received_at"][:-1] + f".{ms}Z"
        if row["actioned_at"]:
            row["actioned_at"] = row["actioned_at"][:-12] + f"{(i // 60) % 60:02d}.{ms}+01:00"
        rows.append(row)
    return rows


def bench_firewall(rows: int = 1_000_000, *, arrow: bool = False) -> float:
    """Rows per second of the firewall over ``rows`` typical event rows (building them is not timed).

    ``arrow=False`` times ``scan_rows`` over dicts (the CSV/JSON reader path); ``arrow=True``
    times ``scan_table`` over an Arrow table (the vectorised path for pyarrow readers).
    """
    table = typical_event_rows(rows)
    scan_rows(table[:10_000], columns=EVENT_COLUMNS)  # warm up (regex compilation, allocator)
    if arrow:
        arrow_table = pa.Table.from_pylist(table)
        del table
        start = time.perf_counter()
        findings = scan_table(arrow_table, columns=EVENT_COLUMNS)
    else:
        start = time.perf_counter()
        findings = scan_rows(table, columns=EVENT_COLUMNS)
    elapsed = time.perf_counter() - start
    if findings:
        raise AssertionError("typical event rows must not raise findings")
    return rows / elapsed if elapsed > 0 else float("inf")


if __name__ == "__main__":  # pragma: no cover
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    for use_arrow in (False, True):
        rate = bench_firewall(n, arrow=use_arrow)
        path = "scan_table (Arrow)" if use_arrow else "scan_rows (dicts)"
        print(f"{path}: {rate:,.0f} rows/s over {n:,} rows of {len(EVENT_COLUMNS)} columns")
