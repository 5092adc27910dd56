# Capability registry (CAP-REG-001): what workers can offer and tasks can require.
# PowerShell restricted data language only: it is read as data, never executed.
@{
    schema_version = '1.0.0'
    capabilities = @{
        shell = @{
            description = 'Runs execution.command in a POSIX shell inside the task sandbox.'
            local = $true
            adapter = 'shell'
            version = '1.0.0'
        }
        python = @{
            description = 'A Python 3.11+ interpreter with this project installed.'
            local = $true
            adapter = 'shell'
            version = '3.11.0'
        }
        git = @{
            description = 'The git command line, for sandboxes and evidence.'
            local = $true
            adapter = 'shell'
            version = '2.39.0'
        }
        aider = @{
            description = 'The aider coding agent, given only the required files of its task.'
            local = $false
            adapter = 'aider'
            version = '1.0.0'
        }
        claude = @{
            description = 'The claude CLI in print mode with stream-json output.'
            local = $false
            adapter = 'claude'
            version = '1.0.0'
        }
        review = @{
            description = 'A person who reviews work and records the outcome.'
            local = $false
            adapter = 'manual'
            version = '1.0.0'
        }
    }
}
