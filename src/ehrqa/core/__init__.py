"""Core: errors, configuration, registries and HTTP retries; imports nothing else of ehrqa."""
