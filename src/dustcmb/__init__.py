"""dustcmb: a GAN model of Galactic dust and a Bayesian ResUNet that removes it from CMB maps."""

__version__ = "0.1.0"
