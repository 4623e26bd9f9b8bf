"""The documentation keeps up with the code."""

from __future__ import annotations

import re
import typing
from pathlib import Path

from pydantic import BaseModel

from lrm.settings import Settings


def _section_model(annotation: object) -> type[BaseModel]:
    candidates = [annotation, *typing.get_args(annotation)]
    for candidate in candidates:
        for inner in [candidate, *typing.get_args(candidate)]:
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                return inner
    raise AssertionError(f"no settings model in {annotation!r}")


def test_every_option_is_documented(repo_root: Path) -> None:
    """docs/configuration.md has a row for every key of every settings section, and no extra."""
    text = (repo_root / "docs" / "configuration.md").read_text()
    sections = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    documented: dict[str, set[str]] = {}
    for section in sections:
        heading = re.match(r"`\[+(\w+)\]+`", section)
        assert heading, f"section heading without a [name]: {section.splitlines()[0]}"
        documented[heading.group(1)] = set(re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE))
    for name, field in Settings.model_fields.items():
        model = _section_model(field.annotation)
        assert name in documented, f"[{name}] is not documented"
        assert documented[name] == set(model.model_fields), (
            f"[{name}]: documented {sorted(documented[name])}, "
            f"declared {sorted(model.model_fields)}")
