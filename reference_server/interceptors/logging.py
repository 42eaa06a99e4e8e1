"""Structured logs: one JSON line per finished call, and the JSON formatter for all server logs.

A call's line holds the method, status code, latency, the caller's subject and role (when
authenticated) and the request's ``request_id`` (when it has one). It never holds request or
response contents, so no location, address or other personal data reaches the logs.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

from reference_server.interceptors.metrics import status_code_of
from reference_server.interceptors.wrapping import AroundInterceptor, Call, Invoke

log = logging.getLogger("ansim.rpc")

#: LogRecord attributes that are not user-supplied ``extra`` fields.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_json_logging(level: int = logging.INFO) -> None:
    """Send every log record of the process to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def request_id_of(request: Any) -> str | None:
    """The ``request_id`` field of a request message, if it has a non-empty one."""
    value = getattr(request, "request_id", None)
    return value if isinstance(value, str) and value else None


class LoggingInterceptor(AroundInterceptor):
    async def around(self, call: Call, invoke: Invoke) -> Any:
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            return await invoke()
        except BaseException as exc:
            error = exc
            raise
        finally:
            fields: dict[str, Any] = {
                "method": call.method,
                "code": call.notes.get("code") or status_code_of(call, error),
                "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            }
            caller = call.notes.get("caller")
            if caller is not None:
                fields["caller_sub"] = caller.subject
                fields["caller_role"] = caller.role_name
            request_id = request_id_of(call.request)
            if request_id:
                fields["request_id"] = request_id
            log.info("rpc", extra=fields)
