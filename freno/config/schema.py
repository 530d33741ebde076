# -*- test-case-name: test.unit.test_config,test.unit.test_config_control,test.unit.test_hysteresis -*-
"""
The shape of freno's JSON configuration, and the first pass over a parsed
file: every key matched to a known key, every value type-checked.

L{read_document} turns one file's parsed JSON into a I{document}: nested
C{dict}s keyed by canonical key names (C{"ThrottleThreshold"}, whatever case
the file used), holding C{str}, C{int}, C{float}, C{bool}, C{tuple} of C{str}
and, for C{Stores.MySQL.Clusters}, a C{dict} of cluster name to document. A key
absent from the document was absent from the file (or C{null}, which freno's
Go decoder also treats as "leave the default").

Key matching is case-insensitive, like Go's C{encoding/json}; a key that
matches nothing is an error naming it and suggesting the closest known key.
A key given twice (in any case) is an error too, where Go silently kept the
last one.

L{merge_documents} applies freno's multi-file rule: objects merge key by key,
lists are replaced, and each cluster of C{Clusters} is replaced whole.
"""

from __future__ import annotations

import difflib
import json
import math
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import attr

from freno.config.errors import ConfigError, describe_value, format_path

Path = Tuple[str, ...]

_INT64_MAX = 2**63 - 1
_UINT32_MAX = 2**32 - 1


class JSONObject:
    """
    A JSON object as parsed, keeping every C{(key, value)} pair in order so
    that duplicate keys can be reported (see L{parse_json}).
    """

    def __init__(self, pairs: List[Tuple[str, Any]]) -> None:
        self.pairs = pairs

    def __repr__(self) -> str:
        return f"JSONObject({self.pairs!r})"


def parse_json(text: str) -> Any:
    """
    Parse JSON text, objects becoming L{JSONObject}.

    @raise json.JSONDecodeError: malformed JSON.
    @raise ValueError: an integer literal too long to convert.
    @raise RecursionError: absurdly deep nesting.
    """
    return json.loads(text, object_pairs_hook=JSONObject)


@attr.s(frozen=True, auto_attribs=True)
class Field:
    """
    One key's expected value.

    @ivar kind: C{"str"}, C{"int"}, C{"number"} (int or float), C{"bool"},
        C{"strlist"}, C{"object"} (known keys, L{fields}) or C{"map"} (any
        name to an L{item} object).
    @ivar minimum: the smallest allowed number (inclusive), if any.
    @ivar maximum: the largest allowed number (inclusive), if any.
    @ivar positive: numbers must be strictly greater than 0.
    @ivar secret: the value is never shown in messages.
    """

    kind: str
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    positive: bool = False
    secret: bool = False
    fields: Optional[Mapping[str, "Field"]] = None
    item: Optional["Field"] = None
    item_noun: str = "cluster"

    def expected(self) -> str:
        """
        Describe the expected value: C{"a number >= 0"}, C{"an integer in
        1..65535"}.
        """
        if self.kind in ("int", "number"):
            noun = "an integer" if self.kind == "int" else "a number"
            if self.positive:
                return f"{noun} > 0"
            if self.minimum is not None and self.maximum is not None and self.maximum < 10**9:
                return f"{noun} in {self.minimum}..{self.maximum}"
            if self.minimum is not None:
                return f"{noun} >= {self.minimum}"
            if self.maximum is not None:
                return f"{noun} <= {self.maximum}"
            return noun
        return {
            "str": "a string",
            "bool": "true or false",
            "strlist": "a list of strings",
            "object": "an object",
            "map": "an object",
        }[self.kind]


def _str(secret: bool = False) -> Field:
    return Field("str", secret=secret)


def _int(minimum: int = 0, maximum: int = _INT64_MAX, positive: bool = False) -> Field:
    return Field("int", minimum=minimum, maximum=maximum, positive=positive)


def _port(minimum: int = 0) -> Field:
    return Field("int", minimum=minimum, maximum=65535)


def _number(positive: bool = False) -> Field:
    return Field("number", minimum=0, positive=positive)


_BOOL = Field("bool")
_STRLIST = Field("strlist")


def _object(**fields: Field) -> Field:
    return Field("object", fields=fields)


#: C{HAProxySettings}.
HAPROXY = _object(Host=_str(), Port=_port(), Addresses=_str(), PoolName=_str())
#: C{ProxySQLSettings}.
PROXYSQL = _object(
    Addresses=_STRLIST,
    User=_str(),
    Password=_str(secret=True),
    HostgroupID=_int(maximum=_UINT32_MAX),
    IgnoreServerTTLSecs=_int(maximum=_UINT32_MAX),
)
#: C{VitessSettings}.
VITESS = _object(
    API=_str(), Cells=_STRLIST, Keyspace=_str(), Shard=_str(), TimeoutSecs=_int(maximum=_UINT32_MAX)
)
#: C{StaticHostsSettings}.
STATIC = _object(Hosts=_STRLIST)

#: Keys a cluster inherits from the store when it does not give them.
INHERITED = dict(
    User=_str(),
    Password=_str(secret=True),
    MetricQuery=_str(),
    CacheMillis=_int(),
    ThrottleThreshold=_number(),
    ResumeThreshold=_number(),
    Port=_port(),
    IgnoreHostsCount=_int(),
    IgnoreHostsThreshold=_number(),
    HttpCheckPort=Field("int", maximum=65535),
    HttpCheckPath=_str(),
    IgnoreHosts=_STRLIST,
    SSLMode=_str(),
    SSLCA=_str(),
    SSLCert=_str(),
    SSLKey=_str(),
    ServerPublicKeyPath=_str(),
)

#: C{Stores.MySQL.Clusters.<name>}.
CLUSTER = _object(
    **INHERITED,
    HAProxySettings=HAPROXY,
    ProxySQLSettings=PROXYSQL,
    VitessSettings=VITESS,
    StaticHostsSettings=STATIC,
)

#: C{Stores.MySQL}, freno's keys and our probe extensions.
MYSQL_STORE = _object(
    **INHERITED,
    IgnoreDialTcpErrors=_BOOL,
    ProxySQLAddresses=_STRLIST,
    ProxySQLUser=_str(),
    ProxySQLPassword=_str(secret=True),
    VitessCells=_STRLIST,
    Collation=_str(),
    Clusters=Field("map", item=CLUSTER),
    ProbeIntervalMillis=_int(positive=True),
    ProbeTimeoutMillis=_int(positive=True),
    MetricFreshnessMillis=_int(positive=True),
    ProbeThreadPoolSize=_int(positive=True, maximum=10000),
    ProbeDriver=_str(),
    InventoryRefreshSeconds=_number(positive=True),
    HttpCheckIntervalSeconds=_number(positive=True),
)

#: C{ControlTokens.<name>}: a bearer token and its role (extension).
CONTROL_TOKEN = _object(Token=_str(secret=True), Role=_str())

#: The whole file.
TOP = _object(
    ListenPort=_port(),
    ListenBacklog=_int(maximum=65535),
    CheckFastPath=_BOOL,
    DataCenter=_str(),
    Environment=_str(),
    Domain=_str(),
    ShareDomain=_str(),
    RaftBind=_str(),
    RaftDataDir=_str(),
    DefaultRaftPort=_port(),
    RaftNodes=_STRLIST,
    RaftPassword=_str(secret=True),
    RaftJoin=_BOOL,
    RaftHostsFile=_str(),
    RaftListenAddress=_str(),
    BackendMySQLHost=_str(),
    BackendMySQLPort=_port(minimum=1),
    BackendMySQLSchema=_str(),
    BackendMySQLUser=_str(),
    BackendMySQLPassword=_str(secret=True),
    BackendMySQLCollation=_str(),
    MemcacheServers=_STRLIST,
    MemcachePath=_str(),
    EnableProfiling=_BOOL,
    LogFormat=_str(),
    Stores=_object(MySQL=MYSQL_STORE),
    ControlTokens=Field("map", item=CONTROL_TOKEN, item_noun="token"),
    AllowGetMutations=_BOOL,
    RestrictAuditLog=_BOOL,
    AuditLogSize=_int(minimum=1, maximum=1_000_000),
    DashboardURLs=Field("map", item=_str(), item_noun="member"),
)


def read_document(value: Any, file: str) -> Dict[str, Any]:
    """
    Check one file's parsed JSON against L{TOP}.

    @param value: the result of L{parse_json}.
    @param file: the file name, for errors.
    @return: the document (see the module docstring).
    @raise ConfigError: an unknown or repeated key, or a value of the wrong
        type or out of range.
    """
    if not isinstance(value, JSONObject):
        raise ConfigError(file, "", f"expected a JSON object at the top level, got {describe_value(value)}")
    return _read(value, TOP, (), file)


def _fail(file: str, path: Path, problem: str) -> ConfigError:
    return ConfigError(file, format_path(path), problem)


def _read(value: Any, field: Field, path: Path, file: str) -> Any:
    kind = field.kind
    if kind == "object":
        return _read_object(value, field, path, file)
    if kind == "map":
        return _read_map(value, field, path, file)
    if kind == "strlist":
        if not isinstance(value, list):
            raise _fail(file, path, f"expected a list of strings, got {describe_value(value, field.secret)}")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise _fail(file, path + (f"[{i}]",), f"expected a string, got {describe_value(item)}")
        return tuple(value)
    if kind == "str":
        if not isinstance(value, str):
            raise _fail(file, path, f"expected a string, got {describe_value(value, field.secret)}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise _fail(file, path, f"expected true or false, got {describe_value(value)}")
        return value
    return _read_number(value, field, path, file)


def _read_number(value: Any, field: Field, path: Path, file: str) -> Any:
    bad = f"expected {field.expected()}, got {describe_value(value)}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(file, path, bad)
    if field.kind == "int" and not isinstance(value, int):
        raise _fail(file, path, bad)
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(file, path, f"expected a finite number, got {describe_value(value)}")
    if field.positive and not value > 0:
        raise _fail(file, path, bad)
    if field.minimum is not None and value < field.minimum:
        raise _fail(file, path, bad)
    if field.maximum is not None and value > field.maximum:
        raise _fail(file, path, bad)
    return float(value) if field.kind == "number" else value


def _read_object(value: Any, field: Field, path: Path, file: str) -> Dict[str, Any]:
    if not isinstance(value, JSONObject):
        raise _fail(file, path, f"expected an object, got {describe_value(value)}")
    fields = field.fields or {}
    by_folded = {name.casefold(): name for name in fields}
    seen: Dict[str, str] = {}
    out: Dict[str, Any] = {}
    for key, item in value.pairs:
        name = by_folded.get(key.casefold())
        if name is None:
            raise _fail(file, path + (key,), unknown_key_problem(key, list(fields)))
        if name in seen:
            raise _fail(file, path + (name,), f"key given twice (as {json.dumps(seen[name])} and {json.dumps(key)})")
        seen[name] = key
        if item is not None:
            out[name] = _read(item, fields[name], path + (name,), file)
    return out


def _read_map(value: Any, field: Field, path: Path, file: str) -> Dict[str, Any]:
    if not isinstance(value, JSONObject):
        raise _fail(file, path, f"expected an object of name to settings, got {describe_value(value)}")
    out: Dict[str, Any] = {}
    for name, item in value.pairs:
        where = path + (name,)
        noun = field.item_noun
        if not name.strip() or "/" in name or name != name.strip():
            raise _fail(file, where, f"a {noun} name must be non-empty, without '/' or surrounding spaces")
        if name in out:
            raise _fail(file, where, f"{noun} given twice")
        assert field.item is not None
        out[name] = _read(item, field.item, where, file)
    return out


def unknown_key_problem(key: str, known: List[str]) -> str:
    """
    The problem text for an unknown key, suggesting the closest known key
    (by C{difflib}, ignoring case) when one is close enough.
    """
    folded = {name.casefold(): name for name in known}
    close = difflib.get_close_matches(key.casefold(), list(folded), n=1, cutoff=0.75)
    if close:
        return f"unknown key (did you mean {json.dumps(folded[close[0]])}?)"
    return "unknown key"


def merge_documents(
    target: Dict[str, Any],
    source: Mapping[str, Any],
    file: str,
    origins: Dict[Path, str],
    field: Field = TOP,
    path: Path = (),
) -> None:
    """
    Merge C{source} (read from C{file}) onto C{target}, in place: objects
    merge key by key, everything else (lists included) is replaced, and each
    cluster is replaced whole. C{origins} records, for every key path set,
    the file it came from.
    """
    fields = field.fields or {}
    for key, value in source.items():
        sub = fields[key]
        where = path + (key,)
        origins[where] = file
        if sub.kind == "object":
            merge_documents(target.setdefault(key, {}), value, file, origins, sub, where)
        elif sub.kind == "map":
            clusters = target.setdefault(key, {})
            for name, cluster in value.items():
                _forget(origins, where + (name,))
                clusters[name] = cluster
                origins[where + (name,)] = file
        else:
            target[key] = value


def _forget(origins: Dict[Path, str], prefix: Path) -> None:
    for known in [p for p in origins if p[: len(prefix)] == prefix]:
        del origins[known]


def origin_finder(origins: Mapping[Path, str], default: str) -> Callable[[Path], str]:
    """
    @return: a function giving the file a key path came from: the origin of
        its longest recorded prefix (list indices ignored), else C{default}.
    """

    def find(path: Path) -> str:
        keys = tuple(p for p in path if not p.startswith("["))
        for n in range(len(keys), 0, -1):
            if keys[:n] in origins:
                return origins[keys[:n]]
        return default

    return find
