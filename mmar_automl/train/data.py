"""Clara dataset components: a Decathlon-style datalist named by ``data_list_file_path``,
``data_file_base_dir`` and ``data_list_key``, handed to the dataset class as its ``data`` arg."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmar_automl.errors import ConfigError, JsonPath

DATALIST_KEYS = ("data_list_file_path", "data_file_base_dir", "data_list_key")


def has_datalist(node: dict) -> bool:
    return "data_list_file_path" in node


def load_datalist(node: dict, root: Path, file: str | None, path: JsonPath) -> list[dict[str, Any]]:
    """The items of ``node["data_list_key"]`` (default ``training``), file names made absolute against
    ``data_file_base_dir`` (default: the datalist's folder), itself relative to the MMAR root."""
    from monai.data import load_decathlon_datalist

    list_file = _path(node["data_list_file_path"], root, file, (*path, "data_list_file_path"))
    if not list_file.is_file():
        raise ConfigError(file, (*path, "data_list_file_path"), f"datalist {str(list_file)!r} not found")
    base = node.get("data_file_base_dir")
    base_dir = _path(base, root, file, (*path, "data_file_base_dir")) if base else list_file.parent
    key = node.get("data_list_key", "training")
    try:
        items = load_decathlon_datalist(str(list_file), is_segmentation=True, data_list_key=key, base_dir=str(base_dir))
    except ValueError as err:
        lists = _list_keys(list_file)
        if lists is not None and key not in lists:  # a misspelt "trainig": name the lists it could have meant
            from mmar_automl.config.suggest import did_you_mean

            raise ConfigError(file, (*path, "data_list_key"), f"{list_file.name} has no list {key!r}"
                              f"{did_you_mean(str(key), lists)}; its lists: {', '.join(lists)}") from None
        raise ConfigError(file, (*path, "data_list_key"), f"{list_file.name}: {err}") from None
    if not items:
        raise ConfigError(file, (*path, "data_list_key"), f"{list_file.name}: list {key!r} is empty")
    _check_files(items, list_file, key, file, path)
    return items


def _list_keys(list_file: Path) -> list[str] | None:
    """The keys of a datalist that hold lists (``training``, ``validation``...), None when unreadable."""
    import json

    try:
        data = json.loads(list_file.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return None
    return [k for k, v in data.items() if isinstance(v, list)] if isinstance(data, dict) else None


def _check_files(items: list[dict[str, Any]], list_file: Path, key: str, file: str | None, path: JsonPath) -> None:
    """A missing image or label is a config mistake: say so now, naming the entry, rather than when
    a loader worker first reaches it (mid-epoch, or only at validation)."""
    for i, item in enumerate(items):
        for field in ("image", "label"):
            value = item.get(field)
            for name in value if isinstance(value, list) else [value]:
                if isinstance(name, str) and not Path(name).exists():
                    raise ConfigError(file, (*path, "data_list_file_path"),
                                      f"{list_file.name}: {key}[{i}].{field}: file {name!r} not found")


def _path(value: Any, root: Path, file: str | None, path: JsonPath) -> Path:
    if not isinstance(value, str):
        raise ConfigError(file, path, f"expected a path string, got {value!r}")
    if value.startswith("{") and value.endswith("}"):
        raise ConfigError(file, path, f"unknown variable {value} (set it in environment.json or with --set)")
    p = Path(value)
    return p if p.is_absolute() else root / p
