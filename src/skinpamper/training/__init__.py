"""Training: the config, the input pipeline and augmentation, losses, precision, the run folder, and
`train` / `resume` / ensembles."""
