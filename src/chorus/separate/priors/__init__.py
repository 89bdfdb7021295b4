"""Source priors trained on single sources (EDM denoisers on spectrograms) and the guided
sampler that separates a mixture with them."""
