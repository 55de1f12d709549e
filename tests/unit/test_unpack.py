"""Uploaded packages are unpacked safely: hostile members are refused by name, nothing escapes.

Every hostile archive is built here with :mod:`zipfile`/:mod:`tarfile`. Each refusal must be a
:class:`SubmissionError` naming the archive and the member, leave the target folder empty, and
write nothing anywhere else.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import stat
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medarena.cli import app
from medarena.exceptions import SubmissionError
from medarena.submissions import load_submission
from medarena.submissions.unpack import PackageLimits, _Writer, unpack_package

TEMPLATE = Path(__file__).resolve().parents[2] / "submissions" / "template"


def _tree(root: Path) -> set[Path]:
    return {path.relative_to(root) for path in root.rglob("*")}


def _zip(path: Path, members: Sequence[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as package:
        for name, data in members:
            package.writestr(name, data)
    return path


def _tar(path: Path, members: Sequence[tuple[tarfile.TarInfo, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as package:  # type: ignore[call-overload]
        for info, data in members:
            info.size = len(data)
            package.addfile(info, io.BytesIO(data) if data else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def _refused(tmp_path: Path, archive: Path, member: str, problem: str, **limits: int) -> str:
    """Unpack ``archive`` and check the refusal; returns its message."""
    dest = tmp_path / "out"
    before = _tree(tmp_path)
    with pytest.raises(SubmissionError) as caught:
        unpack_package(archive, dest, limits=PackageLimits(**limits))
    message = str(caught.value)
    assert str(archive) in message and repr(member) in message, message
    assert problem in message, message
    assert list(dest.iterdir()) == [], "a refused package leaves nothing in dest"
    assert _tree(tmp_path) - before <= {Path("out")}, "nothing is written outside dest"
    return message


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../x.py", "climbs out of the package"),
        ("a/../../x.py", "climbs out of the package"),
        ("/etc/medarena-test-x", "absolute"),
        ("C:/x.py", "absolute"),
        ("C:x.py", "absolute"),
        ("..\\x.py", "backslash"),
        ("a\x01b.py", "control character"),
        ("evil\u202eyp.txt", "control character"),
        ("/".join(["d"] * 17) + "/x.py", "more than 16 levels deep"),
        ("x" * 256 + ".py", "too long"),
    ],
)
def test_zip_member_names_that_escape_or_trick_are_refused(
    tmp_path: Path, name: str, problem: str
) -> None:
    archive = _zip(tmp_path / "sub.zip", [("model.py", b"x = 1\n"), (name, b"boom\n")])
    _refused(tmp_path, archive, name, problem)
    assert not Path("/etc/medarena-test-x").exists()


def test_an_absolute_path_into_the_test_folder_is_refused(tmp_path: Path) -> None:
    name = str(tmp_path / "planted.py")
    archive = _zip(tmp_path / "sub.zip", [(name, b"boom\n")])
    _refused(tmp_path, archive, name, "absolute")
    assert not (tmp_path / "planted.py").exists()


def test_a_nul_in_a_zip_name_is_refused(tmp_path: Path) -> None:
    """zipfile cuts names at a NUL when reading; the original name is checked."""
    archive = _zip(tmp_path / "sub.zip", [("aXb.py", b"x = 1\n")])
    archive.write_bytes(archive.read_bytes().replace(b"aXb.py", b"a\0b.py"))
    _refused(tmp_path, archive, "a\0b.py", "control character")


@pytest.mark.parametrize(
    ("kind", "problem"),
    [(stat.S_IFLNK, "symbolic links"), (stat.S_IFCHR, "device files"), (stat.S_IFIFO, "FIFO")],
)
def test_zip_links_and_special_files_are_refused(tmp_path: Path, kind: int, problem: str) -> None:
    info = zipfile.ZipInfo("link.py")
    info.create_system = 3  # Unix: the high bits of external_attr are st_mode
    info.external_attr = (kind | 0o777) << 16
    archive = _zip(tmp_path / "sub.zip", [("model.py", b"x = 1\n"), (info, b"/etc/passwd")])
    _refused(tmp_path, archive, "link.py", problem)


@pytest.mark.parametrize(
    ("kind", "linkname", "problem"),
    [
        (tarfile.SYMTYPE, "/etc/passwd", "symbolic links are not allowed"),
        (tarfile.SYMTYPE, "../../outside", "symbolic links are not allowed"),
        (tarfile.LNKTYPE, "model.py", "hard links are not allowed"),
        (tarfile.CHRTYPE, "", "device files"),
        (tarfile.BLKTYPE, "", "device files"),
        (tarfile.FIFOTYPE, "", "device files, FIFOs"),
    ],
)
def test_tar_links_and_devices_are_refused(
    tmp_path: Path, kind: bytes, linkname: str, problem: str
) -> None:
    archive = _tar(
        tmp_path / "sub.tar.gz",
        [(_member("model.py"), b"x = 1\n"), (_member("special", kind, linkname), b"")],
    )
    _refused(tmp_path, archive, "special", problem)


def test_a_tar_traversal_after_a_good_member_removes_what_was_written(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "sub.tgz",
        [(_member("pkg/model.py"), b"x = 1\n"), (_member("../../escape.py"), b"boom\n")],
    )
    _refused(tmp_path, archive, "../../escape.py", "climbs out of the package")
    assert not (tmp_path.parent / "escape.py").exists()


def test_a_zip_bomb_is_refused_without_writing_it(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with (
        zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as package,
        package.open("zeros.bin", "w", force_zip64=True) as member,
    ):
        chunk = bytes(2**20)
        for _ in range(200):
            member.write(chunk)
    assert archive.stat().st_size < 2**20
    start = time.perf_counter()
    message = _refused(tmp_path, archive, "zeros.bin", "unpacks to more than")
    assert "20 MiB" in message or "times its own size" in message
    assert time.perf_counter() - start < 1.0


def test_a_bomb_within_the_size_caps_fails_on_the_ratio(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "sub.zip", [("zeros.bin", bytes(5 * 2**20))])
    _refused(tmp_path, archive, "zeros.bin", "100 times its own size")


def test_a_tar_gz_bomb_is_refused(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "sub.tar.gz", [(_member("zeros.bin"), bytes(30 * 2**20))])
    _refused(tmp_path, archive, "zeros.bin", "unpacks to more than 20 MiB")


def test_file_and_total_size_caps(tmp_path: Path) -> None:
    noise = [(f"f{i}.bin", random.Random(i).randbytes(128_000)) for i in range(3)]
    archive = _zip(tmp_path / "sub.zip", noise)  # incompressible
    _refused(tmp_path, archive, "f0.bin", "the file unpacks to more than", max_file_bytes=100_000)
    _refused(tmp_path, archive, "f2.bin", "in all by this member", max_total_bytes=300_000)


def test_the_byte_count_stops_a_stream_longer_than_its_header_says(tmp_path: Path) -> None:
    """Sizes are counted on the bytes read, not taken from headers: the write stops at the cap."""
    dest = tmp_path / "out"
    dest.mkdir()
    limits = PackageLimits(max_file_bytes=2**20)
    writer = _Writer(tmp_path / "sub.zip", dest, limits, package_bytes=2**30)
    with pytest.raises(SubmissionError, match=r"member 'big\.bin': the file unpacks to more than"):
        writer.add_file("big.bin", 0, io.BytesIO(bytes(20 * 2**20)))
    assert (dest / "big.bin").stat().st_size <= 2**20


def test_a_zip_whose_headers_understate_a_size_is_refused(tmp_path: Path) -> None:
    data = b"print('hello')\n" * 100
    archive = _zip(tmp_path / "sub.zip", [("model.py", data)])
    raw = bytearray(archive.read_bytes())
    size = len(data).to_bytes(4, "little")
    for offset in (i for i in range(len(raw) - 4) if raw[i : i + 4] == size):
        raw[offset : offset + 4] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    _refused(tmp_path, archive, "model.py", "not a valid zip archive")


def test_too_many_members(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "sub.zip", [(f"f{i}.py", b"") for i in range(201)])
    _refused(tmp_path, archive, "f200.py", "more than 200 members")


@pytest.mark.parametrize(
    ("names", "member", "problem"),
    [
        (["model.py", "model.py"], "model.py", "appears twice"),
        (["pkg/a.py", "./pkg//a.py"], "./pkg//a.py", "appears twice"),
        (["pkg", "pkg/a.py"], "pkg/a.py", "appears twice"),
        (["pkg/a.py", "pkg"], "pkg", "both a file and a folder"),
    ],
)
def test_duplicate_names_are_refused(
    tmp_path: Path, names: list[str], member: str, problem: str
) -> None:
    archive = _zip(tmp_path / "sub.zip", [(name, b"x = 1\n") for name in names])
    _refused(tmp_path, archive, member, problem)
    archive = _tar(tmp_path / "sub.tar", [(_member(name), b"x = 1\n") for name in names], "w")
    _refused(tmp_path, archive, member, problem)


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("sub.zip", b"print('not a zip')\n" * 40, "not a zip archive"),
        ("sub.tar.gz", b"PK\x03\x04" + bytes(600), r"not a tar\.gz archive \(it looks like a zip"),
        ("sub.tgz", b"\x1f\x8b" + bytes(600), "not a valid tar archive"),
        ("sub.tar", b"hello" * 200, "not a tar archive"),
        ("sub.zip", b"PK\x03\x04" + bytes(600), "not a valid zip archive"),
        ("sub.rar", b"Rar!\x1a\x07\x00" + bytes(600), "unsupported package type"),
    ],
)
def test_files_that_are_not_the_archive_they_claim(
    tmp_path: Path, name: str, content: bytes, problem: str
) -> None:
    archive = tmp_path / name
    archive.write_bytes(content)
    with pytest.raises(SubmissionError, match=problem) as caught:
        unpack_package(archive, tmp_path / "out")
    assert str(archive) in str(caught.value)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_a_gzip_that_is_not_a_tar_is_refused(tmp_path: Path) -> None:
    import gzip

    archive = tmp_path / "sub.tar.gz"
    archive.write_bytes(gzip.compress(b"just text, no tar headers\n" * 50))
    with pytest.raises(SubmissionError, match="not a valid tar archive"):
        unpack_package(archive, tmp_path / "out")


def test_modes_and_owners_of_the_archive_are_not_kept(tmp_path: Path) -> None:
    script = _member("bin/run.sh")
    script.mode, script.uid, script.gid = 0o4777, 4242, 4242
    folder = _member("bin", tarfile.DIRTYPE)
    folder.mode = 0o777
    archive = _tar(tmp_path / "sub.tar.gz", [(folder, b""), (script, b"echo hi\n")])
    dest = tmp_path / "out"
    digest = unpack_package(archive, dest)
    assert digest == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert stat.S_IMODE((dest / "bin").stat().st_mode) == 0o700
    assert stat.S_IMODE((dest / "bin" / "run.sh").stat().st_mode) == 0o600
    assert (dest / "bin" / "run.sh").read_bytes() == b"echo hi\n"


def _pack_zip(folder: Path, archive: Path, prefix: str = "") -> None:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as package:
        for path in sorted(folder.rglob("*")):
            package.write(path, prefix + path.relative_to(folder).as_posix())


def _pack_tar(folder: Path, archive: Path, prefix: str = "") -> None:
    mode = "w" if archive.suffix == ".tar" else "w:gz"
    with tarfile.open(archive, mode) as package:  # type: ignore[call-overload]
        package.add(folder, arcname=prefix or ".")


@pytest.mark.parametrize(
    ("name", "pack", "prefix"),
    [
        ("template.zip", _pack_zip, ""),
        ("template.zip", _pack_zip, "template/"),
        ("template.tar.gz", _pack_tar, ""),
        ("template.tgz", _pack_tar, "template"),
        ("template.tar", _pack_tar, ""),
    ],
)
def test_a_packaged_template_loads_like_the_folder(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    pack: Callable[[Path, Path, str], None],
    prefix: str,
) -> None:
    archive = tmp_path / name
    pack(TEMPLATE, archive, prefix)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    folder_bundle = load_submission(TEMPLATE)
    bundle = load_submission(archive)
    assert bundle.sha256 == folder_bundle.sha256
    assert bundle.files == folder_bundle.files and bundle.spec == folder_bundle.spec
    assert bundle.package_sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert bundle.source == archive and folder_bundle.package_sha256 is None
    assert list(scratch.iterdir()) == [], "the private temporary folder is removed"


def test_a_hostile_package_is_refused_by_load_submission(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _zip(tmp_path / "sub.zip", [("submission.yaml", b"name: x\n"), ("../x.py", b"")])
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(SubmissionError, match=r"member '\.\./x\.py': the path climbs out"):
        load_submission(archive)
    assert list(scratch.iterdir()) == [] and not (tmp_path / "x.py").exists()


def test_errors_inside_a_package_name_the_package(tmp_path: Path) -> None:
    archive = _zip(
        tmp_path / "sub.zip",
        [("submission.yaml", b"name: x\nentry_point: [oops\n"), ("model.py", b"")],
    )
    with pytest.raises(SubmissionError, match=r"sub\.zip/submission\.yaml:3:1: invalid YAML"):
        load_submission(archive)
    archive = _zip(tmp_path / "other.zip", [("README.md", b"hello\n")])
    with pytest.raises(SubmissionError, match=r"other\.zip/submission\.yaml: file not found"):
        load_submission(archive)


def test_medarena_submit_takes_a_package(catalogue: Path, tmp_path: Path) -> None:
    env = {"MEDARENA_HOME": str(tmp_path / "home"), "MEDARENA_TASKS_DIR": str(catalogue)}
    runner = CliRunner()
    hostile = _zip(tmp_path / "hostile.zip", [("../../x.py", b"boom\n")])
    result = runner.invoke(app, ["submit", str(hostile), "--task", "tiny-ct"], env=env)
    assert result.exit_code == 2, result.output
    assert "'../../x.py'" in " ".join(result.output.split()) and "Traceback" not in result.output
    good = tmp_path / "template.zip"
    _pack_zip(TEMPLATE, good)
    args = ["submit", str(good), "--task", "tiny-ct", "--queue", "--format", "json"]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["status"] == "queued"
