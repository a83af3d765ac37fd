"""Conditioning nodes: fitted clips and masks, backgrounds, light presets, HDR maps and text, and the image
condition they put on a CONDITIONING."""
