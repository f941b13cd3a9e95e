"""Cameras: objects that turn a highway-env scene into frames with exact ground truth."""
