"""Builds the optional C extension (shoal._speedups, the hot paths) with the system
compiler; everything else is in pyproject.toml. If the extension cannot be built
(no compiler, no Python headers), the package installs without it and runs through
ctypes alone."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("shoal._speedups", ["shoal/_speedups.c"], optional=True)])
