# -*- test-case-name: test.unit.test_throttle_records,test.unit.test_names -*-
"""
L{CheckCounters}: counts checks under freno's C{/debug/vars} names and
the labeled series C{freno_checks_total{app,store_type,store_name,status}}.

For each counted check, with C{<x>} one of C{total}, C{error} (status not
200) and C{internal-error} (status 500):

    - C{check.any.<x>} and C{check.<app>.<x>};
    - C{check.any.<storeType>.<storeName>.<x>};
    - C{check.<app>.<storeType>.<storeName>.<x>}.

The status counted is the one before the if-exists 404-to-200 conversion, as
in freno; the labeled series uses the same status.

Cardinality is bounded (freno's metric names grew with every app name a
client invented; docs/decisions.md, D11): the first C{max_apps} distinct app
names of at most L{MAX_LABEL_LENGTH} characters are counted under their own
name, and any later or longer one under C{other}; a store name that is not a
configured cluster is counted as C{other} too. So names of any length are
counted (D48), and the counters' memory stays bounded. The names for a given
(app, store, status) are built once and cached, so counting a check costs a
few dict updates (the cache of raw request names holds short names only).
"""

from __future__ import annotations

from typing import Container, Dict, Tuple

from freno.stats import Stats

#: Distinct app names counted under their own name; the rest are C{other}.
DEFAULT_MAX_APPS = 200
#: Longer app names are counted as C{other}.
MAX_LABEL_LENGTH = 128
#: The name apps beyond the bound, and unknown store names, are counted under.
OTHER = "other"
#: The labeled counter of checks.
CHECKS_TOTAL = "freno_checks_total"
_FAST_SIZE = 4096


class CheckCounters:
    """
    Counts checks into a L{Stats}.

    @param stats: the registry.
    @param known_stores: the configured cluster names.
    @param max_apps: the bound on distinct app names.
    """

    def __init__(
        self,
        stats: Stats,
        known_stores: Container[str],
        max_apps: int = DEFAULT_MAX_APPS,
    ) -> None:
        self._stats = stats
        self._known_stores = known_stores
        self.max_apps = max_apps
        self._apps: Dict[str, str] = {}
        self._names: Dict[Tuple[str, str, str, int], Tuple[Tuple[str, ...], tuple]] = {}
        # (raw app, store type, raw store, status) -> names, for the first
        # few thousand combinations: one lookup on the hot path.
        self._fast: Dict[Tuple[str, str, str, int], Tuple[Tuple[str, ...], tuple]] = {}

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
        names, labeled_key = entry
        counters = self._stats.counters
        for name in names:
            counters[name] = counters.get(name, 0) + 1
        labeled = self._stats.labeled
        labeled[labeled_key] = labeled.get(labeled_key, 0) + 1

    def _entry(self, app: str, store_type: str, store_name: str, status: int):
        app = self.fold_app(app)
        if store_name not in self._known_stores:
            store_name = OTHER
        key = (app, store_type, store_name, status)
        entry = self._names.get(key)
        if entry is None:
            entry = self._names[key] = self._build(*key)
        return entry

    @staticmethod
    def _build(app: str, store_type: str, store_name: str, status: int):
        kinds = ["total"]
        if status != 200:
            kinds.append("error")
        if status == 500:
            kinds.append("internal-error")
        names = []
        for kind in kinds:
            names += [
                f"check.any.{kind}",
                f"check.{app}.{kind}",
                f"check.any.{store_type}.{store_name}.{kind}",
                f"check.{app}.{store_type}.{store_name}.{kind}",
            ]
        labels = (
            ("app", app),
            ("store_type", store_type),
            ("store_name", store_name),
            ("status", str(status)),
        )
        return tuple(names), (CHECKS_TOTAL, labels)
