"""Night analysis: pure signal-processing steps composed into one pipeline."""
