"""Renaming our state dicts into other projects' key layouts, to test the converters on
checkpoints shaped like the released ones (which cannot be downloaded in tests)."""

from __future__ import annotations

import re


def relabel(state: dict, rules: list) -> dict:
    """Our state dict under another layout's names: the first matching rule renames a key
    (a None replacement drops it, for layouts without a mean shift)."""
    out = {}
    for key, value in state.items():
        for pattern, replacement in rules:
            if m := re.fullmatch(pattern, key):
                if replacement is not None:
                    new = replacement(m) if callable(replacement) else m.expand(replacement)
                    out[new] = value
                break
        else:
            raise AssertionError(f"no rule for {key}")
    return out
