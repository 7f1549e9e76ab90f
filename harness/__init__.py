"""Patch, configure, build, boot and test Linux kernels in QEMU."""

__version__ = "0.1.0"
