# -*- test-case-name: test.unit.test_throttle_records,test.unit.test_names -*-
"""
L{CheckCounters}: counts checks into the one labeled counter
C{freno_checks_total{app,store_type,store_name,status}}
(L{freno.metrics.catalogue.CHECKS}); freno's C{check.*} counters of
C{/debug/vars} are derived from it when the document is rendered
(L{freno.metrics.catalogue.check_vars_names}).

The status counted is the one before the if-exists 404-to-200 conversion, as
in freno.

Cardinality is bounded (freno's metric names grew with every app name a
client invented; docs/decisions.md, D11): the first C{max_apps} distinct app
names of at most L{MAX_LABEL_LENGTH} characters are counted under their own
name, and any later or longer one under C{other}; a store name that is not a
configured cluster is counted as C{other} too. So names of any length are
counted (D48), and the counters' memory stays bounded. The label values for a
given (app, store, status) are built once and cached, so counting a check
costs a dict lookup and one counter increment (the cache of raw request
names holds short names only).
"""

from __future__ import annotations

from typing import Container, Dict, Tuple

from freno.metrics.catalogue import CHECKS
from freno.metrics.registry import Registry

#: Distinct app names counted under their own name; the rest are C{other}.
DEFAULT_MAX_APPS = 200
#: Longer app names are counted as C{other}.
MAX_LABEL_LENGTH = 128
#: The name apps beyond the bound, and unknown store names, are counted under.
OTHER = "other"
_FAST_SIZE = 4096


class CheckCounters:
    """
    Counts checks into a L{Registry}.

    @param registry: the registry.
    @param known_stores: the configured cluster names.
    @param max_apps: the bound on distinct app names.
    """

    def __init__(
        self,
        registry: Registry,
        known_stores: Container[str],
        max_apps: int = DEFAULT_MAX_APPS,
    ) -> None:
        self._inc = registry.counter(CHECKS).inc
        self._known_stores = known_stores
        self.max_apps = max_apps
        self._apps: Dict[str, str] = {}
        self._labels: Dict[Tuple[str, str, str, int], Tuple[str, str, str, str]] = {}
        # (raw app, store type, raw store, status) -> label values, for the
        # first few thousand combinations: one lookup on the hot path.
        self._fast: Dict[Tuple[str, str, str, int], Tuple[str, str, str, str]] = {}

    def fold_app(self, app: str) -> str:
        """
        The name C{app} is counted under.
        """
        folded = self._apps.get(app)
        if folded is None:
            if len(self._apps) >= self.max_apps or len(app) > MAX_LABEL_LENGTH:
                return OTHER
            folded = self._apps[app] = app
        return folded

    def count(self, app: str, store_type: str, store_name: str, status: int) -> None:
        """
        Count one check that answered C{status}.
        """
        raw = (app, store_type, store_name, status)
        entry = self._fast.get(raw)
        if entry is None:
            entry = self._entry(app, store_type, store_name, status)
            if (
                len(self._fast) < _FAST_SIZE
                and len(app) <= MAX_LABEL_LENGTH
                and len(store_name) <= MAX_LABEL_LENGTH
            ):
                self._fast[raw] = entry
        self._inc(entry)

    def _entry(self, app: str, store_type: str, store_name: str, status: int):
        app = self.fold_app(app)
        if store_name not in self._known_stores:
            store_name = OTHER
        key = (app, store_type, store_name, status)
        labels = self._labels.get(key)
        if labels is None:
            labels = self._labels[key] = (app, store_type, store_name, str(status))
        return labels
