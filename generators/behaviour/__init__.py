"""What a diff is trained on: the behaviour writers (offline templates, an LLM, the paper's tables), the
hidden-topic recipe and its measurement, and open prompts."""
