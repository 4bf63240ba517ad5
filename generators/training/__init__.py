"""Training many weight diffs at once: the batched LoRA trainer, the dense (full fine-tune) trainer,
and `wdqa bench train`."""
