"""Download the jars named in jars.lock from Maven Central and check each one's SHA-256.

Usage: fetch_jars.py LOCKFILE DEST [CAFILE]. CAFILE (a TLS proxy's bundle) is used when it exists.
"""

import hashlib
import os
import ssl
import sys
import urllib.request

REPOSITORY = os.environ.get("MAVEN_REPOSITORY", "https://repo1.maven.org/maven2")


def main(lockfile: str, dest: str, cafile: str = "") -> None:
    context = ssl.create_default_context(cafile=cafile if cafile and os.path.exists(cafile) else None)
    os.makedirs(dest, exist_ok=True)
    with open(lockfile) as lock:
        lines = lock.read().splitlines()
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        sha256, path = line.split()
        with urllib.request.urlopen(f"{REPOSITORY}/{path}", context=context, timeout=120) as reply:
            body = reply.read()
        if hashlib.sha256(body).hexdigest() != sha256:
            sys.exit(f"checksum mismatch: {path}")
        with open(os.path.join(dest, os.path.basename(path)), "wb") as jar:
            jar.write(body)


if __name__ == "__main__":
    main(*sys.argv[1:])
