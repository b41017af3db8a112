"""Clara search spaces: parse config_train.json into a SearchSpace, render a point back into a config."""

from mmar_automl.search.parse import parse_search_space
from mmar_automl.search.render import render_config, strip_markers
from mmar_automl.search.space import Consumer, EnumDimension, FloatDimension, IntDimension, SearchSpace

__all__ = [
    "Consumer", "EnumDimension", "FloatDimension", "IntDimension", "SearchSpace",
    "parse_search_space", "render_config", "strip_markers",
]
