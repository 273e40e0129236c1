"""fractal-server: manage and run bioimage-analysis workflows on OME-Zarr data."""

__version__ = "2.9.2"
