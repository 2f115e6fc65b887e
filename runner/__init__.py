"""dsrun: run NVIDIA DeepStream app configs without the DeepStream SDK."""
__version__ = "0.1.0"
