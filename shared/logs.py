"""Log lines pgha shows an operator (in a report): never with a key, a signature or a password in them."""

from __future__ import annotations

import logging
import re

SECRETS = re.compile(
    r"(AccountKey=|SharedAccessSignature=|[?&]sig=|[?&]code=|password=|PGPASSWORD=|Authorization: Bearer "
    r"|x-functions-key['\"]?:\s*['\"]?|://[^:/@\s]+:)[^;&\s\"'@]+",
    re.IGNORECASE,
)
LEVELS = ("debug", "info", "warning", "error")


def redact(line: str) -> str:
    return SECRETS.sub(lambda m: f"{m.group(1)}<redacted>", line)


def said(error: BaseException, limit: int = 300) -> str:
    """An error as a report quotes it: its first line (or its type), redacted."""
    text = str(error).strip()
    return redact(text.splitlines()[0][:limit] if text else type(error).__name__)


class Redacting(logging.Filter):
    """Every record, at any level, passes through `redact` before a handler writes it: its message, its
    traceback and its stack. A record that cannot be formatted is left to the handler's own error path."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
            clean = redact(message)
            if clean != message:
                record.msg, record.args = clean, None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact(record.exc_text)
            if record.stack_info:
                record.stack_info = redact(record.stack_info)
        except Exception:  # a bad format string: logging reports it itself, as without this filter
            pass
        return True


def configure(level: str = "info") -> None:
    """The devhost's logging: the Functions host's lines and pgha's own at `level`; the Azure SDK's (its HTTP
    request and response dumps among them) at WARNING unless `level` is debug; every line redacted."""
    if level not in LEVELS:
        raise ValueError(f"setting PGHA_LOG_LEVEL must be one of {', '.join(LEVELS)}, got {level!r}")
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(level.upper())
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, Redacting) for f in handler.filters):
            handler.addFilter(Redacting())
    for chatty in ("azure", "httpx", "httpcore"):  # one line per HTTP request: only when debugging
        logging.getLogger(chatty).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
