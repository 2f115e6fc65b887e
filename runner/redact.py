"""Credentials never appear in dsrun's output: the one redaction helper every layer uses.

It lives outside ``config/`` and ``pipeline/`` so both (and the CLI) can use it. Source names in
stats, logs, errors, reports, ``dsrun check`` output and every message the CLI prints go through it.

>>> redact("rtsp://admin:s3cret@10.0.0.7:554/live?token=abc&ch=1")
'rtsp://***:***@10.0.0.7:554/live?token=***&ch=1'
>>> redact_tree({"uri": "http://u:p@h/x", "n": [1, "rtsp://a:b@c/d"]})
{'uri': 'http://***:***@h/x', 'n': [1, 'rtsp://***:***@c/d']}
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s'\"]*@")
_SECRET_PARAM = re.compile(r"(?P<key>(?:password|passwd|pwd|pass|token|secret|key|auth|signature|sig)=)"
                           r"[^&\s'\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with every URL's user:password and secret query values replaced by ``***``."""
    text = _USERINFO.sub(lambda m: m["scheme"] + "***:***@", str(text))
    return _SECRET_PARAM.sub(lambda m: m["key"] + "***", text)


def redact_tree(value):
    """``value`` (JSON-like: dicts, lists, tuples, strings, numbers) with every string redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_tree(v) for v in value]
    return value
