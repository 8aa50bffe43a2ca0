#!/usr/bin/env bash
# Fetch OpenCV's sample video vtest.avi (795 frames, 768x576, people walking) from Debian's
# opencv-doc package into datasets/video/ (ignored by git: never commit the video or frames).
#
#   bash tools/fetch_vtest.sh [OUT]        # default datasets/video/vtest.avi
#
# Needs apt-get and dpkg-deb (Debian/Ubuntu); run `apt-get update` once first if apt knows no
# opencv-doc. Nothing is installed: the .deb is downloaded to a temp folder and unpacked there.
set -euo pipefail
out=${1:-datasets/video/vtest.avi}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download opencv-doc >/dev/null) || {
  echo "apt-get download opencv-doc failed (run apt-get update first?)" >&2
  exit 1
}
dpkg-deb --fsys-tarfile "$tmp"/opencv-doc_*.deb | tar -x -C "$tmp" --wildcards '*/examples/data/vtest.avi*'
found=$(find "$tmp" -name 'vtest.avi*' | head -1)
[ -n "$found" ] || { echo "vtest.avi not found in opencv-doc" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
case "$found" in
  *.gz) gunzip -c "$found" > "$out.partial" ;;
  *) cp "$found" "$out.partial" ;;
esac
mv "$out.partial" "$out"
echo "wrote $out ($(stat -c %s "$out") bytes)"
