; Bytehoven's Windows installer (NSIS 3, Unicode). Built on Windows by the CI workflow after
; PyInstaller has made dist\bytehoven\ with packaging\pyinstaller\bytehoven-windows.spec:
;
;   makensis /DVERSION=0.1.0 /DSOURCE_DIR=dist\bytehoven /DOUTFILE=dist\bytehoven-0.1.0-windows-x64-setup.exe ^
;            packaging\windows\bytehoven.nsi
;
; (makensis also runs on Linux: `make -C packaging windows-check` compiles this script there
; with a stand-in payload.) Installs for all users into Program Files, adds Start-menu entries,
; "Open with" for PDFs and image scans, the `bytehoven` command through App Paths, and an
; uninstaller registered in Apps & features.

Unicode true
SetCompressor /SOLID lzma
RequestExecutionLevel admin
ManifestDPIAware true

!ifndef VERSION
  !error "pass the version: makensis /DVERSION=x.y.z ... (packaging/tools/pkgmeta.py version)"
!endif
!ifndef SOURCE_DIR
  !error "pass the PyInstaller folder: makensis /DSOURCE_DIR=dist\bytehoven ..."
!endif
!ifndef OUTFILE
  !define OUTFILE "bytehoven-${VERSION}-windows-x64-setup.exe"
!endif
!ifndef ICON
  !define ICON "${__FILEDIR__}\..\..\resources\icons\bytehoven.ico"
!endif

!define APP "Bytehoven"
!define PUBLISHER "The Bytehoven developers"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Bytehoven"
!define APP_PATHS "Software\Microsoft\Windows\CurrentVersion\App Paths"
!define PROGID "Bytehoven.Score"

Name "${APP} ${VERSION}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\${APP}"
InstallDirRegKey HKLM "${UNINSTALL_KEY}" "InstallLocation"
BrandingText "${APP} ${VERSION}"

VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${APP}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${APP} installer"
VIAddVersionKey "CompanyName" "${PUBLISHER}"
VIAddVersionKey "LegalCopyright" "GPL-3.0-or-later; the model is for non-commercial research use"

!include "MUI2.nsh"
!include "x64.nsh"
!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_RUN "$INSTDIR\bytehoven-gui.exe"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${APP}"
!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_ICONSTOP "${APP} needs 64-bit Windows."
    Abort
  ${EndIf}
  SetRegView 64
FunctionEnd

Function un.onInit
  SetRegView 64
FunctionEnd

Section "${APP}" SecMain
  SectionIn RO
  SetOutPath "$INSTDIR"
  ; An older version's files go first: PyInstaller folders change from release to release.
  RMDir /r "$INSTDIR\_internal"
  File /r "${SOURCE_DIR}\*.*"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  SetShellVarContext all
  CreateDirectory "$SMPROGRAMS\${APP}"
  CreateShortcut "$SMPROGRAMS\${APP}\${APP}.lnk" "$INSTDIR\bytehoven-gui.exe" "" "$INSTDIR\bytehoven-gui.exe" 0
  CreateShortcut "$SMPROGRAMS\${APP}\Uninstall ${APP}.lnk" "$INSTDIR\uninstall.exe"

  ; `bytehoven` from Run and from `start`; terminals use the full path (see packaging/README.md).
  WriteRegStr HKLM "${APP_PATHS}\bytehoven.exe" "" "$INSTDIR\bytehoven.exe"
  WriteRegStr HKLM "${APP_PATHS}\bytehoven-gui.exe" "" "$INSTDIR\bytehoven-gui.exe"

  ; "Open with" for PDFs and scans (never takes over the default handler).
  WriteRegStr HKLM "Software\Classes\${PROGID}" "" "Score for ${APP}"
  WriteRegStr HKLM "Software\Classes\${PROGID}\DefaultIcon" "" "$INSTDIR\bytehoven-gui.exe,0"
  WriteRegStr HKLM "Software\Classes\${PROGID}\shell\open\command" "" '"$INSTDIR\bytehoven-gui.exe" "%1"'
  WriteRegStr HKLM "Software\Classes\Applications\bytehoven-gui.exe" "FriendlyAppName" "${APP}"
  WriteRegStr HKLM "Software\Classes\Applications\bytehoven-gui.exe\shell\open\command" "" '"$INSTDIR\bytehoven-gui.exe" "%1"'
  !macro OPEN_WITH ext
    WriteRegStr HKLM "Software\Classes\${ext}\OpenWithProgids" "${PROGID}" ""
    WriteRegStr HKLM "Software\Classes\Applications\bytehoven-gui.exe\SupportedTypes" "${ext}" ""
  !macroend
  !insertmacro OPEN_WITH ".pdf"
  !insertmacro OPEN_WITH ".png"
  !insertmacro OPEN_WITH ".jpg"
  !insertmacro OPEN_WITH ".jpeg"
  !insertmacro OPEN_WITH ".tif"
  !insertmacro OPEN_WITH ".tiff"

  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayName" "${APP}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\bytehoven-gui.exe"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINSTALL_KEY}" "NoRepair" 1
  ; Apps & features shows the size; sized from the payload at compile time would need a plugin.
SectionEnd

Section "Uninstall"
  SetShellVarContext all
  Delete "$SMPROGRAMS\${APP}\${APP}.lnk"
  Delete "$SMPROGRAMS\${APP}\Uninstall ${APP}.lnk"
  RMDir "$SMPROGRAMS\${APP}"
  DeleteRegKey HKLM "${APP_PATHS}\bytehoven.exe"
  DeleteRegKey HKLM "${APP_PATHS}\bytehoven-gui.exe"
  DeleteRegKey HKLM "Software\Classes\${PROGID}"
  DeleteRegKey HKLM "Software\Classes\Applications\bytehoven-gui.exe"
  !macro UN_OPEN_WITH ext
    DeleteRegValue HKLM "Software\Classes\${ext}\OpenWithProgids" "${PROGID}"
  !macroend
  !insertmacro UN_OPEN_WITH ".pdf"
  !insertmacro UN_OPEN_WITH ".png"
  !insertmacro UN_OPEN_WITH ".jpg"
  !insertmacro UN_OPEN_WITH ".jpeg"
  !insertmacro UN_OPEN_WITH ".tif"
  !insertmacro UN_OPEN_WITH ".tiff"
  DeleteRegKey HKLM "${UNINSTALL_KEY}"
  ; Only what the installer put there: never a folder the user chose that held other files.
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\bytehoven.exe"
  Delete "$INSTDIR\bytehoven-gui.exe"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
SectionEnd
