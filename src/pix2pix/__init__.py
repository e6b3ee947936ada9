"""pix2pix: paired image-to-image translation with conditional GANs (Isola et al., 2017)."""

__version__ = "0.1.0"
