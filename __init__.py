"""ComfyUI entry point of the RelightVid node pack: ComfyUI imports this folder as a package."""

# pytest also imports this file while collecting the tests, as a lone module (no parent package) when the
# clone folder's name is not an identifier (e.g. ComfyUI-RelightVid); the relative import needs a package.
if __package__:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    __all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
