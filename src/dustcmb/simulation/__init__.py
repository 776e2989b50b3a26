"""Multi-frequency separation data: CMB bank (camb), dust SED, instrument, streaming train/val/test sets."""
