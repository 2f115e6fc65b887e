"""Is an RTSP server still there? One ``OPTIONS`` request (RFC 2326 §10.1), for the two questions FFmpeg
cannot answer on its own:

* a stream that ended: did the server end it (it sent RTCP BYE and still answers), or did the camera
  or server die (nothing answers any more)? FFmpeg reports both as end of file;
* a connection that opened but never gave a stream description: FFmpeg says "Invalid data found when
  processing input" after its timeout; the server that accepts and never answers is a network timeout.

:func:`rtsp_server_silent` returns ``None`` when the server answers with any RTSP status line (even
401), else what happened, for the error message:

>>> rtsp_server_silent("rtsp://127.0.0.1:1/cam", timeout=0.5)
'connection refused'
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

DEFAULT_PORT = 554  # RFC 2326 §3.2
PROBE_TIMEOUT_S = 3.0


def rtsp_server_silent(uri: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """``None`` if the RTSP server of ``uri`` answers an ``OPTIONS`` request within ``timeout``
    seconds; otherwise a short description (``connection refused``, ``no answer within 3 s``…)."""
    parts = urlsplit(uri)  # the last '@' ends the credentials, as in FFmpeg
    try:
        host, port = parts.hostname, parts.port or DEFAULT_PORT
    except ValueError:
        return "no valid host and port in the URI"
    if not host:
        return "no host in the URI"
    target = f"rtsp://{host}:{port}{parts.path or '/'}"
    request = f"OPTIONS {target} RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: dsrun\r\n\r\n".encode()
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(request)
            answer = conn.recv(64)
    except ConnectionRefusedError:
        return "connection refused"
    except (socket.timeout, TimeoutError):
        return f"no answer within {timeout:g} s"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    if answer.startswith(b"RTSP/"):
        return None
    return "the connection closed without an answer" if not answer else "an answer that is not RTSP"
