# Install Chronoscope for editors (Windows): runs installer\install.py with a Python 3.10 or newer.
# Every option is passed on, e.g.:  powershell -ExecutionPolicy Bypass -File installer\install.ps1 --gpu cpu
$ErrorActionPreference = "Stop"
$installer = Join-Path $PSScriptRoot "install.py"
$candidates = @(@("py", "-3"), @("python"), @("python3"))

function Test-Python($exe, $prefix) {
    # A candidate may write to stderr (the py launcher with no Python 3, the Microsoft Store's
    # python.exe stub). With "Stop", Windows PowerShell 5.1 turns redirected stderr of a native
    # command into a terminating error (PowerShell issue #4002), so the probe runs with its own,
    # tolerant preference and any error only means: try the next candidate.
    $ErrorActionPreference = "SilentlyContinue"
    try {
        & $exe @prefix -c "import sys, venv; sys.exit(sys.version_info < (3, 10))" 2>$null | Out-Null
        return ($LASTEXITCODE -eq 0)
    } catch {
        return $false
    }
}

foreach ($candidate in $candidates) {
    $exe = $candidate[0]
    $prefix = @($candidate | Select-Object -Skip 1)
    if (-not (Get-Command $exe -ErrorAction SilentlyContinue)) { continue }
    if (-not (Test-Python $exe $prefix)) { continue }
    # install.py logs to stderr; its exit status, not its stderr, says whether it worked
    $ErrorActionPreference = "Continue"
    & $exe @prefix $installer @args
    exit $LASTEXITCODE
}
Write-Error "install.ps1: Chronoscope needs Python 3.10 or newer: https://www.python.org/downloads/windows/"
exit 1
