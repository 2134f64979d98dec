"""sft-workbench: badcase mining and data curation for supervised fine-tuning, with an integrated LoRA trainer."""

__version__ = "0.1.0"
