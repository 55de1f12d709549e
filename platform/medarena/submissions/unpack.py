"""Unpacking an uploaded submission package (.zip, .tar.gz/.tgz, .tar) without trusting it.

An upload may be hostile: member names that climb out of the target folder, links, device
files, or a small archive that unpacks to gigabytes. Every member name is checked before it is
written, only regular files and folders are created (mode 0o600/0o700, never the archive's
modes or owners), and sizes are counted on the bytes actually unpacked, in chunks, so a cap
stops the unpacking as soon as it is passed; on any refusal the target folder is emptied.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from medarena.exceptions import SubmissionError

_KINDS = {"zip": (".zip",), "tar.gz": (".tar.gz", ".tgz"), "tar": (".tar",)}
PACKAGE_SUFFIXES = tuple(suffix for suffixes in _KINDS.values() for suffix in suffixes)
_CHUNK = 64 * 1024
_MEMBER_OVERHEAD = 4096  # tar header blocks, padding and long-name records allowed per member
_NAME_BYTES = 1024
_PART_BYTES = 255
_MAKE_IT_RELATIVE = (
    "make the package from inside the submission folder so that every path is relative "
    "(e.g. `cd my-submission && zip -r ../my-submission.zip .`)"
)
_KEEP_IT_SMALL = "leave data, checkpoints and caches out; a submission is code and settings"


@dataclass(frozen=True)
class PackageLimits:
    """Caps on an uploaded package, checked on the bytes actually unpacked."""

    max_files: int = 200
    """Most members (files and folders)."""
    max_total_bytes: int = 50 * 2**20
    """Most bytes all files unpack to."""
    max_file_bytes: int = 20 * 2**20
    """Most bytes one file unpacks to."""
    max_ratio: float = 100.0
    """Most bytes unpacked per byte of the package file (zip bombs)."""
    max_depth: int = 16
    """Most path components in a member name."""


def bad_character(name: str) -> str | None:
    """The first control or format character of ``name``, or a byte that was not UTF-8 (a
    surrogate escape, as ``os.fsdecode`` gives it); None when the name is clean."""
    return next((c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Cs")), None)


def is_package(path: Path) -> bool:
    """Whether ``path`` is named like a package ``unpack_package`` accepts."""
    return path.name.lower().endswith(PACKAGE_SUFFIXES)


def unpack_package(archive: Path, dest: Path, *, limits: PackageLimits = PackageLimits()) -> str:
    """Unpack ``archive`` into ``dest`` (missing or empty) and return the archive's SHA-256.

    Raises :class:`SubmissionError` naming the archive, the offending member and the fix; ``dest``
    is then left empty.
    """
    if not archive.is_file():
        raise SubmissionError(f"{archive}: file not found")
    size = archive.stat().st_size
    # Bytes a package, or its tar stream, may need for files within the caps plus headers.
    most = limits.max_total_bytes + _MEMBER_OVERHEAD * (limits.max_files + 16)
    if size > most:
        raise SubmissionError(
            f"{archive}: the package is larger than {most // 2**20} MiB; {_KEEP_IT_SMALL}"
        )
    digest = hashlib.sha256()
    with archive.open("rb") as stream:
        head = stream.read(512)
        digest.update(head)
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    kind = _kind(archive, head)
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ValueError(f"{dest}: unpack into a new or empty folder")
    writer = _Writer(archive, dest, limits, package_bytes=size)
    try:
        if kind == "zip":
            _unpack_zip(writer)
        else:
            _unpack_tar(writer, gzipped=kind == "tar.gz", most=most)
    except BaseException:
        for child in dest.iterdir():
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
        raise
    return digest.hexdigest()


def _kind(archive: Path, head: bytes) -> str:
    """The package's type, from its name and confirmed by its first bytes."""
    name = archive.name.lower()
    expected = next((k for k, ends in _KINDS.items() if name.endswith(ends)), None)
    if expected is None:
        raise SubmissionError(
            f"{archive}: unsupported package type; upload a folder or a .zip, .tar.gz/.tgz or .tar"
        )
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        found = "zip"
    elif head[:2] == b"\x1f\x8b":
        found = "tar.gz"
    elif head[257:262] == b"ustar":
        found = "tar"
    else:
        found = "unknown"
    if found != expected:
        looks = "" if found == "unknown" else f" (it looks like a {found} archive)"
        raise SubmissionError(
            f"{archive}: the file is not a {expected} archive{looks}; make the package with "
            "zip or tar and keep its usual extension"
        )
    return expected


class _Source(Protocol):
    def read(self, size: int, /) -> bytes: ...


class _Writer:
    """Creates members under ``dest`` after checking their names, and counts what it writes."""

    def __init__(self, archive: Path, dest: Path, limits: PackageLimits, *, package_bytes: int):
        self.archive = archive
        self.dest = dest
        self.limits = limits
        self.max_total = min(limits.max_total_bytes, int(limits.max_ratio * package_bytes))
        self.members = 0
        self.total = 0
        self.files: set[tuple[str, ...]] = set()
        self.dirs: set[tuple[str, ...]] = {()}

    def refuse(self, member: str, problem: str, fix: str) -> SubmissionError:
        return SubmissionError(f"{self.archive}: member {member!r}: {problem}; {fix}")

    def count(self, member: str) -> None:
        self.members += 1
        if self.members > self.limits.max_files:
            raise self.refuse(
                member, f"the package has more than {self.limits.max_files} members", _KEEP_IT_SMALL
            )

    def parts(self, member: str) -> tuple[str, ...]:
        """The member's path components, once the name is known to stay inside ``dest``."""
        bad = bad_character(member)
        if bad is not None:
            raise self.refuse(
                member,
                f"the name holds a control character or bytes that are not UTF-8 ({bad!r})",
                "rename the file",
            )
        if "\\" in member:
            raise self.refuse(
                member,
                "the name holds a backslash",
                "use '/' between folders: " + _MAKE_IT_RELATIVE,
            )
        if member.startswith("/") or (member[1:2] == ":" and member[:1].isalpha()):
            raise self.refuse(member, "the path is absolute", _MAKE_IT_RELATIVE)
        parts = tuple(p for p in member.split("/") if p not in ("", "."))
        if ".." in parts:
            raise self.refuse(
                member, "the path climbs out of the package with '..'", _MAKE_IT_RELATIVE
            )
        if len(parts) > self.limits.max_depth:
            raise self.refuse(
                member,
                f"the path is nested more than {self.limits.max_depth} levels deep",
                "flatten the folder structure",
            )
        if len(member.encode()) > _NAME_BYTES or any(len(p.encode()) > _PART_BYTES for p in parts):
            raise self.refuse(member, "the name is too long", "use shorter names")
        if parts in self.files or any(parts[:i] in self.files for i in range(1, len(parts))):
            raise self.refuse(
                member,
                "the name appears twice in the package (as a file or as a file's folder)",
                "make the package again so that each file appears once",
            )
        return parts

    def add_dir(self, member: str) -> None:
        self._make_dirs(self.parts(member))

    def add_file(self, member: str, declared: int, source: _Source) -> None:
        """Write one file, streamed in chunks; ``declared`` (the header's size) fails fast."""
        parts = self.parts(member)
        if not parts:
            raise self.refuse(member, "the file has no name", "make the package again")
        if parts in self.dirs:
            raise self.refuse(
                member, "the name is both a file and a folder", "make the package again"
            )
        self._check_size(member, declared, self.total + declared)
        self._make_dirs(parts[:-1])
        self.files.add(parts)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        written = 0
        with os.fdopen(os.open(self.dest.joinpath(*parts), flags, 0o600), "wb") as out:
            while chunk := source.read(_CHUNK):
                written += len(chunk)
                self.total += len(chunk)
                self._check_size(member, written, self.total)
                out.write(chunk)

    def _check_size(self, member: str, file_bytes: int, total_bytes: int) -> None:
        mib = 2**20
        if file_bytes > self.limits.max_file_bytes:
            problem = f"the file unpacks to more than {self.limits.max_file_bytes // mib} MiB"
        elif total_bytes > self.limits.max_total_bytes:
            problem = (
                f"the package unpacks to more than {self.limits.max_total_bytes // mib} MiB "
                "in all by this member"
            )
        elif total_bytes > self.max_total:
            problem = (
                f"the package unpacks to more than {self.limits.max_ratio:g} times its own size "
                "by this member (a zip bomb?)"
            )
        else:
            return
        raise self.refuse(member, problem, _KEEP_IT_SMALL)

    def _make_dirs(self, parts: tuple[str, ...]) -> None:
        for i in range(1, len(parts) + 1):
            if parts[:i] not in self.dirs:
                self.dest.joinpath(*parts[:i]).mkdir(mode=0o700)
                self.dirs.add(parts[:i])


_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}


def _unpack_zip(writer: _Writer) -> None:
    member = ""
    try:
        with writer.archive.open("rb") as raw, zipfile.ZipFile(raw) as package:
            for info in package.infolist():
                member = info.orig_filename  # before zipfile cuts the name at a NUL
                writer.count(member)
                kind = stat.S_IFMT(info.external_attr >> 16)
                if kind == stat.S_IFLNK:
                    raise writer.refuse(
                        member, "symbolic links are not allowed",
                        "put the file it points to in the package instead",
                    )  # fmt: skip
                if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                    raise writer.refuse(
                        member, "device files, FIFOs and sockets are not allowed", "leave it out"
                    )
                if info.flag_bits & 0x1:
                    raise writer.refuse(
                        member, "the member is encrypted", "make the package without a password"
                    )
                if info.compress_type not in _ZIP_METHODS:
                    raise writer.refuse(
                        member,
                        f"compression method {info.compress_type} is not supported",
                        "make the package with plain zip (deflate)",
                    )
                if info.is_dir() or kind == stat.S_IFDIR:
                    writer.add_dir(member)
                    continue
                with package.open(info) as source:
                    writer.add_file(member, info.file_size, source)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        where = f"member {member!r}: " if member else ""
        raise SubmissionError(
            f"{writer.archive}: {where}not a valid zip archive ({exc}); make the package again"
        ) from exc


class _CappedStream(io.RawIOBase):
    """Reads ``inner`` and refuses the package once more than ``most`` bytes came out of it."""

    def __init__(self, inner: _Source, most: int, archive: Path) -> None:
        super().__init__()
        self.inner = inner
        self.most = most
        self.archive = archive
        self.seen = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        data = self.inner.read(min(size, _CHUNK) if size >= 0 else _CHUNK)
        self.seen += len(data)
        if self.seen > self.most:
            raise SubmissionError(
                f"{self.archive}: the tar stream unpacks to more than {self.most // 2**20} MiB "
                f"of files, headers and padding; {_KEEP_IT_SMALL}"
            )
        return data


def _unpack_tar(writer: _Writer, *, gzipped: bool, most: int) -> None:
    member = ""
    try:
        with writer.archive.open("rb") as raw:
            inner: io.BufferedIOBase = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
            with (
                inner,
                tarfile.open(
                    fileobj=_CappedStream(inner, most, writer.archive),
                    mode="r|",
                    encoding="utf-8",
                ) as package,
            ):
                for info in package:
                    member = info.name
                    writer.count(member)
                    if info.issym() or info.islnk():
                        raise writer.refuse(
                            member,
                            f"{'symbolic' if info.issym() else 'hard'} links are not allowed "
                            f"(it points to {info.linkname!r})",
                            "put the file it points to in the package instead",
                        )
                    if info.isdir():
                        writer.add_dir(member)
                        continue
                    if not info.isreg():
                        raise writer.refuse(
                            member,
                            "device files, FIFOs and other special members are not allowed",
                            "leave it out",
                        )
                    source = package.extractfile(info)
                    assert source is not None  # a regular member always has a file object
                    with source:
                        writer.add_file(member, info.size, source)
    except (tarfile.TarError, zlib.error, EOFError, gzip.BadGzipFile) as exc:
        where = f"near member {member!r}: " if member else ""
        raise SubmissionError(
            f"{writer.archive}: {where}not a valid tar archive ({exc}); make the package again"
        ) from exc
