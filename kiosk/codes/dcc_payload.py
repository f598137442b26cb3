"""The content of an EU DCC: decoded CBOR made plain, real issuers' shapes normalised, and the
result validated against the published DCC JSON schema.

Decoded CBOR is untrusted: ``cbor2`` turns tags into Python objects (datetimes, big integers,
fractions, regular expressions, MIME messages, sets, shared references that can make cycles).
``plain()`` keeps only what a JSON document can hold, bounded in depth, size and magnitude, and
turns the date/time tags (RFC 8949 tag 0 and 1, RFC 8943 tags 100 and 1004) into the strings the
schema expects; anything else is refused as malformed. The specification requires verifiers to read
tagged and untagged times alike.

The schema is the eHealth Network's ``DCC.combined-schema.json`` (schema version 1.3.0, in
``schemas/``), checked with ``jsonschema`` (draft 2020-12, with ``date`` and ``date-time`` formats).
Three adjustments, all documented in docs/codes.md:

- several entries of one kind are allowed (the schema says exactly one; real issuers wrote a
  vaccination series as one entry per dose), every entry must be valid, and the latest decides;
- the length limits of descriptive free text the kiosk never reads (testing centre, test name,
  certificate issuer) are not enforced: real issuers exceed them (a Hungarian testing centre's
  name is 100 characters long);
- the value sets the colour depends on are enforced: the disease targeted (COVID-19), the test type
  and the test result. Vaccine product, manufacturer and country codes are not: their lists grow,
  and the colour policy does not read them.

Before validation, ``"v": null``, ``"t": null`` and ``"r": null`` beside the real entry are dropped
(a shape Bulgarian certificates have): a null group means the group is absent.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from datetime import date, datetime, timezone
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from kiosk.codes.finding import Refused

SCHEMA_FILE = "DCC.combined-schema.json"
KINDS = ("v", "t", "r")
# Deep enough for claims -> hcert -> certificate -> group -> entry -> field, with room to spare.
MAX_DEPTH = 12
MAX_NODES = 4096
MAX_INT = 2**64
# Value sets the colour depends on (EU eHealth Network value sets 2.1, 2.7 and 2.9).
DISEASE_COVID19 = "840539006"
TEST_TYPES = ("LP6464-4", "LP217198-3")
TEST_NOT_DETECTED, TEST_DETECTED = "260415000", "260373001"


class _Budget:
    def __init__(self) -> None:
        self.nodes = 0


def _time_text(value: datetime | date) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise Refused.malformed("a CBOR date/time has no time zone")
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def plain(value: Any, what: str = "certificate") -> Any:
    """A JSON-like copy of decoded CBOR, or Refused (malformed) for anything else."""
    return _plain(value, 0, _Budget(), what)


def _plain(value: Any, depth: int, budget: _Budget, what: str) -> Any:
    budget.nodes += 1
    if budget.nodes > MAX_NODES:
        raise Refused.malformed(f"{what} has more than {MAX_NODES} values")
    if depth > MAX_DEPTH:
        raise Refused.malformed(f"{what} is nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (bool, str, bytes)):
        return value
    if isinstance(value, int):
        if -MAX_INT <= value <= MAX_INT:
            return value
        raise Refused.malformed(f"{what} holds an integer out of range")
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise Refused.malformed(f"{what} holds a number that is not finite")
    if isinstance(value, (datetime, date)):
        return _time_text(value)
    if isinstance(value, Mapping):
        result: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise Refused.malformed(f"{what} has a map key that is not a text or an integer")
            result[_plain(key, depth + 1, budget, what)] = _plain(item, depth + 1, budget, what)
        return result
    if isinstance(value, (list, tuple)):
        return [_plain(item, depth + 1, budget, what) for item in value]
    raise Refused.malformed(f"{what} holds an unsupported CBOR value ({type(value).__name__})")


_validator: Draft202012Validator | None = None
_validator_lock = threading.Lock()


def _schema() -> dict[str, Any]:
    text = resources.files("kiosk.codes").joinpath("schemas", SCHEMA_FILE).read_text(encoding="utf-8")
    schema = json.loads(text)
    for kind in KINDS:
        schema["properties"][kind].pop("maxItems", None)
    definitions = schema["$defs"]
    # Descriptive free text the kiosk never reads: real issuers exceed its length limits.
    definitions["test_entry"]["properties"]["tc"].pop("maxLength", None)
    definitions["test_entry"]["properties"]["nm"].pop("maxLength", None)
    definitions["issuer"].pop("maxLength", None)
    definitions["disease-agent-targeted"]["enum"] = [DISEASE_COVID19]
    definitions["test-type"]["enum"] = list(TEST_TYPES)
    definitions["test-result"]["enum"] = [TEST_NOT_DETECTED, TEST_DETECTED]
    return schema


# Keywords that only annotate: validation skips them, but not for free.
_ANNOTATIONS = frozenset({"title", "description", "examples", "$comment", "valueset-uri"})


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    """The schema with its local ``#/$defs/`` references replaced by their targets (the DCC schema
    has no recursive ones) and its annotations dropped: the same rules, checked faster."""
    if isinstance(node, dict):
        node = {key: value for key, value in node.items() if key not in _ANNOTATIONS}
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            target = _inline(definitions[reference.removeprefix("#/$defs/")], definitions)
            rest = {key: _inline(value, definitions) for key, value in node.items() if key != "$ref"}
            return {**target, **rest}
        return {key: _inline(value, definitions) for key, value in node.items() if key != "$defs"}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node


def validator() -> Draft202012Validator:
    """The DCC schema validator (built once; validating is thread-safe)."""
    global _validator
    with _validator_lock:
        if _validator is None:
            schema = _schema()
            Draft202012Validator.check_schema(schema)
            schema = _inline(schema, schema["$defs"])
            checker = FormatChecker(("date", "date-time"))
            if "date-time" not in checker.checkers:  # jsonschema checks it only with rfc3339-validator
                raise ImportError("the DCC schema needs rfc3339-validator to check date-time values")
            _validator = Draft202012Validator(schema, format_checker=checker)
        return _validator


def _where(error: Any) -> str:
    """Where a schema error is and which rule it breaks, without the offending value (which may be
    the holder's name)."""
    path = ".".join(str(part) for part in error.absolute_path) or "certificate"
    return f"{path}: {error.validator}"


def normalise(dgc: Any) -> Any:
    """Real issuers' unambiguous shapes made standard (see the module docstring)."""
    if isinstance(dgc, dict):
        return {key: value for key, value in dgc.items() if not (key in KINDS and value is None)}
    return dgc


def validate(dgc: Any) -> tuple[str, list[Mapping[str, Any]]]:
    """The certificate's kind ("v", "t" or "r") and its entries, or Refused (malformed)."""
    dgc = normalise(dgc)
    error = next(iter(validator().iter_errors(dgc)), None)
    if error is not None:
        raise Refused.malformed(f"certificate does not follow the DCC schema ({_where(error)})")
    kinds = [kind for kind in KINDS if kind in dgc]
    if len(kinds) != 1:  # the schema's oneOf already says so; kept for the type checker's sake
        raise Refused.malformed("certificate must hold exactly one of v, t and r")
    return kinds[0], list(dgc[kinds[0]])


def sample_time(entry: Mapping[str, Any]) -> datetime:
    """A test's sample time (validated as RFC 3339 by the schema), in UTC."""
    try:
        moment = datetime.fromisoformat(entry["sc"])
    except (KeyError, TypeError, ValueError):
        raise Refused.malformed("test entry needs a sample time (sc) with a time zone") from None
    if moment.tzinfo is None:
        raise Refused.malformed("test entry needs a sample time (sc) with a time zone")
    return moment.astimezone(timezone.utc)


def latest(kind: str, entries: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The entry that decides: the latest dose (date, then dose number), test (sample time) or
    recovery (first positive result, then valid-from date). Where two are equally late the less
    favourable decides (more doses in the series; a positive test), whatever their order."""
    if kind == "v":
        return max(entries, key=lambda entry: (entry["dt"], entry["dn"], entry["sd"]))
    if kind == "t":
        return max(entries, key=lambda entry: (sample_time(entry), entry.get("tr") == TEST_DETECTED))
    return max(entries, key=lambda entry: (entry["fr"], entry["df"]))
