"""The campaign's template language: `{name}` placeholders, `{{` and `}}` for literal braces.

Only identifiers and dotted paths are placeholders, so Python snippets such as `{'a': 1}` in a
`python -c` command pass through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*)\}")


def placeholders(text: str) -> list[str]:
    """The placeholder names used in `text`."""
    return [m.group(1) for m in _PLACEHOLDER.finditer(text) if m.group(1)]


def render(text: str, values: Mapping[str, object], quote: Callable[[str], str] = str) -> str:
    """Substitute every placeholder; a name missing from `values` raises KeyError.

    `quote` wraps each substituted value (`shlex.quote` for `shell: true` commands, so a value is one
    word of data to the shell, never code).
    """
    if "{" not in text and "}" not in text:
        return text   # most of a command's words: nothing to substitute (a matrix cell renders them all)

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "{{":
            return "{"
        if match.group(0) == "}}":
            return "}"
        return quote(str(values[match.group(1)]))

    return _PLACEHOLDER.sub(substitute, text)
