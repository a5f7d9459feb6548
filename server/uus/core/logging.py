"""A logging filter that removes secrets from every record before any handler sees it."""

from __future__ import annotations

import logging
import re

_PATTERNS = [
    # key=value / "key": "value" forms for the words that name secrets
    re.compile(r'(?i)((?:password|passwd|secret|token|bind_password|api_key)["\']?\s*[:=]\s*["\']?)([^\s"\',&]+)'),
    re.compile(r"(?i)(Authorization:\s*(?:Token|Bearer|Machine)\s+)(\S+)"),
]


def redact(text: str) -> str:
    for pat in _PATTERNS:
        text = pat.sub(lambda m: m.group(1) + "***", text)
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not kill logging
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
