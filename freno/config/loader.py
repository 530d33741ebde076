# -*- test-case-name: test.unit.test_config,test.unit.test_config_resolve,test.unit.test_config_fuzz -*-
"""
Loading freno's JSON configuration: read, check, expand, resolve, validate,
once, before anything starts.

Public API::

    load_config(path, environ=os.environ, overrides=None) -> Config
    load_default_config(environ=os.environ, overrides=None, paths=DEFAULT_CONFIG_PATHS) -> Config
    apply_overrides(config, *, http_port=None, raft_bind=None, raft_datadir=None,
                    raft_nodes=None, force_leadership=False, enable_profiling=False) -> Config
    Overrides(...)      # the same command-line values, for load_*(overrides=...)
    ConfigError         # file, key_path, problem; str() is one line

Every problem raises L{ConfigError}; nothing else escapes (a hypothesis test
holds us to that). C{twistd freno} prints C{str(error)} and exits 1.

The pipeline, in order:

 1. read each file (UTF-8, optional BOM) and parse it as JSON; errors give
    the line and column;
 2. check it against the schema (L{freno.config.schema}): keys matched
    case-insensitively as Go does, unknown keys reported by name with the
    closest known key suggested, types and ranges checked (numbers finite,
    not negative where freno's are unsigned or meaningless below 0);
 3. merge the files (later overrides earlier: objects key by key, lists
    replaced, each cluster replaced whole, as freno);
 4. apply the command-line overrides I{before} validation (freno applied
    them after, so C{--raft-datadir} could not satisfy the "Either
    RaftDataDir or BackendMySQLHost" check; docs/decisions.md, D44);
 5. expand C{${NAME}} and resolve (L{freno.config.resolve}): inheritance,
    host sources, probe extensions, raft normalisation, consensus checks.

Decisions where we differ from freno, all deliberate (docs/decisions.md
explains them, conf/README.md gives the user's reference):

 - D42: C{${NAME}} is substituted in place, every occurrence, in C{DataCenter},
   C{Environment}, C{Domain}, C{ShareDomain}, C{BackendMySQLHost},
   C{BackendMySQLSchema}, C{BackendMySQLUser}, C{BackendMySQLPassword},
   C{RaftPassword}, store and cluster C{User}/C{Password}, store
   C{VitessCells} items and C{HAProxySettings.Addresses}. freno replaced the
   whole value instead; for the usual C{"${VAR}"} value both are identical.
 - D42: an unset variable is an error naming the variable and the key; freno used
   C{""} (except in HAProxy C{Addresses}, where it also refused C{""}, as we
   still do).
 - D41: a key present at cluster level overrides the store even when 0, C{""} or
   C{[]}; absent (or C{null}) inherits. C{Port} 0 still inherits.
 - D43: unknown keys, keys given twice, empty C{IgnoreHosts} patterns, a cluster
   with no host source or with two, an incomplete host source, a multi-node
   raft group without C{RaftPassword}, and C{RaftNodes} without this node's
   C{RaftBind} are errors.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import attr

from freno.config.errors import ConfigError, format_path
from freno.config.model import Config
from freno.config.resolve import check_consensus, resolve
from freno.config.schema import (
    Path,
    merge_documents,
    origin_finder,
    parse_json,
    read_document,
)

#: freno's search when no C{--config} is given; later files override earlier.
DEFAULT_CONFIG_PATHS: Tuple[str, ...] = ("/etc/freno.conf.json", "conf/freno.conf.json")

#: The C{file} of errors caused by command-line values.
COMMAND_LINE = "command line"

__all__ = [
    "ConfigError",
    "Overrides",
    "DEFAULT_CONFIG_PATHS",
    "load_config",
    "load_default_config",
    "apply_overrides",
]


@attr.s(frozen=True, auto_attribs=True)
class Overrides:
    """
    Command-line values that replace configuration keys.

    @ivar http_port: C{--http-port}: C{ListenPort}. C{None} or 0 (freno's
        flag default) leaves the file's value.
    @ivar raft_bind: C{--raft-bind}: C{RaftBind}. C{None} or C{""} leaves it.
    @ivar raft_datadir: C{--raft-datadir}: C{RaftDataDir}. C{None} or C{""}
        leaves it.
    @ivar raft_nodes: C{--raft-nodes}: C{RaftNodes}, comma-separated,
        entries trimmed; C{""} means single-node (an empty list), which
        freno's flag could not express. C{None} leaves it.
    @ivar force_leadership: C{--force-leadership}.
    @ivar enable_profiling: C{--enable-profiling}: C{EnableProfiling}.
    """

    http_port: Optional[int] = None
    raft_bind: Optional[str] = None
    raft_datadir: Optional[str] = None
    raft_nodes: Optional[str] = None
    force_leadership: bool = False
    enable_profiling: bool = False

    def document_values(self) -> Dict[str, Any]:
        """
        The configuration keys these overrides set, checked.

        @raise ConfigError: a value of the wrong type or out of range.
        """
        values: Dict[str, Any] = {}
        port = self.http_port
        if port is not None and port != 0:
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise ConfigError(COMMAND_LINE, "--http-port", f"expected a port number in 1..65535, got {port!r}")
            values["ListenPort"] = port
        for flag, key, value in (
            ("--raft-bind", "RaftBind", self.raft_bind),
            ("--raft-datadir", "RaftDataDir", self.raft_datadir),
            ("--raft-nodes", "RaftNodes", self.raft_nodes),
        ):
            if value is not None and not isinstance(value, str):
                raise ConfigError(COMMAND_LINE, flag, f"expected a string, got {value!r}")
        if self.raft_bind:
            values["RaftBind"] = self.raft_bind.strip()
        if self.raft_datadir:
            values["RaftDataDir"] = self.raft_datadir
        if self.raft_nodes is not None:
            values["RaftNodes"] = split_nodes(self.raft_nodes)
        if self.enable_profiling:
            values["EnableProfiling"] = True
        return values


def split_nodes(text: str) -> Tuple[str, ...]:
    """
    C{--raft-nodes}: split on commas, trim, drop empty entries.
    """
    return tuple(part.strip() for part in text.split(",") if part.strip())


def read_file(path: str) -> Dict[str, Any]:
    """
    Read, parse and schema-check one file.

    @return: its document (L{freno.config.schema}).
    @raise ConfigError: unreadable, not UTF-8, invalid JSON, or a key or
        value the schema refuses.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError(path, "", f"cannot read the file: {e.strerror or e.__class__.__name__}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(path, "", f"not UTF-8 text (bad byte at offset {e.start})")
    try:
        value = parse_json(text)
    except json.JSONDecodeError as e:
        raise ConfigError(path, "", f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}")
    except RecursionError:
        raise ConfigError(path, "", "invalid JSON: nested too deeply")
    except ValueError:
        raise ConfigError(path, "", "invalid JSON: a number literal is too long")
    return read_document(value, path)


def _load(
    documents: Sequence[Tuple[str, Dict[str, Any]]],
    environ: Mapping[str, str],
    overrides: Optional[Overrides],
    label: str,
) -> Config:
    merged: Dict[str, Any] = {}
    origins: Dict[Path, str] = {}
    for file, document in documents:
        merge_documents(merged, document, file, origins)
    overrides = overrides or Overrides()
    for key, value in overrides.document_values().items():
        merged[key] = value
        origins[(key,)] = COMMAND_LINE
    return resolve(merged, environ, origin_finder(origins, label), overrides.force_leadership)


def load_config(
    path: str,
    environ: Mapping[str, str] = os.environ,
    overrides: Optional[Overrides] = None,
) -> Config:
    """
    Load one configuration file (C{--config PATH}).

    @param environ: the variables C{${NAME}} refers to.
    @param overrides: command-line values, applied before validation.
    @raise ConfigError: anything wrong, as one line.
    """
    return _load([(path, read_file(path))], environ, overrides, path)


def load_default_config(
    environ: Mapping[str, str] = os.environ,
    overrides: Optional[Overrides] = None,
    paths: Sequence[str] = DEFAULT_CONFIG_PATHS,
) -> Config:
    """
    freno's search without C{--config}: each of C{paths} that exists is read,
    later files overriding earlier ones; missing files are skipped silently
    (an existing but unreadable file is an error).

    @raise ConfigError: anything wrong; with no file found the defaults
        (plus C{overrides}) are validated, which fails unless the overrides
        set C{RaftDataDir}.
    """
    found: List[str] = [p for p in paths if os.path.exists(p)]
    documents = [(p, read_file(p)) for p in found]
    label = ", ".join(found) if found else "no configuration file (tried " + ", ".join(paths) + ")"
    return _load(documents, environ, overrides, label)


def apply_overrides(
    config: Config,
    *,
    http_port: Optional[int] = None,
    raft_bind: Optional[str] = None,
    raft_datadir: Optional[str] = None,
    raft_nodes: Optional[str] = None,
    force_leadership: bool = False,
    enable_profiling: bool = False,
) -> Config:
    """
    Apply command-line values to a loaded configuration and validate the
    result again (the same consensus checks as loading). Arguments mean
    what L{Overrides}' attributes mean.

    @return: a new L{Config}; C{config} is unchanged.
    @raise ConfigError: with C{file} C{"command line"}.
    """
    values = Overrides(
        http_port=http_port,
        raft_bind=raft_bind,
        raft_datadir=raft_datadir,
        raft_nodes=raft_nodes,
        force_leadership=force_leadership,
        enable_profiling=enable_profiling,
    ).document_values()
    changes: Dict[str, Any] = {}
    for key, attribute in (
        ("ListenPort", "listen_port"),
        ("RaftBind", "raft_bind"),
        ("RaftDataDir", "raft_data_dir"),
        ("RaftNodes", "raft_nodes"),
        ("EnableProfiling", "enable_profiling"),
    ):
        if key in values:
            changes[attribute] = values[key]
    if force_leadership:
        changes["force_leadership"] = True
    updated = attr.evolve(config, **changes)

    def fail(path: Path, problem: str) -> ConfigError:
        return ConfigError(COMMAND_LINE, format_path(path), problem)

    return check_consensus(updated, fail)
