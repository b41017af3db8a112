from mmar_automl.handlers.console import format_point
from mmar_automl.search.format import format_point_value


def test_points_are_shown_in_json_spelling_everywhere():
    assert format_point_value([True, False]) == "true,false"      # a two-arg enum choice
    assert format_point_value([[16, 32, 64]]) == "[16,32,64]"     # a list-valued arg
    assert format_point_value(["batch"]) == "batch"
    assert format_point_value(0.00123456) == "0.001235"
    assert format_point_value([None]) == "null"
    assert format_point({"a,b": [False, True], "lr": 0.5}) == "a/b=false,true lr=0.5"  # display_name: one spelling (MLflow keys too)
