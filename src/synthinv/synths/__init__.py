"""Synthesizers: each exposes a ParamSpec and renders normalised parameters to audio."""
