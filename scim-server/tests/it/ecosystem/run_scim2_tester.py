"""Runs scim2-tester (PyPI) against a SCIM base URL and prints each check's outcome as JSON.

Usage: run_scim2_tester.py BASE_URL BEARER_TOKEN
Driven by `tests/it/ecosystem.rs`, which installs scim2-tester into a virtual environment.
"""

import json
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import check_server


def main() -> None:
    base_url, token = sys.argv[1], sys.argv[2]
    http = Client(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    results = check_server(SyncSCIMClient(http))
    print(
        json.dumps(
            [
                {
                    "status": r.status.name,
                    "title": r.title,
                    "resource_type": r.resource_type,
                    "reason": r.reason,
                }
                for r in results
            ]
        )
    )


if __name__ == "__main__":
    main()
