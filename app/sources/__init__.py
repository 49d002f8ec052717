"""Frame sources: video files and cameras. Adding a source is adding one module."""
