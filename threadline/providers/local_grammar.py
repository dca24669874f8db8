"""Prompt and grammar shaping for the embedded model.

SmolLM2's chat template knows only plain `role`/`content` turns, so tool definitions, earlier
tool calls and tool results are rendered as text that template accepts. A 135M model cannot be
trusted to produce structure on its own, so every structured output (a tool call, JSON mode, a
JSON schema) is enforced by a llama.cpp grammar built from a JSON schema, never hoped for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from llama_cpp.llama_grammar import LlamaGrammar

from threadline.providers.base import ChatRequest, ProviderError, ToolCallDelta

Mode = Literal["text", "arguments", "call", "auto"]

# OpenAI lets a function omit `parameters`; it then takes no arguments.
_NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
_CALL_SHAPE = '{"name": <function name>, "arguments": <arguments object>}'


@dataclass(frozen=True)
class Plan:
    """How one request is generated.

    `text`: an answer, constrained by `answer_grammar` when a JSON response format asks for it.
    `arguments`: the arguments of the one forced `function`, under `call_grammar`.
    `call`: a `{"name", "arguments"}` object naming one declared function, under `call_grammar`.
    `auto`: the model's first visible token chooses between `text` and `call`.
    """

    mode: Mode
    messages: list[dict[str, str]]
    answer_grammar: LlamaGrammar | None = None
    call_grammar: LlamaGrammar | None = None
    function: str | None = None


def plan_request(request: ChatRequest) -> Plan:
    """Validate the request's tool and format options and decide how to generate."""
    if request.reasoning_effort not in (None, "none"):
        # A model that does not reason refuses the option, as a hosted one does: taken and
        # ignored, a user would believe the answer had been reasoned at that effort.
        raise ProviderError(
            "invalid_prompt",
            f"The bundled model does not reason: reasoning_effort '{request.reasoning_effort}' "
            "cannot be applied (leave it unset or 'none', or use a model that reasons).",
        )
    functions = _functions(request.tools)
    answer = _answer_grammar(request.response_format)
    choice = request.tool_choice
    if not functions or choice == "none":
        return Plan("text", render_messages(request.messages, None), answer_grammar=answer)
    listing = "You can call these functions:\n" + "\n".join(
        json.dumps(spec, ensure_ascii=False) for spec in functions.values()
    )
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if not isinstance(name, str) or name not in functions:
            raise ProviderError(
                "invalid_prompt", f"tool_choice names no declared function: {name!r}"
            )
        text = f"{listing}\nCall the function {name}: reply with only its arguments as JSON."
        grammar = _grammar(functions[name].get("parameters") or _NO_PARAMETERS)
        messages = render_messages(request.messages, text)
        return Plan("arguments", messages, call_grammar=grammar, function=name)
    call_grammar = _grammar(
        {"oneOf": [_call_schema(name, spec) for name, spec in functions.items()]}
    )
    if choice == "required":
        text = f"{listing}\nCall one of them: reply with only a JSON object {_CALL_SHAPE}."
        return Plan("call", render_messages(request.messages, text), call_grammar=call_grammar)
    if choice in (None, "auto"):
        text = (
            f"{listing}\nTo call a function, reply with only a JSON object {_CALL_SHAPE}. "
            "Otherwise answer the user directly."
        )
        messages = render_messages(request.messages, text)
        return Plan("auto", messages, answer_grammar=answer, call_grammar=call_grammar)
    raise ProviderError("invalid_prompt", f"unsupported tool_choice: {choice!r}")


def parse_call(plan: Plan, text: str) -> ToolCallDelta:
    """Turn grammar-constrained output into the call it encodes.

    The grammar already guarantees the shape; the checks here guard against a gap in llama.cpp's
    schema converter turning into a malformed call downstream. One such gap is known: its
    strings admit raw newlines, which strict JSON forbids; they are read here (not strict) and
    the arguments written out again as valid JSON.
    """
    try:
        value = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        raise ProviderError("server_error", "the local model produced malformed JSON") from exc
    if plan.mode == "arguments":
        name, arguments = plan.function, value
    elif isinstance(value, dict):
        name, arguments = value.get("name"), value.get("arguments")
    else:
        name, arguments = None, None
    if not isinstance(name, str) or arguments is None:
        raise ProviderError("server_error", "the local model produced a malformed tool call")
    return ToolCallDelta(index=0, name=name, arguments=json.dumps(arguments, ensure_ascii=False))


def render_messages(
    messages: list[dict[str, Any]], instructions: str | None
) -> list[dict[str, str]]:
    """Chat messages as plain turns; tool instructions join (or become) the system turn."""
    call_names: dict[str, str] = {}
    turns: list[dict[str, str]] = []
    for message in messages:
        role = message.get("role")
        text = _content_text(message.get("content"))
        if role in ("system", "developer"):
            turns.append({"role": "system", "content": text})
        elif role == "user":
            turns.append({"role": "user", "content": text})
        elif role == "assistant":
            calls = [_call_text(call, call_names) for call in message.get("tool_calls") or []]
            turns.append({"role": "assistant", "content": "\n".join([text, *calls]).strip()})
        elif role == "tool":
            name = call_names.get(str(message.get("tool_call_id")), "the function")
            turns.append({"role": "user", "content": f"{name} says: {text}"})
        else:
            raise ProviderError("invalid_prompt", f"unsupported message role: {role!r}")
    if instructions is None:
        return turns
    if turns and turns[0]["role"] == "system":
        turns[0] = {"role": "system", "content": f"{turns[0]['content']}\n\n{instructions}"}
    else:
        turns.insert(0, {"role": "system", "content": instructions})
    return turns


def _functions(tools: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    functions: dict[str, dict[str, Any]] = {}
    for tool in tools:
        spec = tool.get("function") if tool.get("type") == "function" else None
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise ProviderError("invalid_prompt", "only function tools with a name can be used")
        functions[spec["name"]] = spec
    return functions


def _call_schema(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "name": {"const": name},
            "arguments": spec.get("parameters") or _NO_PARAMETERS,
        },
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def _answer_grammar(response_format: dict[str, Any] | None) -> LlamaGrammar | None:
    kind = (response_format or {}).get("type", "text")
    if kind == "text":
        return None
    if kind == "json_object":
        return _grammar({"type": "object"})
    schema = ((response_format or {}).get("json_schema") or {}).get("schema")
    if kind == "json_schema" and isinstance(schema, dict):
        return _grammar(schema)
    raise ProviderError("invalid_prompt", f"unsupported response_format: {response_format!r}")


def _grammar(schema: dict[str, Any]) -> LlamaGrammar:
    """Convert now, in the caller's task, so a bad schema fails the request before generation."""
    try:
        return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    except Exception as exc:  # the converter raises assorted types for schemas it cannot express
        raise ProviderError(
            "invalid_prompt",
            "The JSON schema uses something the bundled model's grammar cannot express",
            f"llama.cpp's schema converter: {exc!r}",
        ) from exc


def _content_text(content: Any) -> str:
    """Content as text; parts that are not text (images, files) have no place in this model."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(
        part.get("text", "")
        for part in content
        if isinstance(part, dict) and part.get("type") in ("text", "input_text", "output_text")
    )


def _call_text(call: dict[str, Any], call_names: dict[str, str]) -> str:
    """An earlier call, in words. Shown as the JSON the model is asked to produce, it was
    copied: given its results, the model called the same function again rather than answer,
    even where no function was offered, and a run went round until it expired."""
    function = call.get("function") or {}
    name = str(function.get("name", ""))
    call_names[str(call.get("id"))] = name
    raw = function.get("arguments") or "{}"
    try:
        arguments = json.loads(raw)
    except json.JSONDecodeError:
        arguments = raw
    return f"Let me look that up with {name} ({_plain(arguments)})."


def _plain(arguments: Any) -> str:
    """Arguments as `key: value` words, for the same reason as `_call_text`."""
    if isinstance(arguments, dict):
        return ", ".join(f"{key}: {value}" for key, value in arguments.items())
    return str(arguments)
