"""Frame outputs: MP4 recording/export and the virtual camera."""
