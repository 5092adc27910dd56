# Resource registry (CONC-REG-001): capacity-limited resources and path locks.
# A task claims units in its "resources" field; tasks whose path locks
# overlap never run at the same time.
@{
    schema_version = '1.0.0'
    resources = @{
        'llm-api' = @{
            description = 'Concurrent requests to the language-model API.'
            kind = 'counted'
            capacity = 4
        }
        'test-slots' = @{
            description = 'CPU-heavy test runs that fit on this machine at once.'
            kind = 'counted'
            capacity = 2
        }
        'state-code' = @{
            description = 'The store: one agent at a time edits it.'
            kind = 'path_lock'
            paths = @('src/orchestration/state/**', 'tests/state/**')
            capacity = 1
        }
        'planning-code' = @{
            description = 'The planner and its renderers.'
            kind = 'path_lock'
            paths = @('src/orchestration/planning/**', 'tests/planning/**')
            capacity = 1
        }
        'docs' = @{
            description = 'Documentation and the normative spec.'
            kind = 'path_lock'
            paths = @('docs/**', 'specifications/**', 'README.md')
            capacity = 1
        }
    }
}
