# Install Chronoscope for editors (Windows): runs installer\install.py with a Python 3.10 or newer.
# Every option is passed on, e.g.:  powershell -ExecutionPolicy Bypass -File installer\install.ps1 --gpu cpu
$ErrorActionPreference = "Stop"
$installer = Join-Path $PSScriptRoot "install.py"
$candidates = @(@("py", "-3"), @("python"), @("python3"))
foreach ($candidate in $candidates) {
    $exe = $candidate[0]
    $prefix = @($candidate | Select-Object -Skip 1)
    if (-not (Get-Command $exe -ErrorAction SilentlyContinue)) { continue }
    & $exe @prefix -c "import sys, venv; sys.exit(sys.version_info < (3, 10))" 2>$null
    if ($LASTEXITCODE -ne 0) { continue }
    & $exe @prefix $installer @args
    exit $LASTEXITCODE
}
Write-Error "install.ps1: Chronoscope needs Python 3.10 or newer: https://www.python.org/downloads/windows/"
exit 1
