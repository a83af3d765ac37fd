"""ComfyUI node classes (thin adapters over relightvid_core) and their registration tables."""

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
