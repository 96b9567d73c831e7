#!/bin/sh
# Add FakeTagger to your desktop's application menu and to "Open With" for photos (JPEG, PNG,
# WebP, TIFF), for your user only, and put the `faketagger` command on ~/.local/bin.
# Run it from the unpacked folder; run it again after moving the folder.
#   ./install-desktop-entry.sh             install (or update)
#   ./install-desktop-entry.sh --uninstall remove what it installed (your photos, keys and ledger
#                                          are not touched)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
bin=$HOME/.local/bin
sizes="16 24 32 48 64 128 256 512"

refresh() {
    command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$data/applications" || true
    command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
    return 0
}

if [ "${1:-}" = "--uninstall" ]; then
    rm -f "$data/applications/faketagger.desktop" "$data/icons/hicolor/scalable/apps/faketagger.svg"
    for s in $sizes; do rm -f "$data/icons/hicolor/${s}x${s}/apps/faketagger.png"; done
    [ -L "$bin/faketagger" ] && rm -f "$bin/faketagger"
    refresh
    echo "FakeTagger removed from the application menu."
    exit 0
fi

[ -x "$here/FakeTagger" ] || { echo "run this script from the unpacked FakeTagger folder"; exit 1; }
mkdir -p "$data/applications" "$data/icons/hicolor/scalable/apps" "$bin"
for s in $sizes; do
    mkdir -p "$data/icons/hicolor/${s}x${s}/apps"
    cp "$here/share/icons/hicolor/${s}x${s}/apps/faketagger.png" "$data/icons/hicolor/${s}x${s}/apps/"
done
cp "$here/share/icons/hicolor/scalable/apps/faketagger.svg" "$data/icons/hicolor/scalable/apps/"
# The menu entry runs this folder's executable by its full path (quoted: the folder may hold spaces).
sed -e "s|^Exec=FakeTagger |Exec=\"$here/FakeTagger\" |" -e "s|^TryExec=FakeTagger$|TryExec=$here/FakeTagger|" \
    "$here/share/applications/faketagger.desktop" > "$data/applications/faketagger.desktop"
ln -sf "$here/faketagger" "$bin/faketagger"
refresh
echo "FakeTagger added to the application menu; 'faketagger' linked in $bin."
case ":$PATH:" in *":$bin:"*) ;; *) echo "($bin is not on your PATH: add it to use 'faketagger' by name.)" ;; esac
