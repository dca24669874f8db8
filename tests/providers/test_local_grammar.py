"""Reading the local model's constrained output back into a call: no model needed."""

from __future__ import annotations

import json

from threadline.providers.local_grammar import Plan, parse_call


def test_a_raw_newline_inside_a_string_still_makes_a_valid_call() -> None:
    # llama.cpp's JSON grammar lets strings hold raw newlines; seen with a sampled
    # (temperature 1) forced call of the embedded model.
    plan = Plan("arguments", [], function="get_weather")
    sampled = '{ "city": "Paris\nand its weather" }'

    call = parse_call(plan, sampled)

    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris\nand its weather"}


def test_a_call_object_names_its_function() -> None:
    plan = Plan("call", [])

    call = parse_call(plan, '{"name": "get_time", "arguments": {"zone": "UTC"}}')

    assert (call.name, json.loads(call.arguments)) == ("get_time", {"zone": "UTC"})
