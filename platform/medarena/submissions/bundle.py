"""A submission folder read into memory, validated without running its code.

The trusted process never imports submitted code: it parses ``submission.yaml``, checks that the
entry point's file exists and defines the class (with :mod:`ast`), and hashes the files. The code
first runs in a trial worker, in the dry run. An uploaded package (.zip, .tar.gz/.tgz, .tar) is
unpacked safely into a private temporary folder first (:mod:`medarena.submissions.unpack`).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from medarena.exceptions import SubmissionError
from medarena.submissions.spec import SubmissionSpec
from medarena.submissions.unpack import PackageLimits, bad_character, is_package, unpack_package
from medarena.yamlfile import format_validation_error, read_yaml_mapping

MAX_BUNDLE_BYTES = 20 * 1024 * 1024
MAX_BUNDLE_FILES = PackageLimits.max_files
_SKIPPED_PARTS = {"__pycache__", ".git", ".ipynb_checkpoints"}


@dataclass(frozen=True)
class SubmissionBundle:
    """A validated submission: its spec and files (relative path -> bytes), and their hash.

    ``sha256`` hashes the files, so a package and its unpacked folder hash alike; ``source`` is
    the folder or package loaded, and ``package_sha256`` the package file's own hash (or None).
    """

    spec: SubmissionSpec
    files: dict[str, bytes]
    sha256: str
    source: Path
    package_sha256: str | None = None


def _read_files(folder: Path, shown: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_symlink():
            raise SubmissionError(f"{shown / rel}: symbolic links are not allowed in a submission")
        if not path.is_file() or _SKIPPED_PARTS & set(rel.parts) or path.suffix == ".pyc":
            continue
        if (bad := bad_character(str(rel))) is not None:
            raise SubmissionError(
                f"{str(shown / rel)!r}: the name holds a control character or bytes that are not "
                f"UTF-8 ({bad!r}); rename the file"
            )
        if len(files) == MAX_BUNDLE_FILES:
            raise SubmissionError(
                f"{shown}: the submission has more than {MAX_BUNDLE_FILES} files; "
                "leave data, checkpoints and caches out of the folder"
            )
        data = path.read_bytes()
        total += len(data)
        if total > MAX_BUNDLE_BYTES:
            raise SubmissionError(
                f"{shown}: the submission is larger than {MAX_BUNDLE_BYTES // 2**20} MiB; "
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


def _check_entry_point(shown: Path, spec: SubmissionSpec, files: dict[str, bytes]) -> None:
    entry = spec.entry_point
    where = f"{shown / 'submission.yaml'}: field 'entry_point'"
    if entry.file not in files:
        raise SubmissionError(f"{where}: file {entry.file!r} not found in {shown}")
    path = shown / entry.file
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


def load_submission(path: Path) -> SubmissionBundle:
    """Read and validate a submission folder or package; every problem names the file and field.

    A package's messages name files inside it as ``package.zip/submission.yaml``; its files may
    sit at its top level or in one folder there.
    """
    path = path.resolve()
    if path.is_dir():
        return _load_folder(path, shown=path)
    if not is_package(path):
        raise SubmissionError(
            f"{path}: not a folder or a package; a submission is a folder with submission.yaml, "
            "or a .zip, .tar.gz/.tgz or .tar of one"
        )
    with tempfile.TemporaryDirectory(prefix="medarena-package-") as tmp:
        folder = Path(tmp) / "package"
        package_sha256 = unpack_package(path, folder)
        shown = path
        entries = list(folder.iterdir())
        if not (folder / "submission.yaml").exists() and len(entries) == 1 and entries[0].is_dir():
            folder, shown = entries[0], path / entries[0].name
        bundle = _load_folder(folder, shown=shown)
    return dataclasses.replace(bundle, source=path, package_sha256=package_sha256)


def _load_folder(folder: Path, *, shown: Path) -> SubmissionBundle:
    """Load ``folder``; messages name its files under ``shown``."""
    yaml_path = folder / "submission.yaml"
    if not yaml_path.is_file():
        raise SubmissionError(
            f"{shown / 'submission.yaml'}: file not found; a submission folder needs a "
            "submission.yaml (see submissions/template/)"
        )
    data = read_yaml_mapping(yaml_path, error=SubmissionError, shown_as=shown / "submission.yaml")
    try:
        spec = SubmissionSpec.model_validate(data)
    except ValidationError as exc:
        raise SubmissionError(format_validation_error(shown / "submission.yaml", exc)) from exc
    files = _read_files(folder, shown)
    _check_entry_point(shown, spec, files)
    return SubmissionBundle(spec=spec, files=files, sha256=_hash_files(files), source=shown)
