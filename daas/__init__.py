"""DAAS: deepfake-aware generation and detection suite. This package holds the CLI and shared video I/O."""
from .errors import DaasError, VideoError

__version__ = "0.1.0"
__all__ = ["DaasError", "VideoError", "__version__"]
