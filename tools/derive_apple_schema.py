"""Derive generator/data/apple_schema.json from Apple's device-management schema (MIT licence).

Run from the checkout: python tools/derive_apple_schema.py ../shared/reference/apple-device-management
Only the facts a validator needs are kept (key, type, presence, rangelist, format); the licence travels
with the data in generator/data/APPLE-LICENSE.txt.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import yaml

FILES = {"TopLevel": "TopLevel.yaml", "CommonPayloadKeys": "CommonPayloadKeys.yaml",
         "com.apple.mail.managed": "com.apple.mail.managed.yaml"}


def keys(items: list[dict]) -> dict:
    out = {}
    for item in items:
        entry = {"type": item["type"], "presence": item.get("presence", "optional")}
        for extra in ("rangelist", "format"):
            if extra in item:
                entry[extra] = item[extra]
        out[item["key"]] = entry
    return out


def main(src: Path) -> None:
    data = {"source": "Apple device-management schema (github.com/apple/device-management), MIT licence",
            "payloads": {}}
    for name, file in FILES.items():
        doc = yaml.safe_load((src / file).read_text(encoding="utf-8"))
        data["payloads"][name] = keys(doc["payloadkeys"])
    out = Path(__file__).resolve().parent.parent / "generator" / "data"
    (out / "apple_schema.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    shutil.copyfile(src / "LICENSE.txt", out / "APPLE-LICENSE.txt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
