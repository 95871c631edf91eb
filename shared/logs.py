"""Log lines pgha shows an operator (in a report): never with a key, a signature or a password in them."""

from __future__ import annotations

import re

SECRETS = re.compile(
    r"(AccountKey=|SharedAccessSignature=|[?&]sig=|password=|PGPASSWORD=|Authorization: Bearer )[^;&\s\"']+",
    re.IGNORECASE,
)


def redact(line: str) -> str:
    return SECRETS.sub(lambda m: f"{m.group(1)}<redacted>", line)
