# -*- test-case-name: test.unit.test_logs -*-
"""
Log output: a L{twisted.logger} observer writing either classic text lines or
one JSON object per line, filtered by level, with secrets redacted.

Every part of freno logs through C{Logger()} with a format string and stable
keyword fields (C{app=}, C{cluster=}, C{host=}, ...). The JSON form keeps
those fields as they are, so log pipelines can filter on them::

    {"time": "2026-11-26T12:31:29.512Z", "level": "warn",
     "namespace": "freno.publish.memcache._ServerLink",
     "message": "lost connection to memcached 127.0.0.1:11211: ...",
     "server": "127.0.0.1:11211", "error": "..."}

Keys: C{time} (UTC, ISO 8601, milliseconds), C{level} (C{debug}, C{info},
C{warn}, C{error}, C{critical}), C{namespace}, C{message} (the formatted
text), C{system} when Twisted set one, C{error} and C{traceback} when a
failure was logged, then every structured field of the event (a field whose
name clashes with one of these keys is written as C{<name>_field}).
Values that are not JSON are written as their C{repr}.

Secrets are redacted where they are logged, never by searching text:

    - a field whose name looks like a secret (C{password}, C{passwd},
      C{secret}, C{token}, C{credential}, C{api_key}, in any case and as part
      of a longer name) is written as C{"***"}, and so is every such key of a
      dict logged as a field (at any depth): this covers the configuration
      keys that hold secrets (C{Password}, C{RaftPassword},
      C{BackendMySQLPassword}, C{ProxySQLPassword}, tokens);
    - the configuration objects never show their secrets in their C{repr}
      (their password fields are C{repr=False}, see L{freno.config.model}),
      and DSNs are logged with the password masked at the source
      (L{freno.inventory.proxysql.display_dsn}).

Nothing else is rewritten: a password that is also a common word (say
C{freno}) does not turn every C{freno} in the logs into C{***}.

The structured audit log (namespace C{freno.audit}: every mutation, committed
or refused, see L{freno.http.control}) is written at C{info} whatever the
level, C{--quiet} included: an audit trail that a log level can silence is
no audit trail.

Levels (docs/decisions.md, D45): the default is C{warn}, one step chattier
than freno's C{ERROR}: a dropped memcached, a failing inventory source or a
failed command are warnings an operator wants without turning on
C{--verbose}. C{--verbose} gives C{info}, C{--debug} C{debug}, and
C{--quiet} C{error} (as in freno, C{--quiet} wins over the others); the
flags are read by L{freno.tap.Options.log_level}.

Under C{twistd}, which starts logging itself after C{makeService} returns,
L{offer_log_observer} wraps the top service so that twistd logs through our
observer instead of its default one (twistd's C{--logger} still wins).
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timezone
from typing import IO, Any, Dict

from twisted.application.service import IService, MultiService
from twisted.logger import (
    FileLogObserver,
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    formatEventAsClassicLogText,
)

#: What a redacted value becomes.
REDACTED = "***"

#: Field names that hold secrets.
SECRET_FIELD = re.compile(r"pass(word|wd)?|secret|token|credential|api_?key", re.IGNORECASE)

#: The keys our JSON lines always have.
RESERVED_KEYS = ("time", "level", "namespace", "message", "system", "error", "traceback")

#: Keys of L{twisted.python.log} events that are bookkeeping, not fields.
_LEGACY_KEYS = frozenset(
    ("message", "isError", "system", "time", "format", "why", "failure", "printed", "logLevel")
)

FORMATS = ("text", "json")

#: The namespace of the structured audit log, written whatever the level.
AUDIT_NAMESPACE = "freno.audit"

_LEVELS = tuple(LogLevel.iterconstants())


class Redactor:
    """
    Removes secrets from events: by field name, recursively in dicts.
    """

    def value(self, value: Any, depth: int = 0) -> Any:
        """
        C{value} with the secret-named keys of dicts redacted, recursively in
        lists, tuples and dicts.
        """
        if depth > 5 or isinstance(value, str):
            return value
        if isinstance(value, (list, tuple)):
            return type(value)(self.value(v, depth + 1) for v in value)
        if isinstance(value, dict):
            return {
                k: (REDACTED if isinstance(k, str) and SECRET_FIELD.search(k) else self.value(v, depth + 1))
                for k, v in value.items()
            }
        return value

    def event(self, event: Dict[str, Any]) -> Dict[str, Any]:
        """
        A copy of C{event} with its secret-named fields redacted (the
        C{log_*} bookkeeping is kept as is).
        """
        out = {}
        for key, value in event.items():
            if key.startswith("log_"):
                out[key] = value
            elif SECRET_FIELD.search(key):
                out[key] = REDACTED
            else:
                out[key] = self.value(value)
        return out


def _iso_time(event: Dict[str, Any]) -> str:
    when = event.get("log_time")
    if when is None:
        return ""
    text = datetime.fromtimestamp(when, timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _jsonable(value: Any, depth: int = 0) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if depth < 5 and isinstance(value, (list, tuple)):
        return [_jsonable(v, depth + 1) for v in value]
    if depth < 5 and isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value in _LEVELS:
        return value.name
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


def event_as_json(event: Dict[str, Any], redactor: Redactor) -> str:
    """
    One JSON line (with its newline) for C{event}, secrets redacted.
    """
    event = redactor.event(event)
    level = event.get("log_level")
    out: Dict[str, Any] = {
        "time": _iso_time(event),
        "level": level.name if level in _LEVELS else "info",
        "namespace": event.get("log_namespace", ""),
        "message": formatEvent(event),
    }
    system = event.get("log_system")
    if system not in (None, "-"):
        out["system"] = str(system)
    failure = event.get("log_failure")
    if failure is not None:
        try:
            out["error"] = failure.getErrorMessage()
            out["traceback"] = failure.getTraceback()
        except Exception:
            out["error"] = "<unformattable failure>"
    legacy = "isError" in event
    for key, value in event.items():
        if key.startswith("log_") or (legacy and key in _LEGACY_KEYS):
            continue
        name = key if key not in RESERVED_KEYS else key + "_field"
        out[name] = _jsonable(value)
    return json.dumps(out, ensure_ascii=False, default=repr) + "\n"


def event_as_text(event: Dict[str, Any], redactor: Redactor) -> str:
    """
    One classic Twisted text line for C{event}, secrets redacted.
    """
    return formatEventAsClassicLogText(redactor.event(event)) or ""


def make_log_observer(
    format: str = "text",
    level: LogLevel = LogLevel.warn,
    out: IO[str] = sys.stdout,
) -> ILogObserver:
    """
    An observer writing events at C{level} or above to C{out}.

    @param format: C{"text"} (Twisted's classic lines) or C{"json"} (one
        object per line, see the module docstring).
    @param level: the least severe level written.
    @param out: a text stream.

    @raise ValueError: an unknown C{format} or C{level}.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown log format {format!r}: use one of {', '.join(FORMATS)}")
    if level not in _LEVELS:
        raise ValueError(f"unknown log level {level!r}")
    redactor = Redactor()
    if format == "json":
        formatter = lambda event: event_as_json(event, redactor)  # noqa: E731
    else:
        formatter = lambda event: event_as_text(event, redactor)  # noqa: E731
    predicate = LogLevelFilterPredicate(defaultLogLevel=level)
    # The audit trail (freno.http.control) is written at any level.
    predicate.setLogLevelForNamespace(
        AUDIT_NAMESPACE, LogLevel.debug if level == LogLevel.debug else LogLevel.info
    )
    return FilteringLogObserver(FileLogObserver(out, formatter), [predicate])


class _ObserverOffer(MultiService):
    """
    A service wrapping the real top service; when twistd makes it a child of
    its C{Application}, it offers its observer as the application's
    L{ILogObserver}, which twistd's C{AppLogger} uses.
    """

    def __init__(self, observer: ILogObserver) -> None:
        super().__init__()
        self.observer = observer

    def setServiceParent(self, parent) -> None:
        """
        Offer the observer to a componentized parent (twistd's
        C{Application}) that has none yet, then attach as usual.
        """
        get = getattr(parent, "getComponent", None)
        if get is not None and get(ILogObserver, None) is None:
            parent.setComponent(ILogObserver, self.observer)
        super().setServiceParent(parent)


def offer_log_observer(top: IService, observer: ILogObserver) -> IService:
    """
    Wrap C{top} so that twistd logs through C{observer} (see the module
    docstring); C{top} becomes the only child of the returned service.
    """
    offer = _ObserverOffer(observer)
    top.setServiceParent(offer)
    return offer
