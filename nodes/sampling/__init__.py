"""Sampling a RelightVid MODEL through ComfyUI: the RelightVid Sampler, the official DDPM/DDIM samplers, the IIE
guider, context windows and the shared settings."""
