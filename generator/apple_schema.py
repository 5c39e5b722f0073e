"""Validate a configuration profile against Apple's own schema data (generator/data/apple_schema.json,
derived from github.com/apple/device-management, MIT licence; see tools/derive_apple_schema.py)."""

from __future__ import annotations

import datetime
import json
import re
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


def _check(obj: dict[str, Any], keys: dict[str, dict[str, Any]], where: str) -> list[str]:
    problems = []
    for name, rule in keys.items():
        if rule["presence"] == "required" and name not in obj:
            problems.append(f"{where}: required key {name} is missing")
    for name, value in obj.items():
        if name not in keys:
            problems.append(f"{where}: key {name} is not in Apple's schema for this payload")
            continue
        rule = keys[name]
        types = _TYPES.get(rule["type"])
        # bool is a subclass of int in Python; Apple's <integer> must never be a <true/>.
        if types and (not isinstance(value, types) or (rule["type"] != "<boolean>" and isinstance(value, bool))):
            problems.append(f"{where}: {name} must be {rule['type']}, found {type(value).__name__}")
            continue
        if "rangelist" in rule and value not in rule["rangelist"]:
            problems.append(f"{where}: {name}={value!r} is not one of {rule['rangelist']}")
        if "format" in rule and isinstance(value, str) and not re.match(rule["format"], value):
            problems.append(f"{where}: {name}={value!r} does not match {rule['format']}")
    return problems


def validate_profile(profile: dict[str, Any]) -> list[str]:
    """Every way `profile` departs from Apple's schema for a Configuration holding mail payloads."""
    data = schema()
    problems = _check(profile, data["TopLevel"], "profile")
    identifiers: set[str] = set()
    uuids: set[str] = set()
    for i, payload in enumerate(profile.get("PayloadContent", [])):
        where = f"PayloadContent[{i}]"
        kind = payload.get("PayloadType")
        if kind != "com.apple.mail.managed":
            problems.append(f"{where}: unexpected PayloadType {kind!r}")
            continue
        problems += _check(payload, {**data["CommonPayloadKeys"], **data[kind]}, where)
        # Apple: PayloadIdentifier unique within the profile; macOS rejects a duplicate PayloadUUID.
        if payload.get("PayloadIdentifier") in identifiers:
            problems.append(f"{where}: PayloadIdentifier repeats")
        if payload.get("PayloadUUID") in uuids | {profile.get("PayloadUUID")}:
            problems.append(f"{where}: PayloadUUID repeats")
        identifiers.add(payload.get("PayloadIdentifier"))
        uuids.add(payload.get("PayloadUUID"))
    return problems
