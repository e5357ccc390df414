#!/usr/bin/env bash
# Rebuilds the vendored Paho crates from their crates.io releases: each
# crate as published, minus what the build does not use, plus the patches
# in its patches/ directory (see its PATCHES.md):
#   vendor/paho-mqtt-sys   the Paho C sources and their bindings
#   vendor/paho-mqtt       the Rust client over them
#
#   scripts/vendor-paho.sh            re-create both vendored trees
#   scripts/vendor-paho.sh SYS RUST   the same from other releases (upgrade)
#   scripts/vendor-paho.sh --check    verify that the committed trees are
#                                     the releases + the patches (exit 1 if
#                                     not)
#
# Needs cargo (to fetch the crates), tar and patch.
set -euo pipefail
cd "$(dirname "$0")/.."

version_of() {
  sed -n 's/^version = "\(.*\)"$/\1/p' "$1/Cargo.toml" | head -n 1
}

check=false
sys_version=$(version_of vendor/paho-mqtt-sys)
rust_version=$(version_of vendor/paho-mqtt)
case "${1:-}" in
  --check) check=true ;;
  "") ;;
  *) sys_version=$1; rust_version=${2:?"the paho-mqtt version too"} ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Fetch the releases through cargo into a private CARGO_HOME, so that the
# .crate files are found whatever the user's cache holds.
mkdir -p "$work/fetch/src"
cat >"$work/fetch/Cargo.toml" <<TOML
[package]
name = "fetch-paho"
version = "0.0.0"
edition = "2021"

[dependencies]
paho-mqtt-sys = { version = "=$sys_version", default-features = false }
paho-mqtt = { version = "=$rust_version", default-features = false }
TOML
touch "$work/fetch/src/lib.rs"
CARGO_HOME="$work/cargo-home" cargo fetch --quiet --manifest-path "$work/fetch/Cargo.toml"

# What the build of paho-mqtt-sys (build.rs with the "bundled" feature,
# then CMake with the options build.rs sets) never reads. Licence and
# notice files stay, and so do the files CMake's install step copies
# (README.md, CONTRIBUTING.md).
prune_sys() {
  rm -rf Cargo.toml.orig Cargo.lock CHANGELOG.md paho-bindgen.sh bindings/old \
    bindings/*apple* bindings/*windows*
  cd paho.mqtt.c
  rm -rf .clang-format .cproject .github .gitignore .gitreview .project \
    .pydevproject .settings .travis.yml CODE_OF_CONDUCT.md Makefile \
    PULL_REQUEST_TEMPLATE.md SECURITY.md android appveyor.yml build.xml \
    cbuild.bat cmake cmake-build.sh deploy_rsa.enc dist doc docs fmt.sh test \
    test_package src/samples src/Keysight_ws_add
}

# The Rust client: its library sources, manifest and licences (the
# examples are named in its manifest, and stay).
prune_rust() {
  rm -rf .github .gitignore .gitmodules .rustfmt.toml Cargo.toml.orig Cargo.lock \
    CHANGELOG.md CODE_OF_CONDUCT.md CONTRIBUTING.md SECURITY.md buildtst.sh devenv.sh
}

# vendor NAME VERSION DEST PRUNE: DEST becomes the release + its patches.
vendor() {
  local name=$1 version=$2 dest=$3 prune=$4
  local crate tree
  crate=$(find "$work/cargo-home/registry/cache" -name "$name-$version.crate" | head -n 1)
  [ -n "$crate" ] || { echo "$name $version not found" >&2; exit 1; }
  tar -xzf "$crate" -C "$work"
  tree="$work/$name-$version"
  (cd "$tree" && "$prune")

  # The patches and their notes live in the vendored tree.
  cp -r "$dest/patches" "$dest/PATCHES.md" "$tree/"
  shopt -s nullglob
  local patches=("$tree"/patches/*.patch)
  for p in "${patches[@]}"; do
    patch --quiet --forward --strip=1 --directory="$tree" <"$p"
  done

  if $check; then
    if diff -r "$tree" "$dest"; then
      echo "$dest is $name $version + ${#patches[@]} patch(es)"
    else
      echo "$dest differs from $name $version + patches (above)" >&2
      exit 1
    fi
  else
    rm -rf "$dest"
    cp -r "$tree" "$dest"
    echo "$dest: $name $version + patches; now run cargo update -p $name"
  fi
}

vendor paho-mqtt-sys "$sys_version" vendor/paho-mqtt-sys prune_sys
vendor paho-mqtt "$rust_version" vendor/paho-mqtt prune_rust
