"""What a model name in the models configuration means: one name, or a pattern of names.

The API process (which refuses a run naming a model nobody serves) and the worker (which
routes the run's calls) must read an entry the same way, so the rule is written once, here.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

# fnmatch's special characters; a name without any is matched exactly.
_PATTERN_CHARACTERS = frozenset("*?[")


def is_pattern(name: str) -> bool:
    """Whether `name` stands for many names (`gpt-4o*`) rather than for itself."""
    return not _PATTERN_CHARACTERS.isdisjoint(name)


def name_matches(entry: str, model: str) -> bool:
    """Whether the entry `entry` covers the model name `model`: exactly, or by its pattern
    (case-sensitive, as model names are: `GPT-4o` is not `gpt-4o`)."""
    return fnmatchcase(model, entry) if is_pattern(entry) else model == entry
