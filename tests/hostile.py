"""The hostile-input corpus of issue 11, made by script (no stored binaries), run through the real
CLI in-process: real files, real SQLite, real MTCNN and model.

Every case runs one ``faketagger`` command and is judged on what issue 11 demands: no traceback,
every error one line starting ``faketagger:``, the expected exit status and message, originals
never changed, no existing file replaced (unless the case passes --force), and after the case a
consistent ledger (no pending job, no burned, reused or duplicate serial, every tagged file known).

``python -m tests.hostile`` runs the corpus and prints the summary that docs/RELIABILITY.md quotes;
tests/test_hostile.py runs it under pytest.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import sqlite3
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "sample.jpg"
PASSPHRASE = "correct horse battery staple"


@dataclass
class Case:
    name: str
    argv: list[str]
    code: int | tuple[int, ...]  # expected exit status
    expect: str = ""  # regex that stdout + stderr must match
    env: dict[str, str] = field(default_factory=dict)
    setup: Callable[[], None] | None = None
    may_change: tuple[Path, ...] = ()  # files the case may rewrite (--force targets)
    inputs: int = 1  # hostile inputs this case tries (a batch tries one per file)
    serials_elsewhere: bool = False  # a restored identity: its serials were used on another home


@dataclass
class Result:
    case: Case
    code: int
    out: str
    err: str
    problems: list[str]


# --- the files -----------------------------------------------------------------------------------


def _face_rgb() -> np.ndarray:
    return np.asarray(Image.open(SAMPLE).convert("RGB"))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but whose data is tiny (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def make_images(folder: Path) -> dict[str, str]:
    """Write the image corpus into *folder*; returns {file name: what the run must say}, where
    "tagged" means a tagged copy is expected, "noface" a note and nothing written, and anything
    else a regex the file's one-line error must match."""
    folder.mkdir(parents=True, exist_ok=True)
    face = _face_rgb()
    jpeg = SAMPLE.read_bytes()
    cases: dict[str, str] = {}

    def save(name: str, im: Image.Image, expect: str, **kw) -> None:
        im.save(folder / name, **kw)
        cases[name] = expect

    def raw(name: str, data: bytes, expect: str) -> None:
        (folder / name).write_bytes(data)
        cases[name] = expect

    # Good photos, in every format and several modes
    save("face.jpg", Image.fromarray(face), "tagged", quality=95)
    save("face.png", Image.fromarray(face), "tagged")
    save("face.webp", Image.fromarray(face), "tagged", quality=95)
    save("face.tif", Image.fromarray(face), "tagged")
    save("face-rgba.png", Image.fromarray(face).convert("RGBA"), "tagged")
    save("face-grey.png", Image.fromarray(face).convert("L"), "tagged|noface")
    save("face-16bit.png", Image.fromarray(face).convert("L").convert("I;16"), "tagged|noface")
    save("face-palette.png", Image.fromarray(face).convert("P"), "tagged|noface")
    save("face-cmyk.jpg", Image.fromarray(face).convert("CMYK"), "tagged|noface", quality=95)
    save("face-1bit.tif", Image.fromarray(face).convert("1"), "tagged|noface")
    for orientation in (0, 9, 255):  # EXIF orientations that do not exist
        exif = Image.Exif()
        exif[0x0112] = orientation
        save(f"face-orient{orientation}.jpg", Image.fromarray(face), "tagged", exif=exif)
    save("face-junk-exif.jpg", Image.fromarray(face), "tagged",
         exif=b"Exif\x00\x00" + os.urandom(64))
    icc = _big_icc()
    save("face-big-icc.png", Image.fromarray(face), "tagged", icc_profile=icc)
    # Names a shell user can make
    for name in ("sp ace.jpg", "ünïcødé 照片.jpg", "new\nline.jpg", "-dash.jpg", "UPPER.JPG"):
        raw(name, jpeg, "tagged")
    raw_name = os.fsdecode(b"latin1-\xe9\xff.jpg")  # not valid UTF-8
    raw(raw_name, jpeg, "tagged")
    # No face
    save("flat.png", Image.new("RGB", (300, 200), (120, 120, 120)), "noface")
    save("noise.jpg", Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300, 3),
                                                                      dtype=np.uint8)), "noface")
    # Tiny and extreme shapes (MTCNN's smallest window does not fit)
    for w, h in ((1, 1), (2, 2), (10, 10), (23, 23), (24, 24), (23, 500), (8000, 40), (40, 8000),
                 (5000, 30), (3, 4000)):
        save(f"tiny-{w}x{h}.png", Image.new("RGB", (w, h), (200, 180, 160)), "noface")
    save("tiny-1x1.jpg", Image.new("RGB", (1, 1)), "noface")
    save("tiny-1x1.webp", Image.new("RGB", (1, 1)), "noface")
    # Broken bytes
    for frac in (0.02, 0.3, 0.6, 0.95):
        raw(f"cut-{int(frac * 100)}.jpg", jpeg[: int(len(jpeg) * frac)], "truncated|corrupt|valid")
    png = (folder / "face.png").read_bytes()
    raw("cut.png", png[: len(png) // 2], "truncated|corrupt|valid")
    for k, pos in enumerate((2, 20, 200, 2000)):
        flipped = bytearray(jpeg)
        flipped[pos] ^= 0xFF
        raw(f"flip-{k}.jpg", bytes(flipped), "tagged|noface|truncated|corrupt|valid")
    for suffix in ("jpg", "png", "webp", "tif"):
        raw(f"empty.{suffix}", b"", "not a valid|truncated|corrupt")
        raw(f"random.{suffix}", os.urandom(4096), "not a valid|truncated|corrupt")
    raw("text.jpg", b"hello, this is not a picture\n", "not a valid")
    raw("html.png", b"<html><body>hi</body></html>", "not a valid")
    raw("png-named.jpg", png, "tagged")  # content wins over the suffix
    raw("jpeg-named.png", jpeg, "tagged")
    raw("bomb.png", _png_header_only(50_000, 50_000), "too large|limit")
    raw("bomb-wide.png", _png_header_only(2**31 - 1, 1), "too large|limit|corrupt|valid")
    # Several frames: refused, never silently cut to the first
    frames = [Image.fromarray(face), Image.fromarray(255 - face)]
    save("anim.webp", frames[0], "frames", save_all=True, append_images=frames[1:])
    save("anim.png", frames[0], "frames", save_all=True, append_images=frames[1:])
    save("pages.tif", frames[0], "frames", save_all=True, append_images=frames[1:])
    save("anim.gif", frames[0], "unsupported", save_all=True, append_images=frames[1:])
    # Not files
    (folder / "folder.jpg").mkdir()
    cases["folder.jpg"] = "folder"
    os.symlink(folder / "nowhere.jpg", folder / "dangling.jpg")
    cases["dangling.jpg"] = "not found"
    os.mkfifo(folder / "fifo.jpg")
    cases["fifo.jpg"] = "not a regular file"
    return cases


def _big_icc() -> bytes:
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    icc += bytes(range(256)) * (5 * 2**20 // 256)
    return len(icc).to_bytes(4, "big") + icc[4:]


# --- running -------------------------------------------------------------------------------------


def _snapshot(root: Path) -> dict[Path, str]:
    """Hash of every regular file under *root* (the ledger home left out)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith("home")]
        for name in filenames:
            p = Path(dirpath) / name
            if p.is_file() and not p.is_symlink():
                with open(p, "rb") as fh:
                    found[p] = hashlib.sha256(fh.read()).hexdigest()
    return found


def ledger_problems(home: Path, serials_elsewhere: bool = False) -> list[str]:
    """What is inconsistent in the ledger at *home*: pending jobs, burned, duplicate or unknown
    serials, records of files that are gone, tagged files with a hash the ledger does not know."""
    path = home / "ledger.sqlite3"
    if not path.exists() or path.stat().st_size == 0:
        return []
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            if con.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                return []  # a case that damaged the ledger on purpose
            rows = con.execute("SELECT key_id, serial, state, output_path, record_json FROM records"
                               " WHERE identity_key_id IS NOT NULL").fetchall()
            idents = con.execute("SELECT key_id, next_serial FROM identities").fetchall()
            free = set(con.execute("SELECT key_id, serial FROM free_serials").fetchall())
            pending = con.execute("SELECT count(*) FROM reservations").fetchone()[0]
        finally:
            con.close()
    except sqlite3.DatabaseError:
        return []
    problems = []
    if pending:
        problems.append(f"{pending} reserved serials of unfinished jobs")
    seen: dict[tuple[str, int], str] = {}
    for key, serial, state, out, rec in rows:
        if state != "done":
            problems.append(f"pending record {key}/{serial}")
        sha = json.loads(rec)["file_sha256"]
        if (key, serial) in seen and seen[(key, serial)] != sha:
            problems.append(f"serial {serial} of {key} used twice")
        seen[(key, serial)] = sha
        if out and out != "bench" and not os.path.exists(out):
            pass  # a user may delete tagged copies; not the ledger's fault
    for key, next_serial in idents:
        used = {s for k, s in seen if k == key}
        burned = set(range(1, next_serial)) - used - {s for k, s in free if k == key}
        if burned and not serials_elsewhere:
            problems.append(f"{len(burned)} burned serials of {key}")
    return problems


def run_cli(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    from engine.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's own refusals
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException as exc:  # noqa: BLE001 - escaping main is the failure we count
                import traceback

                err.write("Traceback (escaped main):\n" + traceback.format_exc())
                code = -1
                del exc
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return code, out.getvalue(), err.getvalue()


def judge(case: Case, code: int, out: str, err: str, before: dict[Path, str],
          after: dict[Path, str], home: Path) -> list[str]:
    problems = []
    if "Traceback" in err or "Traceback" in out:
        problems.append("traceback")
    for line in err.splitlines():
        if line.strip() and not line.startswith(("faketagger:", "usage:", "  ", "faketagger ")):
            problems.append(f"stray stderr line {line[:80]!r}")
    codes = case.code if isinstance(case.code, tuple) else (case.code,)
    if code not in codes:
        problems.append(f"exit {code}, expected {codes}: {(err or out).strip()[:200]}")
    if case.expect and not re.search(case.expect, out + err, re.IGNORECASE | re.DOTALL):
        problems.append(f"no /{case.expect}/ in: {(err or out).strip()[:200]}")
    changed = [p for p, h in before.items() if p in after and after[p] != h
               and p not in case.may_change]
    vanished = [p for p in before if p not in after and p not in case.may_change]
    if changed:
        problems.append(f"files changed: {[p.name for p in changed]}")
    if vanished:
        problems.append(f"files removed: {[p.name for p in vanished]}")
    problems += ledger_problems(home, case.serials_elsewhere)
    return problems


def build_cases(work: Path) -> tuple[list[Case], dict[str, str]]:
    """The corpus: image files (one protect and one verify batch over all of them), then option,
    output, card, backup, identity, ledger and data-folder cases."""
    photos = work / "photos"
    images = make_images(photos)
    home, out = work / "home", work / "out"
    env = {"FAKETAGGER_HOME": str(home), "FAKETAGGER_PASSPHRASE": PASSPHRASE}
    face = str(photos / "face.jpg")
    cases: list[Case] = []
    add = cases.append

    add(Case("create identity", ["identity", "create", "--name", "Alice"], 0, "Created", env))
    # The batch: every image file at once; the run goes on past each bad one, --json still prints
    add(Case("protect batch", ["protect", str(photos), "--out", str(out), "--json"], 1,
             r'^\{"outputs"', env, inputs=len(images)))
    add(Case("verify batch", ["verify", *sorted(str(photos / n) for n in images), "--json"], 1,
             r'^\{"results"', env, inputs=len(images)))
    # Ranges: refused before any work (no serial used, nothing written)
    for flag, values in (("--strength", ["nan", "inf", "-inf", "100", "0", "-5", "1e309", "4.01"]),
                         ("--quality", ["0", "101", "-1", "49", "1000000"]),
                         ("--threshold", ["5", "-1", "nan", "1.0", "0"]),
                         ("--min-face", ["-3", "0", "19", "100000"])):
        for v in values:
            add(Case(f"protect {flag} {v}", ["protect", face, "--out", str(out / "bad"),
                                             f"{flag}={v}"], 1, "must be", env))
    for v in ("abc", "", "0x10"):
        add(Case(f"protect --quality {v!r}", ["protect", face, f"--quality={v}"], 2, "invalid",
                 env))
    add(Case("protect --format gif", ["protect", face, "--format", "gif"], 2, "invalid choice",
             env))
    add(Case("verify --threshold 5", ["verify", face, "--threshold", "5"], 1, "must be", env))
    add(Case("verify --min-face -3", ["verify", face, "--min-face", "-3"], 1, "must be", env))
    # Outputs: nothing replaced without --force, never an input
    (work / "existing.html").write_text("keep me")
    (work / "existing.card.json").write_text("keep me")
    (work / "existing.key.json").write_text("keep me")
    (work / "a-file").write_text("a file")
    add(Case("verify --report over the image", ["verify", face, "--report", face], 1,
             "one of the images", env))
    add(Case("verify --report over the image --force", ["verify", face, "--report", face,
             "--force"], 1, "one of the images", env))
    add(Case("verify --report over a file", ["verify", face, "--report",
             str(work / "existing.html")], 1, "already exists", env))
    add(Case("verify --report --force", ["verify", face, "--report", str(work / "existing.html"),
             "--force"], 0, "report written", env, may_change=(work / "existing.html",)))
    add(Case("verify --report into a folder", ["verify", face, "--report", str(photos)], 1,
             "exists|folder", env))
    add(Case("verify --report in a missing folder", ["verify", face, "--report",
             str(work / "no" / "such" / "r.html")], 1, "cannot write", env))
    add(Case("card export over a photo", ["card", "export", face], 1, "already exists", env))
    add(Case("card export over a file", ["card", "export", str(work / "existing.card.json")], 1,
             "already exists", env))
    add(Case("card export --force", ["card", "export", str(work / "existing.card.json"),
             "--force"], 0, "Exported", env, may_change=(work / "existing.card.json",)))
    add(Case("identity backup over a file", ["identity", "backup",
             str(work / "existing.key.json")], 1, "already exists", env))
    add(Case("protect --out is a file", ["protect", face, "--out", str(work / "a-file")], 1,
             "is a file|not a folder", env))
    add(Case("protect --out under a file", ["protect", face, "--out",
             str(work / "a-file" / "sub")], 1, "is a file|not a folder", env))
    add(Case("protect --out = the input folder", ["protect", str(photos / "face.png"), "--out",
             str(photos)], 1, "inside the output folder", env))
    add(Case("protect --out = the input folder (folder)", ["protect", str(photos), "--out",
             str(photos)], 1, "inside the output folder", env))
    add(Case("protect an already-tagged photo", ["protect", str(out / "face-tagged.jpg"),
             "--out", str(work / "again")], 0, "already tagged", env))
    add(Case("protect the same photo twice into one folder", ["protect", face, face, "--out",
             str(work / "twice")], 0, "tagged", env))
    # Identities
    add(Case("create a second Alice", ["identity", "create", "--name", "alice"], 1,
             "already have an identity named", env))
    add(Case("create with a 1-character passphrase", ["identity", "create", "--name", "Bob"], 1,
             "too weak", {**env, "FAKETAGGER_PASSPHRASE": "x"}))
    add(Case("create with a common password", ["identity", "create", "--name", "Bob"], 1,
             "too weak", {**env, "FAKETAGGER_PASSPHRASE": "password123"}))
    add(Case("create Bob", ["identity", "create", "--name", "Bob"], 0, "Created", env))
    add(Case("protect --identity unknown", ["protect", face, "--identity", "Mallory", "--out",
             str(work / "o2")], 1, "no identity of yours", env))
    add(Case("protect --identity Bob", ["protect", face, "--identity", "bob", "--out",
             str(work / "o-bob")], 0, "tagged", env))
    add(Case("protect with a wrong passphrase", ["protect", face, "--out", str(work / "o3")], 1,
             "wrong passphrase", {**env, "FAKETAGGER_PASSPHRASE": "not the passphrase"}))
    # Cards
    card = work / "alice.card.json"
    add(Case("card export", ["card", "export", str(card), "--identity", "Alice"], 0, "Exported",
             env))
    home2 = work / "home2"
    env2 = {**env, "FAKETAGGER_HOME": str(home2)}
    add(Case("other home: identity", ["identity", "create", "--name", "Carol"], 0, "Created",
             env2))
    for name, data, code, expect in _card_variants(card):
        path = work / f"card-{name}.json"
        add(Case(f"card import: {name}", ["card", "import", str(path)], code, expect, env2,
                 setup=lambda p=path, d=data: p.write_bytes(d())))
    add(Case("import own card", ["card", "import", str(card)], 1, "your own card", env))
    # Key backups
    backup = work / "alice.key.json"
    add(Case("identity backup", ["identity", "backup", str(backup), "--identity", "Alice"], 0,
             "Backed up", env))
    for name, data, code, expect, passphrase in _backup_variants(backup):
        path = work / f"backup-{name}.json"
        add(Case(f"identity restore: {name}", ["identity", "restore", str(path)], code, expect,
                 {**env, "FAKETAGGER_HOME": str(work / "home3"), "FAKETAGGER_PASSPHRASE":
                  passphrase}, serials_elsewhere=True,
                 setup=lambda p=path, d=data: p.write_bytes(d())))
    # Damaged key file
    add(Case("damaged key file", ["protect", face, "--identity", "Alice", "--out",
             str(work / "o4")], 1, "damaged", env, setup=lambda: _damage_key(home, "Alice")))
    add(Case("restore the damaged key from its backup", ["identity", "restore", str(backup)], 0,
             "Restored", env))
    # Data folder
    add(Case("FAKETAGGER_HOME is a file", ["identity", "list"], 1, "data folder",
             {**env, "FAKETAGGER_HOME": str(work / "a-file")}))
    add(Case("FAKETAGGER_HOME under a file", ["history"], 1, "data folder",
             {**env, "FAKETAGGER_HOME": str(work / "a-file" / "home")}))
    # The ledger: damaged copies are refused with the way out, never replaced
    for kind in ("empty", "headers", "garbage", "truncated"):
        lhome = work / f"home-{kind}"
        lenv = {**env, "FAKETAGGER_HOME": str(lhome)}
        add(Case(f"ledger {kind}: setup", ["identity", "create", "--name", "Dora"], 0, "Created",
                 lenv))
        add(Case(f"ledger {kind}: tag", ["protect", face, "--out", str(work / f"o-{kind}")], 0,
                 "tagged", lenv))
        for cmd in (["history"], ["protect", face, "--out", str(work / f"o2-{kind}")],
                    ["verify", face], ["card", "export", str(work / f"c-{kind}.json")],
                    ["identity", "create", "--name", "Eve"], ["identity", "list"]):
            add(Case(f"ledger {kind}: {cmd[0]}", cmd, 1, "ledger .* restore", lenv,
                     setup=(lambda h=lhome, k=kind: _damage_ledger(h, k)) if cmd == ["history"]
                     else None))
        add(Case(f"ledger {kind}: check", ["ledger", "check"], 1, "DAMAGED", lenv))
        add(Case(f"ledger {kind}: restore", ["ledger", "restore"], 0, "Restored", lenv))
        add(Case(f"ledger {kind}: tag after restore", ["protect", face, "--out",
                 str(work / f"o3-{kind}")], 0, "serials 2", lenv))
    lhome = work / "home-gone"
    lenv = {**env, "FAKETAGGER_HOME": str(lhome)}
    add(Case("ledger deleted: setup", ["identity", "create", "--name", "Fay"], 0, "", lenv))
    add(Case("ledger deleted: tag", ["protect", face, "--out", str(work / "o-gone")], 0, "", lenv))
    add(Case("ledger deleted: history", ["history"], 1, "missing.*restore", lenv,
             setup=lambda: (lhome / "ledger.sqlite3").unlink()))
    add(Case("ledger deleted: restore", ["ledger", "restore"], 0, "Restored", lenv))
    return cases, images


def _card_variants(card: Path):
    good = lambda: card.read_bytes()  # noqa: E731

    def edit(fn):
        def make():
            doc = json.loads(card.read_bytes())
            fn(doc)
            return json.dumps(doc).encode()
        return make

    yield "bom", lambda: b"\xef\xbb\xbf" + good(), 0, "Imported"
    yield "crlf", lambda: good().replace(b"\n", b"\r\n"), 0, "Imported"
    yield "empty", lambda: b"", 1, "empty"
    yield "truncated", lambda: good()[: len(good()) // 2], 1, "truncated|invalid"
    yield "not json", lambda: b"hello", 1, "not a FakeTagger public card"
    yield "binary", lambda: os.urandom(512), 1, "not a FakeTagger public card"
    yield "nested", lambda: b"[" * 100_000 + b"]" * 100_000, 1, "card"
    yield "utf16", lambda: good().decode().encode("utf-16"), 1, "card"
    yield "name", edit(lambda d: d.update(name="Mallory")), 1, "signature"
    yield "format", edit(lambda d: d.update(format="faketagger-card/9")), 1, "format"
    yield "key", edit(lambda d: d.update(public_key="A" * 44)), 1, "card"
    yield "record", edit(lambda d: d["records"][0].update(serial=999)), 1, "record|signature"
    yield "no records", edit(lambda d: d.update(records=[])), 0, "Imported"
    yield "duplicate key", lambda: good().replace(b'{', b'{"name": "x", ', 1), 1, "duplicate|card"


def _backup_variants(backup: Path):
    good = lambda: backup.read_bytes()  # noqa: E731

    def edit(fn):
        def make():
            doc = json.loads(backup.read_bytes())
            fn(doc)
            return json.dumps(doc).encode()
        return make

    def flip_key(doc):
        text = doc["encrypted_key"]
        body_at = text.index("-----\n", text.index("BEGIN")) + 40
        doc["encrypted_key"] = text[:body_at] + ("A" if text[body_at] != "A" else "B") \
            + text[body_at + 1:]

    yield "wrong passphrase", good, 1, "wrong passphrase", "not the passphrase"
    yield "truncated", lambda: good()[:100], 1, "not a FakeTagger key backup", PASSPHRASE
    yield "empty", lambda: b"", 1, "not a FakeTagger key backup", PASSPHRASE
    yield "damaged key", edit(flip_key), 1, "damaged", PASSPHRASE
    yield "bad serial", edit(lambda d: d.update(next_serial=-4)), 1, "next_serial", PASSPHRASE
    yield "bom", lambda: b"\xef\xbb\xbf" + good(), 0, "Restored", PASSPHRASE
    yield "again (idempotent)", good, 0, "Restored", PASSPHRASE


def _damage_key(home: Path, name: str) -> None:
    con = sqlite3.connect(home / "ledger.sqlite3")
    [(key_id,)] = con.execute("SELECT key_id FROM identities WHERE name = ?", (name,)).fetchall()
    con.close()
    path = home / "keys" / f"{key_id}.pem"
    data = bytearray(path.read_bytes())
    at = data.index(b"-----\n", data.index(b"BEGIN")) + 40
    data[at] = ord("A") if data[at] != ord("A") else ord("B")
    path.write_bytes(bytes(data))


def _damage_ledger(home: Path, kind: str) -> None:
    path = home / "ledger.sqlite3"
    for side in ("-wal", "-shm"):
        Path(str(path) + side).unlink(missing_ok=True)
    data = bytearray(path.read_bytes())
    if kind == "empty":
        data = bytearray()
    elif kind == "headers":  # every page's header after the first, flipped
        for at in range(4096, len(data), 4096):
            data[at] ^= 0xFF
            data[at + 3] ^= 0xFF
    elif kind == "garbage":
        data = bytearray(os.urandom(len(data)))
    elif kind == "truncated":
        data = data[: len(data) // 3]
    path.write_bytes(bytes(data))


def unknown_outputs(work: Path) -> tuple[list[Path], list[Path]]:
    """Tagged files (outside the input folder) that no ledger under *work* knows with their exact
    hash (orphans, "records lost"), and temp files left anywhere."""
    known: set[tuple[str, str]] = set()
    for ledger in work.glob("home*/ledger.sqlite3"):
        try:
            con = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
            try:
                rows = con.execute("SELECT output_path, record_json FROM records WHERE"
                                   " identity_key_id IS NOT NULL AND state = 'done'").fetchall()
            finally:
                con.close()
        except sqlite3.DatabaseError:
            continue
        known |= {(out, json.loads(rec)["file_sha256"]) for out, rec in rows}
    from engine.files import display_path

    orphans, temps = [], []
    for dirpath, dirnames, filenames in os.walk(work):
        dirnames[:] = [d for d in dirnames if not d.startswith("home") and d != "photos"]
        for name in filenames:
            p = Path(dirpath) / name
            if name.startswith(".") and name.endswith(".part"):
                temps.append(p)
            elif "-tagged" in name:
                sha = hashlib.sha256(p.read_bytes()).hexdigest()
                if (display_path(p), sha) not in known:  # how the ledger spells any name
                    orphans.append(p)
    return orphans, temps


@dataclass
class Summary:
    results: list[Result]
    images: dict[str, str]
    image_problems: list[str]
    orphans: list[Path] = field(default_factory=list)
    temps: list[Path] = field(default_factory=list)

    @property
    def inputs(self) -> int:
        return sum(r.case.inputs for r in self.results)

    def count(self, word: str) -> int:
        return sum(any(word in p for p in r.problems) for r in self.results)

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.problems]


def run_corpus(work: Path) -> Summary:
    cases, images = build_cases(work)
    results = []
    by_name: dict[str, Result] = {}
    for case in cases:
        if case.setup is not None:
            case.setup()
        before = _snapshot(work)
        code, out, err = run_cli(case.argv, case.env)
        after = _snapshot(work)
        home = Path(case.env.get("FAKETAGGER_HOME", work / "home"))
        problems = judge(case, code, out, err, before, after, home)
        result = Result(case, code, out, err, problems)
        results.append(result)
        by_name[case.name] = result
    image_problems = _judge_images(work, images, by_name)
    orphans, temps = unknown_outputs(work)
    return Summary(results, images, image_problems, orphans, temps)


#: Files a folder walk passes over (not regular files, or not a photo type): only verify, which
#: is given them by name, must report them.
NAMED_ONLY = {"folder.jpg", "dangling.jpg", "fifo.jpg", "anim.gif"}


def _judge_images(work: Path, images: dict[str, str], by_name: dict[str, Result]) -> list[str]:
    """Per file of the batches: tagged files have a verified copy; the rest one error line."""
    problems = []
    protect, verify = by_name["protect batch"], by_name["verify batch"]
    try:
        outputs = {Path(o["input"]).name: o for o in json.loads(protect.out)["outputs"]}
        results = {Path(r["file"]).name: r for r in json.loads(verify.out)["results"]}
    except (ValueError, KeyError) as exc:
        return [f"batch output is not the JSON contract: {exc}"]
    err_lines = protect.err.splitlines()
    for name, expect in images.items():
        shown = " ".join(name.encode("utf-8", "surrogateescape")
                         .decode("utf-8", "backslashreplace").split())
        said = [line for line in err_lines if shown in line]
        kinds = set(expect.split("|"))
        checked = results.get(name)
        if checked is None:
            problems.append(f"{name}: missing from verify --json")
        elif not kinds & {"tagged", "noface"} and not re.search(expect, checked.get("error", ""),
                                                                 re.I):
            problems.append(f"{name}: verify said {checked.get('error')!r}, expected /{expect}/")
        if name in NAMED_ONLY:
            if name in outputs or said:
                problems.append(f"{name}: a folder walk should pass over it")
        elif name in outputs:
            if "tagged" not in kinds:
                problems.append(f"{name}: tagged, expected {expect}")
        elif expect == "tagged":
            problems.append(f"{name}: not tagged ({said[:1]})")
        elif "noface" in kinds:
            if not any("no face" in line or re.search(expect, line, re.I) for line in said):
                problems.append(f"{name}: no note ({said[:1]})")
        elif not any(re.search(expect, line, re.I) for line in said):
            problems.append(f"{name}: expected /{expect}/, got {said[:1]}")
    return problems


def main() -> int:
    import tempfile

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        summary = run_corpus(Path(tmp))
    print(f"hostile inputs tried: {summary.inputs} in {len(summary.results)} commands "
          f"({len(summary.images)} image files, each through protect and verify)")
    for word in ("traceback", "files changed", "files removed", "burned", "used twice",
                 "pending", "stray stderr"):
        print(f"  {word}: {summary.count(word)}")
    print(f"  tagged files no ledger knows (orphans, records lost): {len(summary.orphans)}")
    print(f"  temp files left behind: {len(summary.temps)}")
    print(f"  commands with any problem: {len(summary.failed)}")
    print(f"  image files judged wrongly: {len(summary.image_problems)}")
    for r in summary.failed:
        print(f"  FAIL {r.case.name}: {r.problems}")
    for p in summary.image_problems:
        print(f"  FAIL {p}")
    bad = summary.failed or summary.image_problems or summary.orphans or summary.temps
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
