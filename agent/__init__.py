"""The orchestration layer: campaign files, the closed loop, guard, targets, store, CLI, reports."""
