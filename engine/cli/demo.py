"""`faketagger demo`: the whole protect -> verify flow on the bundled sample, in a throw-away home.

It shows a first-time user (and a fresh CI machine) that every real part works together: MTCNN,
the bundled model, Reed-Solomon, Ed25519 records and the SQLite ledger. Nothing touches the
user's real data dir: the ledger and keys live in a temporary folder.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from pathlib import Path

from engine.paths import assets_dir

SAMPLE = assets_dir() / "sample.jpg"


def run_demo(device: str = "auto", sample: Path = SAMPLE) -> int:
    from engine.pipeline import Pipeline, run_all
    from engine.protect.spec import JobSpec
    from engine.store.ledger import Ledger
    from engine.verify import Verdict

    # An explicit ledger path keeps keys and records in the temp folder, never in the user's
    # real data dir.
    with (tempfile.TemporaryDirectory(prefix="faketagger-demo-") as tmp,
          Ledger(Path(tmp) / "ledger.sqlite3") as ledger):
        passphrase = secrets.token_urlsafe(12)
        ident = ledger.create_identity("Demo User", passphrase)
        print(f"1. Created a throw-away identity 'Demo User', key ID {ident.key_id}")
        unlocked = ledger.unlock(ident.key_id, passphrase)
        pipe = Pipeline(ledger, device=device)
        t0 = time.perf_counter()
        pipe.warm_up()
        print(f"2. Loaded MTCNN and model v{pipe.model.version} on {pipe.device} "
              f"in {time.perf_counter() - t0:.1f} s")
        opts = JobSpec(out_dir=Path(tmp) / "out")
        t0 = time.perf_counter()
        [res] = run_all(pipe.protect([sample], unlocked, opts))
        if res.error or not res.faces:
            print(f"protect failed: {res.error or 'no face found in the sample'}")
            return 1
        print(f"3. Tagged {len(res.faces)} face(s) in {sample.name} in "
              f"{time.perf_counter() - t0:.2f} s -> {res.output.name}")
        for f in res.faces:
            print(f"     face at {f.box}: serial {f.serial}, payload {f.payload_hex}, "
                  f"PSNR {f.psnr:.1f} dB")
        t0 = time.perf_counter()
        [ver] = run_all(pipe.verify([res.output]))
        print(f"4. Verified the tagged copy in {time.perf_counter() - t0:.2f} s:")
        for f in ver.faces:
            print(f"     face at {f.box}: {f.verdict.upper()} - {f.reason} "
                  f"(confidence {f.confidence:.2f})")
        [orig] = run_all(pipe.verify([sample]))
        print("5. Verified the untouched original: "
              + ", ".join(f.verdict.upper() for f in orig.faces))
        ok = bool(ver.faces) and all(f.verdict == Verdict.VERIFIED for f in ver.faces)
        ok = ok and all(f.verdict == Verdict.NO_TAG for f in orig.faces)
        print("Demo OK: the tag is read back and signed; the original has none."
              if ok else "Demo FAILED: see the verdicts above.")
        return 0 if ok else 1
