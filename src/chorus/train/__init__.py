"""The training core: one training step (:class:`~chorus.train.step.TrainStep`: AMP,
accumulation, clipping, the schedule, an EMA hook), learning-rate schedules, one
resumable checkpoint format, early stopping, LoRA adapters, training losses/metrics and the L-BFGS probe head.
Every training in chorus (fine-tuning, continual pre-training, distillation, source priors,
WUDI's per-layer solve) steps its optimizer here; it depends on nothing above the core
utilities, so every layer may use it."""
