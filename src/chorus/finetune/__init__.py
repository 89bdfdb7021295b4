"""Fine-tuning an encoder plus a linear head on a manifest (``chorus finetune``): full,
LoRA or head-only, LP-FT head initialisation from a probe, calibration statistics; writes
a chorus model and the task vector τ = θ_finetuned − θ_base. Trains through the training
core (:mod:`chorus.train`)."""
