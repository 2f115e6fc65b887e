"""Credentials never appear in dsrun's output: the one redaction every output path goes through.

It lives outside ``config/`` and ``pipeline/`` so both (and the CLI) can use it. Source names in
stats, logs, errors, reports, ``dsrun check`` output (text and ``--json``), ``--debug`` tracebacks and
the dashboard's last-error line all pass through :func:`redact`.

URLs are read the way FFmpeg reads them (``av_url_split``, libavformat/utils.c): the authority ends at
the first ``/``, ``?`` or ``#`` after ``scheme://``, and the credentials end at the *last* ``@`` before
it — so a password may contain ``@``, ``:``, quotes, spaces and ``%`` (percent-encoded or not):

>>> redact("rtsp://admin:s3cret@10.0.0.7:554/live?token=abc&ch=1")
'rtsp://***:***@10.0.0.7:554/live?token=***&ch=1'
>>> redact('source 0 (rtsp://admin:p@ss "w:o%rd@cam.local/x): connection refused')
'source 0 (rtsp://***:***@cam.local/x): connection refused'
>>> redact_tree({"uri": "http://u:p@h/x", "n": [1, "rtsp://a:b@c/d"]})
{'uri': 'http://***:***@h/x', 'n': [1, 'rtsp://***:***@c/d']}

Every password seen in a URL is remembered for the life of the process, so the same secret is also
hidden where it appears without its URL — decoded (``%40`` → ``@``), quoted by ``repr`` or JSON — as
FFmpeg and Python error messages sometimes print it:

>>> redact("auth failed for 'p@ss \\"w:o%rd'")
"auth failed for '***'"
"""

from __future__ import annotations

import json
import re
import threading
from urllib.parse import quote, unquote

_SCHEME = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://")
# what may follow the '@' that ends the credentials: a host (name, IPv4, [IPv6]) and an optional port
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.~-]+)(?::\d*)?(?=[/?#\s'\"`),;>\]]|$)")
# a secret's name anywhere; the generic names (key, auth, sig) only as a URL query parameter, so that
# prose such as "is not a key=value pair" stays readable
_SECRET_PARAM = re.compile(r"(?P<key>(?:\b(?:password|passwd|pwd|pass|token|secret)"
                           r"|(?<=[?&;])(?:key|auth|signature|sig))=)[^&\s'\"]*", re.IGNORECASE)
_MIN_SECRET = 4  # shorter passwords are not hunted in free text (every '123' in a message would go)

_known: set[str] = set()  # every spelling of every password met so far, longest first when used
_known_lock = threading.Lock()


def _credentials_end(text: str, start: int) -> int | None:
    """Index of the '@' ending the credentials of the URL whose authority starts at ``start``."""
    end = start
    while end < len(text) and text[end] not in "/?#\n\r":
        end += 1
    at = text.rfind("@", start, end)
    while at >= start:  # the last '@' followed by something that is a host
        if _HOST.match(text, at + 1):
            return at
        at = text.rfind("@", start, at)
    return None


def _remember(userinfo: str) -> None:
    """Keep the password (and its decoded, encoded and quoted spellings) for later scrubbing."""
    password = userinfo.split(":", 1)[1] if ":" in userinfo else userinfo  # a token as user name
    spellings = set()
    for form in {password, unquote(password)}:
        spellings |= {form, quote(form, safe=""), repr(form)[1:-1], json.dumps(form)[1:-1]}
    spellings = {s for s in spellings if len(s) >= _MIN_SECRET and s != "***"}
    if spellings - _known:
        with _known_lock:
            _known.update(spellings)


def remember_secret(secret: str) -> None:
    """Hide ``secret`` (a password read from a config file or the environment, not from a URL) in every
    later output, as passwords met in URLs are."""
    _remember(":" + secret)


def _redact_urls(text: str) -> str:
    out, pos = [], 0
    for m in _SCHEME.finditer(text):
        if m.start() < pos:
            continue  # inside credentials already replaced
        at = _credentials_end(text, m.end())
        if at is None:
            continue
        _remember(text[m.end():at])
        out += [text[pos:m.end()], "***:***"]
        pos = at
    return "".join(out) + text[pos:]


def redact(text: str) -> str:
    """``text`` with every URL's user:password, every remembered password and secret query values
    (``token=``, ``password=``…) replaced by ``***``."""
    text = _redact_urls(str(text))
    if _known:
        with _known_lock:
            known = sorted(_known, key=len, reverse=True)
        for secret in known:
            if secret in text:
                text = text.replace(secret, "***")
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
