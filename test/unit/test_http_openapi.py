"""
Tests that C{docs/openapi.json} matches the REST API (L{freno.http.rest}):
every documented path and method is routed, every C{/api/v1} route is
documented, request bodies name exactly the fields the handlers take, and
real answers of the in-memory site validate against the documented response
schemas.
"""

from __future__ import annotations

import json
import os

from twisted.trial.unittest import SynchronousTestCase

from freno.consensus.interface import NotLeaderError
from freno.http.rest import POLICY_FIELDS, SKIP_FIELDS, THROTTLE_FIELDS, rest_routes
from freno.http.rest_leadership import leadership_routes
from freno.http.rest_members import MEMBER_FIELDS, member_routes
from test.unit.test_http_auth import OPS, TOKENS, ControlService
from test.unit.test_http_members import Members

DOC = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "docs", "openapi.json"
)
METHODS = ("get", "put", "post", "delete", "patch", "options", "head")


def load():
    with open(DOC, encoding="utf-8") as f:
        return json.load(f)


def resolve(doc, schema):
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = doc["components"]["schemas"][name]
    return schema


def validate(doc, schema, value, where="$"):
    """
    Check C{value} against the subset of OpenAPI schemas the document uses
    (type, nullable, enum, required, properties, additionalProperties,
    items, oneOf, minimum/maximum); raise C{AssertionError} naming the
    place.
    """
    schema = resolve(doc, schema)
    if value is None:
        assert schema.get("nullable"), f"{where}: null is not allowed"
        return
    if "oneOf" in schema:
        matches = 0
        for option in schema["oneOf"]:
            try:
                validate(doc, option, value, where)
                matches += 1
            except AssertionError:
                pass
        assert matches == 1, f"{where}: {value!r} matches {matches} of oneOf"
        return
    kind = schema.get("type")
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
    }
    if kind is not None:
        assert checks[kind](value), f"{where}: {value!r} is not {kind}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if "minimum" in schema and isinstance(value, (int, float)):
        assert value >= schema["minimum"], where
    if "maximum" in schema and isinstance(value, (int, float)):
        assert value <= schema["maximum"], where
    if kind == "object":
        properties = schema.get("properties", {})
        for name in schema.get("required", ()):
            assert name in value, f"{where}: {name} missing"
        for name, item in value.items():
            if name in properties:
                validate(doc, properties[name], item, f"{where}.{name}")
            else:
                assert schema.get("additionalProperties", True) is not False, f"{where}: {name} undocumented"
                assert properties == {} or schema.get("additionalProperties") is True, (
                    f"{where}: {name} is not documented"
                )
    if kind == "array":
        for i, item in enumerate(value):
            validate(doc, schema["items"], item, f"{where}[{i}]")


class DocumentTests(SynchronousTestCase):
    """
    The document against the routes.
    """

    def setUp(self):
        self.doc = load()

    def test_routes_match(self):
        """
        The documented C{/api/v1} operations are exactly the routed ones.
        """
        documented = sorted(
            (method.upper(), path)
            for path, item in self.doc["paths"].items()
            if path.startswith("/api/v1")
            for method in item
            if method in METHODS
        )
        self.assertEqual(
            documented,
            sorted(list(rest_routes()) + list(member_routes()) + list(leadership_routes())),
        )

    def test_references_resolve(self):
        """
        Every C{$ref} names a schema of the document; operation ids are
        unique; every operation documents a 200.
        """
        text = json.dumps(self.doc)
        for part in text.split('"$ref": "')[1:]:
            name = part.split('"', 1)[0].rsplit("/", 1)[1]
            self.assertIn(name, self.doc["components"]["schemas"])
        ids = [
            op["operationId"]
            for item in self.doc["paths"].values()
            for method, op in item.items()
            if method in METHODS
        ]
        self.assertEqual(len(ids), len(set(ids)))
        for item in self.doc["paths"].values():
            for method, op in item.items():
                if method in METHODS:
                    self.assertIn("200", op["responses"])

    def test_request_fields(self):
        """
        Each request body documents exactly the fields its handler takes.
        """
        schemas = self.doc["components"]["schemas"]
        for name, fields in (
            ("ThrottleRequest", THROTTLE_FIELDS),
            ("SkipRequest", SKIP_FIELDS),
            ("PolicyRequest", POLICY_FIELDS),
            ("MemberRequest", MEMBER_FIELDS),
        ):
            self.assertEqual(sorted(schemas[name]["properties"]), sorted(fields), name)
            self.assertIs(schemas[name]["additionalProperties"], False)


class AnswerTests(SynchronousTestCase):
    """
    Real answers validate against the documented schemas.
    """

    def response_schema(self, doc, method, path, status):
        item = doc["paths"][path]
        responses = item[method.lower()]["responses"]
        return responses[str(status)]["content"]["application/json"]["schema"]

    def test_answers(self):
        """
        Each route's answers, successes and errors, match the document.
        """
        doc = load()
        s = ControlService(self, TOKENS)
        calls = [
            ("GET", "/api/v1/status", "/api/v1/status", None, None, 200),
            ("POST", "/api/v1/throttles", "/api/v1/throttles", {"app": "a", "ttl": "1h", "reason": "r"}, OPS, 200),
            ("POST", "/api/v1/throttles", "/api/v1/throttles", {"app": "b", "store": "main"}, OPS, 200),
            ("POST", "/api/v1/throttles", "/api/v1/throttles", {"app": "a", "ttl": 0}, OPS, 400),
            ("POST", "/api/v1/throttles", "/api/v1/throttles", {"app": "a"}, None, 401),
            ("GET", "/api/v1/throttles", "/api/v1/throttles", None, None, 200),
            ("DELETE", "/api/v1/throttles/a", "/api/v1/throttles/{app}", None, OPS, 200),
            ("DELETE", "/api/v1/throttles/a", "/api/v1/throttles/{app}", None, OPS, 200),
            ("POST", "/api/v1/skips", "/api/v1/skips", {"host": "h1"}, OPS, 200),
            ("GET", "/api/v1/skips", "/api/v1/skips", None, None, 200),
            ("DELETE", "/api/v1/skips/h1", "/api/v1/skips/{host}", None, OPS, 200),
            ("PUT", "/api/v1/policies/a", "/api/v1/policies/{app}", {"threshold": 0.5, "exempt": True}, OPS, 200),
            ("PUT", "/api/v1/policies/a", "/api/v1/policies/{app}", {"exempt": 1}, OPS, 400),
            ("GET", "/api/v1/policies", "/api/v1/policies", None, None, 200),
            ("DELETE", "/api/v1/policies/a", "/api/v1/policies/{app}", None, OPS, 200),
            ("GET", "/api/v1/audit?since=1&limit=3", "/api/v1/audit", None, None, 200),
            ("GET", "/api/v1/audit?limit=0", "/api/v1/audit", None, None, 400),
            ("GET", "/api/v1/history", "/api/v1/history", None, None, 200),
            ("GET", "/api/v1/history?since=1796393338.5", "/api/v1/history", None, None, 200),
            ("GET", "/api/v1/history?since=-1", "/api/v1/history", None, None, 400),
        ]
        for method, url, path, body, token, status in calls:
            code, answer = s.json(method, url, body, token=token)
            self.assertEqual(code, status, (method, url, answer))
            validate(doc, self.response_schema(doc, method, path, status), answer, f"{method} {url}")
        s.consensus.reject_commands = NotLeaderError()
        code, answer = s.json("POST", "/api/v1/skips", {"host": "h2"}, token=OPS)
        validate(doc, self.response_schema(doc, "POST", "/api/v1/skips", 503), answer)

    def test_member_answers(self):
        """
        The membership routes' answers, successes and errors, match the
        document.
        """
        doc = load()
        s = Members(self)
        s.fake.learners.add("n4:10008")
        item = "/api/v1/members/{address}"
        calls = [
            ("GET", "/api/v1/members", "/api/v1/members", None, None, 200),
            ("POST", "/api/v1/members", "/api/v1/members", {"address": "n4:10008", "reason": "r"}, OPS, 200),
            ("POST", "/api/v1/members", "/api/v1/members", {"address": "x"}, OPS, 400),
            ("POST", "/api/v1/members", "/api/v1/members", {"address": "n5:1"}, None, 401),
            ("POST", "/api/v1/members", "/api/v1/members", {"address": "n5:1"}, OPS, 409),
            ("DELETE", "/api/v1/members/n2:10008", item, None, OPS, 200),
            ("DELETE", "/api/v1/members/n9:1", item, None, OPS, 404),
            ("DELETE", "/api/v1/members/n1:10008", item, None, OPS, 409),
        ]
        for method, url, path, body, token, status in calls:
            code, answer = s.json(method, url, body, token=token)
            self.assertEqual(code, status, (method, url, answer))
            validate(doc, self.response_schema(doc, method, path, status), answer, f"{method} {url}")
        s.fake.leader = "n3:10008"
        code, answer = s.json("DELETE", "/api/v1/members/n3:10008", token=OPS)
        self.assertEqual(code, 409)
        validate(doc, self.response_schema(doc, "DELETE", item, 409), answer)

    def test_validator(self):
        """
        The validator used above does refuse what the document forbids.
        """
        doc = load()
        skip = {"$ref": "#/components/schemas/Skip"}
        good = {"host": "h", "expires_at": "x", "expires_at_unix": 1.0, "reason": None, "actor": None, "audit_id": 1}
        validate(doc, skip, good)
        for bad in (dict(good, extra=1), dict(good, audit_id="1"), {"host": "h"}, dict(good, host=None)):
            self.assertRaises(AssertionError, validate, doc, skip, bad)
