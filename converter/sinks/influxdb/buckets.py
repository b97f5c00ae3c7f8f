"""`--create-bucket`: make the bucket (InfluxDB 2) or the database (1.x) exist before the first row.

InfluxDB 2: `GET /api/v2/buckets?org=O&name=B` lists the bucket, or answers 404 with a JSON
error (`bucket "B" not found`, seen on the real 2.x server) when it is missing: both mean
"look no further". The bucket is then created with `POST /api/v2/buckets`, which takes the
organization's ID, found with `GET /api/v2/orgs?org=O`. A 404 without a JSON body is a
server without that API (3.x, Telegraf's listener): that is said plainly.

InfluxDB 1.x: `CREATE DATABASE` through `/query`, after `SHOW DATABASES` says whether it is
needed (CREATE DATABASE is a no-op for an existing one, but the message should not claim to
have created it). A retention policy named in `--bucket db/rp` is not created: that is the
database administrator's decision (duration, replication, default), so a missing one stays
an error of the first write, with its name.
"""

from __future__ import annotations

import json
import urllib.parse

from .server import (
    CONNECTION_ERRORS,
    Answer,
    Api,
    InfluxTarget,
    InfluxWriteError,
    describe_failure,
    hint,
    request,
)


def create_bucket_if_missing(target: InfluxTarget, *, timeout_s: float = 30.0) -> bool:
    """Create `target.bucket` (2.x) or its database (1.x) unless it exists; True if it was created."""
    if target.api is Api.V1:
        return _create_database_if_missing(target, timeout_s)
    if not target.org:
        raise InfluxWriteError("--create-bucket needs --org (the organization the bucket belongs to).")
    buckets = f"{target.base_path}/api/v2/buckets"
    found = _call(target, "GET", f"{buckets}?{urllib.parse.urlencode({'org': target.org, 'name': target.bucket})}",
                  timeout_s=timeout_s)
    if found.status == 404 and not _is_json(found):
        raise InfluxWriteError(
            f"--create-bucket: the server at {target.url} has no buckets API ({target.url}/api/v2/buckets answered "
            f"404 Not Found). Only InfluxDB 2 has one; InfluxDB 3.x and Telegraf's influxdb_v2_listener accept "
            f"writes on /api/v2/write but cannot create buckets. Create the bucket or database {target.bucket!r} "
            f"there yourself (3.x: influxdb3 create database), then run without --create-bucket."
        )
    if found.ok and any(b.get("name") == target.bucket for b in _json(found).get("buckets") or []):
        return False
    if not found.ok and not (found.status == 404 and "bucket" in found.message().lower()):
        _refused(target, found, "/api/v2/buckets")
    org_id = _org_id(target, timeout_s)
    body = json.dumps({"orgID": org_id, "name": target.bucket, "retentionRules": []}).encode("utf-8")
    created = _call(target, "POST", buckets, body=body, timeout_s=timeout_s,
                    headers={"Content-Type": "application/json"})
    if not created.ok:
        _refused(target, created, "/api/v2/buckets")
    return True


def _org_id(target: InfluxTarget, timeout_s: float) -> str:
    answer = _call(target, "GET", f"{target.base_path}/api/v2/orgs?{urllib.parse.urlencode({'org': target.org})}",
                   timeout_s=timeout_s)
    orgs = _json(answer).get("orgs") or [] if answer.ok else []
    for org in orgs:
        if org.get("name") == target.org and org.get("id"):
            return str(org["id"])
    if answer.ok or answer.status == 404:
        raise InfluxWriteError(f"--create-bucket: {target.url} has no organization {target.org!r}: check --org.")
    _refused(target, answer, "/api/v2/orgs")
    raise AssertionError("not reached")


def _create_database_if_missing(target: InfluxTarget, timeout_s: float) -> bool:
    shown = _query(target, "SHOW DATABASES", timeout_s)
    names = {values[0] for result in shown.get("results", []) for series in result.get("series", [])
             for values in series.get("values", [])}
    if target.database in names:
        return False
    _query(target, f"CREATE DATABASE {quote_ident(target.database)}", timeout_s)
    return True


def _query(target: InfluxTarget, statement: str, timeout_s: float) -> dict:
    path = f"{target.base_path}/query"
    answer = _call(target, "POST", path, body=urllib.parse.urlencode({"q": statement}).encode("ascii"),
                   timeout_s=timeout_s, headers={"Content-Type": "application/x-www-form-urlencoded"})
    document = _json(answer) if _is_json(answer) else {}
    errors = [document.get("error")] + [r.get("error") for r in document.get("results", []) if isinstance(r, dict)]
    error = next((e for e in errors if e), None)
    if not answer.ok or error:
        said = f"HTTP {answer.status} {answer.reason}: {error}" if error else answer.describe()
        advice = hint(answer.status, target) if answer.status == 401 else ""
        if answer.status == 403:
            advice = (f" {statement.split(' ')[0]} DATABASE needs an admin user: create the database as one, then "
                      "run without --create-bucket.")
        raise InfluxWriteError(target.mask(f"--create-bucket: {statement} on {target.url}/query answered "
                                           f"{said}.{advice}"))
    return document


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes, `\\` and `"` escaped."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _call(target: InfluxTarget, method: str, path: str, *, timeout_s: float, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> Answer:
    connection = target.connect(timeout_s)
    try:
        return request(connection, method, path, body=body, headers={**target.auth_headers(), **(headers or {})})
    except CONNECTION_ERRORS as exc:
        raise InfluxWriteError(target.mask(
            f"--create-bucket: cannot reach {target.url}{path.split('?')[0]}: {describe_failure(exc)}.")) from None
    finally:
        connection.close()


def _refused(target: InfluxTarget, answer: Answer, api: str) -> None:
    raise InfluxWriteError(target.mask(
        f"--create-bucket: {target.url}{api} answered {answer.describe()}.{hint(answer.status, target)}"))


def _is_json(answer: Answer) -> bool:
    return answer.body.lstrip()[:1] == b"{"


def _json(answer: Answer) -> dict:
    try:
        document = json.loads(answer.body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
