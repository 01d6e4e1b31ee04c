"""Development tools: generators for the committed stubs and reference docs (not shipped)."""
