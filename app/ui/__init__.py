"""Qt widgets of the desktop app: the main window and its parts (one module per part)."""
