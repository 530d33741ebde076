"""
Property tests for L{freno.config.loader.load_config}: whatever JSON lands
under whatever key, loading returns a L{Config} or raises L{ConfigError}
with a one-line message that never shows a password; never another
exception.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any, Dict, Iterator, List, Tuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from freno.config.loader import ConfigError, Overrides, load_config
from freno.config.model import Config
from freno.config.schema import TOP, Field
from test.unit.test_config_helpers import base, with_store

SECRET = "S3CR3T"


def schema_paths(field: Field, prefix: Tuple[str, ...] = ()) -> Iterator[Tuple[Tuple[str, ...], Field]]:
    """
    Every key path of the schema, clusters named C{main} and C{other}.
    """
    for name, sub in (field.fields or {}).items():
        path = prefix + (name,)
        yield path, sub
        if sub.kind == "object":
            yield from schema_paths(sub, path)
        elif sub.kind == "map":
            for cluster in ("main", "other"):
                yield path + (cluster,), sub.item
                yield from schema_paths(sub.item, path + (cluster,))


PATHS: List[Tuple[Tuple[str, ...], Field]] = list(schema_paths(TOP))

interesting_text = st.sampled_from(
    [
        "",
        " ",
        "h",
        "h:1",
        "h:",
        ":1",
        "h:99999",
        "a,b",
        "${X}",
        "${UNSET}",
        "${}",
        "pre-${X}-post",
        "http://h:1/stats",
        "https://",
        "localhost:abcd:1234",
        "10.0.0.1",
        "127.0.0.1:10008",
        "text",
        "json",
        "pymysql",
        "MySQLdb",
        "/tmp/freno",
    ]
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 65535, 65536, 3306]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    interesting_text,
)

json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), interesting_text), children, max_size=4),
    ),
    max_leaves=12,
)


def typed_values(field: Field):
    """
    Values of the right JSON type for C{field} (still often invalid).
    """
    return {
        "str": st.one_of(interesting_text, st.text(max_size=12)),
        "int": st.one_of(st.integers(-3, 70000), st.sampled_from([0, 1, 50, 1000, 3306])),
        "number": st.one_of(st.floats(min_value=0, max_value=1e6), st.integers(0, 100)),
        "bool": st.booleans(),
        "strlist": st.lists(interesting_text, max_size=4),
        "object": st.just({}),
        "map": st.just({}),
    }[field.kind]


@st.composite
def mutation(draw) -> Tuple[Tuple[str, ...], Any]:
    """
    A key path (known, with its last key's case changed, or an unknown last
    key) and the value to put there: usually of the right type, sometimes
    any JSON; password keys sometimes get a marked secret.
    """
    path, field = draw(st.sampled_from(PATHS))
    roll = draw(st.integers(0, 9))
    if roll == 0:
        path = path[:-1] + (draw(st.text(min_size=1, max_size=10)),)
    elif roll == 1 and path[-1] not in ("main", "other"):
        path = path[:-1] + (draw(st.sampled_from([path[-1].lower(), path[-1].upper()])),)
    if field.secret and draw(st.booleans()):
        value: Any = draw(st.sampled_from([SECRET, SECRET + "-pw", SECRET + ":1", [SECRET], {"a": SECRET}, 7]))
    elif draw(st.integers(0, 2)):
        value = draw(typed_values(field))
    else:
        value = draw(json_values)
    return path, value


def set_at(doc: Dict[str, Any], path: Tuple[str, ...], value: Any) -> None:
    """
    Put C{value} at C{path}, making intermediate objects as needed.
    """
    node = doc
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


def starting_points() -> List[Dict[str, Any]]:
    return [
        base(),
        with_store(base(RaftBind="a:1", RaftNodes=["a:1", "b:1"], RaftPassword="x"), Password="p"),
        {"RaftDataDir": "/tmp/x"},
    ]


class LoadNeverCrashesTests(SynchronousTestCase):
    """
    Random values under random keys: a L{Config} or a L{ConfigError}.
    """

    def setUp(self):
        self.path = self.mktemp()

    def check(self, text: str, environ: Dict[str, str], overrides: Overrides = None) -> None:
        with open(self.path, "w", encoding="utf-8", errors="surrogatepass") as f:
            f.write(text)
        try:
            result = load_config(self.path, environ, overrides)
        except ConfigError as e:
            message = str(e)
            self.assertNotIn("\n", message)
            self.assertNotIn(SECRET, message)
            self.assertNotIn(SECRET, repr(e.problem))
        else:
            self.assertIsInstance(result, Config)
            self.assertNotIn(SECRET, repr(result))

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        start=st.sampled_from(range(3)),
        mutations=st.lists(mutation(), min_size=1, max_size=4),
        environ=st.dictionaries(st.sampled_from(["X", "Y", "UNSET2"]), st.text(max_size=6), max_size=3),
    )
    def test_mutated_documents(self, start, mutations, environ):
        """
        Mutating a valid document anywhere never raises anything but
        L{ConfigError}.
        """
        doc = copy.deepcopy(starting_points()[start])
        for path, value in mutations:
            set_at(doc, path, value)
        self.check(json.dumps(doc, allow_nan=True), environ)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        http_port=st.one_of(st.none(), st.integers(-5, 70000)),
        raft_bind=st.one_of(st.none(), interesting_text),
        raft_datadir=st.one_of(st.none(), interesting_text),
        raft_nodes=st.one_of(st.none(), interesting_text, st.text(max_size=12)),
    )
    def test_overrides(self, http_port, raft_bind, raft_datadir, raft_nodes):
        """
        Any command-line values give a L{Config} or a L{ConfigError}.
        """
        overrides = Overrides(http_port=http_port, raft_bind=raft_bind, raft_datadir=raft_datadir,
                              raft_nodes=raft_nodes)
        self.check(json.dumps(base()), {}, overrides)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(text=st.one_of(st.text(max_size=60), st.builds(json.dumps, json_values)))
    def test_arbitrary_text(self, text):
        """
        Arbitrary text, JSON or not, never raises anything but
        L{ConfigError}.
        """
        self.check(text, {})

    def test_path_count(self):
        """
        The schema walk found the keys the mutations use.
        """
        names = {p[-1] for p, _ in PATHS}
        self.assertIn("ThrottleThreshold", names)
        self.assertIn("Addresses", names)
        self.assertTrue(os.path.isabs(os.path.abspath(self.path)))
