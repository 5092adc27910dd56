<#
.SYNOPSIS
Check the failure-mode requirements (ERR-FM) of a pipeline.

.DESCRIPTION
The ERR-FM family (specification section 8): the failure-mode catalog
docs/failure_modes/CATALOG.md, complete in both directions, with the
minimum failure modes and a recovery decision for each.

A thin wrapper around the Python validator; it holds no checks of its own and
exits with the validator's exit code. It runs

    python -m orchestration --root ROOT validate --section ERR-FM --format FORMAT [--verbose]

with the interpreter named by $env:ORCHESTRATION_PYTHON, else `python`.
Exit codes: 0 compliant, 1 violations, 2 usage error (bad arguments, no pipeline at
ROOT, or the interpreter cannot be started), 3 internal error (the
traceback is in ROOT/.state/logs/).
See scripts/validate/README.md.

.PARAMETER VerboseOutput
Pass --verbose: list every requirement ID checked (pass, fail or not
applicable), not only the failures. (Not -Verbose: that name belongs to
PowerShell's common parameters.)

.PARAMETER Root
The pipeline root, the folder holding tasks/. Passed as --root, before the
validate command. Default: the current directory.

.PARAMETER Format
How the report is printed: text (for people, the default), json (for
machines; stdout carries only the JSON document), junit (JUnit XML, one test
case per requirement ID) or github (GitHub Actions annotations).

.EXAMPLE
./scripts/validate/validate_failure_modes.ps1

Checks the pipeline in the current directory and prints a text report.

.EXAMPLE
./scripts/validate/validate_failure_modes.ps1 -Root ./my-pipeline -Format json -VerboseOutput

Checks ./my-pipeline and prints a detailed JSON report.
#>
[CmdletBinding()]
param(
    [switch]$VerboseOutput,
    [string]$Root = '.',
    [ValidateSet('text', 'json', 'junit', 'github')]
    [string]$Format = 'text'
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'
# The validator's exit code is the answer: PowerShell 7.3+ must not turn a
# non-zero code into an error of its own (and exit 1) when a profile asks it to.
$PSNativeCommandUseErrorActionPreference = $false

$python = if ($env:ORCHESTRATION_PYTHON) { $env:ORCHESTRATION_PYTHON } else { 'python' }

$arguments = @(
    '-m', 'orchestration'
    '--root', $Root  # an option of the top-level command: before `validate`
    'validate'
    '--section', 'ERR-FM'
    '--format', $Format
)
if ($VerboseOutput) {
    $arguments += '--verbose'
}

try {
    & $python @arguments
}
catch [System.Management.Automation.CommandNotFoundException], [System.Management.Automation.ApplicationFailedException] {
    Write-Error -ErrorAction Continue -Message (
        "validate_failure_modes.ps1: cannot start the Python interpreter '$python': $($_.Exception.Message) " +
        "Install Python 3.11+ and run 'python -m pip install -e .' at the repository root, " +
        'or set $env:ORCHESTRATION_PYTHON to the path of the interpreter to use.'
    )
    exit 2
}
exit $LASTEXITCODE
