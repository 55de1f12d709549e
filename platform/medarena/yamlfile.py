"""Reading the platform's YAML files with errors that name the file, line and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from medarena.exceptions import UserError


def read_yaml_mapping(path: Path, *, error: type[UserError]) -> dict[str, Any]:
    """Parse ``path`` as a YAML mapping or raise ``error`` saying what is wrong and where."""
    if not path.is_file():
        raise error(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{where}: invalid YAML: {problem}") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not a UTF-8 text file") from exc
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of fields at the top level")
    return data


def format_validation_error(path: Path, exc: ValidationError) -> str:
    """One line per problem: ``file: field.sub: message``."""
    lines = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: field '{field}': {message}")
    return "\n".join(lines)
