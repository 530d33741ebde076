"""
Tests that keep the documentation honest, cheaply: the links in C{docs/}
(and the READMEs) resolve, every decision number the code cites exists in
C{docs/decisions.md}, no module cites freno's internal behaviour reference,
and the route table of C{docs/compatibility.md} is exactly what the site
serves.
"""

from __future__ import annotations

import os
import re
from typing import Dict, Iterator, List, Set, Tuple

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

import freno
from freno.config.model import ClusterSettings, Config, MySQLStoreSettings
from freno.config.schema import TOP, Field
from freno.consensus.local import LocalConsensus
from freno.http.api import HELP, FrenoAPI
from freno.http.responses import NOT_FOUND_BODY
from freno.http.site import build_site
from freno.probe.metrics import AggregatedMetrics
from freno.metrics.prometheus import MetricsResource
from freno.metrics.registry import Registry

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = os.path.join(ROOT, "docs")
PACKAGE = os.path.dirname(os.path.abspath(freno.__file__))

_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)
_DECISION_HEADING = re.compile(r"^### D(\d+)\. ", re.MULTILINE)
_DECISION_CITED = re.compile(r"\bD(\d+)\b")
_PARAMETER = re.compile(r"<[^>]*>|:\w+")

#: Values for the route parameters of the compatibility table.
SAMPLE_PARAMETERS = {
    "app": "docs-test",
    "storeType": "mysql",
    "storeName": "main",
    "threshold": "1",
    "ratio": "0.5",
    "ttlMinutes": "5",
    "lastMinutes": "5",
    "hostName": "db1",
}


def read(path: str) -> str:
    """
    A file's text.
    """
    with open(path, encoding="utf-8") as f:
        return f.read()


def markdown_files() -> List[str]:
    """
    Every C{docs/*.md}, and the READMEs that link into them.
    """
    docs = sorted(
        os.path.join(DOCS, name) for name in os.listdir(DOCS) if name.endswith(".md")
    )
    return docs + [os.path.join(ROOT, "README.md"), os.path.join(ROOT, "conf", "README.md")]


def prose(text: str) -> str:
    """
    Markdown without fenced code blocks and code spans (which may hold
    brackets that are no links).
    """
    return _CODE_SPAN.sub("", _FENCE.sub("", text))


def slug(heading: str) -> str:
    """
    The anchor GitHub gives a heading: lower case, punctuation (backticks
    included) removed, spaces turned into hyphens.
    """
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: str) -> Set[str]:
    """
    The anchors of a Markdown file's headings (repeated ones numbered as
    GitHub numbers them).
    """
    seen: Dict[str, int] = {}
    found = set()
    for heading in _HEADING.findall(_FENCE.sub("", read(path))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: str) -> Iterator[str]:
    """
    The targets of a Markdown file's links that are not URLs.
    """
    for target in _LINK.findall(prose(read(path))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue
        yield target


def python_sources(top: str) -> Iterator[str]:
    """
    Every C{.py} file under C{top}.
    """
    for directory, _, names in os.walk(top):
        for name in sorted(names):
            if name.endswith(".py"):
                yield os.path.join(directory, name)


def decision_numbers() -> List[int]:
    """
    The decision numbers of C{docs/decisions.md}, in order.
    """
    return [int(n) for n in _DECISION_HEADING.findall(read(os.path.join(DOCS, "decisions.md")))]


def documented_routes() -> List[Tuple[str, Tuple[str, ...]]]:
    """
    The route table of C{docs/compatibility.md}: C{(pattern, methods)} for
    each path of each row.
    """
    text = read(os.path.join(DOCS, "compatibility.md"))
    section = text.split("\n## Routes\n", 1)[1].split("\n## ", 1)[0]
    routes = []
    for line in section.splitlines():
        if not line.startswith("| `/"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        methods = tuple(m.strip() for m in cells[1].split(","))
        for pattern in re.findall(r"`(/[^`]*)`", cells[0]):
            routes.append((pattern, methods))
    return routes


def shape(pattern: str) -> str:
    """
    A route pattern with its parameters anonymised, so that freno's
    C{/skip-host/:hostName} and Klein's C{/skip-host/<seg:host>} compare
    equal.
    """
    return _PARAMETER.sub(":", pattern)


def concrete(pattern: str) -> str:
    """
    A request path for a route pattern.
    """
    return re.sub(r":(\w+)", lambda m: SAMPLE_PARAMETERS.get(m.group(1), "x"), pattern)


def schema_keys(field: Field, prefix: str = "") -> Iterator[str]:
    """
    Every configuration key the schema accepts (cluster keys once).
    """
    for name, sub in (field.fields or {}).items():
        yield name
        if sub.kind == "object":
            yield from schema_keys(sub)
        elif sub.kind == "map" and sub.item is not None:
            yield from schema_keys(sub.item)


class LinkTests(SynchronousTestCase):
    """
    Relative links in the documentation resolve.
    """

    def test_links_resolve(self):
        """
        Every relative link of C{docs/*.md}, C{README.md} and
        C{conf/README.md} names an existing file, and an anchor into a
        Markdown file names one of its headings.
        """
        broken = []
        for path in markdown_files():
            here = os.path.dirname(path)
            for target in relative_links(path):
                file_part, _, anchor = target.partition("#")
                resolved = os.path.normpath(os.path.join(here, file_part)) if file_part else path
                where = f"{os.path.relpath(path, ROOT)}: {target}"
                if not os.path.exists(resolved):
                    broken.append(f"{where} (no such file)")
                elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
                    broken.append(f"{where} (no such heading)")
        self.assertEqual(broken, [])

    def test_slug(self):
        """
        Headings become GitHub's anchors.
        """
        self.assertEqual(slug("D33. `--force-leadership`"), "d33---force-leadership")
        self.assertEqual(slug("`${NAME}` environment expansion"), "name-environment-expansion")
        self.assertEqual(slug("/debug/vars"), "debugvars")


class DecisionTests(SynchronousTestCase):
    """
    Decision numbers are cited only where they exist.
    """

    def test_numbered_in_order(self):
        """
        C{docs/decisions.md} numbers its decisions from D1 in increasing
        order without repeats. (Parallel work is given ranges of numbers, so
        a range may be empty until that work lands.)
        """
        numbers = decision_numbers()
        self.assertEqual(numbers[:1], [1])
        self.assertEqual(numbers, sorted(set(numbers)))

    def test_cited_decisions_exist(self):
        """
        Every C{D<n>} in the code under C{freno/} and in the documentation
        names a decision of C{docs/decisions.md}.
        """
        known = set(decision_numbers())
        missing = []
        for path in list(python_sources(PACKAGE)) + markdown_files():
            for number in _DECISION_CITED.findall(read(path)):
                if int(number) not in known:
                    missing.append(f"{os.path.relpath(path, ROOT)}: D{number}")
        self.assertEqual(missing, [])

    def test_no_internal_reference(self):
        """
        No module under C{freno/} cites the behaviour reference that is not
        part of the repository (by name or by its section signs).
        """
        citing = [
            os.path.relpath(path, ROOT)
            for path in python_sources(PACKAGE)
            if "freno-behaviour" in read(path) or "\N{SECTION SIGN}" in read(path)
        ]
        self.assertEqual(citing, [])


class RouteTableTests(SynchronousTestCase):
    """
    The route table of C{docs/compatibility.md} is what the site serves.
    """

    def setUp(self):
        clock = Clock()
        clock.advance(1_700_000_000)
        stats = Registry()
        config = Config(
            mysql=MySQLStoreSettings(
                clusters={"main": ClusterSettings(name="main", throttle_threshold=1.0)}
            )
        )
        site = build_site(
            clock=clock,
            config=config,
            consensus=LocalConsensus(clock),
            metrics=AggregatedMetrics(clock, {"main": 1.0}, 5.0),
            registry=stats,
            hostname="node1",
            metrics_resource=MetricsResource(stats),
        )
        self.treq = StubTreq(site.resource)
        self.routes = documented_routes()

    def request(self, method: str, path: str):
        """
        C{(response, body)} of one request.
        """
        d = self.treq.request(method, "http://freno" + path, allow_redirects=False)
        response = self.successResultOf(d)
        return response, self.successResultOf(response.content())

    def test_table_found(self):
        """
        The table is there and lists routes.
        """
        self.assertGreater(len(self.routes), 30)

    def test_documented_routes_are_served(self):
        """
        Every documented route answers every documented method (not Go's
        404, not 405, no redirect), refuses the other one of GET and HEAD
        with 405, and refuses POST with 405 and an C{Allow} header listing
        exactly the documented methods.
        """
        problems = []
        for pattern, methods in self.routes:
            path = concrete(pattern)
            for method in ("GET", "HEAD"):
                response, body = self.request(method, path)
                code = response.code
                if method in methods:
                    if code in (301, 307, 405) or (code == 404 and body == NOT_FOUND_BODY):
                        problems.append(f"{method} {path}: {code}")
                elif code != 405:
                    problems.append(f"{method} {path}: {code}, documented as not allowed")
            response, _ = self.request("POST", path)
            allow = response.headers.getRawHeaders(b"allow", [b""])[0].decode("ascii")
            served = {m.strip() for m in allow.split(",") if m.strip()} - {"OPTIONS"}
            if response.code != 405 or served != set(methods):
                problems.append(f"POST {path}: {response.code}, Allow {allow!r}, documented {methods}")
        self.assertEqual(problems, [])

    def test_served_routes_are_documented(self):
        """
        Every route of the Klein app and every route freno's C{/help} lists
        (the check routes included) is in the table.
        """
        documented = {shape(pattern) for pattern, _ in self.routes}
        served = {shape(rule.rule) for rule in FrenoAPI.app.url_map.iter_rules()}
        served |= {shape(pattern) for pattern in HELP}
        self.assertEqual(sorted(served - documented), [])


class ConfigurationKeyTests(SynchronousTestCase):
    """
    Every configuration key is in the compatibility contract.
    """

    def test_every_key_documented(self):
        """
        Each key the configuration schema accepts is named (in backticks, or
        as part of a dotted name such as C{Stores.MySQL}) in
        C{docs/compatibility.md}.
        """
        text = read(os.path.join(DOCS, "compatibility.md"))
        named = set()
        for span in re.findall(r"`([^`]*)`", text):
            named.update(span.split("."))
        missing = sorted(set(schema_keys(TOP)) - named)
        self.assertEqual(missing, [])
