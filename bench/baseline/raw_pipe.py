"""The floor for a registry-to-registry copy on this machine: `curl GET | curl PUT` per blob, four
blobs at a time, then the manifest. No verification, no retries, no progress: only the bytes.
    usage: raw_pipe.py SOURCE TARGET REPO TAG   (both registries plain HTTP; the source may use tokens)
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import re
import subprocess
import sys

import requests

ACCEPT = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"


def token(source: str, repo: str) -> dict[str, str]:
    r = requests.get(f"http://{source}/v2/", timeout=10)
    if r.status_code != 401:
        return {}
    params = dict(re.findall(r'(\w+)="([^"]*)"', r.headers["WWW-Authenticate"]))
    t = requests.get(params["realm"], params={"service": params.get("service", ""),
                                              "scope": f"repository:{repo}:pull"}, timeout=10).json()["token"]
    return {"Authorization": f"Bearer {t}"}


def main() -> int:
    source, target, repo, tag = sys.argv[1:5]
    auth = token(source, repo)
    m = requests.get(f"http://{source}/v2/{repo}/manifests/{tag}", headers={**auth, "Accept": ACCEPT}, timeout=30)
    m.raise_for_status()
    manifest = m.json()
    blobs = [manifest["config"]["digest"]] + [layer["digest"] for layer in manifest["layers"]]

    def pipe(digest: str) -> None:
        up = requests.post(f"http://{target}/v2/{repo}/blobs/uploads/", timeout=30)
        loc = up.headers["Location"]
        loc = loc if loc.startswith("http") else f"http://{target}{loc}"
        sep = "&" if "?" in loc else "?"
        get = ["curl", "-sf", f"http://{source}/v2/{repo}/blobs/{digest}"]
        for k, v in auth.items():
            get[2:2] = ["-H", f"{k}: {v}"]
        cmd = (" ".join(f"'{a}'" for a in get) + " | curl -sf -X PUT -H 'Content-Type: application/octet-stream' "
               f"-T - '{loc}{sep}digest={digest}'")
        subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True)

    with cf.ThreadPoolExecutor(4) as pool:
        list(pool.map(pipe, blobs))
    put = requests.put(f"http://{target}/v2/{repo}/manifests/{tag}", data=m.content,
                       headers={"Content-Type": m.headers["Content-Type"]}, timeout=30)
    put.raise_for_status()
    print(json.dumps({"blobs": len(blobs)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
