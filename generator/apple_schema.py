"""Validate a configuration profile against Apple's own schema data (generator/data/apple_schema.json,
derived from github.com/apple/device-management, MIT licence; see tools/derive_apple_schema.py)."""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "<string>": (str,), "<integer>": (int,), "<real>": (float, int), "<boolean>": (bool,),
    "<date>": (datetime.datetime,), "<data>": (bytes,), "<array>": (list,), "<dictionary>": (dict,),
}


@cache
def schema() -> dict[str, dict[str, dict[str, Any]]]:
    path = Path(__file__).resolve().parent / "data" / "apple_schema.json"
    payloads: dict[str, dict[str, dict[str, Any]]] = json.loads(path.read_text(encoding="utf-8"))["payloads"]
    return payloads


@dataclass(frozen=True, slots=True)
class _Rule:
    """One key of a payload's schema, ready to apply: its type(s), allowed values, format."""

    kind: str  # Apple's type name, "<string>"
    types: tuple[type, ...] | None
    rangelist: list[Any] | None
    format: re.Pattern[str] | None


@cache
def _rules(*kinds: str) -> tuple[dict[str, _Rule], tuple[str, ...]]:
    """The merged rules of these schema sections and their required keys, worked out once (this runs on
    every profile of a build)."""
    data = schema()
    merged: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        merged.update(data[kind])
    rules = {name: _Rule(rule["type"], _TYPES.get(rule["type"]), rule.get("rangelist"),
                         re.compile(rule["format"]) if "format" in rule else None) for name, rule in merged.items()}
    return rules, tuple(name for name, rule in merged.items() if rule["presence"] == "required")


def _check(obj: dict[str, Any], kinds: tuple[str, ...], where: str) -> list[str]:
    rules, required = _rules(*kinds)
    problems = [f"{where}: required key {name} is missing" for name in required if name not in obj]
    for name, value in obj.items():
        rule = rules.get(name)
        if rule is None:
            problems.append(f"{where}: key {name} is not in Apple's schema for this payload")
            continue
        types = rule.types
        # bool is a subclass of int in Python; Apple's <integer> must never be a <true/>.
        if types and (not isinstance(value, types) or (rule.kind != "<boolean>" and isinstance(value, bool))):
            problems.append(f"{where}: {name} must be {rule.kind}, found {type(value).__name__}")
            continue
        if rule.rangelist is not None and value not in rule.rangelist:
            problems.append(f"{where}: {name}={value!r} is not one of {rule.rangelist}")
        if rule.format is not None and isinstance(value, str) and not rule.format.match(value):
            problems.append(f"{where}: {name}={value!r} does not match {rule.format.pattern}")
    return problems


def validate_profile(profile: dict[str, Any]) -> list[str]:
    """Every way `profile` departs from Apple's schema for a Configuration holding mail payloads."""
    problems = _check(profile, ("TopLevel",), "profile")
    identifiers: set[str] = set()
    uuids: set[str] = set()
    for i, payload in enumerate(profile.get("PayloadContent", [])):
        where = f"PayloadContent[{i}]"
        kind = payload.get("PayloadType")
        if kind != "com.apple.mail.managed":
            problems.append(f"{where}: unexpected PayloadType {kind!r}")
            continue
        problems += _check(payload, ("CommonPayloadKeys", kind), where)
        # Apple: PayloadIdentifier unique within the profile; macOS rejects a duplicate PayloadUUID.
        if payload.get("PayloadIdentifier") in identifiers:
            problems.append(f"{where}: PayloadIdentifier repeats")
        if payload.get("PayloadUUID") in uuids | {profile.get("PayloadUUID")}:
            problems.append(f"{where}: PayloadUUID repeats")
        identifiers.add(payload.get("PayloadIdentifier"))
        uuids.add(payload.get("PayloadUUID"))
    return problems
