"""The c2pa library's settings, in one place: offline, and with the trust anchors given.

Verify must never reach the network (a remote manifest URL in a hostile file would reveal who is
checking it), so remote manifest fetch and OCSP are off for every reader and builder.
"""

from __future__ import annotations

import c2pa

_OFFLINE = {"remote_manifest_fetch": False, "ocsp_fetch": False}


def context(anchors_pem: str = "", *, thumbnails: bool = False) -> c2pa.Context:
    """A c2pa Context that stays offline; with *anchors_pem*, trust is checked against those CA
    certificates (and only those: the library's built-in lists are not used)."""
    verify = {**_OFFLINE, "verify_trust": bool(anchors_pem)}
    # No thumbnails in what we sign: they would double a photo's size and repeat its faces
    # (the file itself is the picture the claim is about).
    doc: dict = {"verify": verify, "builder": {"thumbnail": {"enabled": thumbnails}}}
    if anchors_pem:
        doc["trust"] = {"trust_anchors": anchors_pem}
    return c2pa.Context.from_dict(doc)
