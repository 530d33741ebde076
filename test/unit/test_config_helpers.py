"""
Helpers shared by the configuration tests: write a JSON document to a
temporary file and load it.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any, Dict, Mapping, Optional

from freno.config.loader import ConfigError, Overrides, load_config
from freno.config.model import Config

CLUSTER_PATH = "Stores.MySQL.Clusters.main"


def base(**top: Any) -> Dict[str, Any]:
    """
    A minimal valid configuration (single-node raft, one static cluster
    C{main}), with top-level keys replaced by C{top}.
    """
    doc: Dict[str, Any] = {
        "RaftDataDir": "/tmp/freno-test",
        "Stores": {
            "MySQL": {
                "Clusters": {"main": {"StaticHostsSettings": {"Hosts": ["h1", "h2:3307"]}}},
            }
        },
    }
    doc.update(top)
    return doc


def with_store(doc: Dict[str, Any], **store: Any) -> Dict[str, Any]:
    """
    C{doc} with C{Stores.MySQL} keys set.
    """
    doc = copy.deepcopy(doc)
    doc["Stores"]["MySQL"].update(store)
    return doc


def with_cluster(doc: Dict[str, Any], name: str = "main", replace: bool = False, **keys: Any) -> Dict[str, Any]:
    """
    C{doc} with keys of cluster C{name} set (or the cluster replaced).
    """
    doc = copy.deepcopy(doc)
    clusters = doc["Stores"]["MySQL"]["Clusters"]
    if replace or name not in clusters:
        clusters[name] = {}
    clusters[name].update(keys)
    return doc


class ConfigFileMixin:
    """
    For trial test cases: C{self.load(doc)} and C{self.fails(doc)}.
    """

    def write(self, doc: Any = None, text: Optional[str] = None) -> str:
        """
        Write C{doc} as JSON (or C{text} as is) to a new temporary file.
        """
        path = self.mktemp()  # type: ignore[attr-defined]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text if text is not None else json.dumps(doc))
        return path

    def load(
        self,
        doc: Any = None,
        environ: Optional[Mapping[str, str]] = None,
        text: Optional[str] = None,
        overrides: Optional[Overrides] = None,
    ) -> Config:
        """
        Write and load C{doc}.
        """
        return load_config(self.write(doc, text), environ or {}, overrides)

    def fails(
        self,
        doc: Any = None,
        environ: Optional[Mapping[str, str]] = None,
        text: Optional[str] = None,
        overrides: Optional[Overrides] = None,
    ) -> str:
        """
        Load, expect L{ConfigError}, check that it names the file (unless
        the problem came from the command line) and is one line, and return
        the message after C{"<file>: "}.
        """
        path = self.write(doc, text)
        try:
            load_config(path, environ or {}, overrides)
        except ConfigError as e:
            message = str(e)
        else:
            raise AssertionError("expected a ConfigError")
        assert "\n" not in message, message
        if message.startswith("command line: "):
            return message
        assert message.startswith(path + ": "), message
        return message[len(path) + 2 :]
