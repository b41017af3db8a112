"""Read a bundle's config files (JSON or YAML) as strictly as config_train.json: one-line ConfigError
with line/column for a syntax error, duplicate keys are errors (PyYAML, like ``json``, keeps the last
of two equal keys silently)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from mmar_automl.config.jsonfile import load_json
from mmar_automl.errors import ConfigError

YAML_SUFFIXES = (".yaml", ".yml")


def load_config_file(path: str | Path, shown: str | Path | None = None) -> Any:
    """A bundle config file by its suffix; ``shown`` is how errors name it (relative to the bundle)."""
    path = Path(path)
    if path.suffix.lower() not in YAML_SUFFIXES:
        try:
            return load_json(path)
        except ConfigError as err:
            raise ConfigError(shown or path, err.json_path, err.message) from None
    return _load_yaml(path, shown or path)


def _load_yaml(path: Path, shown: str | Path) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(shown, None, "file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(shown, None, f"cannot read: {err}") from None
    if not text.strip():
        raise ConfigError(shown, None, "file is empty: expected a YAML mapping")
    try:
        return yaml.load(text, Loader=_strict_loader())  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as err:
        raise ConfigError(shown, None, str(err)) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        what = " ".join(str(x) for x in (err.context, err.problem) if x)
        raise ConfigError(shown, None, f"invalid YAML{where}: {what}") from None
    except yaml.YAMLError as err:
        raise ConfigError(shown, None, f"invalid YAML: {err}") from None


class _DuplicateKey(ValueError):
    pass


@functools.cache
def _strict_loader() -> type:
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict:
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue   # "<<: *base": merged by SafeLoader below, its keys may be overridden here
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise _DuplicateKey(f"duplicate key {key!r} at line {key_node.start_mark.line + 1} column "
                                        f"{key_node.start_mark.column + 1} (first at line {seen[key] + 1}): keep only one")
                seen[key] = key_node.start_mark.line
            return super().construct_mapping(node, deep=deep)

    return StrictLoader
