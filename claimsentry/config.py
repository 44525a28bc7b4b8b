"""Configuration: flags, then ``CLAIMSENTRY_*`` environment, then a config file, then packaged defaults.

Settings are a nested mapping read with dotted paths: ``settings.get("queue.claim_capacity")``.
Nothing else in the code reads the environment or the config files.
"""

from __future__ import annotations

import copy
import os
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from claimsentry.errors import ClaimSentryError

ENV_PREFIX = "CLAIMSENTRY_"
# Short environment names for the settings people change most.
ENV_SHORTCUTS = {
    "CLAIMSENTRY_DATA_DIR": "data_dir",
    "CLAIMSENTRY_MLFLOW_URI": "mlflow.tracking_uri",
    "CLAIMSENTRY_SPARK_MASTER": "spark.master",
}


def load_yaml_resource(name: str) -> Any:
    """A YAML file shipped in ``conf/`` (installed as ``claimsentry.conf``)."""
    text = resources.files("claimsentry.conf").joinpath(name).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _merge(base: dict, override: Mapping) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _set_path(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def _env_overrides(environ: Mapping[str, str]) -> dict:
    tree: dict = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "CLAIMSENTRY_CONFIG":
            continue
        dotted = ENV_SHORTCUTS.get(name) or name[len(ENV_PREFIX):].lower().replace("__", ".")
        _set_path(tree, dotted, yaml.safe_load(raw) if raw != "" else None)
    return tree


class Settings:
    """Resolved settings. Immutable by convention; ``with_overrides`` returns a new one."""

    def __init__(self, tree: dict):
        self._tree = tree

    def get(self, dotted: str, default: Any = None) -> Any:
        node: Any = self._tree
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    def section(self, name: str) -> dict:
        return copy.deepcopy(self._tree.get(name) or {})

    def as_dict(self) -> dict:
        return copy.deepcopy(self._tree)

    def with_overrides(self, overrides: Mapping[str, Any]) -> "Settings":
        """Dotted-path overrides (flags); ``None`` values mean "flag not given" and are skipped.
        A mapping value is merged into the section it names, not swapped for it."""
        tree = copy.deepcopy(self._tree)
        for dotted, value in overrides.items():
            if value is None:
                continue
            if isinstance(value, Mapping):
                current = self.get(dotted)
                value = _merge(current, value) if isinstance(current, Mapping) else value
            _set_path(tree, dotted, value)
        return Settings(tree)

    # Paths derived from data_dir -------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return Path(self.get("data_dir", "data")).expanduser().resolve()

    @property
    def mlflow_tracking_uri(self) -> str:
        uri = self.get("mlflow.tracking_uri")
        if uri:
            return str(uri)
        return f"sqlite:///{self.data_dir / 'mlflow' / 'mlflow.db'}"

    @property
    def mlflow_sqlite_file(self) -> Path | None:
        """The database file of a local SQLite tracking store (it may not exist yet), else None."""
        uri = self.mlflow_tracking_uri
        return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None

    @property
    def mlflow_artifact_location(self) -> str:
        loc = self.get("mlflow.artifact_location")
        return str(loc) if loc else (self.data_dir / "mlflow" / "artifacts").as_uri()


def load_settings(
    config_file: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    environ = os.environ if environ is None else environ
    tree = load_yaml_resource("claimsentry.yaml")
    path = config_file or environ.get("CLAIMSENTRY_CONFIG")
    if not path and Path("claimsentry.yaml").is_file():
        path = "claimsentry.yaml"
    if path:
        p = Path(path)
        if not p.is_file():
            raise ClaimSentryError(f"config file not found: {p}")
        try:
            user = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ClaimSentryError(f"config file {p} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(user, Mapping):
            raise ClaimSentryError(f"config file {p} must hold a mapping of settings")
        tree = _merge(tree, user)
    tree = _merge(tree, _env_overrides(environ))
    return Settings(tree).with_overrides(overrides or {})
