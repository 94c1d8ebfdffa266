"""synthinv: recover synthesizer parameters from audio with symmetry-aware flow matching."""

__version__ = "0.1.0"
