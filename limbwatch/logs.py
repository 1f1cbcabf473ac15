"""The one logging set-up of the services (`limbwatch serve`, `worker`, `ingest`): to standard
error, as text or as JSON lines.

A JSON line has `time` (ISO 8601, UTC, milliseconds), `level`, `logger`, `message`, and the
context a message was logged with when it is known: `night` (the night's id: the correlation id
of everything said about one night), `subject`, `sensor` (pass them with
`log.info(..., extra={"night": night.id, "subject": ...})`), and `exc` (a traceback).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

CONTEXT = ("night", "subject", "sensor")
LogFormat = Literal["text", "json"]
NOISY = ("bumble", "bleak", "bleak_retry_connector")  # chatty at INFO: WARNING and above only


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`TIME LEVEL logger: message [night=3 subject=kid]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = " ".join(f"{key}={getattr(record, key)}" for key in CONTEXT
                           if getattr(record, key, None) is not None)
        if not context:
            return text
        first, newline, rest = text.partition("\n")  # after the message, before a traceback
        return f"{first} [{context}]{newline}{rest}"


def setup_logging(level: str = "INFO", fmt: LogFormat = "text",
                  stream: TextIO | None = None) -> logging.Handler:
    """Send the root logger's records at `level` and above to `stream` (default: standard
    error) in format `fmt`; replaces an earlier set-up by this function, leaves other handlers
    (a test's) alone."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_limbwatch", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler._limbwatch = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    return handler
