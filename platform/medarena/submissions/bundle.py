"""A submission folder read into memory, validated without running its code.

The trusted process never imports submitted code: it parses ``submission.yaml``, checks that the
entry point's file exists and defines the class (with :mod:`ast`), and hashes the files. The code
first runs in a trial worker, in the dry run.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from medarena.exceptions import SubmissionError
from medarena.submissions.spec import SubmissionSpec
from medarena.yamlfile import format_validation_error, read_yaml_mapping

MAX_BUNDLE_BYTES = 20 * 1024 * 1024
_SKIPPED_PARTS = {"__pycache__", ".git", ".ipynb_checkpoints"}


@dataclass(frozen=True)
class SubmissionBundle:
    """A validated submission: its spec and files (relative path -> bytes), and their hash."""

    spec: SubmissionSpec
    files: dict[str, bytes]
    sha256: str
    source: Path


def _read_files(folder: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_symlink():
            raise SubmissionError(f"{path}: symbolic links are not allowed in a submission")
        if not path.is_file() or _SKIPPED_PARTS & set(rel.parts) or path.suffix == ".pyc":
            continue
        data = path.read_bytes()
        total += len(data)
        if total > MAX_BUNDLE_BYTES:
            raise SubmissionError(
                f"{folder}: the submission is larger than {MAX_BUNDLE_BYTES // 2**20} MiB; "
                "leave data and checkpoints out of the folder"
            )
        files[rel.as_posix()] = data
    return files


def _hash_files(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


def _check_entry_point(folder: Path, spec: SubmissionSpec, files: dict[str, bytes]) -> None:
    entry = spec.entry_point
    where = f"{folder / 'submission.yaml'}: field 'entry_point'"
    if entry.file not in files:
        raise SubmissionError(f"{where}: file {entry.file!r} not found in {folder}")
    path = folder / entry.file
    try:
        tree = ast.parse(files[entry.file], filename=str(path))
    except SyntaxError as exc:
        raise SubmissionError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from exc
    classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    if entry.cls not in classes:
        found = ", ".join(sorted(classes)) or "none"
        raise SubmissionError(
            f"{where}: class {entry.cls!r} is not defined at the top level of {path} "
            f"(classes found: {found})"
        )


def load_submission(folder: Path) -> SubmissionBundle:
    """Read and validate a submission folder; every problem names the file and field."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise SubmissionError(
            f"{folder}: not a folder; a submission is a folder with submission.yaml"
        )
    yaml_path = folder / "submission.yaml"
    if not yaml_path.is_file():
        raise SubmissionError(
            f"{yaml_path}: file not found; a submission folder needs a submission.yaml "
            "(see submissions/template/)"
        )
    data = read_yaml_mapping(yaml_path, error=SubmissionError)
    try:
        spec = SubmissionSpec.model_validate(data)
    except ValidationError as exc:
        raise SubmissionError(format_validation_error(yaml_path, exc)) from exc
    files = _read_files(folder)
    _check_entry_point(folder, spec, files)
    return SubmissionBundle(spec=spec, files=files, sha256=_hash_files(files), source=folder)
