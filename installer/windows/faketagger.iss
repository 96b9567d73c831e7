; Inno Setup 6 script: one FakeTagger-VERSION-windows-x64-setup.exe from the PyInstaller folder.
; NOT built or run on the project's Linux machines: .github/workflows/dist.yml builds it on a
; Windows runner. From the repository root, after PyInstaller has made dist\FakeTagger\:
;
;     iscc /DAppVersion=0.1.0 installer\windows\faketagger.iss
;
; One file, no disk spanning: the CPU bundle compresses to about 300 MB, far under the 4.2 GB that
; Inno Setup can keep inside Setup.exe (DiskSpanning is only needed past that). Per-user install
; by default (no administrator rights needed); the dialog offers all users.
; Your identities, ledger and settings live in %LOCALAPPDATA%\FakeTagger and are never removed by
; the uninstaller.

#ifndef AppVersion
  #define AppVersion "0.0.0"
#endif
#ifndef SourceDir
  #define SourceDir "..\..\dist\FakeTagger"
#endif
#define AppExe "FakeTagger.exe"

[Setup]
AppId={{7C1A6E0B-4D1E-4A5B-9B7E-FA4E7A99C0DE}
AppName=FakeTagger
AppVersion={#AppVersion}
AppVerName=FakeTagger {#AppVersion}
AppPublisher=FakeTagger
AppComments=Invisible, signed owner tags in the faces of your photos; offline verification
DefaultDirName={autopf}\FakeTagger
DefaultGroupName=FakeTagger
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir=..\..\dist
OutputBaseFilename=FakeTagger-{#AppVersion}-windows-x64-setup
SetupIconFile=..\..\build\icons\faketagger.ico
UninstallDisplayIcon={app}\{#AppExe}
Compression=lzma2/max
SolidCompression=yes
LZMANumBlockThreads=4
DiskSpanning=no
WizardStyle=modern
ChangesAssociations=yes
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "openwith"; Description: "Offer FakeTagger in ""Open with"" for photos (JPEG, PNG, WebP, TIFF)"

[Files]
; The whole one-folder build: FakeTagger.exe (the app), faketagger-cli.exe (the command line) and
; _internal\ (Python, Qt, CPU PyTorch, the models). Reinstalling replaces it whole.
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[InstallDelete]
; An update must not leave files of the previous version's runtime behind.
Type: filesandordirs; Name: "{app}\_internal"

[Icons]
Name: "{autoprograms}\FakeTagger"; Filename: "{app}\{#AppExe}"
Name: "{autodesktop}\FakeTagger"; Filename: "{app}\{#AppExe}"; Tasks: desktopicon

[Registry]
; "Open with FakeTagger" (the app checks the photo on its Verify tab). Added beside the user's
; default viewer, never in its place: OpenWithProgids only.
Root: HKA; Subkey: "Software\Classes\FakeTagger.Image"; ValueType: string; ValueName: ""; ValueData: "Photo (check with FakeTagger)"; Flags: uninsdeletekey; Tasks: openwith
Root: HKA; Subkey: "Software\Classes\FakeTagger.Image\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\{#AppExe},0"; Tasks: openwith
Root: HKA; Subkey: "Software\Classes\FakeTagger.Image\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" ""%1"""; Tasks: openwith
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}"; ValueType: string; ValueName: "FriendlyAppName"; ValueData: "FakeTagger"; Flags: uninsdeletekey; Tasks: openwith
Root: HKA; Subkey: "Software\Classes\Applications\{#AppExe}\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#AppExe}"" ""%1"""; Tasks: openwith
Root: HKA; Subkey: "Software\Classes\.jpg\OpenWithProgids"; ValueType: string; ValueName: "FakeTagger.Image"; ValueData: ""; Flags: uninsdeletevalue; Tasks: openwith
Root: HKA; Subkey: "Software\Classes\.jpeg\OpenWithProgids"; ValueType: string; ValueName: "FakeTagger.Image"; ValueData: ""; Flags: uninsdeletevalue; Tasks: openwith
Root: HKA; Subkey: "Software\Classes\.png\OpenWithProgids"; ValueType: string; ValueName: "FakeTagger.Image"; ValueData: ""; Flags: uninsdeletevalue; Tasks: openwith
Root: HKA; Subkey: "Software\Classes\.webp\OpenWithProgids"; ValueType: string; ValueName: "FakeTagger.Image"; ValueData: ""; Flags: uninsdeletevalue; Tasks: openwith
Root: HKA; Subkey: "Software\Classes\.tif\OpenWithProgids"; ValueType: string; ValueName: "FakeTagger.Image"; ValueData: ""; Flags: uninsdeletevalue; Tasks: openwith
Root: HKA; Subkey: "Software\Classes\.tiff\OpenWithProgids"; ValueType: string; ValueName: "FakeTagger.Image"; ValueData: ""; Flags: uninsdeletevalue; Tasks: openwith

[Run]
Filename: "{app}\{#AppExe}"; Description: "{cm:LaunchProgram,FakeTagger}"; Flags: nowait postinstall skipifsilent
