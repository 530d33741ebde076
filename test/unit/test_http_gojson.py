"""
Tests for L{freno.http.gojson}: Go's JSON formatting.
"""

from __future__ import annotations

from hypothesis import given, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from freno.http.gojson import GoTime, Struct, go_float, go_json, go_time
import json


class GoFloatTests(SynchronousTestCase):
    """
    L{go_float} writes float64 as Go does.
    """

    def test_examples(self):
        """
        Integral floats have no decimal point; exponents only outside
        [1e-6, 1e21).
        """
        cases = [
            (1.0, "1"), (0.0, "0"), (-0.0, "-0"), (0.5, "0.5"),
            (2.5e-5, "0.000025"), (1e-6, "0.000001"), (1e-7, "1e-07"),
            (1e20, "100000000000000000000"), (1e21, "1e+21"),
            (123456.789, "123456.789"), (-3.0, "-3"), (1.5e300, "1.5e+300"),
            (1e16, "10000000000000000"),
        ]
        for value, text in cases:
            self.assertEqual(go_float(value), text, value)

    @given(st.floats(allow_nan=False, allow_infinity=False))
    def test_round_trip(self, value):
        """
        Every finite float renders as JSON that parses back to itself.
        """
        self.assertEqual(float(json.loads(go_float(value))), value)

    def test_non_finite(self):
        """
        NaN and infinities render as null.
        """
        self.assertEqual(go_float(float("nan")), "null")
        self.assertEqual(go_float(float("inf")), "null")


class GoJSONTests(SynchronousTestCase):
    """
    L{go_json} writes Go's encoder output.
    """

    def test_map_and_struct(self):
        """
        Maps are sorted, structs ordered, HTML characters escaped, and there
        is one trailing newline.
        """
        value = {"b": Struct([("Z", 1.0), ("A", "<&>")]), "a": [True, None]}
        self.assertEqual(
            go_json(value),
            b'{"a":[true,null],"b":{"Z":1,"A":"\\u003c\\u0026\\u003e"}}\n',
        )

    def test_time(self):
        """
        Times are RFC 3339 in UTC with trimmed nanoseconds; none is Go's zero
        time.
        """
        self.assertEqual(go_time(None), "0001-01-01T00:00:00Z")
        self.assertEqual(go_time(1_700_000_000.0), "2023-11-14T22:13:20Z")
        self.assertEqual(go_time(1_700_000_000.25), "2023-11-14T22:13:20.25Z")
        self.assertEqual(go_json(GoTime(0.5)), b'"1970-01-01T00:00:00.5Z"\n')
