#!/usr/bin/env bash
# Packs the macOS app into a drag-to-Applications disk image. Run on macOS after PyInstaller
# has built dist/Bytehoven.app with packaging/pyinstaller/bytehoven-macos.spec:
#
#   packaging/macos/make-dmg.sh dist/Bytehoven.app dist/bytehoven-VERSION-macos-arm64.dmg
#
# PyInstaller signs the app ad hoc, which runs on the machine that built it; downloaded from
# elsewhere, Gatekeeper refuses an app that is not signed with a Developer ID and notarized.
# With SIGN_IDENTITY="Developer ID Application: ..." the app is signed for distribution here;
# notarize the .dmg afterwards (xcrun notarytool submit OUT.dmg --wait; xcrun stapler staple OUT.dmg).
set -euo pipefail
app="${1:?usage: make-dmg.sh PATH/Bytehoven.app OUT.dmg}"
out="${2:?usage: make-dmg.sh PATH/Bytehoven.app OUT.dmg}"
[ -d "$app/Contents/MacOS" ] || { echo "make-dmg: $app is not an app bundle" >&2; exit 1; }
command -v hdiutil >/dev/null || { echo "make-dmg: hdiutil is missing: run this on macOS" >&2; exit 1; }
version="$(/usr/libexec/PlistBuddy -c 'Print :CFBundleShortVersionString' "$app/Contents/Info.plist")"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp -R "$app" "$stage/"
ln -s /Applications "$stage/Applications"
if [ -n "${SIGN_IDENTITY:-}" ]; then
  codesign --force --deep --options runtime --timestamp --sign "$SIGN_IDENTITY" "$stage/$(basename "$app")"
fi
codesign --verify --deep --strict "$stage/$(basename "$app")"
rm -f "$out"
hdiutil create -volname "Bytehoven $version" -srcfolder "$stage" -fs HFS+ -format UDZO -ov "$out"
hdiutil verify "$out"
echo "make-dmg: $out ($(du -h "$out" | cut -f1))"
