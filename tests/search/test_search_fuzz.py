"""Whatever a user writes into search/apply/args, parsing ends in a space or in one ConfigError line
that names the JSON path, and a parsed space always renders."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmar_automl.errors import ConfigError
from mmar_automl.config.jsonfile import load_json
from mmar_automl.search import parse_search_space, render_config

BASES = [load_json(p) for p in sorted((Path(__file__).parent / "clara").glob("*trn_autoML*.json"))]
WORDS = ["@disabled", "x", "learning_rate", "prob#p", "@v", "norm", "", "a#", "#b", "enum", "float", "myProb"]
junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False), st.sampled_from(WORDS)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["domain", "type", "args", "targets", "search", "apply", "name", "@disabled", "x"]),
        inner, max_size=4),
    max_leaves=8)


def paths(node: Any, path: tuple = ()):
    yield path
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield from paths(value, (*path, key))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_clara_configs_parse_or_fail_cleanly(data):
    cfg = copy.deepcopy(data.draw(st.sampled_from(BASES)))
    places = [p for p in paths(cfg) if p and {"search", "apply", "args"} & set(p)]
    for _ in range(data.draw(st.integers(1, 2))):
        place = data.draw(st.sampled_from(places))
        node = cfg
        try:
            for key in place[:-1]:
                node = node[key]
            node[place[-1]] = data.draw(junk)
        except (KeyError, IndexError, TypeError):
            pass                                     # an earlier mutation removed that place
    try:
        space = parse_search_space(cfg, "c.json")
    except ConfigError as err:
        assert err.file == "c.json" and err.json_path and "\n" not in str(err)
        return
    point = {d.name: list(d.choices[-1]) if d.type == "enum" else d.high for d in space}
    render_config(cfg, space, point)
