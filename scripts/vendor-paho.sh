#!/usr/bin/env bash
# Rebuilds vendor/paho-mqtt-sys from its crates.io release: the crate as
# published (with the Paho C sources it bundles), minus what the build does
# not use, plus the patches in vendor/paho-mqtt-sys/patches/ (see
# vendor/paho-mqtt-sys/PATCHES.md).
#
#   scripts/vendor-paho.sh            re-create the vendored tree
#   scripts/vendor-paho.sh VERSION    the same from another release (upgrade)
#   scripts/vendor-paho.sh --check    verify that the committed tree is the
#                                     release + the patches (exit 1 if not)
#
# Needs cargo (to fetch the crate), tar and patch.
set -euo pipefail
cd "$(dirname "$0")/.."

dest=vendor/paho-mqtt-sys
check=false
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$dest/Cargo.toml" | head -n 1)
case "${1:-}" in
  --check) check=true ;;
  "") ;;
  *) version=$1 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Fetch the release through cargo into a private CARGO_HOME, so that the
# .crate file is found whatever the user's cache holds.
mkdir -p "$work/fetch/src"
cat >"$work/fetch/Cargo.toml" <<EOF
[package]
name = "fetch-paho"
version = "0.0.0"
edition = "2021"

[dependencies]
paho-mqtt-sys = { version = "=$version", default-features = false }
EOF
touch "$work/fetch/src/lib.rs"
CARGO_HOME="$work/cargo-home" cargo fetch --quiet --manifest-path "$work/fetch/Cargo.toml"
crate=$(find "$work/cargo-home/registry/cache" -name "paho-mqtt-sys-$version.crate" | head -n 1)
[ -n "$crate" ] || { echo "paho-mqtt-sys $version not found" >&2; exit 1; }
tar -xzf "$crate" -C "$work"
tree="$work/paho-mqtt-sys-$version"

# What the build (build.rs with the "bundled" feature, then CMake with the
# options build.rs sets) never reads. Licence and notice files stay, and so
# do the files CMake's install step copies (README.md, CONTRIBUTING.md).
(
  cd "$tree"
  rm -rf Cargo.toml.orig Cargo.lock CHANGELOG.md paho-bindgen.sh bindings/old \
    bindings/*apple* bindings/*windows*
  cd paho.mqtt.c
  rm -rf .clang-format .cproject .github .gitignore .gitreview .project \
    .pydevproject .settings .travis.yml CODE_OF_CONDUCT.md Makefile \
    PULL_REQUEST_TEMPLATE.md SECURITY.md android appveyor.yml build.xml \
    cbuild.bat cmake cmake-build.sh deploy_rsa.enc dist doc docs fmt.sh test \
    test_package src/samples src/Keysight_ws_add
)

# The patches and their notes live in the vendored tree.
cp -r "$dest/patches" "$dest/PATCHES.md" "$tree/"
shopt -s nullglob
patches=("$tree"/patches/*.patch)
for p in "${patches[@]}"; do
  patch --quiet --forward --strip=1 --directory="$tree" <"$p"
done

if $check; then
  if diff -r "$tree" "$dest"; then
    echo "$dest is paho-mqtt-sys $version + ${#patches[@]} patch(es)"
  else
    echo "$dest differs from paho-mqtt-sys $version + patches (above)" >&2
    exit 1
  fi
else
  rm -rf "$dest"
  cp -r "$tree" "$dest"
  echo "$dest: paho-mqtt-sys $version + patches; now run cargo update -p paho-mqtt-sys"
fi
