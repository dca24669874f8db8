"""Reading the local model's constrained output back into a call: no model needed."""

from __future__ import annotations

import json

import pytest

from threadline.providers.base import ChatRequest, ProviderError
from threadline.providers.local_grammar import Plan, parse_call, plan_request


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


def test_reasoning_effort_is_refused_by_a_model_that_does_not_reason() -> None:
    """Taken and ignored, a user would believe the answer reasoned at that effort."""
    asked = [{"role": "user", "content": "hi"}]

    with pytest.raises(ProviderError) as refused:
        plan_request(ChatRequest(model="smollm2", messages=asked, reasoning_effort="high"))

    assert refused.value.code == "invalid_prompt" and "reasoning_effort" in refused.value.message
    for unset in (None, "none"):
        plan = plan_request(ChatRequest(model="smollm2", messages=asked, reasoning_effort=unset))
        assert plan.mode == "text"
