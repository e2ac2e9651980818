"""The ground floor: settings, process-wide clients, logging, metrics and the event hub.

It imports nothing else of ours, so every other package may stand on it
(docs/architecture.md, the layers contract in pyproject.toml)."""
