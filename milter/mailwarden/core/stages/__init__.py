"""Pure stages: each one file, each satisfying `mailwarden.core.pipeline.Stage`."""
