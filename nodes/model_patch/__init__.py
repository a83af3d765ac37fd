"""The patches that turn a ComfyUI SD1.5 MODEL into RelightVid's video U-Net (IC-Light offsets, temporal modules,
clip-wide norms), and the checks of the conds it is sampled with."""
