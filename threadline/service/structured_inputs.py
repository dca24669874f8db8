"""An agent version's structured inputs: named values a request gives (`structured_inputs` of
`responses.create`) that fill the `{{name}}` placeholders of the version's instructions and
tools, so one definition serves many vector stores, files or customers.

A placeholder that is a whole string (`vector_store_ids: ["{{store}}"]`) becomes the value
itself, of whatever JSON type; one inside longer text becomes the value's text (a string as
it is, anything else as JSON). A value is checked against the input's JSON schema (the
`jsonschema` library), a required input must be given, one not given takes its default, and
a name the version does not declare is refused. A placeholder whose input is neither given
nor defaulted stays as written: text like `{{this}}` in instructions may not be a
placeholder at all.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
from jsonschema.exceptions import SchemaError
from pydantic import Field

from threadline.domain.errors import InvalidRequest
from threadline.service.requests import Closed

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")


class StructuredInput(Closed):
    description: str | None = None
    default_value: Any = None
    # `schema` would shadow a method of pydantic's models.
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    required: bool | None = None


def check_declared(declared: dict[str, StructuredInput]) -> None:
    """Each input's schema is a JSON schema, and its default fits it."""
    for name, given in declared.items():
        where = f"definition.structured_inputs.{name}"
        if given.schema_ is not None:
            try:
                jsonschema.validators.validator_for(given.schema_).check_schema(given.schema_)
            except SchemaError as bad:
                raise InvalidRequest(
                    f"Invalid '{where}.schema': {bad.message}.", param=f"{where}.schema"
                ) from bad
        if given.default_value is not None:
            _check_value(given, given.default_value, f"{where}.default_value")


def bound_values(declared: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The value of each declared input (`declared`: as kept in the version) for a request
    that gives `given`."""
    for name in given:
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise InvalidRequest(
                f"Invalid 'structured_inputs': the agent declares no input '{name}'"
                f" (it declares: {known}).",
                param=f"structured_inputs.{name}",
            )
    values: dict[str, Any] = {}
    for name, kept in declared.items():
        spec = StructuredInput.model_validate(kept)
        if name in given:
            _check_value(spec, given[name], f"structured_inputs.{name}")
            values[name] = given[name]
        elif spec.default_value is not None:
            values[name] = spec.default_value
        elif spec.required:
            raise InvalidRequest(
                f"Missing required structured input '{name}'.", param=f"structured_inputs.{name}"
            )
    return values


def filled(value: Any, values: dict[str, Any]) -> Any:
    """`value` (a definition's setting) with the placeholders of `values` filled in."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole is not None and whole.group(1) in values:
            return values[whole.group(1)]
        return _PLACEHOLDER.sub(lambda found: _text(found, values), value)
    if isinstance(value, list):
        return [filled(item, values) for item in value]
    if isinstance(value, dict):
        return {key: filled(item, values) for key, item in value.items()}
    return value


def filled_text(text: str, values: dict[str, Any]) -> str:
    """A text setting (the instructions) with its placeholders filled: text, whatever the
    values' types."""
    return _PLACEHOLDER.sub(lambda found: _text(found, values), text)


def _text(found: re.Match[str], values: dict[str, Any]) -> str:
    name = found.group(1)
    if name not in values:
        return found.group(0)
    value = values[name]
    return value if isinstance(value, str) else json.dumps(value)


def _check_value(spec: StructuredInput, value: Any, where: str) -> None:
    if spec.schema_ is None:
        return
    try:
        jsonschema.validate(value, spec.schema_)
    except jsonschema.ValidationError as bad:
        raise InvalidRequest(f"Invalid '{where}': {bad.message}.", param=where) from bad
