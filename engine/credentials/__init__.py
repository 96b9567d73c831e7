"""Content Credentials (C2PA): the certificate chain bound to an identity, writing a manifest into
a tagged copy, and reading the manifest of any image.

C2PA is how newsrooms, cameras and generators label images, and a fact-checker's first look. The
tag in the pixels survives re-posting where a manifest is stripped; the manifest says more where
it survives. Each module keeps one job: :mod:`.chain` (certificates), :mod:`.write` (signing),
:mod:`.read` (reading and judging), :mod:`.trust` (which signers the user trusts).
"""
