"""load_json: strict reading of users' JSON files."""

from __future__ import annotations

import pytest

from mmar_automl.errors import ConfigError
from mmar_automl.config.jsonfile import load_json


def write(tmp_path, text: str, name: str = "c.json"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_nested_json_in_order(tmp_path):
    data = load_json(write(tmp_path, '{"b": [1, {"x": null}], "a": 2.5}'))
    assert data == {"b": [1, {"x": None}], "a": 2.5}
    assert list(data) == ["b", "a"]


def test_bad_json_gives_line_and_column(tmp_path):
    path = write(tmp_path, '{\n  "a": 1,\n  "b": [1, 2,,]\n}')
    with pytest.raises(ConfigError) as info:
        load_json(path)
    assert str(info.value).startswith(f"{path}: invalid JSON at line 3 column 14: ")
    assert info.value.json_path is None


@pytest.mark.parametrize("text,where", [
    ('{"a": 1, "a": 2}', "a"),
    ('{"train": {"model": {"args": {"k": 1}, "args": {}}}}', "train.model.args"),
    ('{"l": [{}, {"x": 1, "x": 1}]}', "l[1].x"),
])
def test_duplicate_keys_name_the_json_path(tmp_path, text, where):
    with pytest.raises(ConfigError) as info:
        load_json(write(tmp_path, text))
    assert info.value.json_path == where
    assert "duplicate key" in info.value.message


@pytest.mark.parametrize("text,fragment", [
    ("", "file is empty"),
    ('{"a": NaN}', "NaN is not a JSON number"),
    ('{"a": 1} trailing', "invalid JSON at line 1 column 10: Extra data"),
])
def test_other_malformed_text(tmp_path, text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_json(write(tmp_path, text))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_json(tmp_path / "nope.json")
    with pytest.raises(ConfigError, match="is a folder"):
        load_json(tmp_path)


def test_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"a": 1}')
    assert load_json(path) == {"a": 1}


@pytest.mark.parametrize("text,where,fragment", [
    ("  \n", None, "file is empty: expected a JSON object"),
    ('{"a": [1, 1e400]}', "a[1]", "number 1e400 is too large"),
    ('{"a": {"b": -2e999}}', "a.b", "number -2e999 is too large"),
    ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", None, "nested too deeply"),
])
def test_empty_overflowing_and_too_deep(tmp_path, text, where, fragment):
    # Regressions: these used to pass as inf (printed as Infinity by --json) or crash with RecursionError.
    with pytest.raises(ConfigError, match=fragment) as info:
        load_json(write(tmp_path, text))
    assert "\n" not in str(info.value)
    assert info.value.json_path == where


def test_an_empty_environment_json_is_not_told_to_hold_a_train_section(tmp_path):
    """One reader for every MMAR JSON file: its message for an empty file fits environment.json too."""
    path = tmp_path / "environment.json"
    path.write_text("")
    with pytest.raises(ConfigError) as info:
        load_json(path)
    assert str(info.value).endswith("environment.json: file is empty: expected a JSON object")
