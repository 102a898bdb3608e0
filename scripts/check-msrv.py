"""Fails when a dependency declares a newer `rust-version` than the workspace's own.

Usage: cargo metadata --format-version 1 --locked | python3 scripts/check-msrv.py

Together with clippy's `incompatible_msrv` lint (which checks our own use of the standard
library against `rust-version`), this keeps the declared MSRV true without installing a second
toolchain.
"""

import json
import sys


def version(text: str) -> tuple[int, int, int]:
    parts = (text.split(".") + ["0", "0"])[:3]
    return (int(parts[0]), int(parts[1]), int(parts[2]))


def main() -> None:
    meta = json.load(sys.stdin)
    members = set(meta["workspace_members"])
    ours = [p["rust_version"] for p in meta["packages"] if p["id"] in members and p.get("rust_version")]
    if not ours:
        sys.exit("no workspace member declares rust-version")
    msrv = min(version(v) for v in ours)
    newer = [
        "{} {} needs {}".format(p["name"], p["version"], p["rust_version"])
        for p in meta["packages"]
        if p.get("rust_version") and version(p["rust_version"]) > msrv
    ]
    if newer:
        sys.exit("rust-version is older than the dependencies need:\n  " + "\n  ".join(newer))
    print("MSRV {} holds for {} packages".format(".".join(map(str, msrv)), len(meta["packages"])))


if __name__ == "__main__":
    main()
