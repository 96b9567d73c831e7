#!/usr/bin/env bash
# macOS: sign dist/FakeTagger.app (made by `pyinstaller installer/faketagger.spec` on a Mac),
# pack it in a .dmg, notarize and staple. NOT run on the project's Linux machines:
# .github/workflows/dist.yml runs it on a macOS runner. Without CODESIGN_IDENTITY it makes an
# unsigned .dmg (ad-hoc signature only; Gatekeeper then asks the user to allow it in Settings).
#
# Environment:
#   CODESIGN_IDENTITY   "Developer ID Application: NAME (TEAMID)"; unset: ad-hoc, no notarization
#   NOTARY_PROFILE      a `xcrun notarytool store-credentials` profile name; unset: no notarization
#   VERSION             default: engine/__init__.py's __version__
set -euo pipefail
cd "$(dirname "$0")/../.."

APP=dist/FakeTagger.app
VERSION=${VERSION:-$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' engine/__init__.py)}
DMG="dist/FakeTagger-$VERSION-macos-$(uname -m).dmg"
ENT=installer/macos/entitlements.plist
IDENTITY=${CODESIGN_IDENTITY:--}   # "-": ad-hoc
[[ -d "$APP" ]] || { echo "no $APP: run pyinstaller installer/faketagger.spec first"; exit 1; }

sign() { codesign --force --timestamp --options runtime --entitlements "$ENT" --sign "$IDENTITY" "$@"; }
[[ "$IDENTITY" == "-" ]] && sign() { codesign --force --sign - "$@"; }

# Inside out: every library and executable first, the bundle last (no --deep: it signs in the
# wrong order and skips files that are not code-shaped).
echo "== signing with ${CODESIGN_IDENTITY:-ad-hoc identity}"
find "$APP/Contents" -type f \( -name "*.so" -o -name "*.dylib" -o -perm -u+x \) -print0 |
    while IFS= read -r -d '' f; do
        if file -b "$f" | grep -q "Mach-O"; then sign "$f"; fi
    done
sign "$APP"
codesign --verify --strict --verbose=2 "$APP"

echo "== $DMG"
rm -f "$DMG"
staging=$(mktemp -d)
cp -R "$APP" "$staging/"
ln -s /Applications "$staging/Applications"
hdiutil create -volname "FakeTagger $VERSION" -srcfolder "$staging" -fs HFS+ -format UDZO \
    -imagekey zlib-level=9 "$DMG"
rm -rf "$staging"

if [[ -n "${CODESIGN_IDENTITY:-}" && -n "${NOTARY_PROFILE:-}" ]]; then
    codesign --force --timestamp --sign "$CODESIGN_IDENTITY" "$DMG"
    echo "== notarizing (minutes)"
    xcrun notarytool submit "$DMG" --keychain-profile "$NOTARY_PROFILE" --wait
    xcrun stapler staple "$DMG"
    spctl --assess --type open --context context:primary-signature --verbose "$DMG"
else
    echo "(not notarized: set CODESIGN_IDENTITY and NOTARY_PROFILE for a release)"
fi
ls -l "$DMG"
