"""helm test: the API answers /healthz and /readyz through its Service."""

import os
import sys
import time
import urllib.error
import urllib.request

API_URL = os.environ["API_URL"]
DEADLINE = time.monotonic() + float(os.environ.get("TIMEOUT_S", "60"))


def status_of(path: str) -> int | str:
    try:
        with urllib.request.urlopen(API_URL + path, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as ex:
        return ex.code
    except OSError as ex:
        return str(ex)


def main() -> int:
    for path in ("/healthz", "/readyz"):
        while (status := status_of(path)) != 200:
            if time.monotonic() > DEADLINE:
                print(f"FAIL {path}: {status}")
                return 1
            time.sleep(2)
        print(f"ok {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
