"""Verification reports for people who must show their work (journalists, fact-checkers).

Two renderings of the same data: JSON (machine-readable, one object) and a single self-contained
HTML page (the image embedded as a data URI with the face boxes drawn over it in SVG, a verdict
table, key IDs and signature status; no scripts, no external files, so it can be mailed or
archived as is). The GUI and the CLI (`faketagger verify --report`) both call this module, so a
report looks the same whichever front end made it.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from engine import __version__
from engine.atomic import write_atomic
from engine.change.verdict import KIND_COLOURS
from engine.credentials.read import Credentials
from engine.errors import FakeTaggerError
from engine.files import safe_text
from engine.identity import utc_now_iso
from engine.verify.verdict import FaceVerdict, Verdict

REPORT_FORMAT = "faketagger-verify-report/1"
#: Shared with the GUI's verify view so the legend means the same in both places.
VERDICT_COLOURS = {Verdict.VERIFIED: "#2e7d32", Verdict.OWNER_KNOWN: "#f9a825",
                   Verdict.INVALID: "#c62828", Verdict.UNKNOWN_OWNER: "#1565c0",
                   Verdict.NO_TAG: "#757575"}
VERDICT_LABELS = {Verdict.VERIFIED: "Verified",
                  Verdict.OWNER_KNOWN: "Owner known, tag not registered",
                  Verdict.INVALID: "Invalid tag", Verdict.UNKNOWN_OWNER: "Unknown owner",
                  Verdict.NO_TAG: "No tag"}
#: What was checked cryptographically for each verdict (see engine.verify.judge).
SIGNATURE_STATUS = {
    Verdict.VERIFIED: "valid: an Ed25519-signed tag record of the owner matches this tag",
    Verdict.OWNER_KNOWN: "no signed record for this serial",
    Verdict.INVALID: "failed: the tag contradicts the owner's MAC or signed record",
    Verdict.UNKNOWN_OWNER: "not checked: the owner's public key is not known here",
    Verdict.NO_TAG: "not applicable",
}
EMBED_MAX_SIDE = 2000  # the embedded copy is downscaled; boxes keep the original coordinates


class ReportError(FakeTaggerError):
    """The report file cannot be written."""


@dataclass
class ImageReport:
    """One checked image: where it came from, its pixels (upright RGB) and the face verdicts."""

    file: Path
    rgb: np.ndarray | None  # None when the image could not be read (then `error` says why)
    faces: list[FaceVerdict]
    sha256: str | None = None
    error: str | None = None
    c2pa: Credentials | None = None  # the file's Content Credentials (None: not read)


def face_entry(v: FaceVerdict) -> dict:
    """FaceVerdict.to_json plus what a reader of the report needs to judge it."""
    doc = v.to_json()
    doc.update(verdict_label=VERDICT_LABELS.get(v.verdict, v.verdict), reason=v.reason,
               signature=SIGNATURE_STATUS.get(v.verdict, ""), own_tag=v.own,
               exact_file=v.file_match, model_version=v.model_version)
    if v.payload is not None:
        doc["payload_hex"] = v.payload.to_hex()
    if v.record is not None:
        doc["record"] = {"created": v.record.created, "serial": v.record.serial,
                         "key_id": v.record.key_id, "file_sha256": v.record.file_sha256,
                         "owner_public": v.record.owner_public, "signature": v.record.signature}
    return doc


def build_report(images: list[ImageReport]) -> dict:
    """The JSON report: one entry per image, a verdict count per image."""
    out = []
    for im in images:
        h, w = im.rgb.shape[:2] if im.rgb is not None else (0, 0)
        entry = {"file": safe_text(str(im.file)), "name": safe_text(im.file.name),
                 "sha256": im.sha256,
                 "width": int(w), "height": int(h), "faces": [face_entry(f) for f in im.faces],
                 "summary": dict(Counter(f.verdict for f in im.faces))}
        if im.c2pa is not None:
            entry["c2pa"] = im.c2pa.to_json()
        if im.error:
            entry["error"] = im.error
        out.append(entry)
    return {"format": REPORT_FORMAT, "generated": utc_now_iso(),
            "tool": f"FakeTagger {__version__}", "images": out}


def report_json(images: list[ImageReport]) -> str:
    return json.dumps(build_report(images), indent=2, ensure_ascii=False) + "\n"


def _data_uri(rgb: np.ndarray) -> str:
    im = Image.fromarray(rgb, "RGB")
    im.thumbnail((EMBED_MAX_SIDE, EMBED_MAX_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _svg(im: ImageReport) -> str:
    h, w = im.rgb.shape[:2]
    parts = [f'<svg viewBox="0 0 {w} {h}" role="img" aria-label="{html.escape(safe_text(im.file.name))} '
             f'with {len(im.faces)} face(s) outlined">',
             f'<image href="{_data_uri(im.rgb)}" width="{w}" height="{h}"/>']
    stroke = max(2, round(max(w, h) / 300))
    font = max(12, round(max(w, h) / 45))
    for k, f in enumerate(im.faces, 1):
        x1, y1, x2, y2 = f.box
        c = VERDICT_COLOURS.get(f.verdict, "#757575")
        parts.append(f'<rect x="{x1}" y="{y1}" width="{x2 - x1}" height="{y2 - y1}" fill="none" '
                     f'stroke="{c}" stroke-width="{stroke}"/>')
        ty = y1 - stroke if y1 - font > 0 else y2 + font
        parts.append(f'<text x="{x1}" y="{ty}" fill="{c}" font-size="{font}" '
                     f'font-family="sans-serif" font-weight="bold" stroke="white" '
                     f'stroke-width="{max(1, font // 8)}" paint-order="stroke">{k}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _thumb(v: FaceVerdict) -> str:
    if v.record is None or not v.record.face_thumb_jpeg:
        return ""
    b64 = base64.b64encode(v.record.face_thumb_jpeg).decode("ascii")
    return (f'<img class="thumb" alt="face as tagged" title="the face as it was tagged" '
            f'src="data:image/jpeg;base64,{b64}">')


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1100px;
padding:0 1em;color:#1b1b1b;background:#fff}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;word-break:break-all}
svg{max-width:100%;height:auto;border:1px solid #ccc}
table{border-collapse:collapse;width:100%;margin-top:1em;font-size:.92em}
th,td{border:1px solid #ccc;padding:.4em .5em;text-align:left;vertical-align:top}
th{background:#f2f2f2}.badge{display:inline-block;padding:.1em .5em;border-radius:.3em;
color:#fff;font-weight:600}.thumb{width:48px;height:48px;object-fit:cover}
code{font-size:.9em;word-break:break-all}.legend span{margin-right:1em}.meta{color:#555}
@media (prefers-color-scheme:dark){body{background:#161616;color:#e8e8e8}th{background:#262626}
th,td,svg{border-color:#444}.meta{color:#aaa}}
"""


def _change_cell(v: FaceVerdict) -> str:
    """Verify's face-change verdict: a badge, its one-line reason and what it was compared
    with (engine.change)."""
    ch, esc = v.change, html.escape
    ref = f"<br>compared with the {esc(ch.reference)}" if ch.reference else ""
    return (f'<span class="badge" style="background:{KIND_COLOURS[ch.kind]}">'
            f"{esc(ch.label)}</span><br>{esc(ch.text)}{ref}")


def report_html(images: list[ImageReport]) -> str:
    """One self-contained page (no scripts, no external resources)."""
    doc = build_report(images)
    esc = html.escape
    legend = "".join(f'<span><span class="badge" style="background:{VERDICT_COLOURS[v]}">'
                     f"{esc(VERDICT_LABELS[v])}</span></span>" for v in VERDICT_COLOURS)
    body = [f"<h1>FakeTagger verification report</h1><p class=meta>Made {esc(doc['generated'])} "
            f"with {esc(doc['tool'])}. Each face was read for a FakeTagger tag and checked "
            "against the keys, contacts and signed tag records known to this computer.</p>"
            f'<p class="legend">{legend}</p>']
    for im, entry in zip(images, doc["images"], strict=True):
        body.append(f"<h2>{esc(entry['name'])}</h2><p class=meta>{esc(entry['file'])}<br>"
                    f"SHA-256 <code>{esc(entry['sha256'] or 'n/a')}</code> · "
                    f"{entry['width']}×{entry['height']} px</p>")
        if im.error or im.rgb is None:
            body.append(f"<p><b>Could not check this image:</b> {esc(im.error or 'unreadable')}</p>")
            continue
        body.append(_svg(im))
        if im.c2pa is not None:
            body.append(credentials_html(im.c2pa))
        if not im.faces:
            body.append("<p>No face was found in this image.</p>")
            continue
        rows = ["<tr><th>#</th><th>Verdict</th><th>Owner</th><th>Key ID</th><th>Serial</th>"
                "<th>Tagged on</th><th>Confidence</th><th>Signature</th><th>Face change</th>"
                "<th>Tagged face</th></tr>"]
        for k, (f, e) in enumerate(zip(im.faces, entry["faces"], strict=True), 1):
            c = VERDICT_COLOURS.get(f.verdict, "#757575")
            when = f.record.created[:19].replace("T", " ") + " UTC" if f.record else ""
            exact = "<br>exact file the owner tagged" if f.file_match else ""
            rows.append(
                f'<tr><td>{k}</td><td><span class="badge" style="background:{c}">'
                f"{esc(e['verdict_label'])}</span><br>{esc(f.reason)}{exact}</td>"
                f"<td>{esc(f.owner_name or '')}{' (you)' if f.own else ''}</td>"
                f"<td><code>{esc(str(f.owner_key_id or ''))}</code></td>"
                f"<td>{'' if f.serial is None else f.serial}</td><td>{esc(when)}</td>"
                f"<td>{f.confidence:.2f}</td><td>{esc(e['signature'])}</td>"
                f"<td>{_change_cell(f)}</td><td>{_thumb(f)}</td></tr>")
        body.append("<table>" + "".join(rows) + "</table>")
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width,initial-scale=1'>"
            f"<title>FakeTagger verification report</title><style>{_CSS}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")


#: Badge colours of the Content Credentials states (the Verify tab uses the same).
CREDENTIAL_COLOURS = {"trusted": "#2e7d32", "valid": "#1565c0", "invalid": "#c62828",
                      "unreadable": "#c62828", "none": "#757575"}


def credentials_html(c: Credentials) -> str:
    """The Content Credentials paragraph of one image: state, signer, what it says was done."""
    esc = html.escape
    colour = CREDENTIAL_COLOURS.get(c.state, "#757575")
    parts = [f'<p><b>Content Credentials (C2PA):</b> <span class="badge" '
             f'style="background:{colour};color:#fff">&nbsp;{esc(c.state.upper())}&nbsp;'
             f"</span> {esc(c.reason)}"]
    if c.actions:
        acts = ", ".join(a.action + (f" ({a.source_type})" if a.source_type else "")
                         for a in c.actions)
        parts.append(f"<br>Actions: {esc(acts)}")
    if c.ingredients:
        parts.append("<br>Made from: " + esc(", ".join(
            f"{i.get('title') or '?'} ({i.get('relationship') or '?'})" for i in c.ingredients)))
    for b in c.bindings:
        face = "" if b.face is None else f" face {b.face + 1}:"
        parts.append(f"<br>Soft binding{esc(face)} {esc(b.alg)} {esc(b.check.replace('_', ' '))}")
    return "".join(parts) + "</p>"


def image_report(file: Path, faces: list[FaceVerdict], error: str | None = None,
                 c2pa: Credentials | None = None) -> ImageReport:
    """Re-read a checked file for its report (pixels for the picture, SHA-256 for the record)."""
    from engine.photos import load_photo, sha256_file

    try:
        return ImageReport(file, load_photo(file).rgb, faces, sha256_file(file), error, c2pa)
    except FakeTaggerError as err:
        return ImageReport(file, None, faces, None, error or str(err), c2pa)


def write_report(path: Path, images: list[ImageReport], *, overwrite: bool = False) -> None:
    """Write JSON for a .json path, HTML otherwise; atomically (temp file, then rename). An
    existing file is replaced only with *overwrite* (the CLI's --force; the GUI's save dialog
    asked), and never when it is one of the checked images."""
    path = Path(path)
    with contextlib.suppress(OSError):
        if any(path.exists() and im.file.exists() and os.path.samefile(path, im.file)
               for im in images):
            raise ReportError(f"{path} is one of the checked images; the report needs another "
                              "name")
    text = report_json(images) if path.suffix.lower() == ".json" else report_html(images)
    try:
        write_atomic(path, text.encode("utf-8", "backslashreplace"), overwrite=overwrite)
    except FileExistsError:
        raise ReportError(f"{path} already exists; choose another name or use --force") from None
    except IsADirectoryError:
        raise ReportError(f"{path} is a folder; name a report file") from None
    except OSError as err:
        raise ReportError(f"{path}: cannot write the report ({err.strerror})") from None
