"""What a campaign request carries, read without holding a file in memory.

- multipart/form-data: the `file` part streamed to disk in the request's own folder, the other parts
  as text fields, every byte counted against SMSDISPATCH_MAX_UPLOAD_MB (413 past it, the partial file
  removed); parsed by python-multipart's push parser as the body arrives.
- application/json: `{"recipients": [{"phone", …columns}], …fields}` (at most 10,000 recipients), written
  to a CSV in the request's folder so the loader reads it exactly as it reads a file.

`digest` is a SHA-256 of the request's meaning (the fields sorted, then the file's bytes), the same for
two requests that say the same thing whatever their multipart boundaries: the Idempotency-Key's check.
The field names are `send`'s options (`dispatcher.app.SendRequest`; `type` is `campaign_type`).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request

from dispatcher.app import BadInput, SendRequest
from dispatcher.web.errors import TooLarge

MAX_RECIPIENTS_JSON = 10_000
MAX_FIELD_BYTES = 64 * 1024
ALIASES = {"type": "campaign_type"}
BOOLEANS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}
# Fields of the request that are not SendRequest's: how the web layer treats the campaign.
WEB_FIELDS = ("dry_run", "callback_url")
NOT_FROM_CALLERS = ("file", "rejects")  # server paths are the server's to choose


@dataclass
class Upload:
    """A request's fields (text), its file on disk (None: none sent), and the digest of its meaning."""

    folder: Path
    fields: dict[str, str] = field(default_factory=dict)
    file: Path | None = None
    filename: str | None = None
    digest: str = ""

    def discard(self, keep_rejects: bool = True) -> None:
        """Remove the uploaded file (the rows are stored or spooled by now); the rejects file stays."""
        if self.file is not None:
            self.file.unlink(missing_ok=True)
        if not self.folder.is_dir():
            return
        if not keep_rejects or not any(self.folder.iterdir()):
            shutil.rmtree(self.folder, ignore_errors=True)


def upload_dir(env: Any) -> Path:
    return Path(env.get("SMSDISPATCH_UPLOAD_DIR") or "uploads")


def max_upload_bytes(env: Any) -> int:
    text = (env.get("SMSDISPATCH_MAX_UPLOAD_MB") or "200").strip()
    try:
        return int(float(text) * 1024 * 1024)
    except ValueError:
        raise BadInput(f"SMSDISPATCH_MAX_UPLOAD_MB={text!r} is not a number of megabytes") from None


def _safe_name(name: str | None) -> str:
    base = re.sub(r"[^\w.\-]+", "_", Path(name or "upload").name, flags=re.UNICODE).strip("._") or "upload"
    return base[:100]


async def read_upload(request: Request, root: Path, limit: int) -> Upload:
    """The request's fields and file (see the module doc); TooLarge past `limit` bytes, BadInput for a body
    that is neither multipart nor JSON."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(
            f"the request is {int(declared):,} bytes; uploads are capped at {limit // 1048576} MB (SMSDISPATCH_MAX_UPLOAD_MB)"
        )
    folder = root / uuid.uuid4().hex
    folder.mkdir(parents=True)
    try:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            return await _multipart(request, folder, limit)
        if kind in ("application/json", ""):
            return await _json(request, folder, limit)
        raise BadInput(
            f"Content-Type {kind!r}: send multipart/form-data (a file) or application/json (recipients)"
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


async def _multipart(request: Request, folder: Path, limit: int) -> Upload:
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(request.headers["content-type"])
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadInput("multipart/form-data without a boundary; let the HTTP client build the body")
    up = Upload(folder)
    file_hash = hashlib.sha256()
    state: dict[str, Any] = {
        "headers": {},
        "name": None,
        "value": bytearray(),
        "out": None,
        "hname": b"",
        "hval": b"",
    }

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["hname"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["hval"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["hname"].decode("latin-1").lower()] = state["hval"]
        state["hname"], state["hval"] = b"", b""

    def on_headers_finished() -> None:
        _, disp = parse_options_header(state["headers"].get("content-disposition", b""))
        name = disp.get(b"name", b"").decode("utf-8", "replace")
        state["name"] = name
        if b"filename" in disp:
            if name != "file":
                raise BadInput(f"a file in field {name!r}; send the recipients' file as the field 'file'")
            if up.file is not None:
                raise BadInput("two files in one request; send one recipients file")
            up.filename = disp[b"filename"].decode("utf-8", "replace")
            up.file = folder / _safe_name(up.filename)
            state["out"] = up.file.open("wb")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if state["out"] is not None:
            state["out"].write(chunk)
            file_hash.update(chunk)
        else:
            state["value"] += chunk
            if len(state["value"]) > MAX_FIELD_BYTES:
                raise BadInput(f"field {state['name']!r} is over {MAX_FIELD_BYTES // 1024} KB; shorten it")

    def on_part_end() -> None:
        if state["out"] is not None:
            state["out"].close()
            state["out"] = None
        else:
            try:
                up.fields[state["name"]] = bytes(state["value"]).decode("utf-8")
            except UnicodeDecodeError:
                raise BadInput(f"field {state['name']!r} is not UTF-8 text; send it as UTF-8") from None
        state["headers"], state["value"] = {}, bytearray()

    parser = MultipartParser(
        boundary,
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit:
                raise TooLarge(
                    f"the upload passed {limit // 1048576} MB, the cap (SMSDISPATCH_MAX_UPLOAD_MB); send a smaller file"
                )
            parser.write(chunk)
        parser.finalize()
    finally:
        if state["out"] is not None:
            state["out"].close()
    up.digest = _digest(up.fields, file_hash.hexdigest() if up.file else "")
    return up


async def _json(request: Request, folder: Path, limit: int) -> Upload:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"the request passed {limit // 1048576} MB, the cap (SMSDISPATCH_MAX_UPLOAD_MB)")
    try:
        doc = json.loads(body or b"{}")
    except ValueError as exc:
        raise BadInput(
            f"the body is not JSON ({exc.msg} at character {exc.pos}); send a JSON object"
        ) from None
    if not isinstance(doc, dict):
        raise BadInput(
            'the body is not a JSON object; send {"recipients": [...], "provider": ..., "message": ...}'
        )
    up = Upload(folder)
    recipients = doc.pop("recipients", None)
    for key, value in doc.items():
        if isinstance(value, dict | list):
            raise BadInput(f"field {key!r} is a {type(value).__name__}; give text, a number or true/false")
        up.fields[key] = (
            "" if value is None else (str(value).lower() if isinstance(value, bool) else str(value))
        )
    if recipients is not None:
        up.file = _recipients_csv(recipients, folder)
        up.filename = "recipients.csv"
    canonical = (
        json.dumps(recipients, sort_keys=True, ensure_ascii=False).encode() if recipients is not None else b""
    )
    up.digest = _digest(up.fields, hashlib.sha256(canonical).hexdigest() if recipients is not None else "")
    return up


def _recipients_csv(recipients: Any, folder: Path) -> Path:
    """`[{"phone", …}]` as a CSV file (row 2 is the first recipient, as in a file with a header)."""
    if not isinstance(recipients, list) or not recipients:
        raise BadInput('recipients: give a non-empty list like [{"phone": "09121234567", "name": "Sara"}]')
    if len(recipients) > MAX_RECIPIENTS_JSON:
        raise BadInput(
            f"recipients: {len(recipients):,} given, at most {MAX_RECIPIENTS_JSON:,}; upload a file for more"
        )
    columns: dict[str, None] = {"phone": None}
    for n, row in enumerate(recipients, start=1):
        if not isinstance(row, dict) or "phone" not in row:
            raise BadInput(f'recipients[{n - 1}]: each recipient is an object with "phone"; fix that entry')
        for key, value in row.items():
            if isinstance(value, dict | list):
                raise BadInput(
                    f"recipients[{n - 1}].{key}: give text or a number, not a {type(value).__name__}"
                )
            columns.setdefault(str(key), None)
    path = folder / "recipients.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(list(columns))
        for row in recipients:
            writer.writerow(["" if row.get(c) is None else str(row.get(c)) for c in columns])
    return path


def _digest(fields: dict[str, str], file_digest: str) -> str:
    text = json.dumps(sorted(fields.items()), ensure_ascii=False) + "\n" + file_digest
    return hashlib.sha256(text.encode()).hexdigest()


def flag(fields: dict[str, str], name: str) -> bool:
    text = fields.get(name, "").strip().lower()
    if text == "":
        return False
    if text not in BOOLEANS:
        raise BadInput(f"{name}={fields[name]!r}: write true or false")
    return BOOLEANS[text]


def send_request(up: Upload) -> SendRequest:
    """The upload as `send`'s request: each field by its option's name; BadInput naming an unknown one."""
    if up.file is None:
        raise BadInput(
            "no recipients: send a file in the field 'file' (multipart) or a JSON \"recipients\" list"
        )
    known = {f.name: f for f in dataclasses.fields(SendRequest) if f.name not in NOT_FROM_CALLERS}
    values: dict[str, Any] = {}
    for name, text in up.fields.items():
        if name in WEB_FIELDS:
            continue
        target = ALIASES.get(name, name)
        spec = known.get(target)
        if spec is None or name == "campaign_type":
            options = sorted({*(k if k != "campaign_type" else "type" for k in known), *WEB_FIELDS})
            raise BadInput(f"unknown field {name!r}; the fields are: {', '.join(options)}")
        if spec.type in ("bool", bool):
            values[target] = flag(up.fields, name)
        elif text.strip() == "" and spec.default is None:
            continue
        else:
            values[target] = text
    for needed in ("provider", "message"):
        if needed not in values:
            raise BadInput(f"the field {needed!r} is missing; give it")
    return SendRequest(file=up.file, **values)
