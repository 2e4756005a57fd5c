"""PostgreSQL URLs: recognising them, and showing them without their password.

A URL may carry a password in its user info (``postgresql://user:secret@host/db``) or in a
``password`` query parameter; both are replaced by ``***`` wherever the store shows the URL (its
``path``, its ``repr``, every error). The masking errs on the side of hiding: a password holding
an unescaped ``@`` or ``/`` hides everything up to the last ``@`` before the query.
Credentials that never enter the URL (``PGPASSWORD``, the password file) are never shown either:
the store prints nothing but the masked URL and the server's own messages, and :func:`redact`
scrubs every secret it knows of from a message before it is raised.
"""

from __future__ import annotations

import os
import re
from typing import Final
from urllib.parse import unquote

__all__ = ["MASK", "is_postgres_url", "mask", "redact", "secrets"]

MASK: Final = "***"
SCHEMES: Final = ("postgresql://", "postgres://")
_QUERY_PASSWORD: Final = re.compile(r"(?i)((?:^|[?&])password=)([^&]*)")


def is_postgres_url(target: object) -> bool:
    """Whether ``target`` names a PostgreSQL store (``postgresql://`` or ``postgres://``)."""
    return isinstance(target, str) and target.lower().startswith(SCHEMES)


def _split(url: str) -> tuple[str, str, str, str]:
    """(scheme and ``://``, user info, the rest up to the query, the query with its ``?``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", "", url, ""
    rest, qmark, query = rest.partition("?")
    userinfo, at, hosts = rest.rpartition("@")
    return scheme + sep, userinfo + at, hosts, qmark + query


def mask(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    prefix, userinfo, hosts, query = _split(url)
    if ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":" + MASK + "@"
    query = _QUERY_PASSWORD.sub(lambda m: m.group(1) + MASK, query)
    return prefix + userinfo + hosts + query


def secrets(url: str) -> list[str]:
    """The passwords ``url`` and the environment hold, raw and percent-decoded."""
    _, userinfo, _, query = _split(url)
    found: list[str] = []
    if ":" in userinfo:
        found.append(userinfo[:-1].split(":", 1)[1])
    found.extend(m.group(2) for m in _QUERY_PASSWORD.finditer(query))
    env = os.environ.get("PGPASSWORD")
    if env:
        found.append(env)
    out: list[str] = []
    for secret in found:
        for form in (secret, unquote(secret)):
            if form and form not in out:
                out.append(form)
    return sorted(out, key=len, reverse=True)


def redact(text: str, url: str) -> str:
    """``text`` on one line, with every password of :func:`secrets` replaced by ``***``."""
    text = " ".join(text.split())
    for secret in secrets(url):
        text = text.replace(secret, MASK)
    return text
