"""POST ready-made gzip'd bodies to a write URL as fast as the server takes them: the ceiling.

    python benchmarks/raw_post.py BODIES PATH_AND_QUERY URL --connections N [--plain]

BODIES is a file of bodies, each an 8-byte little-endian length and the gzip'd lines
(direct_write.py makes it from csv2lp's own output, 5,000 lines a body); with --plain
the bodies are the lines themselves, sent without Content-Encoding. The header
`Authorization: $RAW_POST_AUTH` is sent when that variable is set (a secret stays off
argv). Each of the N connections takes the next body as soon as its last one is
answered; any answer but 2xx ends the run with status 1 and the server's words.
Standard library only: the launcher's peak-RSS floor is this process's too.
"""

import http.client
import json
import os
import struct
import sys
import threading
import urllib.parse


def read_bodies(path):
    bodies = []
    with open(path, "rb") as handle:
        while header := handle.read(8):
            (size,) = struct.unpack("<Q", header)
            bodies.append(handle.read(size))
    return bodies


def post_all(url, path, bodies, connections, gzip=True):
    parts = urllib.parse.urlsplit(url)
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    if gzip:
        headers["Content-Encoding"] = "gzip"
    if os.environ.get("RAW_POST_AUTH"):
        headers["Authorization"] = os.environ["RAW_POST_AUTH"]
    lock = threading.Lock()
    state = {"next": 0, "error": None}

    def worker():
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
        while True:
            with lock:
                index, state["next"] = state["next"], state["next"] + 1
                if index >= len(bodies) or state["error"]:
                    break
            connection.request("POST", path, body=bodies[index], headers=headers)
            response = connection.getresponse()
            answer = response.read()
            if not 200 <= response.status < 300:
                with lock:
                    state["error"] = f"HTTP {response.status}: {answer[:300].decode('utf-8', 'replace')}"
                break
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return state["error"]


def main(argv):
    plain = argv[5:] == ["--plain"]
    if len(argv) != 5 + plain or argv[3] != "--connections":
        sys.stderr.write(__doc__)
        return 2
    bodies = read_bodies(argv[0])
    error = post_all(argv[2], argv[1], bodies, int(argv[4]), gzip=not plain)
    print(json.dumps({"requests": len(bodies), "error": error}))
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
