#!/bin/sh
# Puts CSM Studio in this user's application menu and on the PATH (~/.local/bin), pointing at the
# folder this script lies in: run it once after unpacking the bundle where it is to stay.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
bin=$HOME/.local/bin
mkdir -p "$data/applications" "$data/icons/hicolor/256x256/apps" "$bin"
sed "s|^Exec=csm-studio$|Exec=\"$here/csm-studio\"|" "$here/csm-studio.desktop" \
  >"$data/applications/csm-studio.desktop"
cp "$here/csm-studio.png" "$data/icons/hicolor/256x256/apps/csm-studio.png"
ln -sf "$here/csm-studio" "$bin/csm-studio"
ln -sf "$here/csm-studio" "$bin/csm-studio-cli"
echo "CSM Studio: menu entry in $data/applications, csm-studio and csm-studio-cli in $bin"
